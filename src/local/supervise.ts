/**
 * Why `hubsink local` runs the stack in a child process: Ctrl-C on a terminal sends SIGINT to the
 * whole foreground process group, so PostgreSQL and Azurite (children of the stack) would stop at
 * once, under a batch still being written. The stack therefore runs in its own session (detached),
 * where the terminal's signals do not reach it, and this parent turns Ctrl-C into an orderly
 * SIGTERM. A second Ctrl-C, or a shutdown that overruns its bound, kills the stack's whole process
 * group, so nothing is ever left running. If the parent dies, the child notices the IPC channel
 * closing and shuts down by itself.
 */
import { spawn } from 'node:child_process';

export const CHILD_ENV = 'HUBSINK_LOCAL_STACK_CHILD';
export const TTY_ENV = 'HUBSINK_LOCAL_TTY';

export function isStackChild(env: NodeJS.ProcessEnv = process.env): boolean {
  return env[CHILD_ENV] === '1';
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is already gone.
  }
}

/** Runs this same command as the stack child and relays its output; resolves with its exit code. */
export function superviseStack(opts: { hardLimitMs: number; write: (s: string) => void }): Promise<number> {
  const script = process.argv[1];
  if (!script) return Promise.reject(new Error('cannot find the hubsink script to re-run'));
  const child = spawn(process.execPath, [...process.execArgv, script, ...process.argv.slice(2)], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: { ...process.env, [CHILD_ENV]: '1', ...(process.stderr.isTTY ? { [TTY_ENV]: String(process.stderr.columns || 100) } : {}) },
  });
  child.stdout?.pipe(process.stdout, { end: false });
  child.stderr?.pipe(process.stderr, { end: false });
  let signals = 0;
  let forced = false;
  let hardTimer: NodeJS.Timeout | undefined;
  const onSignal = (name: NodeJS.Signals): void => {
    signals++;
    if (signals === 1) {
      child.kill('SIGTERM');
      hardTimer = setTimeout(() => {
        opts.write(`hubsink local: shutdown took longer than ${opts.hardLimitMs / 1000} s; killing it\n`);
        killGroup(child.pid, 'SIGKILL');
      }, opts.hardLimitMs);
    } else {
      forced = true;
      opts.write(`hubsink local: ${name} again: killing everything now\n`);
      killGroup(child.pid, 'SIGKILL');
    }
  };
  const handlers: [NodeJS.Signals, () => void][] = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((s) => [s, () => onSignal(s)]);
  for (const [s, h] of handlers) process.on(s, h);
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      clearTimeout(hardTimer);
      for (const [s, h] of handlers) process.removeListener(s, h);
      // Belt and braces: anything the stack left in its group (it should have stopped it) goes now.
      killGroup(child.pid, 'SIGKILL');
      // Killed because the user pressed Ctrl-C twice: the shell's usual status for an interrupt.
      const status = forced ? 130 : (code ?? (signal ? 128 + (signal === 'SIGKILL' ? 9 : signal === 'SIGTERM' ? 15 : 1) : 1));
      // Let the last output through before returning (bounded: a stray holder of the pipes must not hang us).
      const flushed = setTimeout(() => resolve(status), 2000);
      child.once('close', () => {
        clearTimeout(flushed);
        resolve(status);
      });
    });
  });
}
