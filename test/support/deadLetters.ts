/**
 * Helpers for the dead-letter tests: events as the Functions host would hand them to the `deadletter`
 * function (built from events really received from a hub, or from records), schemas ready for
 * writes, and a pool that cannot reach any database.
 */
// A CommonJS package: its classes are reachable from ESM only through the default export.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { loadConfig, type HubsinkConfig } from '../../src/config.js';
import { detectCapabilities } from '../../src/db/capabilities.js';
import { migrate } from '../../src/db/migrate.js';
import { maintainPartitions } from '../../src/db/partitions.js';
import { freePort } from '../../src/local/ports.js';
import { toDeadLetterMessage } from '../../src/pipeline/deadLetterMessage.js';
import type { DeadLetterRecord } from '../../src/pipeline/types.js';
import { createTestSchema, type TestSchema } from './services.js';

/** The subset of the SDK's ReceivedEventData the host passes on. */
export interface ReceivedLike {
  body: unknown;
  properties?: Record<string, unknown>;
  sequenceNumber: number;
  offset: string | number;
  enqueuedTimeUtc: Date;
  partitionKey?: string | null;
}

/** What the Node.js library does to keys: the first letter lower-cased, recursively. */
function camel(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(camel);
  if (v === null || typeof v !== 'object' || Buffer.isBuffer(v) || v instanceof Date) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k.charAt(0).toLowerCase() + k.slice(1)] = camel(x);
  return out;
}

/** ...and to string values: anything that parses as JSON arrives parsed. */
function hostValue(v: unknown): unknown {
  if (typeof v !== 'string') return camel(v);
  try {
    return camel(JSON.parse(v) as unknown);
  } catch {
    return v;
  }
}

const hostTime = (d: Date): string => d.toISOString().replace('Z', '');
const long = (n: number) => ({ low: n | 0, high: Math.floor(n / 2 ** 32), unsigned: false });

/**
 * Functions-style `messages` (binary) and `triggerMetadata` for one partition's events, with the
 * host's quirks: camel-cased keys, JSON-parsed strings, Long sequence numbers, numeric offsets,
 * times without `Z`, empty partition keys dropped.
 */
export function hostShape(
  events: readonly ReceivedLike[],
  ctx: { hub: string; consumerGroup: string; partitionId: string },
): { messages: Buffer[]; triggerMetadata: Record<string, unknown> } {
  const messages = events.map((e) => {
    if (Buffer.isBuffer(e.body)) return e.body;
    if (e.body instanceof Uint8Array) return Buffer.from(e.body);
    throw new Error('receive with skipParsingBodyAsJson: the host passes binary bodies as they are');
  });
  const props = events.map((e) => {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(e.properties ?? {})) out[k.charAt(0).toLowerCase() + k.slice(1)] = hostValue(v);
    return out;
  });
  return {
    messages,
    triggerMetadata: {
      partitionContext: { fullyQualifiedNamespace: '127.0.0.1', eventHubName: ctx.hub, consumerGroup: ctx.consumerGroup, partitionId: hostValue(ctx.partitionId) },
      sequenceNumberArray: events.map((e) => long(e.sequenceNumber)),
      offsetArray: events.map((e) => hostValue(String(e.offset))),
      enqueuedTimeUtcArray: events.map((e) => hostTime(e.enqueuedTimeUtc)),
      partitionKeyArray: events.map((e) => e.partitionKey ?? '').filter((k) => k !== ''),
      propertiesArray: props,
      systemPropertiesArray: events.map((e) => ({
        sequenceNumber: e.sequenceNumber,
        offset: hostValue(String(e.offset)),
        enqueuedTimeUtc: hostTime(e.enqueuedTimeUtc),
        ...(e.partitionKey ? { partitionKey: hostValue(e.partitionKey) } : {}),
      })),
    },
  };
}

/** Dead-letter records as events of the dead-letter hub (for tests that need no hub). */
export function asDeadLetterEvents(records: readonly DeadLetterRecord[], firstSequence: number, enqueued = new Date()): ReceivedLike[] {
  return records.map((r, i) => {
    const m = toDeadLetterMessage(r);
    return {
      body: m.body,
      properties: m.properties,
      sequenceNumber: firstSequence + i,
      offset: String((firstSequence + i) * 100),
      enqueuedTimeUtc: new Date(enqueued.getTime() + i),
      partitionKey: m.partitionKey ?? null,
    };
  });
}

export { invocationContext as invocation } from './functions-batch.js';

/** A migrated schema with partitions for [now − partitionDays, now + 3 days]. */
export async function readySchema(prefix: string, partitionDays = 30): Promise<TestSchema> {
  const s = await createTestSchema(prefix);
  await migrate(s.pool, s.schema);
  await maintainPartitions(s.pool, s.schema, { now: new Date(), aheadDays: 3, retentionDays: partitionDays, caps: await detectCapabilities(s.pool) });
  return s;
}

/** Configuration for a test schema; transient failures are retried only briefly. */
export function testConfig(schema: string, env: Record<string, string> = {}): HubsinkConfig {
  return loadConfig({ HUBSINK_SCHEMA: schema, HUBSINK_TRANSIENT_RETRY_MS: '300', ...env });
}

/** A pool whose every connection is refused: the database is "down". */
export async function downPool(): Promise<pg.Pool> {
  const port = await freePort();
  const pool = new pg.Pool({ host: '127.0.0.1', port, user: 'postgres', password: 'x', database: 'postgres', connectionTimeoutMillis: 2_000, max: 2 });
  pool.on('error', () => undefined);
  return pool;
}

export const fastSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, Math.min(ms, 20)));

export async function countRows(pool: pg.Pool, schema: string, table: 'events' | 'dead_letters', where = '', values: unknown[] = []): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(`SELECT count(*)::bigint AS n FROM "${schema}".${table} ${where}`, values);
  return Number(rows[0]?.n ?? 0);
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

const binPath = fileURLToPath(new URL('../../bin/hubsink.js', import.meta.url));

/**
 * Runs `node bin/hubsink.js ...args` with only the given settings (plus PATH), bounded in time.
 * `onStderr` sees stderr as it arrives, and may signal the child (to interrupt it).
 */
export function runCli(args: readonly string[], env: Record<string, string>, opts: { timeoutMs?: number; onStderr?: (text: string, child: ChildProcess) => void } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [binPath, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString('utf8');
      opts.onStderr?.(stderr, child);
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`hubsink ${args.join(' ')} did not finish within ${opts.timeoutMs ?? 60_000} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
