/**
 * `hubsink generate` and `hubsink local` share their checks of a given Event Hubs connection string
 * and of the generator's shares (src/cli/program.ts): bad values are usage errors, exit 2, before
 * anything connects or starts.
 */
import { afterAll, test } from 'vitest';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCli } from '../support/deadLetters.js';

// Should a check ever stop refusing, `local` would start a stack: then in a folder of its own, for a second.
const dataDir = mkdtempSync(path.join(tmpdir(), 'hubsink-local-usage-'));
const LOCAL = ['local', '--data-dir', dataDir, '--duration', '1', '--pg-port', '0', '--emulator-port', '0', '--azurite-port', '0', '--http-port', '0', '--metrics-port', '0'];
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

const CASES: { args: string[]; message: RegExp }[] = [
  { args: ['generate', '--count', '1', '--connection', 'Server=nope'], message: /--connection: not an Event Hubs connection string/ },
  { args: ['generate', '--count', '1', '--connection', 'Endpoint=sb://127.0.0.1:1;SharedAccessKeyName=k;SharedAccessKey=v', '--duplicates', '0.6', '--malformed', '0.4'], message: /--duplicates plus --malformed must stay below 1/ },
  // Zero seconds used to send 2,000 events unthrottled before the timer fired.
  { args: ['generate', '--duration', '0', '--connection', 'Endpoint=sb://127.0.0.1:1;SharedAccessKeyName=k;SharedAccessKey=v'], message: /--duration <seconds>' argument '0' is invalid\. expected a positive number/ },
  { args: ['generate', '--duration', '-1', '--connection', 'Endpoint=sb://127.0.0.1:1;SharedAccessKeyName=k;SharedAccessKey=v'], message: /--duration/ },
  { args: [...LOCAL, '--eventhub-connection', 'Server=nope'], message: /--eventhub-connection: not an Event Hubs connection string/ },
  { args: [...LOCAL, '--duplicates', '0.5', '--malformed', '0.5'], message: /--duplicates plus --malformed must stay below 1/ },
];

for (const { args, message } of CASES) {
  test(`${args.filter((a) => a !== dataDir).join(' ')} → exit 2`, async () => {
    const r = await runCli(args, {});
    assert.equal(r.code, 2, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
    assert.match(r.stderr, message);
  });
}
