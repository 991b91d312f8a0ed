/**
 * `hubsink emulator` as a user runs it: connection strings on stdout, a working emulator behind
 * them, a clean stop on SIGTERM/SIGINT, --help, and exit 2 for bad arguments.
 */
import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { EventHubConsumerClient, EventHubProducerClient, earliestEventPosition } from '@azure/event-hubs';
import { waitFor } from '../support/wait.js';

const bin = fileURLToPath(new URL('../../bin/hubsink.js', import.meta.url));
const retryOptions = { maxRetries: 2, retryDelayInMs: 100, timeoutInMs: 10_000 };

interface Run {
  child: ChildProcessWithoutNullStreams;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
}

function run(args: string[]): Run {
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exit };
}


describe('hubsink emulator', () => {
  test('prints one connection string per hub, serves them, and stops on SIGTERM', async () => {
    const r = run(['emulator', '--port', '0', '--hub', 'clicks:3', '--hub', 'clicks-dl:1', '--consumer-group', 'replay', '--key', 'k3y', '--opaque-offsets']);
    try {
      await waitFor('two connection strings', () => r.stdout().split('\n').filter(Boolean).length === 2, 20_000, () => `stdout ${r.stdout()} stderr ${r.stderr()}`);
      const lines = r.stdout().trim().split('\n');
      for (const [i, hub] of ['clicks', 'clicks-dl'].entries()) {
        assert.match(
          lines[i] ?? '',
          new RegExp(`^Endpoint=sb://127\\.0\\.0\\.1:\\d+;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=k3y;EntityPath=${hub};UseDevelopmentEmulator=true$`),
        );
      }
      assert.match(r.stderr(), /Ctrl-C to stop/);
      const cs = lines[0] as string;
      const producer = new EventHubProducerClient(cs, { retryOptions });
      const consumer = new EventHubConsumerClient('replay', cs, { retryOptions });
      try {
        assert.deepEqual(await producer.getPartitionIds(), ['0', '1', '2']);
        await producer.sendBatch([{ body: 'via the cli' }], { partitionId: '2' });
        const got: { body: unknown; offset: string }[] = [];
        const sub = consumer.subscribe(
          '2',
          {
            processEvents: async (events) => {
              for (const e of events) got.push({ body: e.body as unknown, offset: e.offset });
              await Promise.resolve();
            },
            processError: async () => Promise.resolve(),
          },
          { startPosition: earliestEventPosition, maxWaitTimeInSeconds: 1 },
        );
        await waitFor('the event back', () => got.length === 1);
        await sub.close();
        assert.equal(got[0]?.body, 'via the cli');
        assert.ok(Number.isNaN(Number(got[0]?.offset)), '--opaque-offsets gives non-numeric offsets');
      } finally {
        await consumer.close();
        await producer.close();
      }
      r.child.kill('SIGTERM');
      assert.equal(await r.exit, 0);
      assert.match(r.stderr(), /SIGTERM: stopping/);
    } finally {
      if (r.child.exitCode === null) r.child.kill('SIGKILL');
    }
  });

  test('--json describes every hub; SIGINT stops it', async () => {
    const r = run(['emulator', '--port', '0', '--json', '--retention-events', '10']);
    try {
      await waitFor('the JSON line', () => r.stdout().includes('\n'));
      const info = JSON.parse(r.stdout()) as { host: string; port: number; hubs: { name: string; partitions: number; consumerGroups: string[]; connectionString: string }[] };
      assert.equal(info.host, '127.0.0.1');
      assert.ok(info.port > 0);
      assert.deepEqual(
        info.hubs.map((h) => [h.name, h.partitions, h.consumerGroups]),
        [
          ['clickstream', 4, ['$Default']],
          ['clickstream-deadletter', 2, ['$Default']],
        ],
      );
      assert.ok(info.hubs.every((h) => h.connectionString.includes(`:${info.port};`)));
      r.child.kill('SIGINT');
      assert.equal(await r.exit, 0);
    } finally {
      if (r.child.exitCode === null) r.child.kill('SIGKILL');
    }
  });

  test('--help exits 0 and shows the options', async () => {
    const r = run(['emulator', '--help']);
    assert.equal(await r.exit, 0);
    for (const opt of ['--port', '--hub', '--consumer-group', '--key-name', '--key', '--opaque-offsets', '--retention-events', '--json']) {
      assert.ok(r.stdout().includes(opt), opt);
    }
  });

  const BAD: { args: string[]; message: RegExp }[] = [
    { args: ['--hub', 'clicks'], message: /NAME:PARTITIONS/ },
    { args: ['--hub', 'clicks:0'], message: /partitions must be/ },
    { args: ['--hub', 'bad name:2'], message: /invalid event hub name/ },
    { args: ['--hub', 'a:1', '--hub', 'A:2'], message: /given twice/ },
    { args: ['--port', 'abc'], message: /--port.*expected a TCP port/ },
    { args: ['--port', '70000'], message: /expected a TCP port/ },
    { args: ['--consumer-group', 'no/slash'], message: /invalid consumer group/ },
    { args: ['--retention-events', '0'], message: /--retention-events.*positive whole number/ },
    { args: ['--key', ''], message: /must not be empty/ },
    { args: ['--frobnicate'], message: /unknown option/ },
  ];
  for (const { args, message } of BAD) {
    test(`bad arguments exit 2: ${args.join(' ')}`, async () => {
      const r = run(['emulator', ...args]);
      const code = await r.exit;
      assert.equal(code, 2, r.stderr());
      assert.match(r.stderr(), message);
      assert.equal(r.stdout(), '');
    });
  }
});
