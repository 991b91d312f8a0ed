-- Analyst-defined rollups (`hubsink rollup define`): their specs live here instead of in
-- src/rollups/definitions.ts, so a new dimension needs no code change and no restart. The fold,
-- the metrics API and GET /api/rollups read this table at run time (src/rollups/catalog.ts); the
-- spec is checked again on every read, as a new definition would be (src/rollups/custom.ts).
-- Local to the coordinator on Citus, like rollup_state: a handful of rows read by every fold.
CREATE TABLE rollup_custom_specs (
  name          text        PRIMARY KEY,
  -- {"dimensions": [{"name", "column", "source"}], "measures": [...], "grains": [...], "allTenants"}
  spec          jsonb       NOT NULL,
  -- The ingest_seq horizon at definition: the incremental fold folds the events after it (its
  -- state rows start there), the backfill those at or below it that are still retained.
  horizon       bigint      NOT NULL,
  -- The backfill's progress, advanced in the transaction that folds each chunk, so an interrupted
  -- backfill resumes exactly where it stopped.
  backfill_seq  bigint      NOT NULL DEFAULT 0,
  backfill_rows bigint      NOT NULL DEFAULT 0,
  -- Set when backfill_seq reached the horizon; until then the metrics API does not offer the rollup.
  backfilled_at timestamptz,
  created_at    timestamptz NOT NULL DEFAULT now(),
  CHECK (name ~ '^[a-z][a-z0-9_]{0,30}$'),
  CHECK (backfill_seq <= horizon)
);
