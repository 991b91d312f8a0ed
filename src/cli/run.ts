/**
 * `hubsink run`: the standalone runner in the foreground. Status lines go to stderr (or JSON lines
 * to stdout with --json); SIGINT/SIGTERM stop it gracefully.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { loadConfig } from '../config.js';
import { stderrLogger } from '../operator/log.js';
import { exitSoonAfterShutdown, waitForShutdown } from '../operator/shutdown.js';
import { startRunner } from '../runner/runner.js';
import { snapshot, statusLine, type RunnerStats } from '../runner/stats.js';
import { parseNonNegativeInt, parsePort, parsePositiveInt, parseSeconds } from './program.js';
import type { MetricsEndpoint } from '../telemetry/endpoint.js';


function parseStart(value: string): 'earliest' | 'latest' {
  if (value !== 'earliest' && value !== 'latest') throw new InvalidArgumentError('expected earliest or latest');
  return value;
}

export interface RunCliOptions {
  // commander's key for --deadletter.
  deadletter?: boolean;
  rollups?: boolean;
  rollupInterval: number;
  checkpointContainer?: string;
  batchSize: number;
  maxWait: number;
  start: 'earliest' | 'latest';
  balanceIntervalMs: number;
  ownershipExpiryMs: number;
  statusInterval: number;
  json?: boolean;
  verbose?: boolean;
  metricsPort?: number;
  metricsHost: string;
}

export function register(program: Command): void {
  program
    .command('run')
    .description('consume the ingest hub outside Azure Functions (blob checkpoints; several instances share the partitions)')
    .option('--deadletter', 'also consume the dead-letter hub: retry transient records, park poison ones')
    .option('--rollups', 'also run the incremental rollups on a timer')
    .option('--rollup-interval <seconds>', 'seconds between rollup runs', parseSeconds, 60)
    .option('--checkpoint-container <name>', 'blob container for checkpoints and ownership (default: the Functions host\'s, azure-webjobs-eventhub)')
    .option('--batch-size <n>', 'most events per batch', parsePositiveInt, 300)
    .option('--max-wait <seconds>', 'how long to wait for a batch to fill', parseSeconds, 1)
    .option('--start <position>', 'where partitions without a checkpoint start: earliest or latest', parseStart, 'earliest')
    .option('--balance-interval-ms <ms>', 'how often instances balance partitions', parsePositiveInt, 10_000)
    .option('--ownership-expiry-ms <ms>', 'after how long a silent instance\'s partitions are taken over', parsePositiveInt, 60_000)
    .option('--status-interval <seconds>', 'seconds between status lines (0: none)', parseNonNegativeInt, 10)
    .option('--json', 'status lines as JSON objects on stdout')
    .option('--verbose', 'more log lines')
    .option('--metrics-port <port>', 'serve /metrics (Prometheus), /healthz and /readyz on this port (0: any free port; default: off)', parsePort)
    .option('--metrics-host <address>', 'address the metrics endpoint listens on', '127.0.0.1')
    .addHelpText(
      'after',
      '\nSettings (environment): EventHubConnection, INGEST_EVENTHUB_NAME, DEADLETTER_EVENTHUB_NAME,\n' +
        'INGEST_CONSUMER_GROUP, DEADLETTER_CONSUMER_GROUP, AzureWebJobsStorage, DATABASE_URL (or PG*), HUBSINK_SCHEMA.',
    )
    .action(async (opts: RunCliOptions) => {
      const cfg = loadConfig();
      const log = stderrLogger({ verbose: opts.verbose === true });
      let endpoint: MetricsEndpoint | undefined;
      if (opts.metricsPort !== undefined) {
        // Loaded only when asked for: the OpenTelemetry SDK is not needed otherwise.
        const { startMetricsEndpoint } = await import('../telemetry/endpoint.js');
        endpoint = await startMetricsEndpoint({ host: opts.metricsHost, port: opts.metricsPort, log: (l) => log('warn', l) });
        log('info', `metrics on ${endpoint.url}/metrics (probes: /healthz, /readyz)`);
      }
      const runner = await startRunner({
        ...(endpoint ? { telemetry: endpoint.telemetry } : {}),
        config: cfg,
        log,
        deadLetter: opts.deadletter === true,
        rollups: opts.rollups === true,
        rollupIntervalMs: Math.max(1000, opts.rollupInterval * 1000),
        ...(opts.checkpointContainer ? { checkpointContainer: opts.checkpointContainer } : {}),
        maxBatchSize: opts.batchSize,
        maxWaitTimeInSeconds: opts.maxWait,
        startFrom: opts.start,
        loadBalancingIntervalMs: opts.balanceIntervalMs,
        ownershipExpirationMs: opts.ownershipExpiryMs,
      }).catch(async (err: unknown) => {
        await endpoint?.close();
        throw err;
      });
      let prev: RunnerStats | undefined;
      let prevAt = Date.now();
      const report = (): void => {
        const cur = runner.stats();
        const now = Date.now();
        if (opts.json) process.stdout.write(`${JSON.stringify(cur)}\n`);
        else log('info', statusLine(cur, prev, now - prevAt));
        prev = snapshot(cur);
        prevAt = now;
      };
      endpoint?.setReadiness(() => runner.readiness());
      const timer = opts.statusInterval > 0 ? setInterval(report, opts.statusInterval * 1000) : undefined;
      await waitForShutdown({ log, hardLimitMs: 90_000 });
      clearInterval(timer);
      await runner.stop();
      await endpoint?.close();
      report();
      exitSoonAfterShutdown();
    });
}
