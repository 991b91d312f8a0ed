/**
 * The dashboard in real Chromium as a restricted analyst: the local stack in entra mode (as
 * `hubsink local --access entra --principal ANN,group:BERLIN` runs it), signed in as a user whose
 * group is granted one storefront, while a busier storefront exists beside it. Every request the
 * page makes is recorded: it must neither list nor fetch the other storefront, even when the URL
 * names it. Headers a client forges are dropped by the local server, as App Service drops them.
 */
import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { EventHubProducerClient } from '@azure/event-hubs';
import { addGrants } from '../../src/db/grants.js';
import { createProducer } from '../../src/hubs/clients.js';
import { startLocalStack, type LocalStack } from '../../src/local/stack.js';
import { rollupStatus } from '../../src/rollups/run.js';
import { principalHeader } from '../../src/serving/access.js';
import { chromiumMissing, launchBrowser, waitForLoad, type TestBrowser } from '../support/browser.js';
import { createTestSchema, testDatabaseUrl, type TestSchema } from '../support/services.js';
import { REPO_ROOT } from '../support/runner-fixture.js';

const skip = (await chromiumMissing()) !== null;

const MINE = 7101;
const OTHER = 7102;
const ANN = '11111111-2222-4333-8444-555555555555';
const BERLIN = 'aaaaaaaa-0000-4000-8000-000000000001';
const CENTRAL = 'aaaaaaaa-0000-4000-8000-000000000002';

let db: TestSchema;
let stack: LocalStack;
let producer: EventHubProducerClient;
let browser: TestBrowser;
let dataDir: string;

async function send(tenantId: number, n: number, at: Date): Promise<void> {
  const batch = await producer.createBatch({ partitionKey: String(tenantId) });
  for (let i = 0; i < n; i++) {
    const body = { eventId: randomUUID(), tenantId, type: 'page_view', occurredAt: new Date(at.getTime() + i * 1000).toISOString(), sessionId: `s${i % 3}` };
    assert.ok(batch.tryAdd({ body: Buffer.from(JSON.stringify(body)) }));
  }
  await producer.sendBatch(batch);
}

/** Generous: guards against a hang, not a speed check. */
async function waitUntil(what: string, ok: () => Promise<boolean>, hangGuardMs = 60_000): Promise<void> {
  const deadline = Date.now() + hangGuardMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  if (skip) return;
  await access(path.join(REPO_ROOT, 'dist', 'dashboard', 'manifest.json')).catch(() => {
    throw new Error('the dashboard is not built: run `npm run build` first');
  });
  db = await createTestSchema('accbr_');
  dataDir = await mkdtemp(path.join(tmpdir(), 'hubsink-access-'));
  stack = await startLocalStack({
    dataDir,
    databaseUrl: testDatabaseUrl(),
    rate: 0,
    tenants: 1,
    duplicates: 0,
    malformed: 0,
    ports: { postgres: 0, emulator: 0, azurite: 0, http: 0 },
    rollupIntervalMs: 1000,
    env: { PATH: process.env.PATH, HUBSINK_SCHEMA: db.schema },
    log: () => undefined,
    access: { mode: 'entra', principal: { userId: ANN, groups: [BERLIN] } },
  });
  producer = await createProducer({ kind: 'connectionString', connectionString: stack.info.eventHubConnection }, stack.config.ingestHub);
  // The other storefront is the busier one: without filtering it would be listed first and shown.
  const at = new Date(Math.floor(Date.now() / 60_000) * 60_000 - 3 * 60_000);
  await send(MINE, 4, at);
  await send(OTHER, 12, at);
  await waitUntil('16 events folded into every rollup', async () => {
    const n = await db.pool.query<{ n: string }>(`SELECT count(*)::text AS n FROM "${db.schema}".events`);
    const st = await rollupStatus(db.pool, db.schema);
    return Number(n.rows[0]?.n) === 16 && st.length > 0 && st.every((s) => s.pendingRows === 0);
  });
  await addGrants(db.pool, db.schema, 'group', BERLIN, [MINE], 'Berlin analysts');
  // Someone else's group may read everything; a forged claim to it must not help.
  await addGrants(db.pool, db.schema, 'group', CENTRAL, [null], 'central team');
  browser = await launchBrowser();
});

