/**
 * `hubsink local` (the README's `npm start`): the whole pipeline on one machine with no Azure
 * subscription. How to connect goes to stdout; the live status to stderr (a block redrawn in place
 * on a terminal, plain lines otherwise). Ctrl-C or SIGTERM stops everything in order.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { loadConfig, type AccessMode } from '../config.js';
import { parseDevPrincipal, type Principal } from '../serving/access.js';
import { renderStatusBlock, renderStatusLine, type LocalStatus } from '../local/status.js';
import { isStackChild, superviseStack, TTY_ENV } from '../local/supervise.js';
import type { LocalInfo, LocalStack } from '../local/stack.js';
import { sourceLine, writeEnvFile, type LocalSettings } from '../local/envFile.js';
import type { Logger, LogLevel } from '../operator/log.js';
import { exitSoonAfterShutdown, waitForShutdown } from '../operator/shutdown.js';
import { describeError } from '../pipeline/classify.js';
import { escapeControls, redactSecrets } from '../operator/terminal.js';
import { checkEventHubsConnection, checkGeneratorShares, parseNonNegativeInt, parsePort, parsePositiveInt, parseProbability, parseSeconds, resolveSecret, UsageError } from './program.js';


interface LocalCliOptions {
  dataDir: string;
  databaseUrl?: string;
  databaseUrlFile?: string;
  eventhubConnection?: string;
  eventhubConnectionFile?: string;
  rate: number;
  generate: boolean;
  tenants: number;
  duplicates: number;
  malformed: number;
  seed?: string;
  duration?: number;
  rollupInterval: number;
  pgPort: number;
  emulatorPort: number;
  azuritePort: number;
  httpPort: number;
  metricsPort: number;
  statusInterval?: number;
  verbose?: boolean;
  access?: string;
  principal?: string;
}

/** Pure: the connection help printed at start; `envLine` loads the settings for other commands. */
export function formatBanner(info: LocalInfo, now: Date = new Date(), envLine?: string): string {
  const from = new Date(Math.floor(now.getTime() / 3600_000) * 3600_000).toISOString().replace('.000Z', 'Z');
  const to = new Date(Math.floor(now.getTime() / 3600_000) * 3600_000 + 3600_000).toISOString().replace('.000Z', 'Z');
  const table = info.schema === 'public' ? 'events' : `${info.schema}.events`;
  const query = `-c 'SELECT type, count(*) FROM ${table} GROUP BY 1'`;
  // The password never appears: the embedded one is read from its file by the shell, an external
  // one is the user's own.
  const psql = info.pgPasswordFile
    ? `PGPASSWORD="$(cat '${info.pgPasswordFile}')" psql '${withoutPassword(info.databaseUrl)}' ${query}`
    : `psql '${redactSecrets(info.databaseUrl)}' ${query}`;
  return [
    'hubsink local is running',
    ...(envLine ? [`  Settings     ${envLine}   (DATABASE_URL, EventHubConnection, AzureWebJobsStorage, HUBSINK_SCHEMA, … for every other hubsink command)`] : []),
    `  PostgreSQL   ${redactSecrets(info.databaseUrl)}${info.pgDataDir ? `  (embedded; data kept in ${info.pgDataDir}, password in ${info.pgPasswordFile ?? '-'})` : ''}`,
    `               ${psql}`,
    `  Event Hubs   ${info.emulator ? `emulator on 127.0.0.1:${info.emulator.port}: ${info.emulator.hubs.join(', ')}` : `external: ${info.ingestHub}, ${info.deadLetterHub}`}`,
    `               EventHubConnection='${redact(info.eventHubConnection)}'`,
    `  Checkpoints  Azurite on 127.0.0.1:${info.storage.port} (${info.storage.persistent ? 'kept in the data folder' : 'in memory'})`,
    `  Dashboard    ${info.metricsUrl}/  (open it in a browser: live charts of the rollups)`,
    `  Metrics      curl '${info.metricsUrl}/api/tenants/${info.firstTenant}/metrics?from=${from}&to=${to}&grain=minute&by=type'`,
    ...(info.telemetryUrl ? [`  Telemetry    curl ${info.telemetryUrl}/metrics   (probes: /healthz, /readyz)`] : []),
    `  Access       ${describeAccess(info)}`,
    `  Generator    ${info.generator ? `${info.generator.rate} events/s over ${info.generator.tenants} storefronts (seed ${info.generator.seed})` : 'off'}`,
    '',
  ].join('\n');
}

