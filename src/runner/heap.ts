/**
 * How far V8 lets the old generation grow past what the last full collection kept, before it
 * collects again. V8's own factor (up to 4× on a big machine) lets a runner under sustained load
 * carry some 100 MiB of dead batches (received events, parsed bodies, COPY buffers: they outlive
 * two scavenges while their write is in flight, so they are promoted) before a full collection;
 * the peak RSS is that garbage. With 1.5× the peak stays near the live heap plus a half, for a few
 * per cent more CPU (docs/bench.md, "Runner memory", has the figures).
 *
 * V8 reads this flag at every full collection, so setting it at run time takes effect (unlike the
 * heap size limits, which are fixed when the heap is set up).
 */
import v8 from 'node:v8';

export const RUNNER_HEAP_GROWING_PERCENT = 50;

let applied = 0;

/**
 * Sets V8's heap growing factor to 1 + percent/100 for this process; 0 leaves V8's own. Returns
 * whether the flag was set. Throws on a value that is not an integer from 0 to 1000.
 */
export function boundHeapGrowth(percent: number = RUNNER_HEAP_GROWING_PERCENT): boolean {
  if (!Number.isInteger(percent) || percent < 0 || percent > 1000) throw new RangeError(`heap growing percent must be an integer from 0 to 1000, not ${String(percent)}`);
  if (percent === 0 || percent === applied) return false;
  v8.setFlagsFromString(`--heap-growing-percent=${percent}`);
  applied = percent;
  return true;
}
