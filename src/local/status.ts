/**
 * The live status of the local stack (pure rendering). On a terminal a small block redrawn in
 * place; otherwise one plain `key=value` line per refresh, easy to grep in CI logs.
 */
import { FAILURE_REASONS, sumOf } from '../pipeline/types.js';
import type { RunnerStats } from '../runner/stats.js';

export interface LocalStatus {
  now: number;
  startedAt: number;
  generator: { enabled: boolean; sent: number; rate: number; error: string | null };
  runner: RunnerStats;
  rollupLag: { seconds: number; pendingRows: number; capped: boolean } | null;
  /** Recent log lines (terminal view only). */
  recent: readonly string[];
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

function rate(cur: number, prev: number | undefined, ms: number): number | undefined {
  return prev === undefined || ms <= 0 ? undefined : ((cur - prev) * 1000) / ms;
}

/** Pure: the terminal block. */
export function renderStatusBlock(cur: LocalStatus, prev: LocalStatus | undefined, width = 100): string[] {
  const ms = prev ? cur.now - prev.now : 0;
  const r = cur.runner;
  const inRate = rate(r.ingest.received, prev?.runner.ingest.received, ms);
  const genRate = rate(cur.generator.sent, prev?.generator.sent, ms);
  const dl = r.ingest.deadLettered;
  const lines = [
    `hubsink local · up ${formatDuration(cur.now - cur.startedAt)} · Ctrl-C to stop`,
    cur.generator.enabled
      ? `  generator    sent ${fmt(cur.generator.sent)}${genRate !== undefined ? ` · ${fmt(genRate)}/s` : ''} (target ${fmt(cur.generator.rate)}/s)${cur.generator.error ? ` · ERROR ${cur.generator.error}` : ''}`
      : '  generator    off',
    `  ingest       ${inRate !== undefined ? `${fmt(inRate)} events/s in · ` : ''}received ${fmt(r.ingest.received)} · inserted ${fmt(r.ingest.inserted)} · duplicates ${fmt(r.ingest.duplicates)}${r.ingest.failedAttempts ? ` · failed attempts ${fmt(r.ingest.failedAttempts)}` : ''}`,
    `  dead letters ${FAILURE_REASONS.map((k) => `${k} ${fmt(dl[k])}`).join(' · ')} · parked ${fmt(sumOf(r.deadletter.parked))} · re-written ${fmt(r.deadletter.inserted)}`,
    `  rollups      ${cur.rollupLag ? `lag ${cur.rollupLag.seconds.toFixed(0)} s (${fmt(cur.rollupLag.pendingRows)}${cur.rollupLag.capped ? '+' : ''} events pending)` : 'lag -'} · runs ${fmt(r.rollups.runs)} · folded ${fmt(r.rollups.folded)}${r.rollups.lastRunAt ? ` · last ${formatDuration(cur.now - r.rollups.lastRunAt)} ago` : ''}${r.rollups.lastError ? ` · ERROR ${r.rollups.lastError}` : ''}`,
    `  partitions   ingest ${r.ingest.partitions.join(',') || '-'} · dead letters ${r.deadletter.partitions.join(',') || '-'}`,
  ];
  if (cur.recent.length > 0) lines.push('  recent log', ...cur.recent.map((l) => `    ${l}`));
  return lines.map((l) => (l.length > width ? `${l.slice(0, width - 1)}…` : l));
}

/** Pure: the plain line. */
export function renderStatusLine(cur: LocalStatus, prev: LocalStatus | undefined): string {
  const ms = prev ? cur.now - prev.now : 0;
  const r = cur.runner;
  const inRate = rate(r.ingest.received, prev?.runner.ingest.received, ms);
  const dl = r.ingest.deadLettered;
  const parts = [
    `status up_s=${Math.floor((cur.now - cur.startedAt) / 1000)}`,
    `sent=${cur.generator.sent}`,
    `in_per_s=${inRate !== undefined ? inRate.toFixed(0) : '-'}`,
    `received=${r.ingest.received}`,
    `inserted=${r.ingest.inserted}`,
    `duplicates=${r.ingest.duplicates}`,
    ...FAILURE_REASONS.map((k) => `dl_${k}=${dl[k]}`),
    `parked=${sumOf(r.deadletter.parked)}`,
    `rollup_runs=${r.rollups.runs}`,
    `rollup_lag_s=${cur.rollupLag ? cur.rollupLag.seconds.toFixed(0) : '-'}`,
    `rollup_pending=${cur.rollupLag ? cur.rollupLag.pendingRows : '-'}`,
  ];
  if (cur.generator.error) parts.push(`generator_error=${JSON.stringify(cur.generator.error)}`);
  return parts.join(' ');
}
