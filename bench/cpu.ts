/**
 * Node's CPU per well-formed event for decode + validate + de-duplicate (prepareBatch) and the
 * encoding for the write (COPY text, as bytes), with no database: process.cpuUsage around each
 * step. Beside it, measured in the same passes on the same bodies: the floor every JSON event pays
 * (UTF-8 decoding + JSON.parse of each body, nothing else) and the zod path alone (validateEvent).
 *
 * Part of the `ingest` section; also runs alone, without a database, for a quick look:
 *   npm run build:app && node dist/bench/cpu.js [events] [reps]
 */
import os from 'node:os';
import { pathToFileURL } from 'node:url';
import { encodeCopyBytes } from '../src/db/copyEvents.js';
import { createGenerator } from '../src/generator/generator.js';
import { prepareBatch } from '../src/pipeline/batch.js';
import { ScannedRow } from '../src/pipeline/scanCopy.js';
import type { EventRow, RawEvent } from '../src/pipeline/types.js';
import { validateEvent } from '../src/pipeline/validate.js';
import { richBodies } from './richEvents.js';
import { median } from './section.js';

export interface CpuFigure {
  mix: EventMix;
  events: number;
  /** Mean body size in bytes. */
  bodyBytes: number;
  batchSize: number;
  /** decode + validate + de-dup (prepareBatch) + encode (COPY text as bytes, encodeCopyBytes), µs of CPU per event. */
  usPerEvent: number;
  prepareUsPerEvent: number;
  encodeUsPerEvent: number;
  /** The byte scanner's path (prepareBatch with `copy`, then encodeCopyBytes), µs per event, in the same passes. */
  scanUsPerEvent: number;
  scanPrepareUsPerEvent: number;
  scanEncodeUsPerEvent: number;
  /** Share of the events the scanner took (the rest went to the fast or zod path). */
  scannedShare: number;
  /** The reference: UTF-8 decoding + JSON.parse of each body alone, in the same passes. */
  jsonParseUsPerEvent: number;
  /** The zod path alone on the same events, for comparison. */
  zodUsPerEvent: number;
  reps: number;
}

export const VALIDATE = { retentionDays: 30, aheadDays: 3, maxBodyBytes: 256 * 1024 };

/**
 * The event mixes: `light` is the generator's retail stream (about half the optional fields,
 * properties on some events), `rich` is bench/richEvents.ts (every field, long URLs, nested
 * properties, non-ASCII text), as real clickstream is.
 */
export type EventMix = 'light' | 'rich';
export const MIXES: readonly EventMix[] = ['light', 'rich'];

export function makeEvents(n: number, seed: string, mix: EventMix = 'light'): { raws: RawEvent[]; rows: EventRow[] } {
  const now = new Date();
  const raws: RawEvent[] = [];
  const source = (i: number, partitionKey?: string): RawEvent['source'] => {
    const s: RawEvent['source'] = { hub: 'clickstream', consumerGroup: '$Default', partitionId: String(i % 4), sequenceNumber: i, offset: String(i), enqueuedTime: new Date(now.getTime() + Math.floor(i / 8)) };
    if (partitionKey !== undefined) s.partitionKey = partitionKey;
    return s;
  };
  if (mix === 'rich') {
    richBodies(n, seed, now.getTime()).forEach((body, i) => raws.push({ body, properties: {}, source: source(i) }));
  } else {
    const gen = createGenerator({ seed, tenants: 500, skew: 0.6 });
    for (let i = 0; i < n; i++) {
      const ev = gen.next();
      raws.push({ body: ev.body, properties: {}, source: source(i, ev.partitionKey) });
    }
  }
  const rows = raws.map((raw) => {
    const v = validateEvent(raw, { now, ...VALIDATE });
    if (!v.ok) throw new Error(`generated event invalid: ${v.error}`);
    return v.row;
  });
  return { raws, rows };
}

