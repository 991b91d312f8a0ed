import { randomBytes } from 'node:crypto';

/** Polls a condition until it holds; bounded, so a test that cannot succeed fails instead of hanging. */
export async function waitFor(what: string, cond: () => boolean, timeoutMs = 30_000, detail?: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${detail ? `: ${detail()}` : ''}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A short unique lower-case name, valid as a hub name. */
export function uniqueName(prefix: string): string {
  return `${prefix}${randomBytes(5).toString('hex')}`;
}
