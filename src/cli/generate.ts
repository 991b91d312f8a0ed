/**
 * `hubsink generate`: sends the synthetic retailer's traffic to an Event Hub (partition key = tenant).
 * The summary goes to stdout (JSON with --json), progress to stderr: a bar on a terminal, plain
 * lines otherwise. Ctrl-C stops after the batches in flight and still prints the summary.
 */
import cliProgress from 'cli-progress';
import { randomBytes } from 'node:crypto';
import { InvalidArgumentError, type Command } from 'commander';
import { loadConfig, requireEventHubs, type EventHubsConnection } from '../config.js';
import { createGenerator, type GeneratorStats } from '../generator/generator.js';
import { sendGenerated } from '../generator/send.js';
import { createProducer } from '../hubs/clients.js';
import { stderrLogger } from '../operator/log.js';
import { waitForShutdown } from '../operator/shutdown.js';
import { probeEventHubs } from '../hubs/probe.js';
import { checkEventHubsConnection, checkGeneratorShares, parsePositiveInt, parseProbability } from './program.js';
import { eventHubsContext, withServices } from './withServices.js';


function parsePositiveNumber(value: string): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || !(n > 0)) throw new InvalidArgumentError('expected a positive number');
  return n;
}

function parseSkew(value: string): number {
  const n = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || !(n >= 0 && n <= 5)) throw new InvalidArgumentError('expected a Zipf exponent from 0 (uniform) to 5');
  return n;
}

interface GenerateOptions {
  count?: number;
  rate?: number;
  duration?: number;
  tenants: number;
  tenantBase: number;
  duplicates: number;
  malformed: number;
  skew: number;
  seed?: string;
  hub?: string;
  connection?: string;
  json?: boolean;
  progress: boolean;
}

export interface GenerateSummary {
  hub: string;
  seed: string;
  sent: number;
  batches: number;
  seconds: number;
  eventsPerSecond: number;
  generated: GeneratorStats;
}

