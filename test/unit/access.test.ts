/**
 * The pure half of per-storefront access (src/serving/access.ts): the caller read from App
 * Service's X-MS-CLIENT-PRINCIPAL header (believed only while the platform's authentication is on),
 * the development principal of `hubsink local`, the decisions, and the settings that turn it on.
 */
import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '../../src/config.js';
import { ForbiddenError, UnauthenticatedError } from '../../src/errors.js';
import {
  callerScope,
  httpAuthLevel,
  mayRead,
  parseDevPrincipal,
  parsePrincipal,
  principalHeader,
  requireAllTenants,
  requireTenant,
  scopeOf,
  tenantFilter,
  type AccessControl,
  type Principal,
} from '../../src/serving/access.js';
import { freshnessFor, type FreshnessResponse } from '../../src/serving/freshnessHandler.js';
import { httpStatusOf } from '../../src/serving/httpErrors.js';
import { describeAccess, localAccess } from '../../src/cli/local.js';
import { handlerHeaders } from '../../src/local/localHttpServer.js';

const USER = '11111111-2222-4333-8444-555555555555';
const G1 = 'aaaaaaaa-0000-4000-8000-000000000001';
const G2 = 'aaaaaaaa-0000-4000-8000-000000000002';
const OID = 'http://schemas.microsoft.com/identity/claims/objectidentifier';

const b64 = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v), 'utf8').toString('base64');
const easyAuth = (claims: { typ: string; val: string }[], authType = 'aad'): string => b64({ auth_typ: authType, claims, name_typ: 'name', role_typ: 'roles' });

describe('parsePrincipal', () => {
  const cases: { name: string; header: string | null; trusted: boolean; want: Principal | RegExp }[] = [
    { name: 'a forged header while the platform\'s authentication is off', header: easyAuth([{ typ: OID, val: USER }, { typ: 'groups', val: G1 }]), trusted: false, want: /authentication is off \(WEBSITE_AUTH_ENABLED/ },
    { name: 'no header', header: null, trusted: true, want: /no signed-in caller/ },
    { name: 'an empty header', header: ' ', trusted: true, want: /no signed-in caller/ },
    { name: 'user and groups', header: easyAuth([{ typ: OID, val: USER.toUpperCase() }, { typ: 'groups', val: G2 }, { typ: 'groups', val: G1 }, { typ: 'name', val: 'Ann' }]), trusted: true, want: { userId: USER, groups: [G1, G2] } },
    { name: 'the short oid claim', header: easyAuth([{ typ: 'oid', val: USER }]), trusted: true, want: { userId: USER, groups: [] } },
    { name: 'a principal in no group', header: easyAuth([{ typ: OID, val: USER }]), trusted: true, want: { userId: USER, groups: [] } },
    { name: 'group names instead of object ids grant nothing', header: easyAuth([{ typ: OID, val: USER }, { typ: 'groups', val: 'Berlin analysts' }]), trusted: true, want: { userId: USER, groups: [] } },
    { name: 'a groups overage claim is ignored', header: easyAuth([{ typ: OID, val: USER }, { typ: '_claim_names', val: '{"groups":"src1"}' }]), trusted: true, want: { userId: USER, groups: [] } },
    { name: 'another identity provider', header: easyAuth([{ typ: OID, val: USER }], 'google'), trusted: true, want: /only Microsoft Entra ID sign-ins/ },
    { name: 'not base64', header: '{"auth_typ":"aad"}', trusted: true, want: /not base64 JSON/ },
    { name: 'base64 of something else', header: b64('hello'), trusted: true, want: /not base64 JSON/ },
    { name: 'a JSON array', header: b64([1]), trusted: true, want: /only Microsoft Entra ID|not a JSON object/ },
    { name: 'claims missing', header: b64({ auth_typ: 'aad' }), trusted: true, want: /no claims/ },
    { name: 'nothing to identify the caller', header: easyAuth([{ typ: 'name', val: 'Ann' }, { typ: OID, val: 'not-a-guid' }]), trusted: true, want: /neither an object id nor a group/ },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const r = parsePrincipal(c.header, c.trusted);
      if (c.want instanceof RegExp) {
        assert.equal(r.ok, false);
        if (!r.ok) assert.match(r.reason, c.want);
      } else assert.deepEqual(r, { ok: true, principal: c.want });
    });
  }

  test('principalHeader writes what parsePrincipal reads (the local stack\'s development principal)', () => {
    for (const p of [{ userId: USER, groups: [G1, G2] }, { userId: null, groups: [G1] }, { userId: USER, groups: [] }]) {
      assert.deepEqual(parsePrincipal(principalHeader(p), true), { ok: true, principal: p });
    }
  });
});

