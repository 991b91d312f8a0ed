/**
 * Counts the statements a pg.Pool sends to the server, by wrapping `query` on each real client the
 * pool creates (pool.query goes through it too). The statements still run on the real server; this
 * only observes them, e.g. to prove a batch costs a handful of statements rather than thousands.
 */
import pg from 'pg';

export interface CountingPool {
  pool: pg.Pool;
  /** Statement texts, in the order they were sent. */
  readonly statements: string[];
  /** The same statements with their parameter values. */
  readonly calls: { text: string; values: unknown[] }[];
  reset(): void;
}

export function countingPool(config: pg.PoolConfig): CountingPool {
  const statements: string[] = [];
  const calls: { text: string; values: unknown[] }[] = [];
  const pool = new pg.Pool(config);
  pool.on('error', () => undefined);
  pool.on('connect', (client) => {
    const original = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const [first, second] = args;
      const text = typeof first === 'string' ? first : typeof first === 'object' && first !== null && 'text' in first ? String((first as { text: unknown }).text) : '?';
      const values = Array.isArray(second) ? (second as unknown[]) : typeof first === 'object' && first !== null && 'values' in first && Array.isArray((first as { values: unknown }).values) ? ((first as { values: unknown[] }).values) : [];
      statements.push(text);
      calls.push({ text, values });
      return original(...args);
    };
  });
  return {
    pool,
    statements,
    calls,
    reset() {
      statements.length = 0;
      calls.length = 0;
    },
  };
}
