/**
 * A fresh runner owns every partition after its first load-balancing cycle, and a second runner
 * takes its even share within its first two cycles (a steal in the first can lose an etag race
 * against the owner's renewal of that partition; it is retried in the next cycle). Measured by counting cycles and claims through the
 * checkpoint store the runners use (exact ownership, no timing threshold); the time it takes is a
 * bench figure (bench/claim.ts).
 */
import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import { BlobCheckpointStore } from '@azure/eventhubs-checkpointstore-blob';
import type { CheckpointStore, PartitionOwnership } from '@azure/event-hubs';
import { loadConfig } from '../../src/config.js';
import { blobContainer } from '../../src/hubs/clients.js';
import { startRunner, type Runner } from '../../src/runner/runner.js';
import { startStack, waitFor, type Stack } from '../support/runner-fixture.js';

let stack: Stack;
const runners: Runner[] = [];

beforeAll(async () => {
  stack = await startStack({ partitions: 8 });
});
afterAll(async () => {
  for (const r of runners) await r.stop();
  await stack.close();
});

/** Counts load-balancing cycles (one listOwnership each) and what each cycle claimed for its owner. */
interface Counted {
  store: CheckpointStore;
  cycles: number;
  /** Partitions claimed (not renewed: new to this owner) per cycle, 1-based. */
  claimedIn: Map<number, Set<string>>;
}

async function countingStore(hub: string): Promise<Counted> {
  const inner = new BlobCheckpointStore(await blobContainer({ kind: 'connectionString', connectionString: stack.env().AzureWebJobsStorage ?? '' }, stack.container)) as unknown as CheckpointStore;
  const owned = new Set<string>();
  const c: Counted = {
    cycles: 0,
    claimedIn: new Map(),
    store: {
      listOwnership: async (ns, h, cg, o) => {
        const list = await inner.listOwnership(ns, h, cg, o);
        if (h === hub) c.cycles++;
        return list;
      },
      claimOwnership: async (reqs: PartitionOwnership[], o) => {
        const got = await inner.claimOwnership(reqs, o);
        for (const r of got) {
          if (r.eventHubName !== hub || r.ownerId === '' || owned.has(r.partitionId)) continue;
          owned.add(r.partitionId);
          const set = c.claimedIn.get(c.cycles) ?? new Set<string>();
          set.add(r.partitionId);
          c.claimedIn.set(c.cycles, set);
        }
        return got;
      },
      listCheckpoints: (...a) => inner.listCheckpoints(...a),
      updateCheckpoint: (...a) => inner.updateCheckpoint(...a),
    },
  };
  return c;
}

async function start(store: CheckpointStore): Promise<Runner> {
  const r = await startRunner({
    config: loadConfig(stack.env()),
    log: () => undefined,
    checkpointContainer: stack.container,
    checkpointStore: store,
    // Long enough that a second cycle cannot happen before the first has been counted.
    loadBalancingIntervalMs: 3000,
    ownershipExpirationMs: 30_000,
    maxWaitTimeInSeconds: 0.5,
  });
  runners.push(r);
  return r;
}

test('one fresh runner claims all 8 partitions in its first cycle; a second takes 4 within its first two, and they settle at 4 and 4', async () => {
  const all = ['0', '1', '2', '3', '4', '5', '6', '7'];
  const a = await countingStore(stack.hub);
  const ra = await start(a.store);
  await waitFor('runner A to own every partition', () => Promise.resolve(ra.stats().ingest.partitions), (p) => p.length === 8, 60_000);
  assert.deepEqual([...(a.claimedIn.get(1) ?? [])].sort(), all, `claims per cycle: ${JSON.stringify([...a.claimedIn].map(([k, v]) => [k, [...v]]))}`);

  const b = await countingStore(stack.hub);
  const rb = await start(b.store);
  await waitFor(
    'an even share',
    () => Promise.resolve([ra.stats().ingest.partitions, rb.stats().ingest.partitions]),
    ([pa, pb]) => pa?.length === 4 && pb?.length === 4,
    60_000,
  );
  const bClaims = `B's claims per cycle: ${JSON.stringify([...b.claimedIn].map(([k, v]) => [k, [...v]]))}`;
  assert.equal((b.claimedIn.get(1)?.size ?? 0) + (b.claimedIn.get(2)?.size ?? 0), 4, bClaims);
  const [pa, pb] = [ra.stats().ingest.partitions, rb.stats().ingest.partitions];
  assert.deepEqual([...pa, ...pb].sort(), all, 'disjoint and complete');
  // Two more cycles of each: nobody takes anything further (converged, no flapping).
  const cyclesA = a.cycles;
  const cyclesB = b.cycles;
  await waitFor('two more cycles each', () => Promise.resolve([a.cycles, b.cycles]), ([x, y]) => (x ?? 0) >= cyclesA + 2 && (y ?? 0) >= cyclesB + 2, 30_000);
  assert.deepEqual(ra.stats().ingest.partitions, pa);
  assert.deepEqual(rb.stats().ingest.partitions, pb);
  assert.ok([...b.claimedIn.keys()].every((k) => k <= 2), `B claimed only in its first two cycles; ${bClaims}`);
});
