/**
 * Partition claiming: how long a fresh `hubsink run` takes to own all 8 partitions of a hub, and how
 * long a second one takes to get its share (4 each), with the runner's defaults (balancing every
 * 10 s, ownership expiry 60 s). The reference is the SDK's "balanced" strategy in the same run, on
 * the same hub and settings: it claims one partition per balancing cycle.
 */
import type pg from 'pg';
import { loadConfig } from '../src/config.js';
import { startEmulator } from '@hubsink/eventhubs-emulator';
import { startRunner, type Runner } from '../src/runner/runner.js';
import type { BenchContext, BenchSection, SectionResult } from './section.js';

export interface ClaimRun {
  strategy: 'greedy' | 'balanced';
  /** From starting the first runner until it owned every partition. */
  firstOwnsAllSeconds: number;
  /** From starting the second runner until each owned its even share. */
  secondGetsShareSeconds: number;
}

export interface ClaimFigure {
  partitions: number;
  balanceIntervalMs: number;
  greedy: ClaimRun;
  balanced: ClaimRun;
}

async function until(what: string, cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`claim bench: ${what} did not happen within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function measure(
  strategy: 'greedy' | 'balanced',
  opts: { pool: pg.Pool; schema: string; databaseUrl: string; azurite: string; partitions: number; balanceIntervalMs: number },
): Promise<ClaimRun> {
  const hub = `claim${strategy}`;
  const emu = await startEmulator({ port: 0, hubs: [{ name: hub, partitions: opts.partitions }, { name: `${hub}-dl`, partitions: 1 }] });
  const config = loadConfig({
    EventHubConnection: emu.connectionString(),
    INGEST_EVENTHUB_NAME: hub,
    DEADLETTER_EVENTHUB_NAME: `${hub}-dl`,
    AzureWebJobsStorage: opts.azurite,
    DATABASE_URL: opts.databaseUrl,
    HUBSINK_SCHEMA: opts.schema,
    PGPOOL_MAX: '4',
  });
  const runners: Runner[] = [];
  const container = `claim-${strategy}-${Date.now().toString(36)}`;
  const start = async (): Promise<Runner> => {
    const r = await startRunner({ config, log: () => undefined, checkpointContainer: container, loadBalancingIntervalMs: opts.balanceIntervalMs, loadBalancingStrategy: strategy });
    runners.push(r);
    return r;
  };
  const owned = (r: Runner | undefined): number => r?.stats().ingest.partitions.length ?? 0;
  try {
    const t0 = performance.now();
    const a = await start();
    await until('the first runner owning every partition', () => owned(a) === opts.partitions, 20 * opts.balanceIntervalMs * opts.partitions);
    const first = (performance.now() - t0) / 1000;
    const t1 = performance.now();
    const b = await start();
    const half = opts.partitions / 2;
    await until('an even share', () => owned(a) === half && owned(b) === half, 20 * opts.balanceIntervalMs * opts.partitions);
    const second = (performance.now() - t1) / 1000;
    return { strategy, firstOwnsAllSeconds: first, secondGetsShareSeconds: second };
  } finally {
    for (const r of runners) await r.stop();
    await emu.stop();
  }
}

export async function benchClaim(opts: { pool: pg.Pool; schema: string; databaseUrl: string; azurite: string; log: (s: string) => void }): Promise<ClaimFigure> {
  const common = { ...opts, partitions: 8, balanceIntervalMs: 10_000 };
  opts.log('  claim: greedy (hubsink run)');
  const greedy = await measure('greedy', common);
  opts.log('  claim: balanced (reference; about a minute and a half)');
  const balanced = await measure('balanced', common);
  return { partitions: common.partitions, balanceIntervalMs: common.balanceIntervalMs, greedy, balanced };
}

export const claimSection: BenchSection = {
  name: 'claim',
  needsAzurite: true,
  async run(ctx: BenchContext): Promise<SectionResult> {
    if (!ctx.azurite) throw new Error('the claim section needs Azurite');
    const srv = ctx.server;
    const c = await benchClaim({ pool: srv.pool, schema: await srv.fresh(), databaseUrl: srv.url, azurite: ctx.azurite, log: ctx.log });
    return {
      tables: [
        {
          title: `Partition claiming: hubsink run on a hub of ${c.partitions} partitions, balancing every ${c.balanceIntervalMs / 1000} s (the runner's default), vs the SDK's balanced strategy`,
          rows: [
            ['strategy', `first runner owns all ${c.partitions} (s)`, `second runner has ${c.partitions / 2} (s)`],
            ...[c.greedy, c.balanced].map((x) => [x.strategy === 'greedy' ? 'greedy (hubsink)' : 'balanced (reference)', x.firstOwnsAllSeconds.toFixed(2), x.secondGetsShareSeconds.toFixed(2)]),
          ],
        },
      ],
      targets: [],
      data: c,
    };
  },
};
