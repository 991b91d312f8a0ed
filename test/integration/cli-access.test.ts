/**
 * `hubsink access grant|revoke|list` as a user runs it (the built CLI, real PostgreSQL): grants
 * land in the table the app reads, the dangerous forms (revoking what is not there, storefront 0
 * or negative, malformed object ids, an unmigrated schema, a database that is down) fail with a clear error, the right exit
 * status, and nothing changed.
 */
import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { migrate } from '../../src/db/migrate.js';
import { ensureTenantsSql } from '../../src/db/tenants.js';
import { createTestSchema, testDatabaseUrl, type TestSchema } from '../support/services.js';

const BIN = fileURLToPath(new URL('../../bin/hubsink.js', import.meta.url));
const G1 = '3f2b8c1e-5d4a-4f6b-9c7d-1a2b3c4d5e6f';
const G2 = '0B7E0A52-8D0C-4B55-A0C1-6C3D0A9E4F21';
const U1 = 'a1b2c3d4-0000-4000-8000-000000000001';

let s: TestSchema;
let env: Record<string, string>;

function hubsink(args: string[], extra: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '', ...env, ...extra }, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

async function rows(): Promise<string[]> {
  const r = await s.pool.query<{ k: string }>(`SELECT principal_kind || ' ' || principal_id || ' ' || tenant_id AS k FROM "${s.schema}".access_grants ORDER BY 1`);
  return r.rows.map((x) => x.k);
}

beforeAll(async () => {
  s = await createTestSchema('acc_');
  await migrate(s.pool, s.schema);
  await s.pool.query(ensureTenantsSql(s.schema, [7, 8]));
  env = { DATABASE_URL: testDatabaseUrl(), HUBSINK_SCHEMA: s.schema };
});

afterAll(async () => {
  await s?.drop();
});

test('grant, list and revoke: what the table holds, what is printed, idempotent grants', async () => {
  const g = await hubsink(['access', 'grant', '--group', G1, '--tenant', '7,8,9', '--note', 'Berlin analysts']);
  assert.equal(g.code, 0, g.stderr);
  assert.equal(g.stdout, `granted group ${G1}: storefront 7\ngranted group ${G1}: storefront 8\ngranted group ${G1}: storefront 9\n`);
  // 9 has sent nothing yet: granted, with a note on stderr.
  assert.match(g.stderr, /storefront 9 has sent no event yet .*granted all the same/);
  assert.doesNotMatch(g.stderr, /storefront [78] /);

  const again = await hubsink(['access', 'grant', '--group', G1, '--tenant', '7', '--json']);
  assert.equal(again.code, 0, again.stderr);
  const j = JSON.parse(again.stdout) as { granted: unknown[]; alreadyGranted: { tenantId: number }[] };
  assert.deepEqual(j.granted, []);
  assert.deepEqual(j.alreadyGranted.map((x) => x.tenantId), [7]);

  // Upper-case ids are stored as the lower-case form the platform sends.
  const all = await hubsink(['access', 'grant', '--group', G2, '--all-tenants']);
  assert.equal(all.code, 0, all.stderr);
  assert.equal(all.stdout, `granted group ${G2.toLowerCase()}: every storefront\n`);
  const user = await hubsink(['access', 'grant', '--user', U1, '--tenant', '8']);
  assert.equal(user.code, 0, user.stderr);

  assert.deepEqual(await rows(), [`group ${G2.toLowerCase()} 0`, `group ${G1} 7`, `group ${G1} 8`, `group ${G1} 9`, `user ${U1} 8`].sort());

  const list = await hubsink(['access', 'list']);
  assert.equal(list.code, 0, list.stderr);
  const lines = list.stdout.trim().split('\n');
  assert.match(lines[0] ?? '', /^kind\s+object id\s+storefront\s+granted at\s+note$/);
  assert.equal(lines.length, 6);
  assert.ok(lines.some((l) => l.startsWith(`group  ${G2.toLowerCase()}  all `)), list.stdout);
  assert.ok(lines.some((l) => new RegExp(`^group  ${G1}  7 .*Berlin analysts$`).test(l)), list.stdout);

  // Who can read storefront 8: its own grants and the every-storefront one.
  const by8 = JSON.parse((await hubsink(['access', 'list', '--tenant', '8', '--json'])).stdout) as { kind: string; principalId: string; tenantId: number | null }[];
  assert.deepEqual(by8.map((x) => `${x.kind} ${x.tenantId ?? 'all'}`).sort(), ['group 8', 'group all', 'user 8'].sort());
  const byUser = JSON.parse((await hubsink(['access', 'list', '--user', U1, '--json'])).stdout) as { tenantId: number }[];
  assert.deepEqual(byUser.map((x) => x.tenantId), [8]);

  const rv = await hubsink(['access', 'revoke', '--group', G1, '--tenant', '8,9']);
  assert.equal(rv.code, 0, rv.stderr);
  assert.equal(rv.stdout, `revoked group ${G1}: storefront 8\nrevoked group ${G1}: storefront 9\n`);
  const rvAll = await hubsink(['access', 'revoke', '--group', G2, '--all-tenants', '--json']);
  assert.equal(rvAll.code, 0, rvAll.stderr);
  assert.deepEqual((JSON.parse(rvAll.stdout) as { revoked: { allTenants: boolean }[] }).revoked.map((x) => x.allTenants), [true]);
  assert.deepEqual(await rows(), [`group ${G1} 7`, `user ${U1} 8`]);
});

