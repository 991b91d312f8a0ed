/**
 * `hubsink checkpoints show | rewind`: the Event Hubs checkpoints of a consumer group, as the
 * Functions host and BlobCheckpointStore keep them in blob storage (layout in src/hubs/checkpoints.ts).
 * Data to stdout (a table, or --json), explanations and refusals to stderr.
 */
import type { Command } from 'commander';
import type { EventHubConsumerClient } from '@azure/event-hubs';
import { loadConfig, requireEventHubs, requireStorage } from '../config.js';
import { FUNCTIONS_CHECKPOINT_CONTAINER } from '../hubs/clients.js';
import { withServices } from './withServices.js';
import { checkpointLag, lagTable, type ShowResult } from './checkpointLag.js';
import { cliServiceContext, openConsumer, openContainer, parseConsumerGroup, parseContainer, parseHub, parseTimeOption, probeHub } from './hubOptions.js';
import {
  checkpointAhead,
  liveOwnership,
  partitionStates,
  planRewind,
  readCheckpoints,
  readOwnership,
  resolveCheckpoint,
  rewindTargetAt,
  writeCheckpoint,
  type CheckpointScope,
  type RewindAction,
  type RewindTarget,
} from '../hubs/checkpoints.js';
import { ago, formatTable, jsonSafe } from '../operator/format.js';
import { FailedError, RefusedError } from '../errors.js';
import { parsePositiveInt, UsageError } from './program.js';

interface CommonOpts {
  hub: string;
  consumerGroup: string;
  container: string;
  namespace?: string;
  json?: boolean;
}

function scopeFor(consumer: EventHubConsumerClient, o: CommonOpts): CheckpointScope {
  return { fullyQualifiedNamespace: o.namespace ?? consumer.fullyQualifiedNamespace, eventHubName: o.hub, consumerGroup: o.consumerGroup };
}

function addCommon(cmd: Command): Command {
  return cmd
    .requiredOption('--hub <name>', 'Event Hub name', parseHub)
    .requiredOption('--consumer-group <name>', 'consumer group whose checkpoints these are', parseConsumerGroup)
    .option('--container <name>', 'blob container of the checkpoints', parseContainer, FUNCTIONS_CHECKPOINT_CONTAINER)
    .option('--namespace <host>', 'namespace as written in the blob names (default: the connection\'s host)')
    .option('--json', 'print JSON instead of a table');
}

/** Event Hubs keeps events 90 days at most: a rewind further back is a rewind to the start. */
const FAR_PAST_MS = 90 * 86_400_000;

const SETTINGS_HELP = '\nSettings (environment): EventHubConnection (or __fullyQualifiedNamespace), AzureWebJobsStorage (or __accountName).\n';

