/**
 * Operators' terminals are safe: a producer's ESC/OSC/CSI sequences (OSC 52 writes the clipboard)
 * in a body, in the parse error that quotes it, in application properties or in the coordinates
 * of a dead letter reach `hubsink dlq list | show | replay --dry-run` escaped, never raw; `--json`
 * stays exact. So do a CSV header column and a file name holding OSC 52 in `hubsink import`'s
 * progress lines, summary and errors.
 */
import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parkDeadLetters } from '../../src/db/deadLetterParking.js';
import type { DeadLetterRecord } from '../../src/pipeline/types.js';
import { testDatabaseUrl, type TestSchema } from '../support/services.js';
import { readySchema, runCli } from '../support/deadLetters.js';

const OSC52 = '\x1b]52;c;ZWNobyBwd25lZA==\x07';
const CSI8 = '\u009b2J';
const hostileBody = `{"tenantId": 5, "type": "${OSC52}", "x": "${CSI8}\x7f`; // not JSON: shown as text
// TAB and LF are harmless; CR, ESC, DEL and C1 are not.
// eslint-disable-next-line no-control-regex
const RAW = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

let s: TestSchema;
let env: Record<string, string>;
let id: number;
const at = new Date(Date.now() - 3_600_000);
const record: DeadLetterRecord = {
  reason: 'invalid',
  error: `body: not valid JSON near "${OSC52}${CSI8}"\r\nforged line`,
  body: Buffer.from(hostileBody),
  properties: { note: `\x1b[31mred${CSI8}` },
  tenantId: 5,
  source: { hub: 'clickstream', consumerGroup: '$Default', partitionId: `0${OSC52}`, sequenceNumber: 1, offset: `o\x1b[1A`, enqueuedTime: at, partitionKey: `k${CSI8}` },
  attempts: 1,
  firstFailureAt: at,
  lastFailureAt: at,
};

beforeAll(async () => {
  s = await readySchema('clitty_');
  env = { DATABASE_URL: testDatabaseUrl(), HUBSINK_SCHEMA: s.schema };
  const r = await parkDeadLetters(s.pool, s.schema, [record]);
  id = r.ids[0] ?? 0;
  assert.ok(id > 0);
});
afterAll(() => s.drop());


test('dlq list, show and replay --dry-run print no raw control character, and show what was there', async () => {
  for (const args of [['dlq', 'list'], ['dlq', 'show', String(id)], ['dlq', 'replay', '--dry-run']]) {
    const r = await runCli(args, env);
    assert.ok(r.code === 0 || r.code === 1, `${args.join(' ')}: ${r.stderr}`);
    assert.doesNotMatch(r.stdout, RAW, `${args.join(' ')} stdout: ${JSON.stringify(r.stdout)}`);
    assert.doesNotMatch(r.stderr, RAW, `${args.join(' ')} stderr: ${JSON.stringify(r.stderr)}`);
    if (args[1] === 'show') {
      assert.ok(r.stdout.includes('\\x1b]52;c;ZWNobyBwd25lZA==\\x07'), r.stdout);
      assert.ok(r.stdout.includes('\\u009b2J'), r.stdout);
      assert.match(r.stdout, /partition 0\\x1b\]52/);
    }
  }
});

test('--json stays exact: the body, error and properties byte for byte', async () => {
  const shown = await runCli(['dlq', 'show', String(id), '--json'], env);
  assert.equal(shown.code, 0, shown.stderr);
  const d = JSON.parse(shown.stdout) as { error: string; body: { base64: string; text?: string }; properties: Record<string, unknown> };
  assert.equal(Buffer.from(d.body.base64, 'base64').toString('utf8'), hostileBody);
  assert.equal(d.body.text, hostileBody);
  assert.equal(d.error, record.error);
  assert.deepEqual(d.properties, record.properties);
  const listed = JSON.parse((await runCli(['dlq', 'list', '--json'], env)).stdout) as { error: string }[];
  assert.equal(listed[0]?.error, record.error);
});

// Last: the dlq tests above expect only their own dead letter.
test('import: a CSV header column and a file name with OSC 52 reach progress, summary, warnings and errors escaped', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'hubsink-tty-'));
  try {
    const day = new Date().toISOString().slice(0, 10);
    const csv = path.join(dir, `orders${OSC52}.csv`);
    await writeFile(csv, [`tenantId,type,occurredAt,note${OSC52}`, `5,click,${day}T10:00:00Z,x`, `oops,click,${day}T10:00:01Z,y`, ''].join('\n'));
    const nd = path.join(dir, `events${CSI8}\x1b[2K.ndjson`);
    await writeFile(nd, `{"tenantId": 5, "type": "click", "occurredAt": "${day}T10:00:02Z"}\nnot json${OSC52}\n`);
    const forms = [
      ['import', csv, nd],
      ['import', csv, nd], // again: "already imported"
      ['import', '--dry-run', csv, nd],
      ['import', '--map', 'nosuch=type', '--dry-run', csv],
      ['import', path.join(dir, `missing${OSC52}.ndjson`)],
    ];
    for (const args of forms) {
      const r = await runCli(args, env);
      assert.ok(r.code !== null && r.code <= 2, `${args.join(' ')}: ${r.stderr}`);
      assert.doesNotMatch(r.stdout, RAW, `${args.join(' ')} stdout: ${JSON.stringify(r.stdout)}`);
      assert.doesNotMatch(r.stderr, RAW, `${args.join(' ')} stderr: ${JSON.stringify(r.stderr)}`);
      assert.ok(`${r.stdout}${r.stderr}`.includes('\\x1b]52;c;ZWNobyBwd25lZA==\\x07'), `${args.join(' ')} shows what was there: ${r.stdout}${r.stderr}`);
    }
    const first = await runCli(['import', '--dry-run', csv], env);
    assert.match(first.stderr, /column\(s\) note\\x1b\]52;c;ZWNobyBwd25lZA==\\x07 go to properties/);
    assert.match(first.stderr, /import: .*orders\\x1b\]52/);
    const mapped = await runCli(['import', '--map', 'nosuch=type', '--dry-run', csv], env);
    // Refused before any row is read (exit 2, on stderr), the header quoted escaped.
    assert.equal(mapped.code, 2, mapped.stderr);
    assert.match(mapped.stderr, /not in the header: "nosuch" \(header: tenantId, type, occurredAt, note\\x1b\]52/);
    // --json stays exact: the name as it is.
    const json = await runCli(['import', '--dry-run', '--json', csv], env);
    assert.equal((JSON.parse(json.stdout) as { files: { source: string }[] }).files[0]?.source, csv);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
