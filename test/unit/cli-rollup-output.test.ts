import { test } from 'vitest';
import assert from 'node:assert/strict';
import { formatStatus } from '../../src/cli/rollup.js';
import type { RollupStatus } from '../../src/rollups/run.js';

// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

function status(name: string): RollupStatus {
  return { name, grain: 'hour', table: 'rollup_x_hour', lastSeq: 7, highWater: 9, pendingRows: 2, pendingCapped: false, lagSeconds: 1.5, lastRunAt: null, lastRows: 3, lastDurationMs: null };
}

test('hubsink rollup --status: a rollup name with an ANSI escape or a line break is shown escaped, columns aligned on what is shown', () => {
  const out = formatStatus([status('evil\x1b[31m\r\nname'), status('plain')]);
  const lines = out.split('\n');
  for (const line of lines) assert.doesNotMatch(line, RAW_CONTROL);
  assert.equal(lines.length, 3);
  assert.ok(lines[1]?.startsWith('evil\\x1b[31m\\x0d\\x0aname  '), lines[1]);
  assert.equal(lines[1]?.indexOf('7'), lines[2]?.indexOf('7'));
});
