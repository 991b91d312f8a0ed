import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { createGenerator, MALFORMED_KINDS, type GeneratedEvent } from '../../src/generator/generator.js';
import { validateEvent } from '../../src/pipeline/validate.js';
import type { RawEvent } from '../../src/pipeline/types.js';
import { rowKey } from '../../src/pipeline/batch.js';
import { makeSource } from '../support/rows.js';
import { labelKey, truthOfLabels } from '../support/labels.js';

const NOW = Date.parse('2026-03-10T12:00:00Z');
const VALIDATE = { now: new Date(NOW), retentionDays: 30, aheadDays: 3, maxBodyBytes: 256 * 1024 };

function raw(ev: GeneratedEvent, i: number): RawEvent {
  return {
    body: ev.body,
    properties: {},
    source: makeSource({ hub: 'h', partitionId: '0', sequenceNumber: i, offset: String(i), enqueuedTime: new Date(NOW), partitionKey: ev.partitionKey }),
  };
}

function take(n: number, opts: Partial<Parameters<typeof createGenerator>[0]> = {}): GeneratedEvent[] {
  // A clock that moves 5 ms per reading, so timestamps advance as in a live stream.
  let t = NOW;
  const gen = createGenerator({ seed: 'unit', tenants: 25, clock: () => (t += 5) - 5, ...opts });
  return Array.from({ length: n }, () => gen.next());
}

/** Two-sided bound for a binomial count: mean ± 4.5 standard deviations (a false alarm ~1e-5 per check). */
function binomialBounds(n: number, p: number): [number, number] {
  const mean = n * p;
  const sd = Math.sqrt(n * p * (1 - p));
  return [mean - 4.5 * sd, mean + 4.5 * sd];
}

