/**
 * `hubsink dlq`: what the operator does with dead letters. Parked events (table `dead_letters`) are
 * listed, shown, replayed through today's validation and write path, or discarded; the dead-letter
 * hub itself can be replayed with a consumer group of its own. Data to stdout (tables, or --json);
 * progress, summaries and refusals to stderr; exit 1 when a replay left anything unwritten.
 */
import { InvalidArgumentError, type Command } from 'commander';
import type pg from 'pg';
import { loadConfig, requireEventHubs, requireStorage, type HubsinkConfig } from '../config.js';
import { createPool } from '../db/pool.js';
import { escapeControls } from '../operator/terminal.js';
import { countDeadLetters, DEAD_LETTER_STATUSES, deadLetterStats, discardDeadLetters, getDeadLetter, listDeadLetters, type DeadLetterFilter, type DeadLetterStatus } from '../db/deadLetterQueries.js';
import { PARK_REASONS, type ParkReason } from '../pipeline/types.js';
import { TenantRegistry } from '../db/tenants.js';
import { formatBody, formatTable, isoSeconds, jsonSafe, oneLine, bodyText } from '../operator/format.js';
import { createProgress } from '../operator/progress.js';
import { failed, replayParked, STILL_FIELD, type ReplayItem } from '../deadLetters/replay.js';
import { FUNCTIONS_CHECKPOINT_CONTAINER } from '../hubs/clients.js';
import { PARKED_FIELD, replayHub, type ReplayFrom } from '../deadLetters/replayHub.js';
import { FailedError } from '../errors.js';
import { ServiceError } from '../hubs/explain.js';
import { checkpointLag, lagTable, type ShowResult } from './checkpointLag.js';
import { cliServiceContext, openConsumer, openContainer, parseConsumerGroup, parseContainer, parseTimeOption, probeHub } from './hubOptions.js';
import { withServices } from './withServices.js';
import { finishWith, parsePositiveInt, UsageError } from './program.js';

function parseReason(value: string): ParkReason {
  const r = PARK_REASONS.find((x) => x === value);
  if (!r) throw new InvalidArgumentError(`expected one of ${PARK_REASONS.join(', ')}`);
  return r;
}

function parseStatus(value: string): DeadLetterStatus {
  const s = DEAD_LETTER_STATUSES.find((x) => x === value);
  if (!s) throw new InvalidArgumentError(`expected one of ${DEAD_LETTER_STATUSES.join(', ')}`);
  return s;
}

interface FilterOpts {
  reason?: ParkReason;
  tenant?: number;
  since?: Date;
  until?: Date;
  status?: DeadLetterStatus;
  limit?: number;
  json?: boolean;
}

function addFilters(cmd: Command, withStatus: boolean): Command {
  cmd
    .option('--reason <reason>', `only this reason (${PARK_REASONS.join(' | ')})`, parseReason)
    .option('--tenant <id>', 'only this tenant id', parsePositiveInt)
    .option('--since <time>', 'parked at or after TIME (ISO-8601, or an age such as 6h, 2d)', parseTimeOption)
    .option('--until <time>', 'parked before TIME', parseTimeOption);
  if (withStatus) cmd.option('--status <status>', `only this status (${DEAD_LETTER_STATUSES.join(' | ')})`, parseStatus);
  return cmd;
}

function filterOf(o: FilterOpts): DeadLetterFilter {
  if (o.since && o.until && o.since.getTime() >= o.until.getTime()) throw new UsageError('--since must be before --until');
  const f: DeadLetterFilter = {};
  if (o.reason) f.reason = o.reason;
  if (o.tenant !== undefined) f.tenantId = o.tenant;
  if (o.since) f.since = o.since;
  if (o.until) f.until = o.until;
  if (o.status) f.status = o.status;
  return f;
}

async function withPool<T>(fn: (pool: pg.Pool, cfg: HubsinkConfig) => Promise<T>): Promise<T> {
  const cfg = loadConfig();
  const pool = await createPool(cfg);
  try {
    return await fn(pool, cfg);
  } finally {
    await pool.end();
  }
}

function out(s: string): void {
  process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
}

/** Messages for the operator (never JSON), so control characters are escaped. */
function err(s: string): void {
  const t = escapeControls(s.replace(/\n$/, ''), { multiline: true });
  process.stderr.write(`${t}\n`);
}

