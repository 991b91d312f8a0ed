/**
 * `hubsink doctor`'s results: one line per check, ✓ or ✗ (or ! for something to know that is not
 * a failure, - for a check that could not run because one before it failed), and for every ✗ the
 * fix: the setting or command that repairs it. Pure.
 */
import { escapeControls, redactSecrets } from '../operator/terminal.js';

export type Section = 'Configuration' | 'Database' | 'Event Hubs' | 'Storage';
export type CheckStatus = 'ok' | 'fail' | 'warn' | 'skip';

export interface CheckResult {
  /** Stable id, for --json readers and --skip. */
  id: string;
  section: Section;
  title: string;
  status: CheckStatus;
  /** What was found (a version, counts, the server's error). */
  detail: string;
  /** For fail and warn: the setting or command that repairs it. */
  fix?: string;
}

export const SECTIONS: readonly Section[] = ['Configuration', 'Database', 'Event Hubs', 'Storage'];

const MARK: Record<CheckStatus, string> = { ok: '✓', fail: '✗', warn: '!', skip: '-' };

export function ok(section: Section, id: string, title: string, detail: string): CheckResult {
  return { id, section, title, status: 'ok', detail };
}

export function fail(section: Section, id: string, title: string, detail: string, fix: string): CheckResult {
  return { id, section, title, status: 'fail', detail, fix };
}

export function warn(section: Section, id: string, title: string, detail: string, fix: string): CheckResult {
  return { id, section, title, status: 'warn', detail, fix };
}

export function skipped(section: Section, id: string, title: string, why: string): CheckResult {
  return { id, section, title, status: 'skip', detail: why };
}

export function failed(results: readonly CheckResult[]): CheckResult[] {
  return results.filter((r) => r.status === 'fail');
}

/** What a person reads: sections in order, control characters escaped, secrets redacted. */
export function formatReport(results: readonly CheckResult[]): string {
  const safe = (s: string): string => escapeControls(redactSecrets(s));
  const lines: string[] = [];
  for (const section of SECTIONS) {
    const mine = results.filter((r) => r.section === section);
    if (mine.length === 0) continue;
    lines.push(section);
    for (const r of mine) {
      lines.push(`  ${MARK[r.status]} ${safe(r.title)}${r.detail ? `: ${safe(r.detail)}` : ''}`);
      if (r.fix && (r.status === 'fail' || r.status === 'warn')) lines.push(`      fix: ${safe(r.fix)}`);
    }
  }
  const bad = failed(results).length;
  const skips = results.filter((r) => r.status === 'skip').length;
  lines.push(bad === 0 ? `all ${results.length - skips} checks passed${skips ? ` (${skips} not run)` : ''}` : `${bad} of ${results.length} checks failed${skips ? `, ${skips} not run` : ''}`);
  return lines.join('\n');
}

/** --json: exact values, secrets redacted (an error text may quote a connection string). */
export function jsonReport(results: readonly CheckResult[]): { ok: boolean; checks: CheckResult[] } {
  return {
    ok: failed(results).length === 0,
    checks: results.map((r) => ({ ...r, detail: redactSecrets(r.detail), ...(r.fix ? { fix: redactSecrets(r.fix) } : {}) })),
  };
}
