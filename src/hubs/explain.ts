/**
 * Pure: what a person is told when Event Hubs or blob storage refuses a request or cannot be
 * reached. The SDKs wrap their answers (@azure/core-amqp retries collect every attempt in an
 * AggregateError with no message of its own, and the client wraps that again in `cause`), so the
 * innermost useful cause is found first; then the explanation names it, the setting or command that
 * fixes it, and never an address the user did not type (the `$management` link of a hub).
 *
 * Every CLI path and the runner's start-up go through `explainServiceError`; `ServiceError` carries
 * its message and keeps the original as `cause` (HUBSINK_DEBUG shows it).
 */
import { HubsinkError, type ErrorKind } from '../errors.js';
import type { EventHubsConnection, StorageConnection } from '../config.js';
import { describeError, innerErrors } from '../pipeline/classify.js';

export type ServiceProblem = 'auth' | 'hub-not-found' | 'group-not-found' | 'unreachable' | 'epoch' | 'other';

export interface EventHubsContext {
  /** Where the connection came from: the app setting (EventHubConnection) or an option (--connection). */
  setting: string;
  /** The namespace's host:port, as the connection names it. */
  endpoint?: string;
  hub?: string;
  /** What names the hub: an option (--hub) or a setting (INGEST_EVENTHUB_NAME). */
  hubSetting?: string;
  consumerGroup?: string;
  consumerGroupSetting?: string;
}

export interface StorageContext {
  setting: string;
  /** The blob endpoint's host:port. */
  endpoint?: string;
}

/** What a command talks to; an error is matched to one of them by its shape. */
export interface ServiceContext {
  eventHubs?: EventHubsContext;
  storage?: StorageContext;
}

export interface Explanation {
  service: 'eventhubs' | 'storage' | 'unknown';
  problem: ServiceProblem;
  message: string;
  kind: ErrorKind;
  /** False when trying again cannot help (a wrong key, a missing hub or consumer group). */
  retryable: boolean;
}

/** A failure of Event Hubs or storage, with a message that names its cause and the fix. */
export class ServiceError extends HubsinkError {
  override name = 'ServiceError';
  readonly kind: ErrorKind;
  constructor(
    readonly explanation: Explanation,
    options?: { cause?: unknown },
  ) {
    super(explanation.message, options);
    this.kind = explanation.kind;
  }
}

const NET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED', 'EPIPE']);

function field(err: unknown, name: string): unknown {
  return typeof err === 'object' && err !== null ? (err as Record<string, unknown>)[name] : undefined;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '';
}

/** Every error in the tree, outermost first (wrappers included), each once. */
export function errorTree(err: unknown): unknown[] {
  const out: unknown[] = [];
  const visit = (e: unknown, depth: number): void => {
    if (depth > 8 || e === undefined || e === null || out.includes(e)) return;
    out.push(e);
    for (const x of innerErrors(e)) visit(x, depth + 1);
  };
  visit(err, 0);
  return out;
}

/** Pure: host:port of an Event Hubs connection string (5671, AMQPS, when it names none). */
export function eventHubsEndpoint(connectionString: string): string | undefined {
  const m = /(?:^|;)\s*Endpoint\s*=\s*sb:\/\/([^/;]+)/i.exec(connectionString);
  if (!m?.[1]) return undefined;
  const host = m[1];
  if (/:\d+$/.test(host)) return host;
  return /(^|;)\s*UseDevelopmentEmulator\s*=\s*true/i.test(connectionString) ? `${host}:5672` : `${host}:5671`;
}

/** Pure: host:port of a storage connection string's blob endpoint. */
export function storageEndpoint(connectionString: string): string | undefined {
  if (/(^|;)\s*UseDevelopmentStorage\s*=\s*true/i.test(connectionString)) return '127.0.0.1:10000';
  const blob = /(?:^|;)\s*BlobEndpoint\s*=\s*([^;]+)/i.exec(connectionString)?.[1];
  if (blob) {
    try {
      const u = new URL(blob.trim());
      return `${u.hostname}:${u.port || (u.protocol === 'http:' ? '80' : '443')}`;
    } catch {
      return undefined;
    }
  }
  const account = /(?:^|;)\s*AccountName\s*=\s*([^;]+)/i.exec(connectionString)?.[1];
  const suffix = /(?:^|;)\s*EndpointSuffix\s*=\s*([^;]+)/i.exec(connectionString)?.[1] ?? 'core.windows.net';
  return account ? `${account.trim()}.blob.${suffix.trim()}:443` : undefined;
}