export function chunks<T>(xs: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

export const cpuNow = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

const decoder = new TextDecoder('utf-8', { fatal: true });

/** CPU µs per event of prepare + encode, median over `reps` passes over all events. */
export function benchCpu(raws: readonly RawEvent[], batchSize: number, reps: number, mix: EventMix = 'light'): CpuFigure {
  const now = new Date();
  const opts = { now, ...VALIDATE };
  const batches = chunks(raws, batchSize);
  const prepare: number[] = [];
  const encode: number[] = [];
  const parse: number[] = [];
  const zod: number[] = [];
  const scanPrepare: number[] = [];
  const scanEncode: number[] = [];
  let scanned = 0;
  let sink = 0;
  // One warm-up pass: the JIT, and the first-touch allocation of the generated bodies.
  for (const b of batches) encodeCopyBytes(prepareBatch(b, opts, now).rows);
  for (const b of batches) {
    const rows = prepareBatch(b, opts, now, { copy: true }).rows;
    for (const r of rows) if (r instanceof ScannedRow && r.byScanner) scanned++;
    encodeCopyBytes(rows);
  }
  for (const r of raws) sink += (JSON.parse(decoder.decode(r.body)) as object) ? 1 : 0;
  for (let rep = 0; rep < reps; rep++) {
    let p = 0;
    let e = 0;
    let j = 0;
    let sp = 0;
    let se = 0;
    for (const b of batches) {
      const t0 = cpuNow();
      const prepared = prepareBatch(b, opts, now);
      const t1 = cpuNow();
      sink += encodeCopyBytes(prepared.rows).length;
      const t2 = cpuNow();
      for (const r of b) sink += (JSON.parse(decoder.decode(r.body)) as object) ? 1 : 0;
      const t3 = cpuNow();
      const viaScan = prepareBatch(b, opts, now, { copy: true });
      const t4 = cpuNow();
      sink += encodeCopyBytes(viaScan.rows).length;
      const t5 = cpuNow();
      p += t1 - t0;
      e += t2 - t1;
      j += t3 - t2;
      sp += t4 - t3;
      se += t5 - t4;
    }
    prepare.push(p / raws.length);
    encode.push(e / raws.length);
    parse.push(j / raws.length);
    scanPrepare.push(sp / raws.length);
    scanEncode.push(se / raws.length);
    const z0 = cpuNow();
    for (const r of raws) validateEvent(r, opts);
    zod.push((cpuNow() - z0) / raws.length);
  }
  if (sink === 0) throw new Error('nothing was encoded');
  const totals = prepare.map((p, i) => p + (encode[i] ?? 0));
  const scanTotals = scanPrepare.map((p, i) => p + (scanEncode[i] ?? 0));
  return {
    mix,
    events: raws.length,
    bodyBytes: raws.reduce((a, r) => a + r.body.byteLength, 0) / raws.length,
    batchSize,
    usPerEvent: median(totals),
    prepareUsPerEvent: median(prepare),
    encodeUsPerEvent: median(encode),
    scanUsPerEvent: median(scanTotals),
    scanPrepareUsPerEvent: median(scanPrepare),
    scanEncodeUsPerEvent: median(scanEncode),
    scannedShare: scanned / raws.length,
    jsonParseUsPerEvent: median(parse),
    zodUsPerEvent: median(zod),
    reps,
  };
}

export function describeCpu(cpu: CpuFigure): string {
  return `Node CPU, ${cpu.mix} events (${Math.round(cpu.bodyBytes)} bytes): ${cpu.usPerEvent.toFixed(2)} µs/event (prepare ${cpu.prepareUsPerEvent.toFixed(2)}, encode ${cpu.encodeUsPerEvent.toFixed(2)}); byte scanner ${cpu.scanUsPerEvent.toFixed(2)} (scan ${cpu.scanPrepareUsPerEvent.toFixed(2)}, lines ${cpu.scanEncodeUsPerEvent.toFixed(2)}; ${(cpu.scannedShare * 100).toFixed(1)}% scanned); references: decode + JSON.parse alone ${cpu.jsonParseUsPerEvent.toFixed(2)}, zod path ${cpu.zodUsPerEvent.toFixed(2)}`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const events = Number(process.argv[2] ?? 60_000);
  const reps = Number(process.argv[3] ?? 5);
  for (const mix of MIXES) {
    const load0 = os.loadavg()[0] ?? NaN;
    const cpu = benchCpu(makeEvents(events, 'bench-cpu', mix).raws, 1000, reps, mix);
    process.stdout.write(`${describeCpu(cpu)}; ${events} events, median of ${reps}; load average ${load0.toFixed(2)} → ${(os.loadavg()[0] ?? NaN).toFixed(2)}\n`);
  }
}
