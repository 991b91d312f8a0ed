import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { startEmulator, type Emulator } from '../src/index.js';

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

/** Client retries short enough that a refused operation fails a test in seconds, not minutes. */
export const retryOptions = { maxRetries: 3, retryDelayInMs: 100, maxRetryDelayInMs: 200, timeoutInMs: 10_000 };

export interface EmulatorFixture {
  /** The file's emulator (started in beforeAll). */
  readonly emu: Emulator;
  /** Registers a client to close in afterAll, before the emulator stops. */
  track: <T extends { close(): Promise<void> }>(client: T) => T;
  /** A hub of its own for one test. */
  freshHub: (partitions?: number, consumerGroups?: string[]) => string;
}

/** One emulator per test file (inside a describe): started before its tests, clients closed and the emulator stopped after. */
export function useEmulator(): EmulatorFixture {
  let emu: Emulator | undefined;
  const clients: { close(): Promise<void> }[] = [];
  beforeAll(async () => {
    emu = await startEmulator();
  });
  afterAll(async () => {
    for (const c of clients.reverse()) await c.close().catch(() => undefined);
    await emu?.stop();
  });
  const fixture: EmulatorFixture = {
    get emu(): Emulator {
      if (!emu) throw new Error('the emulator is started in beforeAll');
      return emu;
    },
    track: (client) => {
      clients.push(client);
      return client;
    },
    freshHub: (partitions = 1, consumerGroups) => {
      const name = uniqueName('hub');
      fixture.emu.createHub({ name, partitions, ...(consumerGroups ? { consumerGroups } : {}) });
      return name;
    },
  };
  return fixture;
}
