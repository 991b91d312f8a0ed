/**
 * Every failure reason reaches every place that keeps something per reason: the per-reason records,
 * the log and status lines, the parked counts, the dead-letter message codec and the database's
 * constraint on parked reasons. Iterates FAILURE_REASONS, so a reason added there is checked
 * everywhere without editing this file.
 */
import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FAILURE_HANDLING, FAILURE_REASONS, PARK_REASONS, isParkReason, type FailureReason } from '../../src/pipeline/types.js';
import { emptyReasonCounts, formatCounts } from '../../src/ingest/ingestBatch.js';
import { emptyStats, statusLine } from '../../src/runner/stats.js';
import { renderStatusBlock, renderStatusLine } from '../../src/local/status.js';
import { parkedCounts } from '../../src/db/probes.js';
import { planDeadLetters } from '../../src/deadLetters/process.js';
import { STILL_FIELD } from '../../src/deadLetters/replay.js';
import { PARKED_FIELD } from '../../src/deadLetters/replayHub.js';
import { deadLetterFromRaw, fromDeadLetterMessage, toDeadLetterMessage } from '../../src/pipeline/deadLetterMessage.js';
import { parkSql } from '../../src/db/deadLetterParking.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const keys = (o: object): string[] => Object.keys(o).sort();
const sorted = (a: readonly string[]): string[] => [...a].sort();

function record(reason: FailureReason) {
  const raw = { body: Buffer.from('{}'), properties: {}, source: { hub: 'h', consumerGroup: '$Default', partitionId: '0', sequenceNumber: 1, offset: '1', enqueuedTime: new Date(0) } };
  return deadLetterFromRaw(raw, reason, 'boom', new Date('2026-01-01T00:00:00Z'));
}

describe('failure reasons: one list, every place derived', () => {
  test('the list has no repeat and every reason says whether it is parked or retried', () => {
    assert.equal(new Set(FAILURE_REASONS).size, FAILURE_REASONS.length);
    assert.deepEqual(keys(FAILURE_HANDLING), sorted(FAILURE_REASONS));
    assert.deepEqual(
      PARK_REASONS,
      FAILURE_REASONS.filter((r) => FAILURE_HANDLING[r] === 'park'),
    );
    assert.ok(PARK_REASONS.length > 0 && PARK_REASONS.length < FAILURE_REASONS.length, 'some reasons are parked, some retried');
  });

  test('per-reason records of the ingest path and the runner have every reason', () => {
    assert.deepEqual(keys(emptyReasonCounts()), sorted(FAILURE_REASONS));
    const s = emptyStats(0, { deadLetter: true, rollups: false });
    assert.deepEqual(keys(s.ingest.deadLettered), sorted(FAILURE_REASONS));
    assert.deepEqual(keys(s.deadletter.parked), sorted(PARK_REASONS));
    assert.deepEqual(keys(PARKED_FIELD), sorted(PARK_REASONS));
    assert.deepEqual(keys(STILL_FIELD), sorted(PARK_REASONS));
    assert.equal(new Set(Object.values(PARKED_FIELD)).size, PARK_REASONS.length);
    assert.equal(new Set(Object.values(STILL_FIELD)).size, PARK_REASONS.length);
  });

  test('log and status lines name every reason with its own count', () => {
    const counts = emptyReasonCounts();
    FAILURE_REASONS.forEach((r, i) => (counts[r] = i + 11));
    const line = formatCounts({ received: 0, inserted: 0, duplicates: 0, deadLettered: counts, latencyMs: 0 });
    const s = emptyStats(0, { deadLetter: true, rollups: false });
    s.ingest.deadLettered = counts;
    PARK_REASONS.forEach((r, i) => (s.deadletter.parked[r] = i + 21));
    const runner = statusLine(s, undefined, 0);
    const status = { now: 1000, startedAt: 0, generator: { enabled: false, sent: 0, rate: 0, error: null }, runner: s, rollupLag: null, recent: [] };
    const local = renderStatusLine(status, undefined);
    const block = renderStatusBlock(status, undefined, 1000).join('\n');
    for (const r of FAILURE_REASONS) {
      assert.match(line, new RegExp(`\\bdl_${r}=${counts[r]}\\b`));
      assert.match(runner, new RegExp(`\\b${r}:${counts[r]}\\b`));
      assert.match(local, new RegExp(`\\bdl_${r}=${counts[r]}\\b`));
      assert.match(block, new RegExp(`\\b${r} ${counts[r]}\\b`));
    }
    for (const r of PARK_REASONS) assert.match(runner, new RegExp(`parked=.*\\b${r}:${s.deadletter.parked[r]}\\b`));
  });

  test('the parked gauge reports every parked reason, zero when none', () => {
    assert.deepEqual(
      parkedCounts([]).map((c) => c.reason),
      [...PARK_REASONS],
    );
    assert.ok(parkedCounts([]).every((c) => c.count === 0));
  });

  test('each reason survives the dead-letter hub and is parked or rewritten as its handling says', () => {
    for (const r of FAILURE_REASONS) {
      const rec = record(r);
      const msg = toDeadLetterMessage(rec);
      const back = fromDeadLetterMessage(msg.body, msg.properties);
      assert.ok(back.ok, `${r}: ${back.ok ? '' : back.error}`);
      assert.equal(back.record.reason, r);
      const plan = planDeadLetters([rec], 'retry');
      assert.equal(plan.park.length, isParkReason(r) ? 1 : 0, r);
      assert.equal(plan.rewrite.length, isParkReason(r) ? 0 : 1, r);
      if (isParkReason(r)) assert.doesNotThrow(() => parkSql('hubsink', [rec]));
      else assert.throws(() => parkSql('hubsink', [rec]), /only .* events are parked/);
    }
  });

  test("the dead_letters table's reason constraint lists exactly the parked reasons", () => {
    const schema = readFileSync(path.join(root, 'sql/schema.sql'), 'utf8');
    const check = /CONSTRAINT dead_letters_reason CHECK \(\(reason = ANY \(ARRAY\[([^\]]*)\]\)\)\)/.exec(schema);
    assert.ok(check?.[1], 'sql/schema.sql has the dead_letters_reason constraint');
    const listed = [...check[1].matchAll(/'([a-z_]+)'::text/g)].map((m) => m[1] ?? '');
    assert.deepEqual(sorted(listed), sorted(PARK_REASONS), 'a parked reason needs a migration that widens dead_letters_reason (and npm run schema:dump)');
  });
});
