-- Rollups: minute, hour and day aggregates of events, folded in incrementally by `ingest_seq`
-- (src/rollups/run.ts). The column lists mirror src/rollups/definitions.ts; the test "migration:
-- rollup tables match the definitions and the sketch profile the server supports"
-- (test/integration/rollups-core.test.ts) checks that they agree.

-- Distinct counts use HyperLogLog when the hll extension can be installed; otherwise the sketch
-- columns are bigint[] K-minimum-values sketches (src/rollups/sketches.ts). The extension goes into
-- public, not the application schema, so that dropping one schema never drops a type that other
-- schemas' tables use. Not being allowed to install it is not an error: the fallback works.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'hll')
     AND EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'hll') THEN
    BEGIN
      CREATE EXTENSION IF NOT EXISTS hll SCHEMA public;
    EXCEPTION
      -- A concurrent migration of another schema may be installing it at the same moment.
      WHEN unique_violation OR duplicate_object THEN NULL;
      WHEN insufficient_privilege THEN
        RAISE NOTICE 'hll is available but this role may not install it: distinct counts use the bigint[] fallback';
    END;
  END IF;
END $$;

DO $$
DECLARE
  sketch text := 'bigint[]';
  grain text;
BEGIN
  SELECT format('%I.hll', n.nspname) INTO sketch
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
  WHERE e.extname = 'hll';
  IF sketch IS NULL THEN
    sketch := 'bigint[]';
  END IF;

  -- No sequences or defaults calling volatile functions here: either would stop Citus from
  -- pushing the rollup INSERT..SELECT down to the shards.
  FOREACH grain IN ARRAY ARRAY['minute', 'hour', 'day'] LOOP
    EXECUTE format($ddl$
      CREATE TABLE %I (
        tenant_id   bigint      NOT NULL,
        bucket      timestamptz NOT NULL,
        type        text        NOT NULL,
        country     text        NOT NULL,
        browser     text        NOT NULL,
        campaign_id text        NOT NULL,
        events      bigint      NOT NULL,
        revenue     numeric     NOT NULL,
        sessions    %s          NOT NULL,
        users       %s          NOT NULL,
        PRIMARY KEY (tenant_id, bucket, type, country, browser, campaign_id)
      ) WITH (fillfactor = 70)$ddl$, 'rollup_' || grain, sketch, sketch);
    -- Retention deletes by bucket across tenants.
    EXECUTE format('CREATE INDEX %I ON %I (bucket)', 'rollup_' || grain || '_bucket_idx', 'rollup_' || grain);
  END LOOP;
END $$;

-- One row per rollup: the last ingest_seq folded in. Local to the coordinator on Citus (like the
-- classic tutorial's rollups table): it is locked FOR UPDATE by each run, so runs serialize.
CREATE TABLE rollup_state (
  name             text PRIMARY KEY,
  last_seq         bigint NOT NULL DEFAULT 0,
  last_run_at      timestamptz,
  last_rows        bigint NOT NULL DEFAULT 0,
  last_duration_ms integer,
  created_at       timestamptz NOT NULL DEFAULT now()
);
INSERT INTO rollup_state (name) VALUES ('minute'), ('hour'), ('day');

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
    PERFORM create_distributed_table('rollup_minute', 'tenant_id', colocate_with => 'events');
    PERFORM create_distributed_table('rollup_hour', 'tenant_id', colocate_with => 'events');
    PERFORM create_distributed_table('rollup_day', 'tenant_id', colocate_with => 'events');
  END IF;
END $$;
