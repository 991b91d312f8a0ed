/**
 * What a bench section is and gets (bench/run.ts runs them), and small helpers they share.
 */
import type pg from 'pg';
import type { Capabilities } from '../src/db/capabilities.js';

/** One server the sections can use: a pool, what it can do, and empty migrated schemas on demand. */
export interface BenchServer {
  label: string;
  url: string;
  pool: pg.Pool;
  caps: Capabilities;
  /** An empty migrated schema with today's partitions, dropped at the end. */
  fresh(): Promise<string>;
}

export interface BenchContext {
  /** The embedded PostgreSQL. */
  server: BenchServer;
  /** The server named by TEST_DATABASE_URL, if any. */
  other?: BenchServer;
  /** Azurite's connection string, for sections that need blob storage. */
  azurite?: string;
  repoRoot: string;
  /** Sections that build on another's data (the dashboard on the rollups' history) share it here. */
  shared: Map<string, unknown>;
  /** Shorter runs (fewer events and repetitions) for a quick look; figures are noisier. */
  quick: boolean;
  log: (s: string) => void;
}

/** A stated target and the figure measured for it, with the load average at the time. */
export interface Target {
  name: string;
  /** The figure, in `unit`. */
  value: number;
  unit: string;
  /** The target, as stated (e.g. "<= 3", ">= 0.9"). */
  target: string;
  met: boolean;
  /** What the figure is measured against, or anything else a reader needs. */
  note?: string;
  /** 1-minute load average when the section finished. */
  loadAverage?: number;
}

export interface SectionResult {
  /** Printed tables: a title line, then rows (the first row is the header). */
  tables: { title: string; rows: string[][] }[];
  targets: Target[];
  /** Raw figures for bench/results/latest.json. */
  data: unknown;
}

export interface BenchSection {
  name: string;
  /** Sections that need Azurite say so; it is started only if one of them runs. */
  needsAzurite?: boolean;
  run(ctx: BenchContext): Promise<SectionResult>;
}

export const n0 = (x: number): string => Math.round(x).toLocaleString('en-US');

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
}
