/**
 * The local stack's generator: synthetic events sent to the ingest hub at a modest rate. At the
 * stop it waits for the runner to receive what was sent: the emulator's hubs live in this process,
 * so what the runner has not received when the stack stops is gone with them.
 */
import { createGenerator } from '../generator/generator.js';
import { sendGenerated } from '../generator/send.js';
import { createProducer } from '../hubs/clients.js';
import { describeError } from '../pipeline/classify.js';
import { sumOf } from '../pipeline/types.js';
import type { Logger } from '../operator/log.js';
import type { RunnerStats } from '../runner/stats.js';
import type { StopList } from './stackStops.js';

/** How long a stop waits for the runner to receive what the generator sent. */
const DRAIN_MS = 10_000;

/** Pure: events sent that the runner has not yet received, on the ingest and dead-letter hubs. */
export function undrained(stats: RunnerStats, sent: number): { ingest: number; deadLetter: number } {
  const i = stats.ingest;
  const toDeadLetter = sumOf(i.deadLettered);
  return {
    ingest: Math.max(0, sent - i.received),
    deadLetter: stats.deadletter.enabled ? Math.max(0, toDeadLetter - stats.deadletter.received) : 0,
  };
}

async function drainHubs(stats: () => RunnerStats, sent: () => number, log: Logger, ms = DRAIN_MS): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const left = undrained(stats(), sent());
    if (left.ingest === 0 && left.deadLetter === 0) return;
    if (Date.now() > deadline) {
      log('warn', `stopping with ${left.ingest} sent event(s) not yet received from the ingest hub and ${left.deadLetter} from the dead-letter hub (waited ${ms / 1000} s)`);
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface GeneratorOptions {
  /** Events per second; 0 turns it off. */
  rate: number;
  tenants: number;
  duplicates: number;
  malformed: number;
  seed: string;
}

/** What the status line shows; `sent` and `error` change while it runs. */
export interface StackGenerator {
  enabled: boolean;
  sent: number;
  error: string | null;
}

export async function startStackGenerator(
  opts: GeneratorOptions & { eventHubConnection: string; hub: string; runnerStats: () => RunnerStats; log: Logger },
  stops: StopList,
): Promise<StackGenerator> {
  const gen: StackGenerator = { enabled: opts.rate > 0, sent: 0, error: null };
  if (opts.rate <= 0) return gen;
  const log = opts.log;
  const producer = await createProducer({ kind: 'connectionString', connectionString: opts.eventHubConnection }, opts.hub);
  const generator = createGenerator({ seed: opts.seed, tenants: opts.tenants, duplicates: opts.duplicates, malformed: opts.malformed });
  const abort = new AbortController();
  const sending = sendGenerated(producer, generator, { rate: opts.rate, signal: abort.signal, onProgress: (n) => (gen.sent = n) }).catch((err: unknown) => {
    gen.error = describeError(err);
    log('error', `generator stopped: ${gen.error}`);
  });
  // Stopped after the generator (added before it).
  stops.add('draining the hubs', DRAIN_MS + 5000, () => drainHubs(opts.runnerStats, () => gen.sent, log));
  stops.add('the generator', 15_000, async () => {
    abort.abort();
    await sending;
    await producer.close();
  });
  return gen;
}