const SETTINGS_HELP = '\nSettings (environment): DATABASE_URL (or PG*), HUBSINK_SCHEMA.\n';
const HUB_SETTINGS_HELP =
  '\nSettings (environment): DATABASE_URL (or PG*), HUBSINK_SCHEMA, EventHubConnection, DEADLETTER_EVENTHUB_NAME,\n' +
  'REPLAY_CONSUMER_GROUP (default hubsink-replay: create it on the dead-letter hub), AzureWebJobsStorage.\n';

export function register(program: Command): void {
  const dlq = program.command('dlq').description('inspect, replay and discard dead letters');
  registerStats(dlq);
  registerList(dlq);
  registerShow(dlq);
  registerReplay(dlq);
  registerReplayHub(dlq);
  registerDiscard(dlq);
}

/** `dlq stats`: parked rows by status, reason, tenant and day, and the dead-letter hub's backlog. */
function registerStats(dlq: Command): void {
  dlq
    .command('stats')
    .description('parked dead letters by status, reason, tenant and day; the dead-letter hub\'s backlog per partition')
    .option('--days <n>', 'days of the per-day breakdown', parsePositiveInt, 7)
    .option('--tenants <n>', 'tenants with the most parked events to list', parsePositiveInt, 10)
    .option('--container <name>', 'blob container of the deadletter function\'s checkpoints', parseContainer, FUNCTIONS_CHECKPOINT_CONTAINER)
    .option('--no-hub', 'skip the dead-letter hub\'s backlog')
    .option('--json', 'print JSON')
    .addHelpText('after', `${SETTINGS_HELP}For the backlog also EventHubConnection, DEADLETTER_EVENTHUB_NAME, DEADLETTER_CONSUMER_GROUP, AzureWebJobsStorage.\n`)
    .action((o: { days: number; tenants: number; container: string; hub: boolean; json?: boolean }) =>
      withPool(async (pool, cfg) => {
        const stats = await deadLetterStats(pool, cfg.schema, { tenants: o.tenants, days: o.days });
        let backlog: ShowResult | undefined;
        let backlogNote: string | undefined;
        if (o.hub) {
          if (!cfg.eventHubs || !cfg.storage) backlogNote = 'dead-letter hub backlog not shown: EventHubConnection and AzureWebJobsStorage are needed';
          else {
            const storage = cfg.storage;
            const ctx = cliServiceContext(cfg, { hub: cfg.deadLetterHub, hubSetting: 'DEADLETTER_EVENTHUB_NAME', consumerGroup: cfg.deadLetterConsumerGroup, consumerGroupSetting: 'DEADLETTER_CONSUMER_GROUP' });
            try {
              // The database half is shown whatever the hub answers; what is missing is said.
              backlog = await withServices(ctx, async () => {
                await probeHub(cfg, ctx);
                const consumer = await openConsumer(cfg, cfg.deadLetterHub, cfg.deadLetterConsumerGroup);
                try {
                  const container = await openContainer(storage, o.container);
                  return await checkpointLag(consumer, container, {
                    fullyQualifiedNamespace: consumer.fullyQualifiedNamespace,
                    eventHubName: cfg.deadLetterHub,
                    consumerGroup: cfg.deadLetterConsumerGroup,
                  });
                } finally {
                  await consumer.close();
                }
              });
            } catch (e) {
              if (!(e instanceof ServiceError)) throw e;
              backlogNote = `dead-letter hub backlog not shown: ${e.message}`;
              finishWith(e.kind);
            }
          }
        }
        if (o.json) {
          out(JSON.stringify(jsonSafe({ ...stats, ...(backlog ? { backlog } : {}) })));
          if (backlogNote) err(backlogNote);
          return;
        }
        const parked = stats.byStatusReason.filter((r) => r.status === 'parked').reduce((n, r) => n + r.count, 0);
        out(`parked: ${parked}${stats.oldestParkedAt ? ` (oldest ${isoSeconds(stats.oldestParkedAt)})` : ''}`);
        out('');
        out(formatTable(['STATUS', 'REASON', 'COUNT'], stats.byStatusReason.map((r) => [r.status, r.reason, String(r.count)])));
        out('');
        out(formatTable(['TENANT', 'PARKED'], stats.byTenant.map((t) => [t.tenantId === null ? '(unknown)' : String(t.tenantId), String(t.count)])));
        out('');
        out(formatTable(['DAY (UTC)', 'REASON', 'PARKED'], stats.byDay.map((d) => [d.day, d.reason, String(d.count)])));
        if (backlog) {
          out('');
          out(`dead-letter hub ${backlog.hub} (consumer group ${backlog.consumerGroup}): backlog ${backlog.totalLag ?? 'unknown'}`);
          out(lagTable(backlog, new Date()));
        }
        if (backlogNote) err(backlogNote);
      }),
    );
}

