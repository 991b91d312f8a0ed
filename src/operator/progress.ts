/**
 * Progress of a replay on stderr: a cli-progress bar when stderr is a terminal, otherwise plain lines
 * (logs and pipes must not fill with carriage returns): one after the first step, then at most one per
 * interval, and a last one at the end.
 */
import cliProgress from 'cli-progress';

export interface Progress {
  /** Adds `n` to the done count; `total` may grow (a bar's total is re-set). */
  advance(n: number): void;
  setTotal(total: number): void;
  stop(): void;
}

export interface ProgressOptions {
  label: string;
  total: number;
  stream?: NodeJS.WriteStream;
  /** Minimum time between plain lines. */
  intervalMs?: number;
  now?: () => number;
}

/** Pure: one plain progress line. */
export function progressLine(label: string, done: number, total: number): string {
  const pct = total > 0 ? Math.floor((done / total) * 100) : 100;
  return `${label}: ${done}/${total} (${pct}%)`;
}

export function createProgress(opts: ProgressOptions): Progress {
  const stream = opts.stream ?? process.stderr;
  let total = opts.total;
  let done = 0;
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      { stream, format: `${opts.label} [{bar}] {value}/{total} {percentage}% | eta {eta_formatted}`, hideCursor: true, etaBuffer: 50 },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0);
    return {
      advance(n) {
        done += n;
        bar.update(done);
      },
      setTotal(t) {
        total = t;
        bar.setTotal(t);
      },
      stop() {
        bar.stop();
      },
    };
  }
  const now = opts.now ?? Date.now;
  const interval = opts.intervalMs ?? 2_000;
  let lastAt: number | undefined;
  let lastDone = -1;
  const line = (): void => {
    stream.write(`${progressLine(opts.label, done, total)}\n`);
    lastAt = now();
    lastDone = done;
  };
  return {
    advance(n) {
      done += n;
      if (lastAt === undefined || now() - lastAt >= interval) line();
    },
    setTotal(t) {
      total = t;
    },
    stop() {
      if (done !== lastDone) line();
    },
  };
}