/** Pure: the banner's access line. */
export function describeAccess(info: Pick<LocalInfo, 'access'>): string {
  const { mode, principal } = info.access;
  if (mode === 'key') return 'key: every storefront (locally no key is asked for)';
  if (!principal) return 'entra, nobody signed in: every API request is a 401 (give --principal <object-id>[,group:<id>])';
  const who = [...(principal.userId ? [`user ${principal.userId}`] : []), ...principal.groups.map((g) => `group ${g}`)].join(', ');
  return `entra, signed in as ${who}: the storefronts granted to them (hubsink access grant)`;
}

/** Pure: --access and --principal as the stack's access options. --principal alone means entra. */
export function localAccess(opts: { access?: string; principal?: string }, fromEnv: AccessMode): { mode: AccessMode; principal: Principal | null } {
  const raw = opts.access?.trim().toLowerCase();
  if (raw !== undefined && raw !== 'key' && raw !== 'entra') throw new UsageError(`--access ${JSON.stringify(opts.access)}: must be key or entra`);
  const mode: AccessMode = raw === 'key' || raw === 'entra' ? raw : opts.principal !== undefined ? 'entra' : fromEnv;
  if (opts.principal === undefined) return { mode, principal: null };
  if (mode !== 'entra') throw new UsageError('--principal signs requests in for --access entra; with --access key nobody signs in');
  const p = parseDevPrincipal(opts.principal);
  if (!p.ok) throw new UsageError(`--principal: ${p.error}`);
  return { mode, principal: p.principal };
}

/** Keys of a real namespace must not end up in logs; the emulator's well-known key is harmless. */
function redact(cs: string): string {
  return /UseDevelopmentEmulator=true/i.test(cs) ? cs : redactSecrets(cs);
}

/** Pure: a postgres:// URL without its password (libpq then takes PGPASSWORD). */
function withoutPassword(url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^:@/]*):[^@]*@/, '$1@');
}