/** `dlq list`: a page of dead letters without their bodies. */
function registerList(dlq: Command): void {
  addFilters(dlq.command('list').description('parked dead letters, oldest first (--status or --all for discarded and replayed ones)'), true)
    .option('--all', 'every status, not only parked')
    .option('--limit <n>', 'at most this many', parsePositiveInt, 50)
    .option('--json', 'print a JSON array')
    .addHelpText('after', SETTINGS_HELP)
    .action((o: FilterOpts & { limit: number; all?: boolean }) =>
      withPool(async (pool, cfg) => {
        if (o.all === true && o.status !== undefined) throw new UsageError('give only one of --status and --all');
        // What is dealt with (discarded, replayed) stays in the table but out of the way.
        const f = filterOf(o.all === true || o.status !== undefined ? o : { ...o, status: 'parked' });
        const rows = await listDeadLetters(pool, cfg.schema, f, o.limit);
        const total = await countDeadLetters(pool, cfg.schema, f);
        if (o.json) out(JSON.stringify(jsonSafe(rows)));
        else {
          out(
            formatTable(
              ['ID', 'PARKED AT', 'STATUS', 'REASON', 'TENANT', 'SOURCE', 'BYTES', 'OUTCOME', 'ERROR'],
              rows.map((r) => [
                String(r.id),
                isoSeconds(r.parkedAt),
                r.status,
                r.reason,
                r.tenantId === null ? '-' : String(r.tenantId),
                `${r.source.hub}/${r.source.partitionId}/${r.source.sequenceNumber}`,
                String(r.bodyBytes),
                r.outcome ?? '-',
                oneLine(r.error, 80),
              ]),
            ),
          );
        }
        if (total > rows.length) err(`showing ${rows.length} of ${total}; use --limit or filters for more`);
      }),
    );
}

/** `dlq show <id>`: one dead letter with its body. */
function registerShow(dlq: Command): void {
  dlq
    .command('show')
    .description('one dead letter with its body (pretty JSON, text, or hex when not UTF-8)')
    .argument('<id>', 'dead letter id (from `dlq list`)', (v: string) => parsePositiveInt(v))
    .option('--json', 'print JSON (body as base64, and as text when it is UTF-8)')
    .addHelpText('after', SETTINGS_HELP)
    .action((id: number, o: { json?: boolean }) =>
      withPool(async (pool, cfg) => {
        const d = await getDeadLetter(pool, cfg.schema, id);
        if (!d) throw new FailedError(`no dead letter with id ${id}`);
        if (o.json) {
          const text = bodyText(d.body);
          out(JSON.stringify(jsonSafe({ ...d, body: { base64: d.body.toString('base64'), ...(text !== undefined ? { text } : {}) } })));
          return;
        }
        const body = formatBody(d.body);
        const lines = [
          `id:            ${d.id}`,
          `status:        ${d.status}${d.outcome ? ` (${d.outcome})` : ''}`,
          `reason:        ${d.reason}`,
          `error:         ${d.error}`,
          `tenant:        ${d.tenantId ?? '-'}`,
          `event id:      ${d.eventId ?? '-'}`,
          `source:        hub ${d.source.hub}, partition ${d.source.partitionId}, sequence ${d.source.sequenceNumber}, offset ${d.source.offset}`,
          `enqueued at:   ${d.source.enqueuedTime.toISOString()}${d.source.partitionKey !== null ? `, partition key ${JSON.stringify(d.source.partitionKey)}` : ''}`,
          `consumer group: ${d.source.consumerGroup}`,
          `attempts:      ${d.attempts} (first failure ${d.firstFailureAt.toISOString()}, last ${d.lastFailureAt.toISOString()})`,
          `parked at:     ${d.parkedAt.toISOString()}, updated ${d.updatedAt.toISOString()}`,
          `replays:       ${d.replayAttempts}${d.lastReplayAt ? `, last ${d.lastReplayAt.toISOString()}` : ''}`,
          `properties:    ${JSON.stringify(jsonSafe(d.properties))}`,
          `body (${d.body.length} bytes, ${body.kind}):`,
          body.text,
        ];
        // Every header line holds producer-controlled text (errors quote bodies; source and
        // properties come from the dead letter's application properties).
        out([...lines.slice(0, -1).map((l) => escapeControls(l)), body.text].join('\n'));
      }),
    );
}