describe('parseDevPrincipal', () => {
  const good: [string, Principal][] = [
    [USER, { userId: USER, groups: [] }],
    [`user:${USER.toUpperCase()}`, { userId: USER, groups: [] }],
    [`${USER},group:${G2},group:${G1}`, { userId: USER, groups: [G1, G2] }],
    [`group:${G1}`, { userId: null, groups: [G1] }],
  ];
  for (const [text, want] of good) test(`accepts ${text}`, () => assert.deepEqual(parseDevPrincipal(text), { ok: true, principal: want }));
  const bad: [string, RegExp][] = [
    ['', /is not an object id/],
    ['analysts', /"analysts" is not an object id/],
    [`team:${G1}`, /is not an object id/],
    [`${USER},${G1}`, /at most one user/],
  ];
  for (const [text, want] of bad) {
    test(`refuses ${JSON.stringify(text)}`, () => {
      const r = parseDevPrincipal(text);
      assert.equal(r.ok, false);
      if (!r.ok) assert.match(r.error, want);
    });
  }
});

describe('decisions', () => {
  const one = scopeOf({ all: false, tenants: [7] });
  const all = scopeOf({ all: true, tenants: [7] });
  test('a group granted one storefront reads that one only', () => {
    assert.equal(mayRead(one, 7), true);
    assert.equal(mayRead(one, 8), false);
    assert.deepEqual(tenantFilter(one), [7]);
    assert.doesNotThrow(() => requireTenant(one, 7));
    assert.throws(() => requireTenant(one, 8), (e: unknown) => e instanceof ForbiddenError && httpStatusOf(e) === 403 && /storefront 8 is not granted/.test(e.message));
    assert.throws(() => requireAllTenants(one), (e: unknown) => e instanceof ForbiddenError && /all-storefronts grant/.test(e.message));
    // Storefront 0 is the all-storefronts view: never granted one storefront at a time.
    assert.throws(() => requireTenant(one, 0), (e: unknown) => e instanceof ForbiddenError && /sums every storefront: it needs the all-storefronts grant/.test(e.message));
    assert.throws(() => requireTenant(scopeOf({ all: false, tenants: [0, 7] }), 0), ForbiddenError);
  });
  test('the all-storefronts grant reads any, lists unfiltered, and opens the views over every storefront', () => {
    assert.equal(mayRead(all, 123456), true);
    assert.equal(tenantFilter(all), null);
    assert.doesNotThrow(() => requireAllTenants(all));
    assert.doesNotThrow(() => requireTenant(all, 0));
  });

  const grants = new Map<string, { all: boolean; tenants: number[] }>([[G1, { all: false, tenants: [7] }]]);
  const control = (trusted: boolean): AccessControl => ({
    trustPrincipalHeader: trusted,
    grantsOf: (p) => Promise.resolve(p.groups.map((g) => grants.get(g)).find((x) => x !== undefined) ?? { all: false, tenants: [] }),
  });
  const req = (header?: string) => ({ headers: new Headers(header ? { 'x-ms-client-principal': header } : {}) });
  test('callerScope: key mode reads everything; entra mode 401 without a believable caller, 403 granted nothing', async () => {
    assert.deepEqual(await callerScope(req(), undefined), { all: true });
    await assert.rejects(callerScope(req(easyAuth([{ typ: 'groups', val: G1 }])), control(false)), (e: unknown) => e instanceof UnauthenticatedError && httpStatusOf(e) === 401);
    await assert.rejects(callerScope(req(), control(true)), (e: unknown) => e instanceof UnauthenticatedError);
    await assert.rejects(callerScope(req(easyAuth([{ typ: OID, val: USER }])), control(true)), (e: unknown) => e instanceof ForbiddenError && /no storefront is granted/.test(e.message));
    assert.deepEqual(await callerScope(req(easyAuth([{ typ: OID, val: USER }, { typ: 'groups', val: G1 }])), control(true)), { all: false, tenants: [7] });
  });

  test('freshness: a restricted caller sees run times and lag, not every storefront\'s waiting events', () => {
    const body: FreshnessResponse = { now: 'n', rollups: [{ name: 'm', grain: 'minute', lastRunAt: null, lagSeconds: 3, pendingEvents: 12, pendingCapped: true }] };
    assert.deepEqual(freshnessFor(all, body), body);
    assert.deepEqual(freshnessFor(one, body).rollups, [{ name: 'm', grain: 'minute', lastRunAt: null, lagSeconds: 3, pendingEvents: null, pendingCapped: false }]);
  });
});