export function register(program: Command): void {
  program
    .command('local')
    .description('run everything locally: embedded PostgreSQL, Azurite, the Event Hubs emulator, the runner with dead letters and rollups, the generator, the metrics endpoint and the dashboard')
    .option('--data-dir <dir>', 'folder for PostgreSQL data kept between runs', '.hubsink')
    .option('--database-url <url>', 'use this PostgreSQL instead of the embedded one (or HUBSINK_LOCAL_DATABASE_URL; a command line is visible to other users)')
    .option('--database-url-file <path>', 'read --database-url from this file')
    .option('--eventhub-connection <string>', 'use these Event Hubs (connection string) instead of the emulator; checkpoints are then kept in the data folder (or HUBSINK_LOCAL_EVENTHUB_CONNECTION)')
    .option('--eventhub-connection-file <path>', 'read --eventhub-connection from this file')
    .option('--rate <per-second>', 'generator events per second (0: no generator)', parseNonNegativeInt, 200)
    .option('--no-generate', 'do not run the generator')
    .option('--tenants <n>', 'generator storefronts', parsePositiveInt, 20)
    .option('--duplicates <p>', 'generator share of exact re-sends', parseProbability, 0.01)
    .option('--malformed <p>', 'generator share of malformed bodies', parseProbability, 0.002)
    .option('--seed <text>', 'generator seed')
    .option('--duration <seconds>', 'stop by itself after this long', parseSeconds)
    .option('--rollup-interval <seconds>', 'seconds between rollup runs', parseSeconds, 10)
    .option('--pg-port <port>', 'embedded PostgreSQL port, if free (0: any)', parsePort, 54320)
    .option('--emulator-port <port>', 'Event Hubs emulator port, if free (0: any)', parsePort, 5672)
    .option('--azurite-port <port>', 'Azurite blob port, if free (0: any)', parsePort, 10000)
    .option('--http-port <port>', 'metrics endpoint and dashboard port, if free (0: any)', parsePort, 7071)
    .option('--metrics-port <port>', 'runner telemetry (/metrics, /healthz, /readyz) port, if free (0: any)', parsePort, 9464)
    .option('--status-interval <seconds>', 'seconds between status refreshes (default: 1 on a terminal, 2 otherwise)', parseSeconds)
    .option('--access <mode>', 'who may read which storefront: key (everyone, as today) or entra (grants decide; default: HUBSINK_ACCESS, else key)')
    .option('--principal <ids>', 'with entra: sign every request in as this user object id, and as group:<object-id> for each group, comma-separated (implies --access entra)')
    .option('--verbose', 'more log lines')
    .action(async (opts: LocalCliOptions) => {
      // The supervised child runs this same action again and resolves them the same way.
      const databaseUrl = resolveSecret('database-url', opts.databaseUrl, opts.databaseUrlFile, 'HUBSINK_LOCAL_DATABASE_URL');
      const eventhubConnection = resolveSecret('eventhub-connection', opts.eventhubConnection, opts.eventhubConnectionFile, 'HUBSINK_LOCAL_EVENTHUB_CONNECTION');
      delete opts.databaseUrlFile;
      delete opts.eventhubConnectionFile;
      if (databaseUrl !== undefined) opts.databaseUrl = databaseUrl;
      if (eventhubConnection !== undefined) opts.eventhubConnection = eventhubConnection;
      if (opts.databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(opts.databaseUrl)) throw new UsageError('--database-url: expected postgres://user:password@host:port/database');
      if (opts.eventhubConnection !== undefined) checkEventHubsConnection('eventhub-connection', opts.eventhubConnection);
      checkGeneratorShares(opts);
      // Settings problems are reported before anything starts.
      localAccess(opts, loadConfig().access.mode);
      if (!isStackChild()) {
        process.exitCode = await superviseStack({ hardLimitMs: 90_000, write: (s) => void process.stderr.write(s) });
        return;
      }
      await runStackChild(opts);
    });
}

/** What the settings file holds: the stack's own connections, as other commands read them. */
function settingsOf(stack: LocalStack): LocalSettings {
  const c = stack.config;
  return {
    databaseUrl: stack.info.databaseUrl,
    schema: c.schema,
    eventHubConnection: stack.info.eventHubConnection,
    storageConnection: c.storage?.kind === 'connectionString' ? c.storage.connectionString : '',
    ingestHub: c.ingestHub,
    deadLetterHub: c.deadLetterHub,
    consumerGroup: c.consumerGroup,
    deadLetterConsumerGroup: c.deadLetterConsumerGroup,
    replayConsumerGroup: c.replayConsumerGroup,
    ...(HUBSINK_BIN ? { hubsinkBin: HUBSINK_BIN } : {}),
  };
}

// The compiled module sits in dist/src/cli, the source in src/cli: the checkout's bin/hubsink.js above.
const HUBSINK_BIN = ['../../bin/hubsink.js', '../../../bin/hubsink.js'].map((p) => fileURLToPath(new URL(p, import.meta.url))).find((f) => existsSync(f));