/** `dlq replay`: parked rows validated again and written when valid. */
function registerReplay(dlq: Command): void {
  addFilters(dlq.command('replay').description('re-validate parked events with today\'s code and upsert what is valid (idempotent)'), true)
    .option('--limit <n>', 'at most this many', parsePositiveInt)
    .option('--batch-size <n>', 'rows per round trip', parsePositiveInt, 500)
    .option('--dry-run', 'report what would happen, change nothing (one line per event on stdout)')
    .option('--json', 'print the summary as JSON on stdout')
    .addHelpText('after', `\nExit status 1 when anything is still invalid, refused, or the database failed.${SETTINGS_HELP}`)
    .action((o: FilterOpts & { limit?: number; batchSize: number; dryRun?: boolean }) =>
      withPool(async (pool, cfg) => {
        const filter = filterOf(o);
        let progress: ReturnType<typeof createProgress> | undefined;
        const onItem = (i: ReplayItem): void => {
          if (o.dryRun) out(`${i.id}\t${i.outcome}${i.error ? `\t${oneLine(i.error, 200)}` : ''}`);
        };
        const summary = await replayParked(
          { pool, config: cfg, tenants: new TenantRegistry() },
          {
            filter,
            dryRun: o.dryRun === true,
            pageSize: o.batchSize,
            ...(o.limit !== undefined ? { limit: o.limit } : {}),
            onTotal: (total) => {
              progress = createProgress({ label: o.dryRun ? 'dry run' : 'replay', total });
            },
            onProgress: (n) => progress?.advance(n),
            onItem,
          },
        );
        progress?.stop();
        if (o.json) out(JSON.stringify(summary));
        const verb = o.dryRun ? 'would insert' : 'inserted';
        err(
          `${o.dryRun ? 'dry run: ' : ''}${summary.processed} of ${summary.selected} selected: ${verb} ${summary.inserted}, already present ${summary.alreadyPresent}, ` +
            `${PARK_REASONS.map((r) => `still ${r} ${summary[STILL_FIELD[r]]}`).join(', ')}${summary.stoppedBy ? `; stopped: ${summary.stoppedBy}` : ''}`,
        );
        if (failed(summary)) finishWith('failed');
      }),
    );
}

