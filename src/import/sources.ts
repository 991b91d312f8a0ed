/**
 * What `hubsink import` reads: local files (paths, directories, globs) and Azure Blob Storage
 * containers or prefixes (a SAS URL, or a blob URL / `blob:container/prefix` with the account of
 * AzureWebJobsStorage). Each file becomes an ImportSource with a stable identity (name, size,
 * modification time) and a way to open its bytes from an offset.
 */
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { BlobServiceClient, ContainerClient } from '@azure/storage-blob';
import type { StorageConnection } from '../config.js';
import { HubsinkError } from '../errors.js';

export type ImportFormat = 'ndjson' | 'csv';

export interface ImportSource {
  /** Identity and display name: an absolute path, or the blob URL without its query string. */
  name: string;
  size: number;
  modifiedAt: Date;
  format: ImportFormat;
  gzip: boolean;
  /** The stored bytes (still compressed when gzip), from byte `start`. */
  open(start?: number): Promise<Readable>;
}

export class SourceError extends HubsinkError {
  readonly kind = 'usage';
  override name = 'SourceError';
}

/** Pure: format and compression from a file name; undefined for names import does not read. */
export function formatOf(name: string, override?: ImportFormat): { format: ImportFormat; gzip: boolean } | undefined {
  const lower = name.toLowerCase();
  const gzip = lower.endsWith('.gz');
  const base = gzip ? lower.slice(0, -3) : lower;
  if (override) return { format: override, gzip };
  if (/\.(ndjson|jsonl|json)$/.test(base)) return { format: 'ndjson', gzip };
  if (base.endsWith('.csv')) return { format: 'csv', gzip };
  return undefined;
}

const GLOB_CHARS = /[*?]/;