async function runStackChild(opts: LocalCliOptions): Promise<void> {
  const ttyColumns = Number(process.env[TTY_ENV] ?? (process.stderr.isTTY ? process.stderr.columns : 0));
  const tty = ttyColumns > 0;
  const recent: string[] = [];
  // On a terminal, log lines live in the status block until shutdown; then they are written as they come.
  let direct = !tty;
  const log: Logger = (level: LogLevel, message: string) => {
    if (level === 'debug' && !opts.verbose) return;
    const line = `${new Date().toISOString().slice(11, 19)} ${level.padEnd(5)} ${escapeControls(message)}`;
    if (!direct) {
      recent.push(line);
      if (recent.length > 6) recent.shift();
    } else process.stderr.write(`${line}\n`);
  };
  const stop = new AbortController();
  // The parent (or whoever started us) went away: nobody is left to press Ctrl-C.
  process.once('disconnect', () => stop.abort('the supervising process went away'));
  const shutdown = waitForShutdown({ log, hardLimitMs: 85_000, signal: stop.signal });

  if (tty) process.stderr.write('starting PostgreSQL, Azurite, the Event Hubs emulator, the runner…\n');
  let stack: LocalStack;
  try {
    // Loaded here: the stack pulls in the Functions library and the emulator, which other commands never need.
    const { startLocalStack } = await import('../local/stack.js');
    stack = await startLocalStack({
    dataDir: opts.dataDir,
    ...(opts.databaseUrl ? { databaseUrl: opts.databaseUrl } : {}),
    ...(opts.eventhubConnection ? { eventHubConnection: opts.eventhubConnection } : {}),
    rate: opts.generate ? opts.rate : 0,
    tenants: opts.tenants,
    duplicates: opts.duplicates,
    malformed: opts.malformed,
    ...(opts.seed ? { seed: opts.seed } : {}),
    ports: { postgres: opts.pgPort, emulator: opts.emulatorPort, azurite: opts.azuritePort, http: opts.httpPort, telemetry: opts.metricsPort },
    rollupIntervalMs: Math.max(1000, opts.rollupInterval * 1000),
    env: process.env,
    log,
    access: localAccess(opts, loadConfig().access.mode),
    });
  } catch (err) {
    for (const l of recent) process.stderr.write(`${l}\n`);
    // The IPC channel to the supervisor would keep this process alive.
    if (process.connected) process.disconnect();
    throw err;
  }
  let envLine: string | undefined;
  try {
    const envFile = await writeEnvFile(opts.dataDir, settingsOf(stack));
    envLine = sourceLine(envFile, process.cwd());
  } catch (err) {
    log('warn', `could not write the settings file in ${opts.dataDir}: ${describeError(err)}`);
  }
  process.stdout.write(formatBanner(stack.info, new Date(), envLine));
  // Counted from when everything runs, so a short --duration still sees events flow.
  const durationTimer = opts.duration !== undefined ? setTimeout(() => stop.abort(`--duration ${opts.duration} s reached`), opts.duration * 1000) : undefined;

  let prev: LocalStatus | undefined;
  let drawn = 0;
  let inFlight: Promise<void> | undefined;
  const draw = async (): Promise<void> => {
    try {
      const cur = { ...(await stack.status()), recent: tty ? [...recent] : [] };
      if (tty) {
        // Errors in the block quote what failed; only the cursor movement below is ours.
        const block = renderStatusBlock(cur, prev, Math.max(40, ttyColumns)).map((l) => escapeControls(l));
        // Move up over the previous block and clear it, then draw the new one.
        process.stderr.write(`${drawn > 0 ? `\x1b[${drawn}F\x1b[J` : ''}${block.join('\n')}\n`);
        drawn = block.length;
      } else process.stderr.write(`${escapeControls(renderStatusLine(cur, prev))}\n`);
      prev = cur;
    } catch (err) {
      log('warn', `status: ${describeError(err)}`);
    }
  };
  // One refresh at a time: a slow status query must not interleave two redraws.
  const refresh = (): Promise<void> => (inFlight ??= draw().finally(() => (inFlight = undefined)));
  const intervalMs = Math.max(250, (opts.statusInterval ?? (tty ? 1 : 2)) * 1000);
  const statusTimer = setInterval(() => void refresh(), intervalMs);

  const reason = await shutdown;
  clearInterval(statusTimer);
  clearTimeout(durationTimer);
  await inFlight;
  await refresh();
  direct = true;
  process.stderr.write(`stopping (${reason}): generator, runner (finishing batches in flight), metrics endpoint, emulator, Azurite, PostgreSQL…\n`);
  await stack.stop();
  // The last word on what was done, now that batches in flight have finished.
  process.stderr.write(`${escapeControls(renderStatusLine(await stack.status(), undefined).replace(/^status /, 'final '))}\n`);
  process.stderr.write('hubsink local stopped\n');
  exitSoonAfterShutdown();
}
