/**
 * Unix habits: a stdout pipe closed by the reader (`hubsink … --help | head -5`) ends the command
 * quietly, with exit status 0 for help output, for every command and subcommand; and a running
 * command whose output nobody reads any more (the emulator printing its connection strings) stops
 * quietly too.
 */
import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/main.js';

const bin = fileURLToPath(new URL('../../bin/hubsink.js', import.meta.url));

/** Every command path: [], ['dlq'], ['dlq', 'list'], … */
function commandPaths(cmd: Command, prefix: string[] = []): string[][] {
  return [prefix, ...cmd.commands.flatMap((c) => commandPaths(c, [...prefix, c.name()]))];
}

/** Runs hubsink with its stdout closed by the reader before anything is written. */
function withClosedStdout(args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '' } });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr });
    });
  });
}

const paths = commandPaths(buildProgram());

describe('a closed stdout', () => {
  test('the program has commands and subcommands to check', () => {
    assert.ok(paths.length > 10, paths.map((p) => p.join(' ')).join(', '));
    assert.ok(paths.some((p) => p.join(' ') === 'dlq list'));
    assert.ok(paths.some((p) => p.join(' ') === 'emulator'));
  });

  test.each(paths.map((p) => [p.length === 0 ? '(top level)' : p.join(' '), p] as const))('hubsink %s --help: exit 0, nothing on stderr', async (_name, p) => {
    const r = await withClosedStdout([...p, '--help']);
    assert.equal(r.signal, null);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
  });

  test('hubsink emulator, its connection strings going nowhere: stops quietly, exit 0', async () => {
    const r = await withClosedStdout(['emulator', '--port', '0']);
    assert.equal(r.signal, null);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /EPIPE|Error|at /);
  });
});
