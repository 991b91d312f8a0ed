/**
 * `hubsink doctor`: reads the app's settings (the environment, or a local.settings.json under it)
 * and checks the database, Event Hubs and storage they name. The report goes to stdout (--json for
 * programs); exit 1 when a check failed, 2 when the settings do not parse.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ConfigError, loadConfig, requireEventHubs, requireStorage, type HubsinkConfig } from '../config.js';
import { defaultMigrationsDir, loadMigrations } from '../db/migrate.js';
import { createPool } from '../db/pool.js';
import { formatReport, jsonReport, failed, type CheckResult } from '../doctor/report.js';
import { runDoctor } from '../doctor/runDoctor.js';
import { createConsumer, createProducer, existingContainer, FUNCTIONS_CHECKPOINT_CONTAINER } from '../hubs/clients.js';
import { parseContainer } from './hubOptions.js';
import { finishWith, parsePositiveInt, UsageError } from './program.js';

/** Pure: the `Values` of a local.settings.json, under the environment (which wins, as under `func start`). */
export function settingsFrom(fileText: string | undefined, env: NodeJS.ProcessEnv, file = 'local.settings.json'): Record<string, string | undefined> {
  if (fileText === undefined) return { ...env };
  let parsed: unknown;
  try {
    parsed = JSON.parse(fileText);
  } catch (err) {
    throw new UsageError(`--settings ${file}: not JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  const values = (parsed as { Values?: unknown } | null)?.Values;
  if (values === null || typeof values !== 'object' || Array.isArray(values)) throw new UsageError(`--settings ${file}: expected {"Values": {"NAME": "value", ...}} as in local.settings.json`);
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(values as Record<string, unknown>)) {
    if (typeof v !== 'string') throw new UsageError(`--settings ${file}: Values.${k} must be a string`);
    out[k] = v;
  }
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== '') out[k] = v;
  return out;
}

interface DoctorOpts {
  json?: boolean;
  role?: string;
  settings?: string;
  skip: string[];
  container: string;
  timeout: number;
}

function collect(value: string, prior: string[]): string[] {
  return [...prior, value];
}

export function register(program: Command): void {
  program
    .command('doctor')
    .description('check that a deployment is ready: the settings parse, the database is reachable, migrated, partitioned and granted, the hubs and consumer groups exist and these credentials may listen and send dead letters, the checkpoints are sane')
    .option('--json', 'print {"ok", "checks": [{id, section, title, status, detail, fix}]} instead')
    .option('--settings <file>', 'read the settings from a local.settings.json (its Values); the environment wins over it')
    .option('--skip <check-id>', 'do not run this check (repeatable; ids are in --json output), e.g. eventhubs.deadletter-send as an operator without Send', collect, [])
    .option('--role <name>', 'check the rights of this database role (the app\'s) instead of the one signed in')
    .option('--container <name>', 'blob container of the checkpoints', parseContainer, FUNCTIONS_CHECKPOINT_CONTAINER)
    .option('--timeout <seconds>', 'give up on a check after this long', parsePositiveInt, 30)
    .addHelpText(
      'after',
      '\nEach ✗ comes with its fix (the setting or command). With managed identity (EventHubConnection__fullyQualifiedNamespace,\n' +
        'AzureWebJobsStorage__accountName, PG_ENTRA_AUTH=true) the checks run as the identity signed in here (az login), so they\n' +
        'prove what that identity may do. Exit status: 0 all passed, 1 a check failed, 2 the settings do not parse.',
    )
    .action(async (o: DoctorOpts) => {
      let text: string | undefined;
      if (o.settings !== undefined) {
        try {
          text = readFileSync(o.settings, 'utf8');
        } catch (err) {
          throw new UsageError(`--settings ${o.settings}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
        }
      }
      const env = settingsFrom(text, process.env, o.settings);
      let cfg: HubsinkConfig;
      try {
        cfg = loadConfig(env);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        const results: CheckResult[] = [
          { id: 'configuration', section: 'Configuration', title: 'settings parse', status: 'fail', detail: err.problems.join('; '), fix: 'correct the settings named (README, Settings)' },
        ];
        print(results, o.json === true);
        finishWith('config');
        return;
      }
      const results = await runDoctor({
        cfg,
        now: () => new Date(),
        skip: new Set(o.skip),
        ...(o.role !== undefined ? { role: o.role } : {}),
        waitMs: o.timeout * 1000,
        checkpointContainer: o.container,
        // One connection; a quick give-up so an unreachable server is reported, not waited on.
        openPool: () => createPool({ ...cfg, poolMax: 1 }),
        consumer: (hub, group) => createConsumer(requireEventHubs(cfg), group, hub, undefined, { retryOptions: { maxRetries: 1, retryDelayInMs: 500, timeoutInMs: Math.min(o.timeout * 1000, 20_000) } }),
        producer: (hub) => createProducer(requireEventHubs(cfg), hub, { retryOptions: { maxRetries: 1, retryDelayInMs: 500, timeoutInMs: Math.min(o.timeout * 1000, 20_000) } }),
        container: (name) => existingContainer(requireStorage(cfg), name, { retryOptions: { maxTries: 1, tryTimeoutInMs: Math.min(o.timeout * 1000, 10_000) } }),
        migrations: async () => loadMigrations(await defaultMigrationsDir()),
      });
      print(results, o.json === true);
      if (failed(results).length > 0) finishWith('failed');
    });
}

function print(results: readonly CheckResult[], json: boolean): void {
  process.stdout.write(`${json ? JSON.stringify(jsonReport(results)) : formatReport(results)}\n`);
}
