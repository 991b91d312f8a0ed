/**
 * The built-in rollup dimensions by public name, with the heading the dashboard gives each: the one
 * list of their names. config.ts reads a HUBSINK_ROLLUP_<NAME>_VALUES allow-list for each, the rollup
 * catalog (src/rollups/definitions.ts) must say where each one's values come from (a
 * Record<BuiltinDimensionName, …>, so the compiler asks), and the dashboard takes the headings
 * through the wire types (src/serving/wire.ts). It imports nothing: config.ts, at the bottom of the
 * layers, and the browser bundle may both import it.
 */
export const BUILTIN_DIMENSION_LABELS = { type: 'Event type', country: 'Country', browser: 'Browser', campaign: 'Campaign' } as const;
export type BuiltinDimensionName = keyof typeof BUILTIN_DIMENSION_LABELS;
export const BUILTIN_DIMENSION_NAMES = Object.keys(BUILTIN_DIMENSION_LABELS) as BuiltinDimensionName[];

/** What a dimension's public name (and its rollup column) may be, built in or analyst-defined. */
export const DIMENSION_NAME = /^[a-z][a-z0-9_]{0,30}$/;
