/**
 * The worker threads of a parallel import: each takes one batch at a time (importWorker.ts); a
 * batch waits for the first free one. Answers come back in any order; the importer puts them back in
 * file order before it records progress.
 */
import { Worker } from 'node:worker_threads';
import type { BatchResult, PackedItems } from './importBatch.js';
import type { BatchReply, BatchTask, WorkerSetup } from './importWorker.js';

interface Pending {
  task: BatchTask;
  resolve: (r: BatchResult) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  busy?: Pending;
  exited?: boolean;
}

export class ImportWorkerError extends Error {
  override name = 'ImportWorkerError';
}

export class BatchWorkers {
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 1;
  private broken: Error | undefined;

  constructor(count: number, setup: WorkerSetup, script: URL = new URL('./importWorker.js', import.meta.url)) {
    if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`worker count must be a positive integer, got ${String(count)}`);
    for (let i = 0; i < count; i++) {
      const slot: Slot = { worker: new Worker(script, { workerData: setup }) };
      slot.worker.on('message', (reply: BatchReply) => {
        const done = slot.busy;
        slot.busy = undefined;
        if (done && done.task.id === reply.id) {
          if (reply.ok) done.resolve(reply.result);
          else done.reject(new Error(reply.error));
        }
        this.pump();
      });
      // A thread that dies takes its batch with it, and the import cannot go on without the order
      // of its batches: every batch not answered yet fails, so the importer stops and records nothing past them.
      const fail = (err: Error): void => {
        this.broken ??= new ImportWorkerError(`an import worker thread failed: ${err.message}`);
        const lost = [...(slot.busy ? [slot.busy] : []), ...this.queue.splice(0)];
        slot.busy = undefined;
        for (const p of lost) p.reject(this.broken);
      };
      slot.worker.on('error', fail);
      slot.worker.on('exit', (code) => {
        slot.exited = true;
        if (slot.busy || this.queue.length > 0) fail(new Error(`it exited with code ${code}`));
      });
      this.slots.push(slot);
    }
  }

  run(srcName: string, nowMs: number, items: PackedItems): Promise<BatchResult> {
    if (this.broken) return Promise.reject(this.broken);
    return new Promise<BatchResult>((resolve, reject) => {
      this.queue.push({ task: { id: this.nextId++, srcName, nowMs, items }, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    for (const slot of this.slots) {
      if (slot.busy) continue;
      const next = this.queue.shift();
      if (!next) return;
      slot.busy = next;
      // The bodies' buffer moves to the thread instead of being copied.
      slot.worker.postMessage(next.task, [next.task.items.bodies.buffer as ArrayBuffer, next.task.items.numbers.buffer as ArrayBuffer]);
    }
  }

  /** Ends the threads after they closed their connections. */
  async close(): Promise<void> {
    await Promise.all(
      this.slots.map(
        (s) =>
          new Promise<void>((resolve) => {
            if (s.exited === true) return resolve();
            s.worker.once('exit', () => resolve());
            s.worker.postMessage('close');
          }),
      ),
    );
  }
}