export function register(program: Command): void {
  const cp = program
    .command('checkpoints')
    .description('show and rewind Event Hubs checkpoints (the Functions host\'s layout in blob storage)');

  addCommon(cp.command('show').description('each partition\'s checkpoint next to its last enqueued event, i.e. the lag'))
    .addHelpText('after', SETTINGS_HELP)
    .action(async (o: CommonOpts) => {
      const cfg = loadConfig();
      const storage = requireStorage(cfg);
      requireEventHubs(cfg);
      const ctx = cliServiceContext(cfg, { hub: o.hub, hubSetting: '--hub', consumerGroup: o.consumerGroup, consumerGroupSetting: '--consumer-group' });
      await withServices(ctx, () => probeHub(cfg, ctx));
      const container = await openContainer(storage, o.container);
      const consumer = await openConsumer(cfg, o.hub, o.consumerGroup);
      let r: ShowResult;
      try {
        r = await withServices(ctx, () => checkpointLag(consumer, container, scopeFor(consumer, o)));
      } finally {
        await consumer.close();
      }
      if (o.json) process.stdout.write(`${JSON.stringify(jsonSafe(r))}\n`);
      else {
        process.stdout.write(`${lagTable(r, new Date())}\n`);
        process.stderr.write(`hub ${r.hub}, consumer group ${r.consumerGroup}, blobs ${r.container}/${r.blobPrefix}; total lag ${r.totalLag ?? 'unknown'}\n`);
        if (!r.containerExists) {
          process.stderr.write(`blob container ${r.container} does not exist yet: no consumer has checkpointed there, so a consumer starts from the start and everything retained is lag (if the app has run, check --container)\n`);
        }
      }
    });

  addCommon(
    cp
      .command('rewind')
      .description('rewrite the checkpoints so the consumer reprocesses from a time (or the start); safe because ingest is idempotent'),
  )
    .option('--to <time>', 'reprocess from the first event enqueued at or after TIME (ISO-8601, or an age such as 2h)', parseTimeOption)
    .option('--to-start', 'reprocess everything the hub still holds')
    .option('--recreated', 'after the hub was deleted and created again: put back to the start only the checkpoints that lie ahead of their partition\'s last event, and keep every other')
    .option('--force', 'rewind even while a consumer holds fresh ownership of the consumer group')
    .option('--stale-after <seconds>', 'ownership renewed within this many seconds counts as a running consumer', parsePositiveInt, 60)
    .option('--read-consumer-group <name>', 'consumer group used to find positions (default: --consumer-group); must not be held by an owner-level reader', parseConsumerGroup)
    .option('--dry-run', 'show what would be written, write nothing')
    .addHelpText(
      'after',
      '\nStop the consumers first (the Function App, or `hubsink run`): a running consumer keeps its position in memory and would\n' +
        'overwrite the rewound checkpoints. A rewind never moves a checkpoint forward.\n' +
        'A hub deleted and created again restarts its sequence numbers at 0 while the checkpoints keep the old ones;\n' +
        '--recreated rewrites exactly those checkpoints (ahead of their partition) to the start.' +
        SETTINGS_HELP,
    )
    .action(async (o: CommonOpts & { to?: Date; toStart?: boolean; recreated?: boolean; force?: boolean; staleAfter: number; readConsumerGroup?: string; dryRun?: boolean }) => {
      if ([o.to !== undefined, o.toStart === true, o.recreated === true].filter(Boolean).length !== 1) throw new UsageError('give exactly one of --to TIME, --to-start or --recreated');
      const cfg = loadConfig();
      requireEventHubs(cfg);
      const ctx = cliServiceContext(cfg, {
        hub: o.hub,
        hubSetting: '--hub',
        consumerGroup: o.readConsumerGroup ?? o.consumerGroup,
        consumerGroupSetting: o.readConsumerGroup !== undefined ? '--read-consumer-group' : '--consumer-group',
      });
      if (o.to && Date.now() - o.to.getTime() > FAR_PAST_MS) {
        process.stderr.write(`warning: --to is ${o.to.toISOString()}, before anything a hub keeps (at most 90 days): every partition is rewound to its start, as --to-start says plainly\n`);
      }
      await withServices(ctx, async () => {
        await probeHub(cfg, ctx);
        const container = await openContainer(requireStorage(cfg), o.container);
        if (!(await container.exists())) {
          // Nothing to rewind, and creating it here would hide a wrong --container.
          throw new FailedError(`blob container ${o.container} does not exist: no consumer has checkpointed there (check --container)`);
        }
        const reader = await openConsumer(cfg, o.hub, o.readConsumerGroup ?? o.consumerGroup);
        try {
          const scope = scopeFor(reader, o);
          const now = new Date();
          const live = liveOwnership(await readOwnership(container, scope), now, o.staleAfter * 1000);
          // A dry run writes nothing, so a running consumer cannot overwrite it: it is shown, with the warning.
          if (live.length > 0 && o.force !== true && o.dryRun !== true) {
            const who = live.map((l) => `partition ${l.partitionId} by ${l.ownerId} (renewed ${l.lastModified ? ago(l.lastModified, now) : 'recently'})`).join(', ');
            throw new RefusedError(
              `refusing to rewind ${o.hub}/${o.consumerGroup}: a consumer is running (ownership held: ${who}).\n` +
                'A running consumer keeps its position in memory and would overwrite the rewound checkpoints with its next one.\n' +
                `Stop the Function App or runner, wait until ownership is older than ${o.staleAfter} s, then run this again (or pass --force).`,
            );
          }
          const states = await partitionStates(reader);
          const checkpoints = await readCheckpoints(container, scope);
          // Without a checkpoint a consumer starts at its initial position, which may well be before
          // TIME: writing one there could skip events it never read.
          const missing = states.filter((p) => !checkpoints.has(p.partitionId) && !p.isEmpty).map((p) => p.partitionId);
          if (o.to && missing.length > 0 && o.force !== true) {
            throw new RefusedError(
              `refusing to rewind ${o.hub}/${o.consumerGroup} to ${o.to.toISOString()}: partition(s) ${missing.join(', ')} have no checkpoint.\n` +
                'Without a checkpoint the consumer starts at its initial position: `initialOffsetOptions` in host.json for the Function App\n' +
                '(hubsink ships `fromStart`), `--start` for `hubsink run` (default earliest). Writing a checkpoint at TIME could move it\n' +
                'forward past events it never read. Use --to-start, or pass --force to write checkpoints at TIME anyway.',
            );
          }
          const actions: RewindAction[] = [];
          for (const p of states) {
            const stored = checkpoints.get(p.partitionId);
            if (o.recreated) {
              // Only a checkpoint provably ahead of its partition is touched: any other may be right.
              if (checkpointAhead(p, stored)) actions.push(planRewind(p, { kind: 'start' }, stored));
              else actions.push({ partitionId: p.partitionId, action: 'keep', reason: 'not ahead of the partition\'s last event', ...(stored ? { previous: stored } : {}) });
              continue;
            }
            const target: RewindTarget = o.to ? await rewindTargetAt(reader, p, o.to) : { kind: 'start' };
            // An offset without a sequence number is placed through the hub before comparing.
            const previous = stored ? await resolveCheckpoint(reader, p, stored) : undefined;
            actions.push(planRewind(p, target, previous));
          }
          if (o.dryRun !== true) {
            for (const a of actions) if (a.action === 'write') await writeCheckpoint(container, scope, a.partitionId, { sequenceNumber: a.sequenceNumber, offset: a.offset });
          }
          const written = actions.filter((a) => a.action === 'write').length;
          if (o.json) process.stdout.write(`${JSON.stringify(jsonSafe({ hub: o.hub, consumerGroup: o.consumerGroup, container: o.container, dryRun: o.dryRun === true, actions }))}\n`);
          else {
            const rows = actions.map((a) => [
              a.partitionId,
              a.previous?.sequenceNumber?.toString() ?? '-',
              a.action === 'write' ? String(a.sequenceNumber) : '-',
              a.action === 'write' ? a.offset : '-',
              a.action === 'write' ? (a.reprocess?.toString() ?? '?') : '0',
              a.action === 'write' ? (o.dryRun ? 'would write' : 'written') : `kept: ${a.reason}`,
            ]);
            process.stdout.write(`${formatTable(['PARTITION', 'OLD SEQ', 'NEW SEQ', 'NEW OFFSET', 'REPROCESS', 'ACTION'], rows)}\n`);
            process.stderr.write(
              `${o.dryRun ? 'dry run: would rewrite' : 'rewrote'} ${written} of ${actions.length} checkpoint(s) of ${o.hub}/${o.consumerGroup}` +
                `${o.to ? ` to ${o.to.toISOString()}` : o.recreated ? ' (ahead of their partition) to the start' : ' to the start'}${live.length > 0 ? (o.dryRun ? '; a consumer is running: stop it before the real rewind' : ' (--force: ownership was fresh)') : ''}\n`,
            );
          }
        } finally {
          await reader.close();
        }
      });
    });
}
