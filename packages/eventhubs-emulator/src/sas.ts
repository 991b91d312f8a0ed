/**
 * Shared access signatures as Event Hubs checks them: the token
 * `SharedAccessSignature sr=<url-encoded resource>&sig=<base64 HMAC-SHA256>&se=<expiry s>&skn=<key name>`
 * is signed over `<url-encoded resource> + "\n" + <expiry>` with the key's text as the HMAC key.
 * A token for a resource also covers everything below it (a namespace token covers every hub).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface SasToken {
  /** The resource URI, decoded. */
  resource: string;
  /** The resource exactly as signed (still URL-encoded). */
  signedResource: string;
  signature: string;
  expiresAtSec: number;
  keyName: string;
}

export type SasCheck = { ok: true; token: SasToken } | { ok: false; reason: string };

export function parseSasToken(text: string): SasToken | undefined {
  const m = /^SharedAccessSignature\s+(.+)$/.exec(text.trim());
  if (!m) return undefined;
  const fields = new Map<string, string>();
  for (const part of (m[1] as string).split('&')) {
    const eq = part.indexOf('=');
    if (eq <= 0) return undefined;
    fields.set(part.slice(0, eq), part.slice(eq + 1));
  }
  const sr = fields.get('sr');
  const sig = fields.get('sig');
  const se = fields.get('se');
  const skn = fields.get('skn');
  if (sr === undefined || sig === undefined || se === undefined || skn === undefined || !/^\d+$/.test(se)) return undefined;
  let resource: string;
  let signature: string;
  try {
    resource = decodeURIComponent(sr);
    signature = decodeURIComponent(sig);
  } catch {
    return undefined;
  }
  return { resource, signedResource: sr, signature, expiresAtSec: Number(se), keyName: decodeURIComponent(skn) };
}

export function sign(signedResource: string, expiresAtSec: number, key: string): string {
  return createHmac('sha256', key).update(`${signedResource}\n${expiresAtSec}`).digest('base64');
}

/** Creates a token the way clients do (used by tests and tools). */
export function createSasToken(resource: string, keyName: string, key: string, expiresAtSec: number): string {
  const sr = encodeURIComponent(resource);
  return `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sign(sr, expiresAtSec, key))}&se=${expiresAtSec}&skn=${encodeURIComponent(keyName)}`;
}

/** Path part of a resource URI, lower-cased, without leading/trailing slashes ("hub/partitions/0"). */
export function resourcePath(uri: string): string {
  const noScheme = uri.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const slash = noScheme.indexOf('/');
  const path = slash < 0 ? '' : noScheme.slice(slash + 1);
  return path.replace(/^\/+|\/+$/g, '').toLowerCase();
}

/** True when a token for `granted` (a path) covers `wanted` (a path): equal, or an ancestor by whole segments. */
export function covers(granted: string, wanted: string): boolean {
  return granted === '' || wanted === granted || wanted.startsWith(`${granted}/`);
}

export interface SasVerifyOptions {
  keyName: string;
  key: string;
  nowSec: number;
}

/** Checks a token's key name, signature and expiry. */
export function verifySasToken(text: string, opts: SasVerifyOptions): SasCheck {
  const token = parseSasToken(text);
  if (!token) return { ok: false, reason: 'malformed SharedAccessSignature' };
  if (token.keyName !== opts.keyName) return { ok: false, reason: `unknown shared access key name '${token.keyName}'` };
  const expected = Buffer.from(sign(token.signedResource, token.expiresAtSec, opts.key), 'base64');
  const given = Buffer.from(token.signature, 'base64');
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
    return { ok: false, reason: 'InvalidSignature: the token has an invalid signature' };
  }
  if (token.expiresAtSec <= opts.nowSec) return { ok: false, reason: `ExpiredToken: the token expired at ${token.expiresAtSec}` };
  return { ok: true, token };
}
