/**
 * A worker thread of `hubsink import --workers n`: decodes, validates and writes the batches it is
 * given (processBatch) on its own connections, and answers with their counts. Progress is not its
 * business: the main thread records it in file order (importer.ts), so a kill never records a batch
 * as done before every batch ahead of it is written.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type pg from 'pg';
import type { HubsinkConfig } from '../config.js';
import type { Capabilities } from '../db/capabilities.js';
import { createPool } from '../db/pool.js';
import { configureSession } from '../db/session.js';
import { TenantRegistry } from '../db/tenants.js';
import { describeError } from '../pipeline/classify.js';
import { processBatch, unpackItems, type BatchContext, type BatchResult, type PackedItems } from './importBatch.js';

export interface WorkerSetup {
  config: HubsinkConfig;
  /** Absent for a dry run (no database). */
  caps?: Capabilities;
  maxAgeDays: number;
  batchSize: number;
}

export interface BatchTask {
  id: number;
  srcName: string;
  /** The batch's clock reading, taken on the main thread (the clock is injected there). */
  nowMs: number;
  items: PackedItems;
}

export type BatchReply = { id: number; ok: true; result: BatchResult } | { id: number; ok: false; error: string };

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('importWorker.js runs only as a worker thread of hubsink import');
  const setup = workerData as WorkerSetup;
  let pool: pg.Pool | undefined;
  if (setup.caps) {
    pool = await createPool(setup.config);
    configureSession(pool, setup.caps, { citusCachedConnsPerWorker: setup.config.citusCachedConnsPerWorker });
  }
  const ctx: BatchContext = {
    config: setup.config,
    maxAgeDays: setup.maxAgeDays,
    batchSize: setup.batchSize,
    tenants: new TenantRegistry(),
    ...(pool ? { pool } : {}),
    ...(setup.caps ? { caps: setup.caps } : {}),
  };
  port.on('message', (task: BatchTask | 'close') => {
    if (task === 'close') {
      void (pool?.end() ?? Promise.resolve()).finally(() => port.close());
      return;
    }
    processBatch(ctx, task.srcName, unpackItems(task.items), new Date(task.nowMs)).then(
      (result) => port.postMessage({ id: task.id, ok: true, result } satisfies BatchReply),
      (err: unknown) => port.postMessage({ id: task.id, ok: false, error: describeError(err) } satisfies BatchReply),
    );
  });
}

void main();
