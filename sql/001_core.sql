-- Core tables. Written without schema qualification: the migrator runs this file with
-- search_path = <HUBSINK_SCHEMA>, pg_catalog. Citus-only calls run only when the citus extension is
-- present, so the same file serves plain PostgreSQL and a Citus coordinator.
-- (Comments and layout may change after a migration was applied; its statements may not.)

-- Storefronts. Ingest registers unseen tenant ids here; events carry no foreign key to it, so an
-- event from a brand-new storefront is never refused.
CREATE TABLE tenants (
  tenant_id     bigint PRIMARY KEY,
  name          text,
  first_seen_at timestamptz NOT NULL DEFAULT now()
);

-- One row per event. The key includes occurred_at because PostgreSQL requires the partition key
-- in every unique constraint of a partitioned table, and tenant_id because Citus requires the
-- distribution column in it. Redelivered events hit the key and become no-ops.
CREATE TABLE events (
  tenant_id          bigint      NOT NULL,
  event_id           uuid        NOT NULL,
  occurred_at        timestamptz NOT NULL,
  type               text        NOT NULL CONSTRAINT events_type_length CHECK (char_length(type) BETWEEN 1 AND 64),
  session_id         text,
  user_id            text,
  device_id          text,
  url                text,
  referrer           text,
  campaign_id        text,
  country            text,
  browser            text,
  revenue            numeric(18,4),
  properties         jsonb,
  -- Rollup watermark. All writes go through the coordinator, so its sequence is a valid
  -- high-water mark on Citus too (docs/design.md, "Citus facts the code depends on").
  ingest_seq         bigserial   NOT NULL,
  ingested_at        timestamptz NOT NULL DEFAULT now(),
  source_partition   text,
  source_sequence    bigint,
  source_offset      text,
  source_enqueued_at timestamptz,
  CONSTRAINT events_pkey PRIMARY KEY (tenant_id, event_id, occurred_at)
) PARTITION BY RANGE (occurred_at);

-- Rollups read "rows after the last watermark": a range scan on ingest_seq.
CREATE INDEX events_ingest_seq_idx ON events (ingest_seq);

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
    PERFORM create_reference_table('tenants');
    PERFORM create_distributed_table('events', 'tenant_id');
  END IF;
END
$$;