describe('generator stream', () => {
  test('the same seed gives the same bytes; another seed gives a different stream', () => {
    const a = take(2000, { duplicates: 0.02, malformed: 0.01 });
    const b = take(2000, { duplicates: 0.02, malformed: 0.01 });
    const c = take(2000, { duplicates: 0.02, malformed: 0.01, seed: 'other' });
    assert.deepEqual(
      a.map((e) => e.body.toString('hex')),
      b.map((e) => e.body.toString('hex')),
    );
    const differing = a.filter((e, i) => !e.body.equals(c[i]?.body ?? Buffer.alloc(0))).length;
    assert.ok(differing > 1900, `only ${differing} of 2000 bodies differ between seeds`);
  });

  test('every event and duplicate validates, every malformed body is refused, with the tenant as partition key', () => {
    const events = take(20_000, { duplicates: 0.02, malformed: 0.01 });
    const tenants = new Set<number>();
    for (const [i, ev] of events.entries()) {
      const r = validateEvent(raw(ev, i), VALIDATE);
      if (ev.kind === 'malformed') {
        assert.equal(r.ok, false, `${ev.malformed} body was accepted: ${ev.body.toString('utf8').slice(0, 200)}`);
      } else {
        assert.ok(r.ok, `${ev.kind} ${ev.body.toString('utf8')} refused: ${r.ok ? '' : r.error}`);
        assert.equal(r.row.tenantId, ev.tenantId);
        assert.equal(r.row.type, ev.type);
        // The label is the ground truth the integration tests expect: it must be what the validator stores.
        assert.equal(labelKey(ev), rowKey(r.row), `${ev.kind} #${i}: label ${labelKey(ev)}, validator ${rowKey(r.row)}`);
        assert.equal(r.row.occurredAt.getTime(), ev.occurredAtMs);
        assert.equal(ev.idless, !('eventId' in (JSON.parse(ev.body.toString('utf8')) as object)));
        if (!ev.idless) assert.equal(r.row.eventId, ev.eventId);
        assert.equal(ev.partitionKey, String(ev.tenantId));
        tenants.add(r.row.tenantId);
      }
    }
    assert.deepEqual([...tenants].sort((x, y) => x - y), Array.from({ length: 25 }, (_, i) => i + 1));
  });

  test('the labels give the same expected set as the validator: distinct valid keys, malformed ones, id-less ones included', () => {
    const events = take(20_000, { duplicates: 0.03, malformed: 0.02, idlessShare: 0.1, seed: 'labels' });
    const truth = truthOfLabels(events);
    const byValidator = new Set<string>();
    const refused: number[] = [];
    for (const [i, ev] of events.entries()) {
      const r = validateEvent(raw(ev, i), VALIDATE);
      if (r.ok) byValidator.add(rowKey(r.row));
      else refused.push(i);
    }
    assert.deepEqual(truth.expected, byValidator);
    assert.deepEqual(truth.malformedAt, refused);
    const idless = events.filter((e) => e.kind !== 'malformed' && e.idless).length;
    const duplicates = events.filter((e) => e.kind === 'duplicate').length;
    assert.ok(idless > 1000 && duplicates > 300 && refused.length > 200, `the stream has id-less (${idless}), duplicate (${duplicates}) and malformed (${refused.length}) events`);
    assert.equal(truth.repeats, duplicates, 'each labelled duplicate repeats a key, and nothing else does');
  });

  test('duplicates are byte-identical re-sends of earlier valid events; new events are distinct', () => {
    const events = take(20_000, { duplicates: 0.05 });
    const seenBodies = new Set<string>();
    const keys = new Set<string>();
    for (const [i, ev] of events.entries()) {
      const hex = ev.body.toString('hex');
      const r = validateEvent(raw(ev, i), VALIDATE);
      assert.ok(r.ok);
      const key = `${r.row.tenantId}|${r.row.eventId}|${r.row.occurredAt.toISOString()}`;
      if (ev.kind === 'duplicate') {
        assert.ok(seenBodies.has(hex), `duplicate #${i} repeats nothing sent before`);
        assert.ok(keys.has(key));
      } else {
        assert.equal(ev.kind, 'event');
        assert.ok(!keys.has(key), `new event #${i} collides with an earlier key`);
        seenBodies.add(hex);
        keys.add(key);
      }
    }
  });

  for (const [dup, bad] of [
    [0.01, 0.001],
    [0.02, 0.005],
    [0.1, 0.05],
  ] as const) {
    test(`duplicate and malformed rates match --duplicates ${dup} --malformed ${bad} within binomial bounds`, () => {
      const n = 40_000;
      const events = take(n, { duplicates: dup, malformed: bad, seed: `rates-${dup}-${bad}` });
      const duplicates = events.filter((e) => e.kind === 'duplicate').length;
      const malformed = events.filter((e) => e.kind === 'malformed').length;
      const [dlo, dhi] = binomialBounds(n, dup);
      const [mlo, mhi] = binomialBounds(n, bad);
      assert.ok(duplicates >= dlo && duplicates <= dhi, `${duplicates} duplicates not in [${dlo.toFixed(0)}, ${dhi.toFixed(0)}]`);
      assert.ok(malformed >= mlo && malformed <= mhi, `${malformed} malformed not in [${mlo.toFixed(1)}, ${mhi.toFixed(1)}]`);
    });
  }

  test('stats count what was generated', () => {
    let t = NOW;
    const gen = createGenerator({ seed: 'stats', tenants: 10, duplicates: 0.03, malformed: 0.02, clock: () => (t += 3) });
    const events = Array.from({ length: 5000 }, () => gen.next());
    const count = (k: GeneratedEvent['kind']) => events.filter((e) => e.kind === k).length;
    assert.equal(gen.stats.total, 5000);
    assert.equal(gen.stats.events, count('event'));
    assert.equal(gen.stats.duplicates, count('duplicate'));
    assert.equal(gen.stats.malformed, count('malformed'));
    const byType: Record<string, number> = {};
    for (const e of events) if (e.kind === 'event') byType[e.type] = (byType[e.type] ?? 0) + 1;
    assert.deepEqual(gen.stats.byType, byType);
    assert.equal(
      Object.values(gen.stats.byMalformed).reduce((a, b) => a + b, 0),
      gen.stats.malformed,
    );
  });

  test('every malformed kind occurs and each is refused for its own reason', () => {
    const events = take(30_000, { malformed: 0.05, seed: 'kinds' });
    const expected: Record<(typeof MALFORMED_KINDS)[number], RegExp> = {
      'not-json': /not valid JSON/,
      'truncated-json': /not valid JSON/,
      'invalid-utf8': /not valid UTF-8/,
      'not-an-object': /must be a JSON object/,
      'missing-type': /type: required/,
      'bad-tenant': /tenantId/,
      'bad-time': /occurredAt/,
      'out-of-window': /occurredAt: .*(retention|future)/,
      'empty-body': /empty/,
    };
    const seen = new Set<string>();
    for (const [i, ev] of events.entries()) {
      if (ev.kind !== 'malformed') continue;
      seen.add(ev.malformed);
      const r = validateEvent(raw(ev, i), VALIDATE);
      assert.equal(r.ok, false);
      if (!r.ok) assert.match(r.error, expected[ev.malformed], `${ev.malformed}: ${r.error}`);
    }
    assert.deepEqual([...seen].sort(), [...MALFORMED_KINDS].sort());
  });
});

