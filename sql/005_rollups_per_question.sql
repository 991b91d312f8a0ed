-- Rollups per question (issue 18): one small table per question and grain instead of one cube per
-- grain. The list mirrors DEFAULT_SPECS in src/rollups/definitions.ts; the test "migration: rollup
-- tables match the definitions" (test/integration/rollups-core.test.ts) checks that they agree.
-- The cubes of 003 (rollup_minute, rollup_hour, rollup_day) stay until `hubsink rollup
-- migrate-history --drop-old` has copied their history into these tables and verified it.

DO $$
DECLARE
  sketch text;
  spec record;
  grain text;
  tbl text;
  dims text;
  keys text;
BEGIN
  -- One sketch encoding for every rollup table: the old cubes' if they exist (so their history
  -- can be unioned in as it is), else hll when installed, else the bigint[] fallback (003 explains).
  SELECT format_type(a.atttypid, NULL) INTO sketch
  FROM pg_attribute a
  WHERE a.attrelid = to_regclass('rollup_minute') AND a.attname = 'sessions' AND NOT a.attisdropped;
  IF sketch IS NULL THEN
    SELECT format('%I.hll', n.nspname) INTO sketch
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'hll';
  END IF;
  IF sketch IS NULL THEN
    sketch := 'bigint[]';
  END IF;

  FOR spec IN
    SELECT * FROM (VALUES
      ('total',         ARRAY[]::text[],                 true,  ARRAY['minute', 'hour', 'day']),
      ('type',          ARRAY['type'],                   false, ARRAY['minute', 'hour', 'day']),
      ('country',       ARRAY['country'],                false, ARRAY['hour', 'day']),
      ('browser',       ARRAY['browser'],                false, ARRAY['hour', 'day']),
      ('campaign_type', ARRAY['campaign_id', 'type'],    false, ARRAY['hour', 'day'])
    ) AS s(name, dimensions, distinct_counts, grains)
  LOOP
    FOREACH grain IN ARRAY spec.grains LOOP
      tbl := format('rollup_%s_%s', spec.name, grain);
      SELECT coalesce(string_agg(format('%I text NOT NULL', d), ', '), ''), coalesce(string_agg(format(', %I', d), ''), '')
        INTO dims, keys FROM unnest(spec.dimensions) AS d;
      -- Small rows: the fixed-width columns first (no alignment padding between them), the
      -- variable-width ones after; sketches only where distinct counts are asked. Default
      -- fillfactor: rows are appended bucket after bucket, and only the current bucket's rows are
      -- updated, on pages that in-page pruning keeps room in; reserved free space on every older
      -- page would be a tenth of the table wasted for years. No sequences or volatile defaults:
      -- either would stop Citus from pushing the rollup INSERT..SELECT down to the shards.
      EXECUTE format(
        'CREATE TABLE %I (tenant_id bigint NOT NULL, bucket timestamptz NOT NULL, events bigint NOT NULL, revenue numeric NOT NULL%s%s, PRIMARY KEY (tenant_id, bucket%s))',
        tbl,
        CASE WHEN dims = '' THEN '' ELSE ', ' || dims END,
        CASE WHEN spec.distinct_counts THEN format(', sessions %s NOT NULL, users %s NOT NULL', sketch, sketch) ELSE '' END,
        keys);
      -- Retention deletes by bucket across tenants. Buckets grow with the physical order of the
      -- rows, so a BRIN index answers that with a few pages instead of a B-tree as large as the key.
      EXECUTE format('CREATE INDEX %I ON %I USING brin (bucket)', tbl || '_bucket_idx', tbl);
      -- Where the fold starts: the old cube of the same grain has folded in every event up to its
      -- watermark, and `rollup migrate-history` copies exactly those, so none is counted twice.
      INSERT INTO rollup_state (name, last_seq)
      SELECT spec.name || '_' || grain, coalesce((SELECT last_seq FROM rollup_state WHERE name = grain), 0);
      IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
        PERFORM create_distributed_table(tbl, 'tenant_id', colocate_with => 'events');
      END IF;
    END LOOP;
  END LOOP;
  -- The old cubes are never folded again: their state rows would hold back everything that reads
  -- the lowest watermark (partition retention keeps raw rows the rollups have not folded in).
  DELETE FROM rollup_state WHERE name IN ('minute', 'hour', 'day');
END $$;

-- Progress of `hubsink rollup migrate-history`: one row per (old cube, new rollup) with the last
-- bucket copied, written in the transaction that copies the chunk, so a rerun resumes exactly.
CREATE TABLE rollup_history_progress (
  source      text        NOT NULL,
  target      text        NOT NULL,
  done_until  timestamptz NOT NULL,
  finished    boolean     NOT NULL DEFAULT false,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (source, target)
);
