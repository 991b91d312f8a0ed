/**
 * The local stack's Azurite: a start that does not finish within its bound fails with the port
 * and the bound named, and leaves no Azurite process behind.
 */
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { startAzurite } from '../../src/local/azurite.js';
import { freePort } from '../../src/local/ports.js';

async function azuriteOn(port: number): Promise<string[]> {
  const found: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const cmd = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
      if (cmd.some((a) => a.includes('azurite')) && cmd.includes('--blobPort') && cmd.includes(String(port))) found.push(pid);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

test('an Azurite start past its bound fails naming the port, and kills the half-started process', async () => {
  const port = await freePort();
  await assert.rejects(startAzurite({ port, startupTimeoutMs: 1 }), new RegExp(`azurite did not listen on ${port} within 1 ms`));
  // The kill is sent before the rejection; the process may take a moment to go.
  const deadline = Date.now() + 10_000;
  let left = await azuriteOn(port);
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    left = await azuriteOn(port);
  }
  assert.deepEqual(left, []);
});