/** What names an Event Hubs connection, for explanations. */
export function eventHubsContext(conn: EventHubsConnection, names: Omit<EventHubsContext, 'endpoint' | 'setting'> & { setting?: string }): EventHubsContext {
  const endpoint = conn.kind === 'connectionString' ? eventHubsEndpoint(conn.connectionString) : `${conn.fullyQualifiedNamespace}:5671`;
  return { setting: names.setting ?? (conn.kind === 'connectionString' ? 'EventHubConnection' : 'EventHubConnection__fullyQualifiedNamespace'), ...names, ...(endpoint ? { endpoint } : {}) };
}

/** What names a storage connection, for explanations. */
export function storageContext(storage: StorageConnection): StorageContext {
  if (storage.kind === 'connectionString') {
    const endpoint = storageEndpoint(storage.connectionString);
    return { setting: 'AzureWebJobsStorage', ...(endpoint ? { endpoint } : {}) };
  }
  const url = storage.blobServiceUri ?? (storage.accountName ? `https://${storage.accountName}.blob.core.windows.net` : undefined);
  let endpoint: string | undefined;
  try {
    if (url) endpoint = `${new URL(url).hostname}:${new URL(url).port || '443'}`;
  } catch {
    endpoint = undefined;
  }
  return { setting: storage.blobServiceUri ? 'AzureWebJobsStorage__blobServiceUri' : 'AzureWebJobsStorage__accountName', ...(endpoint ? { endpoint } : {}) };
}

function isStorageError(e: unknown): boolean {
  const request = field(e, 'request');
  return field(e, 'name') === 'RestError' || (typeof request === 'object' && request !== null && typeof field(request, 'url') === 'string');
}