/**
 * Pure: a glob as a regular expression over '/'-separated relative paths. `*` and `?` stay within a
 * path segment, `**` spans segments. (Only these: shells expand the richer forms before we see them.)
 */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] ?? '';
    if (c === '*' && glob[i + 1] === '*') {
      const slash = glob[i + 2] === '/';
      re += slash ? '(?:.*/)?' : '.*';
      i += slash ? 2 : 1;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Pure: the directory to walk for a glob (its segments before the first with a wildcard) and the rest. */
export function splitGlob(p: string): { base: string; pattern: string } {
  const parts = p.split('/');
  const i = parts.findIndex((s) => GLOB_CHARS.test(s));
  if (i < 0) return { base: p, pattern: '' };
  return { base: parts.slice(0, i).join('/') || (p.startsWith('/') ? '/' : '.'), pattern: parts.slice(i).join('/') };
}

async function localSource(file: string, format?: ImportFormat): Promise<ImportSource | undefined> {
  const f = formatOf(file, format);
  if (!f) return undefined;
  const st = await stat(file);
  const abs = path.resolve(file);
  return {
    name: abs,
    size: st.size,
    modifiedAt: st.mtime,
    ...f,
    open: (start = 0) => Promise.resolve(createReadStream(abs, { start, highWaterMark: 1 << 20 })),
  };
}

async function walk(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

async function localSources(arg: string, format?: ImportFormat): Promise<ImportSource[]> {
  const { base, pattern } = splitGlob(arg.split(path.sep).join('/'));
  if (pattern) {
    const re = globToRegExp(pattern);
    const files = (await walk(base).catch(() => [])).filter((f) => re.test(path.relative(base, f).split(path.sep).join('/'))).sort();
    const out = (await Promise.all(files.map((f) => localSource(f, format)))).filter((s): s is ImportSource => s !== undefined);
    if (out.length === 0) throw new SourceError(`${arg}: no .ndjson, .jsonl, .json or .csv files (optionally .gz) match`);
    return out;
  }
  const st = await stat(arg).catch(() => undefined);
  if (!st) throw new SourceError(`${arg}: no such file or directory`);
  if (st.isDirectory()) {
    const out = (await Promise.all((await walk(arg)).sort().map((f) => localSource(f, format)))).filter((s): s is ImportSource => s !== undefined);
    if (out.length === 0) throw new SourceError(`${arg}: the directory holds no .ndjson, .jsonl, .json or .csv files (optionally .gz)`);
    return out;
  }
  const one = await localSource(arg, format);
  if (!one) throw new SourceError(`${arg}: unknown format (expected .ndjson, .jsonl, .json or .csv, optionally .gz; or give --format)`);
  return [one];
}

/** Pure: container, prefix and account of a blob URL, path-style (Azurite, IP hosts) or not. */
export function parseBlobUrl(raw: string): { serviceUrl: string; account: string; container: string; prefix: string; sas: string } {
  const u = new URL(raw);
  const segments = u.pathname.split('/').filter((s) => s !== '').map(decodeURIComponent);
  const pathStyle = /^(\d+\.\d+\.\d+\.\d+|localhost|\[[0-9a-f:]+\])$/i.test(u.hostname) || u.hostname.endsWith('.localhost');
  const account = pathStyle ? (segments.shift() ?? '') : (u.hostname.split('.')[0] ?? '');
  const container = segments.shift();
  if (!container) throw new SourceError(`${u.origin}${u.pathname}: a blob URL names a container (…/container[/prefix])`);
  return {
    serviceUrl: pathStyle ? `${u.protocol}//${u.host}/${account}` : `${u.protocol}//${u.host}`,
    account,
    container,
    prefix: segments.join('/'),
    sas: u.search.replace(/^\?/, ''),
  };
}

/**
 * Pure: a URL as origin and path only. The service URL of a connection string with
 * `SharedAccessSignature=` carries the SAS as its query: a display name built from it would print
 * and store `sig=`.
 */
export function withoutQuery(raw: string): string {
  const u = new URL(raw);
  return `${u.origin}${u.pathname}`.replace(/\/+$/, '');
}

/**
 * Pure: does a listed blob name hold a `.` or `..` segment (also percent-encoded, or between
 * backslashes)? The client puts the name into a URL path, where such segments are resolved: a name
 * like `data/%2E%2E/%2E%2E/other/x.ndjson` would be read from another container.
 */
export function hasDotSegment(name: string): boolean {
  let decoded = name;
  try {
    decoded = decodeURIComponent(name);
  } catch {
    // A stray `%`: the raw name is still checked, its %2E forms included.
  }
  return [name, decoded].some((n) =>
    n.split(/[/\\]/).some((seg) => {
      const s = seg.replace(/%2e/gi, '.');
      return s === '.' || s === '..';
    }),
  );
}

async function containerFor(arg: string, storage: StorageConnection | undefined): Promise<{ container: ContainerClient; prefix: string; display: string }> {
  if (arg.startsWith('blob:')) {
    const [container, ...rest] = arg.slice('blob:'.length).split('/');
    if (!container) throw new SourceError(`${arg}: expected blob:container[/prefix]`);
    const svc = await serviceFromStorage(storage, arg);
    return { container: svc.getContainerClient(container), prefix: rest.join('/'), display: `${withoutQuery(svc.url)}/${container}` };
  }
  const p = parseBlobUrl(arg);
  const display = `${p.serviceUrl}/${p.container}`;
  if (/(^|&)sig=/.test(p.sas)) return { container: new ContainerClient(`${display}?${p.sas}`), prefix: p.prefix, display };
  const svc = await serviceFromStorage(storage, arg);
  if (svc.accountName && p.account && svc.accountName.toLowerCase() !== p.account.toLowerCase()) {
    throw new SourceError(`${display}: AzureWebJobsStorage is account ${svc.accountName}, not ${p.account}; give a SAS URL for another account`);
  }
  return { container: svc.getContainerClient(p.container), prefix: p.prefix, display };
}

async function serviceFromStorage(storage: StorageConnection | undefined, arg: string): Promise<BlobServiceClient> {
  if (!storage) throw new SourceError(`${arg}: no SAS in the URL and AzureWebJobsStorage is not set`);
  if (storage.kind === 'connectionString') return BlobServiceClient.fromConnectionString(storage.connectionString);
  const { DefaultAzureCredential } = await import('@azure/identity');
  return new BlobServiceClient(storage.blobServiceUri ?? `https://${storage.accountName ?? ''}.blob.core.windows.net`, new DefaultAzureCredential());
}

async function blobSources(arg: string, storage: StorageConnection | undefined, format?: ImportFormat, warn?: (message: string) => void): Promise<ImportSource[]> {
  const { container, prefix, display } = await containerFor(arg, storage);
  const out: ImportSource[] = [];
  for await (const b of container.listBlobsFlat(prefix ? { prefix } : {})) {
    const f = formatOf(b.name, format);
    if (!f) continue;
    if (hasDotSegment(b.name)) {
      warn?.(`${display}/${b.name}: skipped, the name has a "." or ".." segment (it would be read from outside ${display}${prefix ? `/${prefix}` : ''})`);
      continue;
    }
    const client = container.getBlobClient(b.name);
    out.push({
      name: `${display}/${b.name}`,
      size: b.properties.contentLength ?? 0,
      modifiedAt: b.properties.lastModified,
      ...f,
      open: async (start = 0) => {
        const res = await client.download(start);
        if (!res.readableStreamBody) throw new SourceError(`${display}/${b.name}: empty download`);
        return res.readableStreamBody as Readable;
      },
    });
  }
  if (out.length === 0) throw new SourceError(`${display}${prefix ? `/${prefix}` : ''}: no .ndjson, .jsonl, .json or .csv blobs (optionally .gz) under this prefix`);
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

export function isBlobArg(arg: string): boolean {
  return arg.startsWith('blob:') || /^https?:\/\//i.test(arg);
}

/** Every file named by the arguments, in order, each once. */
export async function resolveSources(
  args: readonly string[],
  opts: { storage?: StorageConnection; format?: ImportFormat; warn?: (message: string) => void } = {},
): Promise<ImportSource[]> {
  const seen = new Set<string>();
  const out: ImportSource[] = [];
  for (const arg of args) {
    const found = isBlobArg(arg) ? await blobSources(arg, opts.storage, opts.format, opts.warn) : await localSources(arg, opts.format);
    for (const s of found) {
      if (seen.has(s.name)) continue;
      seen.add(s.name);
      out.push(s);
    }
  }
  return out;
}
