/**
 * The metrics API's series as they travel in JSON: the one definition the server
 * (src/serving/query.ts) and the dashboard (web/dashboard/data.ts, bundled by esbuild) share. Types
 * only, importing nothing, so the browser bundle takes nothing of the server with it.
 */

export interface MetricsPoint {
  t: string;
  events: number;
  /** Decimal string with 4 places (the scale of events.revenue): exact, unlike a JSON number. */
  revenue: string;
  sessions: number;
  users: number;
}

export interface MetricsSeries {
  /** Value of the `by` dimension ('' when the events had none); null without `by` and for "other". */
  key: string | null;
  /** Present (true) on the one series that sums every value beyond the `top` largest. */
  other?: true;
  /** On the "other" series: how many values it holds. */
  otherKeys?: number;
  points: MetricsPoint[];
}
