import { IDENTIFIER } from '../config.js';

/**
 * Quotes an identifier that comes from configuration. Values never pass through here: they are
 * always bind parameters. Validation keeps names to the plain lower-case form so quoting is exact.
 */
export function ident(name: string): string {
  if (!IDENTIFIER.test(name)) throw new Error(`not a valid SQL identifier: ${JSON.stringify(name)}`);
  return `"${name}"`;
}

/** `"schema"."table"` */
export function qualified(schema: string, table: string): string {
  return `${ident(schema)}.${ident(table)}`;
}
