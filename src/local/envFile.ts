/**
 * The settings of a running `hubsink local` for every other command, as a shell file next to its
 * data (`.hubsink/env`, mode 0600: it holds the database password). The banner prints the one line
 * that loads it; after it, the README's commands work as written.
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface LocalSettings {
  databaseUrl: string;
  schema: string;
  eventHubConnection: string;
  storageConnection: string;
  ingestHub: string;
  deadLetterHub: string;
  consumerGroup: string;
  deadLetterConsumerGroup: string;
  replayConsumerGroup: string;
  /** bin/hubsink.js of this checkout: the file defines `hubsink` when no such command is on PATH. */
  hubsinkBin?: string;
}

export const ENV_FILE_NAME = 'env';

/** Pure: a value quoted for sh (single quotes; a single quote as '\''). */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** Pure: the file's text, one `export NAME='value'` per setting. */
export function envFileText(s: LocalSettings): string {
  const vars: [string, string][] = [
    ['DATABASE_URL', s.databaseUrl],
    ['HUBSINK_SCHEMA', s.schema],
    ['EventHubConnection', s.eventHubConnection],
    ['AzureWebJobsStorage', s.storageConnection],
    ['INGEST_EVENTHUB_NAME', s.ingestHub],
    ['DEADLETTER_EVENTHUB_NAME', s.deadLetterHub],
    ['INGEST_CONSUMER_GROUP', s.consumerGroup],
    ['DEADLETTER_CONSUMER_GROUP', s.deadLetterConsumerGroup],
    ['REPLAY_CONSUMER_GROUP', s.replayConsumerGroup],
  ];
  return [
    '# Written by `hubsink local` for the stack it runs; load it in a shell with `source` (see the banner).',
    '# It holds the database password: keep it to yourself (mode 0600). Rewritten at every start.',
    ...vars.map(([k, v]) => `export ${k}=${shellQuote(v)}`),
    ...(s.hubsinkBin ? [`command -v hubsink >/dev/null 2>&1 || hubsink() { node ${shellQuote(s.hubsinkBin)} "$@"; }`] : []),
    '',
  ].join('\n');
}

/** Pure: the line that loads `file`, relative to `cwd` when it lies below it. */
export function sourceLine(file: string, cwd: string): string {
  const rel = path.relative(cwd, file);
  const shown = rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : path.resolve(file);
  return `source ${/^[\w./-]+$/.test(shown) ? shown : shellQuote(shown)}`;
}

/** Writes `<dataDir>/env` (0600 even when it existed with looser rights) and returns its path. */
export async function writeEnvFile(dataDir: string, s: LocalSettings): Promise<string> {
  const file = path.join(dataDir, ENV_FILE_NAME);
  await mkdir(dataDir, { recursive: true });
  await writeFile(file, envFileText(s), { mode: 0o600 });
  await chmod(file, 0o600);
  return file;
}
