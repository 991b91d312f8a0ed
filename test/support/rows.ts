/**
 * Test-only builders for EventRow. The row's raw event carries a JSON body that matches the row,
 * so dead-letter tests can compare bytes; coordinates are plausible Event Hubs values.
 */
import { randomUUID } from 'node:crypto';
import type { EventRow, RawEvent, SourceCoordinates } from '../../src/pipeline/types.js';

let sequence = 0;

export function makeSource(overrides: Partial<SourceCoordinates> = {}): SourceCoordinates {
  sequence++;
  return {
    hub: 'clickstream',
    consumerGroup: '$Default',
    partitionId: '0',
    sequenceNumber: sequence,
    offset: String(sequence * 512),
    enqueuedTime: new Date(),
    ...overrides,
  };
}

export type RowOverrides = Partial<Omit<EventRow, 'raw'>> & { raw?: Partial<RawEvent> };

/** A valid row (occurred a minute ago, page_view) with any field overridden. */
export function makeRow(overrides: RowOverrides = {}): EventRow {
  const { raw: rawOverrides, ...fields } = overrides;
  const row: Omit<EventRow, 'raw'> = {
    tenantId: 1,
    eventId: randomUUID(),
    type: 'page_view',
    occurredAt: new Date(Date.now() - 60_000),
    sessionId: null,
    userId: null,
    deviceId: null,
    url: null,
    referrer: null,
    campaignId: null,
    country: null,
    browser: null,
    revenue: null,
    properties: null,
    ...fields,
  };
  const body = Buffer.from(
    JSON.stringify({ eventId: row.eventId, tenantId: row.tenantId, type: row.type, occurredAt: row.occurredAt.toISOString() }),
    'utf8',
  );
  const raw: RawEvent = {
    body,
    properties: { tenantId: String(row.tenantId) },
    source: makeSource(),
    ...rawOverrides,
  };
  return { ...row, raw };
}

/** `count` rows spread round-robin over tenants 1..tenants, all fields filled. */
export function makeRows(count: number, tenants: number, overrides: RowOverrides = {}): EventRow[] {
  const rows: EventRow[] = [];
  for (let i = 0; i < count; i++) {
    rows.push(
      makeRow({
        tenantId: (i % tenants) + 1,
        sessionId: `s-${i % 97}`,
        userId: `u-${i % 211}`,
        url: `https://shop.example/p/${i}`,
        country: 'DE',
        browser: 'firefox',
        revenue: i % 10 === 0 ? 19.99 : null,
        properties: { i, tags: ['a', 'b'] },
        ...overrides,
      }),
    );
  }
  return rows;
}