/** `dlq replay-hub`: the dead-letter hub itself read again, resumable. */
function registerReplayHub(dlq: Command): void {
  dlq
    .command('replay-hub')
    .description('replay the dead-letter hub itself with a consumer group of its own; an interrupted replay resumes where it stopped')
    .option('--from <time>', 'start with the first dead letter enqueued at or after TIME (ISO-8601, or an age such as 2h)', parseTimeOption)
    .option('--from-start', 'start with the oldest dead letter the hub holds')
    .option('--reset', 'forget an earlier replay\'s progress and start at --from / --from-start')
    .option('--consumer-group <name>', 'consumer group to read with (default: REPLAY_CONSUMER_GROUP, else hubsink-replay)', parseConsumerGroup)
    .option('--container <name>', 'blob container for the replay\'s checkpoints', parseContainer, FUNCTIONS_CHECKPOINT_CONTAINER)
    .option('--batch-size <n>', 'events per batch', parsePositiveInt, 100)
    .option('--limit <n>', 'stop after this many events (the next run continues)', parsePositiveInt)
    .option('--json', 'print the summary as JSON on stdout')
    .addHelpText(
      'after',
      '\nWithout --reset, a replay that was interrupted continues after the last batch it finished\n(--from or --from-start is then refused: add --reset to start over there).\n' +
        `Exit status 1 when events are still invalid or refused, or the replay stopped early.${HUB_SETTINGS_HELP}`,
    )
    .action((o: { from?: Date; fromStart?: boolean; reset?: boolean; consumerGroup?: string; container: string; batchSize: number; limit?: number; json?: boolean }) =>
      withPool(async (pool, cfg) => {
        if (o.from !== undefined && o.fromStart === true) throw new UsageError('give only one of --from TIME or --from-start');
        if (o.reset === true && o.from === undefined && o.fromStart !== true) throw new UsageError('--reset needs --from TIME or --from-start');
        const from: ReplayFrom | undefined = o.fromStart ? { kind: 'start' } : o.from ? { kind: 'time', time: o.from } : undefined;
        const group = o.consumerGroup ?? cfg.replayConsumerGroup;
        if (group.toLowerCase() === cfg.deadLetterConsumerGroup.toLowerCase()) {
          throw new UsageError(`the replay must not read with the deadletter function's consumer group (${group}): set REPLAY_CONSUMER_GROUP or --consumer-group`);
        }
        const ctx = cliServiceContext(cfg, {
          hub: cfg.deadLetterHub,
          hubSetting: 'DEADLETTER_EVENTHUB_NAME',
          consumerGroup: group,
          consumerGroupSetting: o.consumerGroup !== undefined ? '--consumer-group' : 'REPLAY_CONSUMER_GROUP',
        });
        requireEventHubs(cfg);
        // Before any resume state is written: a wrong key or a missing consumer group stops here.
        await withServices(ctx, () => probeHub(cfg, ctx));
        const container = await openContainer(requireStorage(cfg), o.container);
        await withServices(ctx, () => container.createIfNotExists());
        const consumer = await openConsumer(cfg, cfg.deadLetterHub, group);
        const ctl = new AbortController();
        const onSignal = (): void => {
          err('interrupted: finishing the batch in progress, then stopping (run again to resume)');
          ctl.abort();
        };
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
        let progress: ReturnType<typeof createProgress> | undefined;
        try {
          const s = await withServices(ctx, () => replayHub({
            consumer,
            consumerGroup: group,
            container,
            deps: { pool, config: cfg, tenants: new TenantRegistry() },
            ...(from ? { from } : {}),
            reset: o.reset === true,
            batchSize: o.batchSize,
            ...(o.limit !== undefined ? { limit: o.limit } : {}),
            signal: ctl.signal,
            onPlan: (plans) => {
              const total = plans.reduce((n, p) => n + p.events, 0);
              const resumed = plans.filter((p) => p.resumed).length;
              err(`replaying ${total} dead letter(s) from ${cfg.deadLetterHub} (consumer group ${group})${resumed > 0 ? `, resuming an earlier replay on ${resumed} partition(s)` : ''}`);
              progress = createProgress({ label: 'replay-hub', total: o.limit !== undefined ? Math.min(o.limit, total) : total });
            },
            onProgress: (n) => progress?.advance(n),
            log: (m) => err(m),
          }));
          progress?.stop();
          if (o.json) out(JSON.stringify(s));
          const stillFailing = PARK_REASONS.reduce((n, r) => n + s[PARKED_FIELD[r]], s.alreadyParked);
          err(
            `read ${s.received}: inserted ${s.inserted}, already present ${s.duplicates}, ${PARK_REASONS.map((r) => `parked ${r} ${s[PARKED_FIELD[r]]}`).join(', ')}, ` +
              `already parked ${s.alreadyParked}, undecodable ${s.undecodable}, parked rows marked replayed ${s.markedReplayed}` +
              `${s.complete ? '; complete' : `; stopped: ${s.stoppedBy ?? 'unknown'} (run again to resume)`}`,
          );
          if (!s.complete || stillFailing > 0) finishWith('failed');
        } finally {
          process.removeListener('SIGINT', onSignal);
          process.removeListener('SIGTERM', onSignal);
          progress?.stop();
          await consumer.close();
        }
      }),
    );
}

/** `dlq discard`: parked rows marked discarded. */
function registerDiscard(dlq: Command): void {
  addFilters(dlq.command('discard').description('mark parked dead letters discarded (they stay in the table, out of the way)'), false)
    .option('--yes', 'really discard (required)')
    .option('--json', 'print the discarded ids as JSON')
    .addHelpText('after', SETTINGS_HELP)
    .action((o: FilterOpts & { yes?: boolean }) =>
      withPool(async (pool, cfg) => {
        const filter = filterOf(o);
        if (o.yes !== true) {
          const n = await countDeadLetters(pool, cfg.schema, { ...filter, status: 'parked' });
          throw new UsageError(`this would discard ${n} parked dead letter(s); add --yes to do it`);
        }
        const ids = await discardDeadLetters(pool, cfg.schema, filter);
        if (o.json) out(JSON.stringify({ discarded: ids }));
        err(`discarded ${ids.length} dead letter(s)`);
      }),
    );
}