/** host:port named by a network error: its fields, its message, or the request's URL. */
function netEndpoint(e: unknown): string | undefined {
  const address = str(field(e, 'address'));
  const port = str(field(e, 'port'));
  if (address && port) return `${address}:${port}`;
  const m = /\b(?:connect|getaddrinfo|read|write)\s+E[A-Z_]+\s+(\S+?:\d+)\b/.exec(str(field(e, 'message')));
  if (m?.[1]) return m[1];
  const request = field(e, 'request');
  const url = str(field(request, 'url'));
  if (url) {
    try {
      const u = new URL(url);
      return `${u.hostname}:${u.port || (u.protocol === 'http:' ? '80' : '443')}`;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

interface Finding {
  service: 'eventhubs' | 'storage';
  problem: ServiceProblem;
  error: unknown;
  detail: string;
}

const AUTH_MESSAGE = /InvalidSignature|ExpiredToken|InvalidAudience|unauthori[sz]ed|unknown shared access key name|Put token failed|status-code: 401/i;
const EPOCH_MESSAGE = /receiver with (a higher )?epoch|link:stolen|ReceiverDisconnected/i;

function findingOf(e: unknown): Finding | undefined {
  const code = str(field(e, 'code'));
  const msg = str(field(e, 'message'));
  const name = str(field(e, 'name'));
  if (isStorageError(e)) {
    const status = field(e, 'statusCode');
    if (status === 403 || /^(AuthorizationFailure|AuthenticationFailed|AuthorizationPermissionMismatch)$/.test(code)) {
      return { service: 'storage', problem: 'auth', error: e, detail: code || `status ${str(status)}` };
    }
    if (NET_CODES.has(code)) return { service: 'storage', problem: 'unreachable', error: e, detail: code };
    return undefined;
  }
  if (code === 'UnauthorizedError' || AUTH_MESSAGE.test(msg) || /^(CredentialUnavailableError|AuthenticationError|AggregateAuthenticationError)$/.test(name)) {
    return { service: 'eventhubs', problem: 'auth', error: e, detail: msg || code };
  }
  if (code === 'MessagingEntityNotFoundError' || /messaging entity .* could not be found/i.test(msg)) {
    return { service: 'eventhubs', problem: /\/ConsumerGroups\//i.test(msg) ? 'group-not-found' : 'hub-not-found', error: e, detail: msg };
  }
  if (code === 'ReceiverDisconnectedError' || EPOCH_MESSAGE.test(msg)) return { service: 'eventhubs', problem: 'epoch', error: e, detail: msg };
  if (NET_CODES.has(code)) return { service: 'eventhubs', problem: 'unreachable', error: e, detail: code };
  // The AMQP client reports a connection that never opened (a port answered by something that is
  // not Event Hubs, or a connect that timed out) with this message and no socket error code.
  if (/^Failed to connect\b/i.test(msg) || code === 'ServiceCommunicationError') {
    return { service: 'eventhubs', problem: 'unreachable', error: e, detail: msg || code };
  }
  return undefined;
}

const PRIORITY: readonly ServiceProblem[] = ['auth', 'group-not-found', 'hub-not-found', 'epoch', 'unreachable'];

/** Pure: the most telling finding in an error tree (a refusal says more than the retries around it). */
export function innermostFinding(err: unknown): Finding | undefined {
  const findings = errorTree(err)
    .map(findingOf)
    .filter((f): f is Finding => f !== undefined);
  for (const p of PRIORITY) {
    const f = findings.find((x) => x.problem === p);
    if (f) return f;
  }
  return undefined;
}

/** The name a not-found message gives: `'hub/ConsumerGroups/cg'`, `'sb://host/hub/$management'` or `'hub'`. */
function quotedEntity(msg: string): { hub?: string; group?: string } {
  const q = /'([^']*)'/.exec(msg)?.[1] ?? '';
  const g = /(?:^|\/)([^/]+)\/ConsumerGroups\/([^/]+)/i.exec(q);
  if (g) return { hub: g[1] as string, group: g[2] as string };
  const path = q.replace(/^[a-z]+:\/\/[^/]+\//i, '').replace(/\/\$management$/i, '');
  return path && !path.includes('/') ? { hub: path } : {};
}

function namespaceName(endpoint: string | undefined): string {
  const host = endpoint?.replace(/:\d+$/, '') ?? '';
  return /\.servicebus\.windows\.net$/i.test(host) ? (host.split('.')[0] as string) : '<namespace>';
}

const isLocal = (endpoint: string | undefined): boolean => /^(127\.|localhost|\[?::1\]?)/i.test(endpoint ?? '');

function explainEventHubs(f: Finding, ctx: EventHubsContext): Explanation {
  const setting = ctx.setting;
  const at = ctx.endpoint ? ` at ${ctx.endpoint}` : '';
  const base = { service: 'eventhubs' as const, problem: f.problem };
  switch (f.problem) {
    case 'auth':
      return {
        ...base,
        kind: 'failed',
        retryable: false,
        message:
          `Event Hubs${at} refused the credentials (${f.detail}): check the SharedAccessKeyName and SharedAccessKey in ${setting}` +
          ` (the namespace's shared access policies${isLocal(ctx.endpoint) ? '; for `hubsink local`, `source .hubsink/env`' : ''}), or the identity's Event Hubs data role`,
      };
    case 'hub-not-found': {
      const hub = ctx.hub ?? quotedEntity(f.detail).hub ?? '?';
      const how = isLocal(ctx.endpoint)
        ? `start the emulator with it (hubsink emulator --hub ${hub}:4)`
        : `create it (az eventhubs eventhub create --resource-group <group> --namespace-name ${namespaceName(ctx.endpoint)} --name ${hub})`;
      return {
        ...base,
        kind: 'failed',
        retryable: false,
        message: `event hub '${hub}' does not exist in the namespace${at}: ${how}, or name an existing hub${ctx.hubSetting ? ` with ${ctx.hubSetting}` : ''}`,
      };
    }
    case 'group-not-found': {
      const named = quotedEntity(f.detail);
      const group = ctx.consumerGroup ?? named.group ?? '?';
      const hub = ctx.hub ?? named.hub ?? '?';
      const how = isLocal(ctx.endpoint)
        ? `declare it when starting the emulator (hubsink emulator --consumer-group ${group})`
        : `create it (az eventhubs eventhub consumer-group create --resource-group <group> --namespace-name ${namespaceName(ctx.endpoint)} --eventhub-name ${hub} --name ${group})`;
      return {
        ...base,
        kind: 'failed',
        retryable: false,
        message: `consumer group '${group}' does not exist on event hub '${hub}'${at}: ${how}, or name an existing group${ctx.consumerGroupSetting ? ` with ${ctx.consumerGroupSetting}` : ''}`,
      };
    }
    case 'epoch':
      return {
        ...base,
        kind: 'refused',
        retryable: false,
        message:
          `a consumer holds ${ctx.consumerGroup ? `consumer group '${ctx.consumerGroup}'` : 'the consumer group'}${ctx.hub ? ` on '${ctx.hub}'` : ''} with an owner-level (epoch) receiver (${f.detail}): ` +
          'read with another consumer group (--read-consumer-group for `checkpoints rewind`), or stop the consumer first',
      };
    case 'unreachable': {
      const where = netEndpoint(f.error) ?? ctx.endpoint ?? 'its endpoint';
      return {
        ...base,
        kind: 'unavailable',
        retryable: true,
        message:
          `cannot reach Event Hubs at ${where} (${f.detail}): check the Endpoint in ${setting}, and that the namespace${isLocal(where) ? ' (here: `hubsink local` or `hubsink emulator`)' : ''} is running and reachable`,
      };
    }
    default:
      return { ...base, kind: 'failed', retryable: true, message: `Event Hubs${at}: ${describeError(f.error)} (check ${setting})` };
  }
}

function explainStorage(f: Finding, ctx: StorageContext): Explanation {
  const base = { service: 'storage' as const, problem: f.problem };
  if (f.problem === 'auth') {
    const at = ctx.endpoint ? ` at ${ctx.endpoint}` : '';
    return {
      ...base,
      kind: 'failed',
      retryable: false,
      message: `blob storage${at} refused the credentials (${f.detail}): check the AccountName and AccountKey in ${ctx.setting}, or the identity's Storage Blob Data role`,
    };
  }
  const where = netEndpoint(f.error) ?? ctx.endpoint ?? 'its endpoint';
  return {
    ...base,
    kind: 'unavailable',
    retryable: true,
    message: `cannot reach blob storage at ${where} (${f.detail}): check ${ctx.setting} (its BlobEndpoint or AccountName), and that the storage account${isLocal(where) ? ' (here: Azurite, which `hubsink local` starts)' : ''} is running and reachable`,
  };
}

/**
 * Pure: the explanation of any error met while talking to Event Hubs or storage. An error that is
 * not recognised is described by its innermost messages (describeError), never as an empty string.
 */
export function explainServiceError(err: unknown, ctx: ServiceContext = {}): Explanation {
  if (err instanceof ServiceError) return err.explanation;
  const f = innermostFinding(err);
  if (f?.service === 'storage') return explainStorage(f, ctx.storage ?? { setting: 'AzureWebJobsStorage' });
  if (f) return explainEventHubs(f, ctx.eventHubs ?? { setting: 'EventHubConnection' });
  const text = describeError(err);
  return { service: 'unknown', problem: 'other', kind: 'failed', retryable: true, message: text.trim() === '' ? 'failed without a message (run with HUBSINK_DEBUG=1 for the whole error)' : text };
}

/** The error to throw for `err`: ours unchanged, any other explained (the original kept as cause). */
export function explained(err: unknown, ctx: ServiceContext = {}): unknown {
  if (err instanceof HubsinkError) return err;
  return new ServiceError(explainServiceError(err, ctx), { cause: err });
}
