/**
 * The one shape every SQL builder returns: the text and its bind values together, so the `$n` order
 * lives in the builder that writes the text and callers pass the statement to `query` as it is.
 * Identifiers in `text` come from configuration through ident(); every value is in `values`.
 */
export interface Statement {
  text: string;
  values: unknown[];
}
