import { test } from 'vitest';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { covers, createSasToken, parseSasToken, resourcePath, verifySasToken } from '../../src/sas.js';

const opts = { keyName: 'Root', key: 'secret-key', nowSec: 1_700_000_000 };

test('a token signed with the key is accepted and parsed', () => {
  const token = createSasToken('sb://127.0.0.1:5672/hub/Partitions/0', 'Root', 'secret-key', opts.nowSec + 60);
  const check = verifySasToken(token, opts);
  assert.equal(check.ok, true);
  if (check.ok) {
    assert.equal(check.token.resource, 'sb://127.0.0.1:5672/hub/Partitions/0');
    assert.equal(check.token.expiresAtSec, opts.nowSec + 60);
  }
});

test('the signature is HMAC-SHA256 over urlencode(sr) + newline + se, keyed by the key text', () => {
  const sr = encodeURIComponent('sb://host/hub');
  const se = opts.nowSec + 10;
  const sig = createHmac('sha256', 'secret-key').update(`${sr}\n${se}`).digest('base64');
  const handMade = `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=${se}&skn=Root`;
  assert.equal(verifySasToken(handMade, opts).ok, true);
});

test('wrong key, wrong key name, expired, tampered or malformed tokens are refused', () => {
  const future = opts.nowSec + 60;
  const wrongKey = verifySasToken(createSasToken('sb://h/hub', 'Root', 'other', future), opts);
  assert.deepEqual(wrongKey.ok, false);
  assert.match(wrongKey.ok ? '' : wrongKey.reason, /InvalidSignature/);
  assert.equal(verifySasToken(createSasToken('sb://h/hub', 'Other', 'secret-key', future), opts).ok, false);
  const expired = verifySasToken(createSasToken('sb://h/hub', 'Root', 'secret-key', opts.nowSec), opts);
  assert.match(expired.ok ? '' : expired.reason, /Expired/);
  const good = createSasToken('sb://h/hub', 'Root', 'secret-key', future);
  assert.equal(verifySasToken(good.replace('hub', 'bub'), opts).ok, false);
  assert.equal(verifySasToken(good.replace(`se=${future}`, `se=${future + 1}`), opts).ok, false);
  assert.equal(verifySasToken('Bearer abc', opts).ok, false);
  assert.equal(parseSasToken('SharedAccessSignature sr=a&sig=b'), undefined);
  assert.equal(parseSasToken('SharedAccessSignature sr=a&sig=b&se=notanumber&skn=c'), undefined);
});

test('resource paths and coverage work by whole path segments, case-insensitively', () => {
  assert.equal(resourcePath('sb://127.0.0.1:5672/Hub/ConsumerGroups/$Default/Partitions/0'), 'hub/consumergroups/$default/partitions/0');
  assert.equal(resourcePath('sb://127.0.0.1:5672/'), '');
  assert.equal(resourcePath('sb://127.0.0.1:5672'), '');
  assert.equal(covers('', 'hub/partitions/0'), true);
  assert.equal(covers('hub', 'hub/partitions/0'), true);
  assert.equal(covers('hub', 'hub'), true);
  assert.equal(covers('hub', 'hub2'), false);
  assert.equal(covers('hub/partitions/0', 'hub'), false);
});