export function register(program: Command): void {
  program
    .command('generate')
    .description("send the synthetic retailer's traffic to an Event Hub: storefronts with skewed traffic, shopping sessions, ads, e-mail")
    .option('--count <n>', 'events to send (default: until --duration or Ctrl-C)', parsePositiveInt)
    .option('--rate <per-second>', 'events per second at most (default: as fast as the hub takes them)', parsePositiveNumber)
    .option('--duration <seconds>', 'stop after this long (more than 0)', parsePositiveNumber)
    .option('--tenants <n>', 'storefronts', parsePositiveInt, 50)
    .option('--tenant-base <id>', 'first storefront id', parsePositiveInt, 1)
    .option('--duplicates <p>', 'share of exact re-sends of earlier events', parseProbability, 0)
    .option('--malformed <p>', 'share of malformed bodies (bad JSON, bad UTF-8, wrong types, missing fields, times out of range)', parseProbability, 0)
    .option('--skew <s>', 'Zipf exponent of traffic across storefronts (0 = uniform)', parseSkew, 1.1)
    .option('--seed <text>', 'seed of the random stream; the same seed sends the same events (default: random, printed)')
    .option('--hub <name>', 'Event Hub to send to (default: INGEST_EVENTHUB_NAME, else clickstream)')
    .option('--connection <string>', 'Event Hubs connection string (default: the EventHubConnection setting; prefer the setting, command lines are visible to other users)')
    .option('--json', 'print the summary as JSON')
    .option('--no-progress', 'no progress bar or progress lines')
    .action(async (opts: GenerateOptions) => {
      const cfg = loadConfig();
      let conn: EventHubsConnection;
      if (opts.connection !== undefined) {
        checkEventHubsConnection('connection', opts.connection);
        conn = { kind: 'connectionString', connectionString: opts.connection };
      } else conn = requireEventHubs(cfg);
      checkGeneratorShares(opts);
      const hub = opts.hub ?? cfg.ingestHub;
      const seed = opts.seed ?? randomBytes(6).toString('hex');
      const log = stderrLogger();
      const gen = createGenerator({ seed, tenants: opts.tenants, tenantBase: opts.tenantBase, duplicates: opts.duplicates, malformed: opts.malformed, skew: opts.skew });
      const ctx = { eventHubs: eventHubsContext(conn, { setting: opts.connection !== undefined ? '--connection' : 'EventHubConnection', hub, hubSetting: opts.hub !== undefined ? '--hub' : 'INGEST_EVENTHUB_NAME' }) };
      // The SDK retries a refused key for over a minute: the probe says so in seconds.
      await withServices(ctx, () => probeEventHubs(conn, { ...ctx.eventHubs, hub }, { failUnreachable: true }));
      const producer = await createProducer(conn, hub);
      const stop = new AbortController();
      void waitForShutdown({ log, hardLimitMs: 30_000, signal: stop.signal }).then(() => stop.abort());
      const durationTimer = opts.duration !== undefined ? setTimeout(() => stop.abort('duration reached'), opts.duration * 1000) : undefined;
      log('info', `sending to ${hub}: seed ${seed}, ${opts.tenants} storefronts${opts.rate ? `, ${opts.rate} events/s` : ''}${opts.count ? `, ${opts.count} events` : ''}`);
      const progress = opts.progress ? progressReporter(opts.count) : undefined;
      let result;
      try {
        result = await withServices(ctx, () =>
          sendGenerated(producer, gen, {
            ...(opts.count !== undefined ? { count: opts.count } : {}),
            ...(opts.rate !== undefined ? { rate: opts.rate } : {}),
            signal: stop.signal,
            ...(progress ? { onProgress: progress.update } : {}),
          }),
        );
      } finally {
        clearTimeout(durationTimer);
        progress?.stop();
        await producer.close();
      }
      const seconds = result.elapsedMs / 1000;
      const summary: GenerateSummary = {
        hub,
        seed,
        sent: result.sent,
        batches: result.batches,
        seconds: Math.round(seconds * 10) / 10,
        eventsPerSecond: seconds > 0 ? Math.round(result.sent / seconds) : 0,
        generated: gen.stats,
      };
      if (opts.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
      else process.stdout.write(formatSummary(summary));
    });
}

/** Pure: the human summary. */
export function formatSummary(s: GenerateSummary): string {
  const kinds = Object.entries(s.generated.byMalformed)
    .sort()
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  const types = Object.entries(s.generated.byType)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  return [
    `sent ${s.sent} events to ${s.hub} in ${s.seconds} s (${s.eventsPerSecond}/s, ${s.batches} batches, seed ${s.seed})`,
    `  new events  ${s.generated.events}${types ? ` (${types})` : ''}`,
    `  duplicates  ${s.generated.duplicates}`,
    `  malformed   ${s.generated.malformed}${kinds ? ` (${kinds})` : ''}`,
    '',
  ].join('\n');
}

function progressReporter(total: number | undefined): { update: (sent: number) => void; stop: () => void } {
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream: process.stderr,
        format: total ? 'sending [{bar}] {percentage}% | {value}/{total} events | {rate}/s | ETA {eta_formatted}' : 'sending {value} events | {rate}/s | {duration_formatted}',
        hideCursor: true,
        fps: 5,
      },
      cliProgress.Presets.shades_classic,
    );
    const started = Date.now();
    bar.start(total ?? 0, 0, { rate: 0 });
    return {
      update: (sent) => bar.update(sent, { rate: Math.round((sent * 1000) / Math.max(1, Date.now() - started)) }),
      stop: () => bar.stop(),
    };
  }
  // Not a terminal: a plain line every five seconds.
  let last = 0;
  return {
    update: (sent) => {
      if (Date.now() - last < 5000) return;
      last = Date.now();
      process.stderr.write(`sent ${sent}${total ? ` of ${total}` : ''} events\n`);
    },
    stop: () => undefined,
  };
}
