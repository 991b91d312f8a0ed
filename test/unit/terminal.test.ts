import { describe, test } from 'vitest';
import assert from 'node:assert/strict';
import { escapeControls, redactSecrets } from '../../src/operator/terminal.js';
import { formatBody, formatTable, oneLine } from '../../src/operator/format.js';
import { debugDump } from '../../src/cli/program.js';

/** Every C0, DEL and C1 code point. */
const ALL_CONTROLS = [...Array.from({ length: 0x20 }, (_, i) => i), 0x7f, ...Array.from({ length: 0x20 }, (_, i) => 0x80 + i)].map((c) => String.fromCharCode(c));
// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
// eslint-disable-next-line no-control-regex
const RAW_CONTROL_BUT_LF_TAB = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

describe('escapeControls', () => {
  test('no C0, DEL or C1 character survives; each becomes a visible escape', () => {
    const out = escapeControls(ALL_CONTROLS.join(''));
    assert.doesNotMatch(out, RAW_CONTROL);
    assert.equal(escapeControls('\x1b]52;c;aGk=\x07'), '\\x1b]52;c;aGk=\\x07');
    assert.equal(escapeControls('\u009b2J\x7f\r\n\t'), '\\u009b2J\\x7f\\x0d\\x0a\\x09');
  });
  test('multiline keeps LF and TAB only', () => {
    const out = escapeControls(ALL_CONTROLS.join(''), { multiline: true });
    assert.doesNotMatch(out, RAW_CONTROL_BUT_LF_TAB);
    assert.equal(escapeControls('a\n\tb\r\x1b[2K', { multiline: true }), 'a\n\tb\\x0d\\x1b[2K');
  });
  test('printable text, including non-ASCII, is unchanged', () => {
    for (const s of ['plain', 'Grüße, 東京 🚀', '{"a": "b\\\\n"}', '\u00a0\u00ff\u2028']) assert.equal(escapeControls(s), s);
  });
});

describe('operator output of dead letters', () => {
  const hostile = 'x\x1b]52;c;ZWNobyBwd25lZA==\x07y\u009b31mz\x7f\rw';
  test('formatTable escapes every cell and keeps columns aligned on what is shown', () => {
    const t = formatTable(['A', 'B'], [[hostile, 'ok']]);
    assert.doesNotMatch(t, RAW_CONTROL_BUT_LF_TAB);
    assert.match(t, /x\\x1b\]52;c;ZWNobyBwd25lZA==\\x07y\\u009b31mz\\x7f\\x0dw {2}ok/);
  });
  test('oneLine flattens line breaks and escapes the rest', () => {
    assert.equal(oneLine('a\r\nb\x1b[1A', 80), 'a b\\x1b[1A');
    assert.doesNotMatch(oneLine(ALL_CONTROLS.join(''), 1000), RAW_CONTROL);
  });
  test('formatBody: text bodies and JSON bodies (JSON.stringify leaves DEL and C1 raw) are escaped', () => {
    const text = formatBody(Buffer.from(hostile));
    assert.equal(text.kind, 'text');
    assert.doesNotMatch(text.text, RAW_CONTROL_BUT_LF_TAB);
    const json = formatBody(Buffer.from(JSON.stringify({ note: 'a\u009b2Jb\x7f' })));
    assert.equal(json.kind, 'json');
    assert.equal(json.text, '{\n  "note": "a\\u009b2Jb\\x7f"\n}');
  });
});

describe('redactSecrets and the HUBSINK_DEBUG dump', () => {
  const cases: [string, string][] = [
    ['postgres://app:s3cr%40t@db.example.com:5432/d?sslmode=verify-full', 'postgres://app:***@db.example.com:5432/d?sslmode=verify-full'],
    ['postgresql://u:p@h/d', 'postgresql://u:***@h/d'],
    ['postgres://u@h/d', 'postgres://u@h/d'],
    ['Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=abc+/=;EntityPath=hub', 'Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=***;EntityPath=hub'],
    ['Endpoint=sb://ns/;SharedAccessSignature=SharedAccessSignature sr=x&sig=abc&se=1&skn=k', 'Endpoint=sb://ns/;SharedAccessSignature=***'],
    ['DefaultEndpointsProtocol=https;AccountName=a;AccountKey=k3y==;EndpointSuffix=core.windows.net', 'DefaultEndpointsProtocol=https;AccountName=a;AccountKey=***;EndpointSuffix=core.windows.net'],
    ['authorization: SharedAccessSignature sr=amqps%3A%2F%2Fns&sig=S1G%3D&se=17&skn=k', 'authorization: SharedAccessSignature sr=amqps%3A%2F%2Fns&sig=***&se=17&skn=k'],
    ["{ password: 'hunter2', user: 'u' }", "{ password: '***', user: 'u' }"],
    ['password authentication failed for user "u"', 'password authentication failed for user "u"'],
  ];
  for (const [input, expected] of cases) test(`${input.slice(0, 50)}…`, () => assert.equal(redactSecrets(input), expected));

  test('the debug dump of an error carrying a connection string in its message, input and options shows none of it', () => {
    const err = Object.assign(new TypeError('Invalid URL postgres://app:hunter2@db:5432/x'), {
      input: 'postgres://app:hunter2@db:5432/x',
      options: { connectionString: 'Endpoint=sb://ns/;SharedAccessKeyName=k;SharedAccessKey=topsecret', password: 'hunter2' },
      body: 'line\x1b]52;c;cHduZWQ=\x07',
    });
    const dump = debugDump(err);
    assert.doesNotMatch(dump, /hunter2|topsecret/);
    assert.match(dump, /postgres:\/\/app:\*\*\*@db:5432\/x/);
    assert.doesNotMatch(dump, RAW_CONTROL_BUT_LF_TAB);
  });
});