afterAll(async () => {
  if (skip) return;
  await browser?.close();
  await producer?.close();
  await stack?.stop();
  await db?.drop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

test.skipIf(skip)('a restricted analyst\'s dashboard lists and fetches only the granted storefront, even when the URL names another [needs Chromium]', async () => {
  assert.deepEqual(stack.info.access, { mode: 'entra', principal: { userId: ANN, groups: [BERLIN] } });
  const page = browser.page;
  const requests: string[] = [];
  page.on('request', (r) => requests.push(new URL(r.url()).pathname + new URL(r.url()).search));

  await page.goto(`${stack.info.metricsUrl}/`);
  await waitForLoad(page);
  // Listed: the granted storefront alone, picked and shown.
  const options = await page.locator('#tenant option').allTextContents();
  assert.deepEqual(options, [`Storefront ${MINE} — 4 events`]);
  assert.equal(await page.locator('#tenant').inputValue(), String(MINE));
  assert.ok(requests.some((r) => r.startsWith(`/api/tenants/${MINE}/metrics?`)), requests.join('\n'));
  assert.ok(requests.some((r) => r.startsWith('/api/tenants?')));
  assert.ok(requests.some((r) => r.startsWith('/api/freshness')));
  // The freshness line shows the lag, not every storefront's waiting events.
  assert.doesNotMatch((await page.locator('#freshness').textContent()) ?? '', /events? waiting/);

  // The URL names the other storefront: the page says it is not in the list and asks for nothing of it.
  await page.goto(`${stack.info.metricsUrl}/#tenant=${OTHER}&range=1h`);
  await page.locator('#message').filter({ hasText: `Storefront ${OTHER}` }).waitFor({ timeout: 20_000 });
  assert.ok(await page.locator('#message').isVisible());
  assert.equal(await page.locator('section.panel').first().isVisible().catch(() => false), false);
  await page.waitForTimeout(500);

  // The all-storefronts view sums the other storefront too: neither offered nor fetched.
  await page.goto(`${stack.info.metricsUrl}/#tenant=all&range=1h`);
  await page.locator('#message').filter({ hasText: 'needs the all-storefronts grant' }).waitFor({ timeout: 20_000 });
  await page.waitForTimeout(500);

  const otherRequests = requests.filter((r) => r.startsWith('/api/') && (r.includes(`/tenants/${OTHER}`) || r.includes('/tenants/all/') || r.includes(`tenant=${OTHER}`)));
  assert.deepEqual(otherRequests, [], `the page asked for storefront ${OTHER}:\n${requests.join('\n')}`);
  // Nothing the page asked for was refused: it never tried a storefront outside the grants.
  assert.deepEqual(browser.errors.filter((e) => /status of 40[13]\b/.test(e)), []);

  // What the page never asked, the API refuses anyway: 403 with no numbers, even with a forged
  // principal header claiming the all-storefronts group (the local server drops it, as App Service does).
  const range = `from=${new Date(Date.now() - 3600_000).toISOString().slice(0, 16)}:00Z&to=${new Date(Math.ceil(Date.now() / 60_000) * 60_000).toISOString()}`;
  const forged = { 'x-ms-client-principal': principalHeader({ userId: null, groups: [CENTRAL] }), 'x-ms-client-principal-id': CENTRAL };
  const res = await fetch(`${stack.info.metricsUrl}/api/tenants/${OTHER}/metrics?${range}`, { headers: forged });
  assert.equal(res.status, 403);
  const body = (await res.json()) as Record<string, unknown>;
  assert.deepEqual(Object.keys(body), ['error']);
  const list = (await (await fetch(`${stack.info.metricsUrl}/api/tenants?${range}`, { headers: forged })).json()) as { tenants: { tenantId: number }[] };
  assert.deepEqual(list.tenants.map((t) => t.tenantId), [MINE]);
});