describe('generator realism', () => {
  test('storefront traffic is skewed: the busiest storefront sees far more than the quietest', () => {
    const events = take(30_000, { seed: 'skew' });
    const perTenant = new Map<number, number>();
    for (const e of events) perTenant.set(e.tenantId, (perTenant.get(e.tenantId) ?? 0) + 1);
    const top = perTenant.get(1) ?? 0;
    const bottom = Math.min(...[...perTenant.values()]);
    const sorted = [...perTenant.entries()].sort((a, b) => b[1] - a[1]);
    assert.equal(sorted[0]?.[0], 1, 'tenant 1 is the busiest');
    assert.ok(top > 10 * bottom, `top ${top}, bottom ${bottom}`);
    // Uniform traffic would give each of 25 storefronts 4%; the top one gets several times that.
    assert.ok(top / events.length > 0.15, `top share ${(top / events.length).toFixed(3)}`);
  });

  test('shoppers browse, add to cart and buy; ads and e-mails get impressions, sends, opens and clicks', () => {
    const events = take(30_000, { seed: 'funnel' });
    const parsed = events.map((e) => JSON.parse(e.body.toString('utf8')) as Record<string, unknown>);
    const count = (t: string) => parsed.filter((p) => p.type === t).length;
    for (const t of ['page_view', 'click', 'add_to_cart', 'purchase', 'ad_impression', 'ad_click', 'email_send', 'email_open', 'email_click']) {
      assert.ok(count(t) > 0, `no ${t}`);
    }
    // A funnel: more views than carts, more carts than purchases, more impressions than ad clicks.
    assert.ok(count('page_view') > count('add_to_cart'));
    assert.ok(count('add_to_cart') > count('purchase'));
    assert.ok(count('ad_impression') > 10 * count('ad_click'));
    assert.ok(count('email_send') > count('email_open'));
    assert.ok(count('email_open') > count('email_click'));
    for (const p of parsed.filter((x) => x.type === 'purchase')) {
      assert.equal(typeof p.revenue, 'number');
      assert.ok((p.revenue as number) > 0);
      assert.equal(typeof p.sessionId, 'string');
    }
    // Every ad click is attributed to a campaign of its storefront.
    for (const p of parsed.filter((x) => x.type === 'ad_click' || x.type === 'ad_impression')) {
      assert.match(String(p.campaignId), new RegExp(`^ad-${String(p.tenantId)}-\\d+$`));
    }
    // A session's events share one storefront.
    const sessionTenant = new Map<string, unknown>();
    for (const p of parsed) {
      if (typeof p.sessionId !== 'string') continue;
      const t = sessionTenant.get(p.sessionId);
      if (t === undefined) sessionTenant.set(p.sessionId, p.tenantId);
      else assert.equal(t, p.tenantId);
    }
    assert.ok(sessionTenant.size > 500, `${sessionTenant.size} sessions`);
  });

  test('some events come without an eventId and some with a non-UTC offset; all times are near the clock', () => {
    let t = NOW;
    const gen = createGenerator({ seed: 'ids', tenants: 25, clock: () => (t += 5) - 5 });
    const events = Array.from({ length: 10_000 }, () => gen.next());
    const parsed = events.map((e) => JSON.parse(e.body.toString('utf8')) as { eventId?: string; occurredAt: string });
    const idless = parsed.filter((p) => p.eventId === undefined).length;
    const [lo, hi] = binomialBounds(10_000, 0.02);
    assert.ok(idless >= lo && idless <= hi, `${idless} events without eventId`);
    assert.ok(parsed.some((p) => /[+-]\d{2}:\d{2}$/.test(p.occurredAt)));
    for (const p of parsed) {
      if (p.eventId) assert.match(p.eventId, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      const ms = Date.parse(p.occurredAt);
      // Clients lag the clock by up to 1.5 s; nothing is ahead of it.
      assert.ok(ms >= NOW - 1500 && ms <= t, p.occurredAt);
    }
  });

  test('options out of range are refused', () => {
    assert.throws(() => createGenerator({ seed: 1, tenants: 0 }), /tenants/);
    assert.throws(() => createGenerator({ seed: 1, tenants: 3, duplicates: 1 }), /duplicates/);
    assert.throws(() => createGenerator({ seed: 1, tenants: 3, malformed: -0.1 }), /malformed/);
    assert.throws(() => createGenerator({ seed: 1, tenants: 3, duplicates: 0.6, malformed: 0.5 }), /below 1/);
  });
});