describe('settings', () => {
  test('HUBSINK_ACCESS: key by default, entra on request, anything else refused', () => {
    assert.deepEqual(loadConfig({}).access, { mode: 'key', platformAuthEnabled: false });
    assert.deepEqual(loadConfig({ HUBSINK_ACCESS: 'Entra', WEBSITE_AUTH_ENABLED: 'True' }).access, { mode: 'entra', platformAuthEnabled: true });
    assert.equal(loadConfig({ HUBSINK_ACCESS: 'entra', WEBSITE_AUTH_ENABLED: 'False' }).access.platformAuthEnabled, false);
    assert.equal(loadConfig({ HUBSINK_ACCESS: 'entra', WEBSITE_AUTH_ENABLED: 'maybe' }).access.platformAuthEnabled, false);
    assert.throws(() => loadConfig({ HUBSINK_ACCESS: 'aad' }), (e: unknown) => e instanceof ConfigError && /HUBSINK_ACCESS="aad": must be key .* or entra/.test(e.message));
  });
  test('the Functions host checks a key in key mode only', () => {
    assert.equal(httpAuthLevel(loadConfig({}).access), 'function');
    assert.equal(httpAuthLevel(loadConfig({ HUBSINK_ACCESS: 'entra' }).access), 'anonymous');
  });
});

describe('the local stack in entra mode', () => {
  test('the local server plays App Service authentication: client-sent principal headers never reach the handlers', () => {
    const forged = { host: '127.0.0.1', 'x-ms-client-principal': easyAuth([{ typ: 'groups', val: G2 }]), 'x-ms-client-principal-id': G2, 'x-ms-client-principal-idp': 'aad' };
    // Key mode: passed as sent (nothing reads them there).
    assert.deepEqual(handlerHeaders(forged, undefined), forged);
    // Entra mode, nobody signed in: all gone.
    assert.deepEqual(handlerHeaders(forged, null), { host: '127.0.0.1' });
    // Entra mode with a development principal: only its header.
    const h = handlerHeaders(forged, { userId: USER, groups: [G1] });
    assert.deepEqual(Object.keys(h).sort(), ['host', 'x-ms-client-principal']);
    assert.deepEqual(parsePrincipal(h['x-ms-client-principal'] ?? null, true), { ok: true, principal: { userId: USER, groups: [G1] } });
  });

  test('--access and --principal', () => {
    assert.deepEqual(localAccess({}, 'key'), { mode: 'key', principal: null });
    assert.deepEqual(localAccess({}, 'entra'), { mode: 'entra', principal: null });
    assert.deepEqual(localAccess({ principal: `${USER},group:${G1}` }, 'key'), { mode: 'entra', principal: { userId: USER, groups: [G1] } });
    assert.deepEqual(localAccess({ access: 'ENTRA', principal: `group:${G1}` }, 'key'), { mode: 'entra', principal: { userId: null, groups: [G1] } });
    assert.throws(() => localAccess({ access: 'aad' }, 'key'), /--access "aad": must be key or entra/);
    assert.throws(() => localAccess({ access: 'key', principal: USER }, 'key'), /--principal signs requests in for --access entra/);
    assert.throws(() => localAccess({ principal: 'bob' }, 'key'), /--principal: "bob" is not an object id/);
    assert.match(describeAccess({ access: { mode: 'entra', principal: { userId: USER, groups: [G1] } } }), new RegExp(`signed in as user ${USER}, group ${G1}`));
    assert.match(describeAccess({ access: { mode: 'entra', principal: null } }), /every API request is a 401/);
    assert.match(describeAccess({ access: { mode: 'key', principal: null } }), /^key: every storefront/);
  });
});
