/**
 * What the `hubsink import` tests share: files of generated events with known invalid lines and
 * exact repeats, the ground truth taken from the generator's labels (not from the validator under
 * test), and the CLI run as a child.
 */
import { writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import type pg from 'pg';
import { createGenerator, type GeneratedEvent } from '../../src/generator/generator.js';
import type { Counts } from '../../src/import/importBatch.js';
import { testAzuriteConnection, testDatabaseUrl } from './services.js';
import { truthOfLabels } from './labels.js';

export interface EventFile {
  lines: Buffer[];
  /** rowKey of every distinct valid event: exactly what `events` must hold. */
  expected: Set<string>;
  /** 1-based line numbers of the invalid lines. */
  invalidLines: number[];
  /** Lines that repeat an earlier valid line exactly. */
  repeats: number;
}

const NL = 0x0a;

/** `count` lines: generated events, about `duplicates` exact repeats and `malformed` invalid ones. */
export function makeLines(opts: { count: number; seed: string; duplicates: number; malformed: number; tenants?: number; clock?: () => number }): EventFile {
  const gen = createGenerator({ seed: opts.seed, tenants: opts.tenants ?? 50, duplicates: opts.duplicates, malformed: opts.malformed, ...(opts.clock ? { clock: opts.clock } : {}) });
  const kept: GeneratedEvent[] = [];
  while (kept.length < opts.count) {
    const ev = gen.next();
    // A line is one body: bodies with a newline (or blank ones, which import skips) do not fit NDJSON.
    if (ev.body.includes(NL) || ev.body.toString('latin1').trim() === '') continue;
    // Years-old events are history to import (see the --max-age tests), not invalid lines.
    if (ev.kind === 'malformed' && ev.malformed === 'out-of-window') continue;
    kept.push(ev);
  }
  const t = truthOfLabels(kept);
  return { lines: kept.map((ev) => ev.body), expected: t.expected, invalidLines: t.malformedAt.map((i) => i + 1), repeats: t.repeats };
}

export async function writeNdjson(file: string, lines: readonly Buffer[], opts: { gzip?: boolean; crlf?: boolean } = {}): Promise<void> {
  const sep = Buffer.from(opts.crlf ? '\r\n' : '\n');
  const data = Buffer.concat(lines.flatMap((l) => [l, sep]));
  await writeFile(file, opts.gzip ? gzipSync(data) : data);
}

export function importEnv(schema: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    DATABASE_URL: testDatabaseUrl(),
    HUBSINK_SCHEMA: schema,
    AzureWebJobsStorage: testAzuriteConnection(),
    ...extra,
  };
}

export async function deadLetterLines(pool: pg.Pool, schema: string, file: string): Promise<number[]> {
  const { rows } = await pool.query<{ seq: string }>(`SELECT source_sequence::text AS seq FROM "${schema}".dead_letters WHERE source_hub = 'import' AND source_partition = $1 ORDER BY 1`, [file]);
  return rows.map((r) => Number(r.seq)).sort((a, b) => a - b);
}

/** `hubsink import --json`: the import's counts, then what the run did. */
export interface ImportJson extends Counts {
  maxAgeNeeded: number;
  rollupRuns: number;
  stoppedBy?: string;
  files: { source: string; status: string; resumedAfter: number; lines: number; inserted: number; partitionsCreated: string[]; error?: string }[];
}