test('dangerous forms: a missing grant, storefront 0 or negative, malformed ids, contradictions: clear errors, nothing changed', async () => {
  await hubsink(['access', 'grant', '--group', G1, '--tenant', '7']);
  const before = await rows();

  // Revoking a grant that is not there fails (1), and a half-right revoke revokes nothing.
  const missing = await hubsink(['access', 'revoke', '--group', G1, '--tenant', '7,42']);
  assert.equal(missing.code, 1, missing.stderr);
  assert.match(missing.stderr, new RegExp(`group ${G1} holds no grant of storefront 42: nothing was revoked .*hubsink access list --group ${G1}`));
  assert.equal(missing.stdout, '');
  const noAll = await hubsink(['access', 'revoke', '--user', U1, '--all-tenants']);
  assert.equal(noAll.code, 1);
  assert.match(noAll.stderr, /holds no grant of every storefront/);
  assert.deepEqual(await rows(), before);

  const usage: [string[], RegExp][] = [
    [['access', 'grant', '--group', G1, '--tenant', '0'], /0 is not a storefront id; to grant every storefront use --all-tenants/],
    [['access', 'grant', '--group', G1, '--tenant', '-3'], /"-3" is not a storefront id \(a positive whole number/],
    [['access', 'revoke', '--group', G1, '--tenant', '7,-1'], /"-1" is not a storefront id/],
    [['access', 'grant', '--group', G1, '--tenant', '1.5'], /"1.5" is not a storefront id/],
    [['access', 'grant', '--group', G1, '--tenant', '99999999999999999'], /is not a storefront id/],
    [['access', 'grant', '--group', 'analysts', '--tenant', '7'], /--group "analysts": not an object id; an Entra object id is a GUID/],
    [['access', 'grant', '--user', `${G1}x`, '--tenant', '7'], /--user .*not an object id/],
    [['access', 'revoke', '--group', '{3f2b8c1e-5d4a-4f6b-9c7d-1a2b3c4d5e6f}', '--tenant', '7'], /not an object id/],
    [['access', 'grant', '--tenant', '7'], /--group <object-id> or --user <object-id>/],
    [['access', 'grant', '--group', G1, '--user', U1, '--tenant', '7'], /one of --group and --user, not both/],
    [['access', 'grant', '--group', G1], /--tenant <id>\[,<id>\.\.\.\] or --all-tenants/],
    [['access', 'grant', '--group', G1, '--tenant', '7', '--all-tenants'], /--tenant or --all-tenants, not both/],
    [['access', 'grant', '--group', G1, '--tenant', '7', '--note', 'a\u001b]52;c;x\u0007'], /--note: .*without control characters/],
    [['access', 'list', '--tenant', '7,8'], /give one storefront id/],
    [['access', 'grant', '--group', G1, '--tenant', '7', '--schema', 'Bad-Name'], /--schema "Bad-Name": must be a lower-case SQL identifier/],
  ];
  for (const [args, message] of usage) {
    const r = await hubsink(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
    assert.equal(r.stdout, '', args.join(' '));
  }
  assert.deepEqual(await rows(), before);
});

test('an unmigrated schema names the command that sets it up, a server that is down the setting; --help explains the modes', async () => {
  const bare = await createTestSchema('accb_');
  try {
    const r = await hubsink(['access', 'list'], { HUBSINK_SCHEMA: bare.schema });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`schema ${bare.schema} has no access_grants table: run \`hubsink migrate\` first`));
  } finally {
    await bare.drop();
  }
  // A server that is not there: named as the database, with the setting to check (not taken for Event Hubs).
  const closed = new URL(testDatabaseUrl());
  closed.hostname = '127.0.0.1';
  closed.port = '1';
  const down = await hubsink(['access', 'list'], { DATABASE_URL: closed.toString() });
  assert.equal(down.code, 1, down.stderr);
  assert.match(down.stderr, /^hubsink: cannot use the database: connection refused at 127\.0\.0\.1:1; check DATABASE_URL/m);
  assert.doesNotMatch(down.stderr, /Event Hubs/);
  const help = await hubsink(['access', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /grant \[options\]/);
  assert.match(help.stdout, /without a restart/);
  const grantHelp = await hubsink(['access', 'grant', '--help']);
  assert.equal(grantHelp.code, 0);
  assert.match(grantHelp.stdout, /--all-tenants/);
});
