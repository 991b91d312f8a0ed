/**
 * A loopback TCP proxy for fault injection: clients connect to the proxy, which forwards every byte
 * to the real server. cut() makes the server unreachable as a network failure or a stopped server
 * would (open connections are reset, new ones refused) and restore() brings it back, without
 * touching the server itself, so the same tests run against a shared server or a Citus coordinator.
 * hold() stalls it instead (connections stay open, nothing is forwarded either way, as with a server
 * that stopped answering) until release().
 */
import net from 'node:net';
import { testAzuriteConnection, testDatabaseUrl } from './services.js';

export interface TcpProxy {
  readonly port: number;
  /** The target's URL with host and port replaced by the proxy's. */
  url(target: string): string;
  /** Resets every open connection and refuses new ones until restore(). */
  cut(): Promise<void>;
  restore(): Promise<void>;
  /** Forwards nothing more on open or new connections (they stay open) until release(). */
  hold(): void;
  release(): void;
  /** Connections accepted so far. */
  readonly accepted: number;
  stop(): Promise<void>;
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  let held = false;
  const forward = (p: { client: net.Socket; upstream: net.Socket }): void => {
    p.client.pipe(p.upstream);
    p.upstream.pipe(p.client);
  };
  const stall = (p: { client: net.Socket; upstream: net.Socket }): void => {
    p.client.unpipe(p.upstream);
    p.upstream.unpipe(p.client);
    p.client.pause();
    p.upstream.pause();
  };
  let accepted = 0;
  let server: net.Server | undefined;
  let port = 0;

  const listen = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const s = net.createServer((client) => {
        accepted++;
        const upstream = net.connect(targetPort, targetHost);
        sockets.add(client);
        sockets.add(upstream);
        const pair = { client, upstream };
        pairs.add(pair);
        const drop = (): void => {
          client.destroy();
          upstream.destroy();
          sockets.delete(client);
          sockets.delete(upstream);
          pairs.delete(pair);
        };
        client.on('error', drop).on('close', drop);
        upstream.on('error', drop).on('close', drop);
        if (held) stall(pair);
        else forward(pair);
      });
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => {
        const addr = s.address();
        if (addr && typeof addr === 'object') port = addr.port;
        server = s;
        resolve();
      });
    });

  const close = async (): Promise<void> => {
    const s = server;
    server = undefined;
    // resetAndDestroy sends RST, as a crashed server or a broken network path would.
    for (const sock of sockets) sock.resetAndDestroy();
    sockets.clear();
    pairs.clear();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };

  await listen();
  return {
    get port() {
      return port;
    },
    get accepted() {
      return accepted;
    },
    url(target: string) {
      const u = new URL(target);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    cut: close,
    hold() {
      held = true;
      for (const p of pairs) stall(p);
    },
    release() {
      if (!held) return;
      held = false;
      for (const p of pairs) forward(p);
    },
    async restore() {
      if (!server) await listen();
    },
    stop: close,
  };
}

/** A proxy in front of the test database (TEST_DATABASE_URL or the embedded server). */
export function startDatabaseProxy(): Promise<TcpProxy> {
  const target = new URL(testDatabaseUrl());
  return startTcpProxy(target.hostname || '127.0.0.1', Number(target.port || 5432));
}

/** A proxy in front of the test Azurite's blob service, and the storage connection string through it. */
export async function startAzuriteProxy(): Promise<{ proxy: TcpProxy; connection: string }> {
  const direct = testAzuriteConnection();
  const endpoint = /BlobEndpoint=([^;]+)/.exec(direct)?.[1];
  if (!endpoint) throw new Error(`no BlobEndpoint in the test storage connection: ${direct}`);
  const target = new URL(endpoint);
  const proxy = await startTcpProxy(target.hostname, Number(target.port));
  return { proxy, connection: direct.replace(endpoint, proxy.url(endpoint)) };
}
