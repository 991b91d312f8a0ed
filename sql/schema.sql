-- The schema that the migrations in sql/ produce, normalized (test/integration/schema-dump.ts says how).
-- Generated: do not edit. After changing a migration, refresh it with `npm run schema:dump` and review the diff.

CREATE TABLE :schema.access_grants (
  principal_kind text NOT NULL,
  principal_id uuid NOT NULL,
  tenant_id bigint NOT NULL,
  note text,
  granted_at timestamp with time zone NOT NULL DEFAULT now(),
  CONSTRAINT access_grants_kind CHECK ((principal_kind = ANY (ARRAY['group'::text, 'user'::text]))),
  CONSTRAINT access_grants_note_length CHECK ((char_length(note) <= 200)),
  CONSTRAINT access_grants_pkey PRIMARY KEY (principal_kind, principal_id, tenant_id),
  CONSTRAINT access_grants_tenant CHECK ((tenant_id >= 0))
);
CREATE UNIQUE INDEX access_grants_pkey ON :schema.access_grants USING btree (principal_kind, principal_id, tenant_id);
CREATE INDEX access_grants_principal_idx ON :schema.access_grants USING btree (principal_id);

CREATE TABLE :schema.dead_letters (
  id bigint NOT NULL DEFAULT nextval(':schema.dead_letters_id_seq'::regclass),
  reason text NOT NULL,
  error text NOT NULL,
  status text NOT NULL DEFAULT 'parked'::text,
  tenant_id bigint,
  event_id uuid,
  body bytea NOT NULL,
  properties jsonb NOT NULL DEFAULT '{}'::jsonb,
  body_sha256 bytea NOT NULL,
  source_hub text NOT NULL,
  source_consumer_group text NOT NULL,
  source_partition text NOT NULL,
  source_sequence bigint NOT NULL,
  source_offset text NOT NULL,
  source_enqueued_at timestamp with time zone NOT NULL,
  source_partition_key text,
  attempts integer NOT NULL,
  first_failure_at timestamp with time zone NOT NULL,
  last_failure_at timestamp with time zone NOT NULL,
  parked_at timestamp with time zone NOT NULL DEFAULT now(),
  updated_at timestamp with time zone NOT NULL DEFAULT now(),
  replay_attempts integer NOT NULL DEFAULT 0,
  last_replay_at timestamp with time zone,
  outcome text,
  CONSTRAINT dead_letters_pkey PRIMARY KEY (id),
  CONSTRAINT dead_letters_reason CHECK ((reason = ANY (ARRAY['invalid'::text, 'rejected'::text]))),
  CONSTRAINT dead_letters_source_key UNIQUE (source_hub, source_partition, source_sequence, source_enqueued_at, body_sha256),
  CONSTRAINT dead_letters_status CHECK ((status = ANY (ARRAY['parked'::text, 'replayed'::text, 'discarded'::text])))
);
CREATE INDEX dead_letters_parked_at_idx ON :schema.dead_letters USING btree (parked_at);
CREATE UNIQUE INDEX dead_letters_pkey ON :schema.dead_letters USING btree (id);
CREATE UNIQUE INDEX dead_letters_source_key ON :schema.dead_letters USING btree (source_hub, source_partition, source_sequence, source_enqueued_at, body_sha256);
CREATE INDEX dead_letters_status_id_idx ON :schema.dead_letters USING btree (status, id);
CREATE INDEX dead_letters_tenant_idx ON :schema.dead_letters USING btree (tenant_id, parked_at);

CREATE TABLE :schema.events (
  tenant_id bigint NOT NULL,
  event_id uuid NOT NULL,
  occurred_at timestamp with time zone NOT NULL,
  type text NOT NULL,
  session_id text,
  user_id text,
  device_id text,
  url text,
  referrer text,
  campaign_id text,
  country text,
  browser text,
  revenue numeric(18,4),
  properties jsonb,
  ingest_seq bigint NOT NULL DEFAULT nextval(':schema.events_ingest_seq_seq'::regclass),
  ingested_at timestamp with time zone NOT NULL DEFAULT now(),
  source_partition text,
  source_sequence bigint,
  source_offset text,
  source_enqueued_at timestamp with time zone,
  CONSTRAINT events_pkey PRIMARY KEY (tenant_id, event_id, occurred_at),
  CONSTRAINT events_type_length CHECK (((char_length(type) >= 1) AND (char_length(type) <= 64)))
) PARTITION BY RANGE (occurred_at);
CREATE INDEX events_ingest_seq_idx ON ONLY :schema.events USING btree (ingest_seq);
CREATE UNIQUE INDEX events_pkey ON ONLY :schema.events USING btree (tenant_id, event_id, occurred_at);

CREATE TABLE :schema.hubsink_migrations (
  version integer NOT NULL,
  name text NOT NULL,
  checksum text NOT NULL,
  applied_at timestamp with time zone NOT NULL DEFAULT now(),
  CONSTRAINT hubsink_migrations_pkey PRIMARY KEY (version)
);
CREATE UNIQUE INDEX hubsink_migrations_pkey ON :schema.hubsink_migrations USING btree (version);

CREATE TABLE :schema.import_files (
  source text NOT NULL,
  size bigint NOT NULL,
  modified_at timestamp with time zone NOT NULL,
  format text NOT NULL,
  units bigint NOT NULL DEFAULT 0,
  bytes bigint NOT NULL DEFAULT 0,
  inserted bigint NOT NULL DEFAULT 0,
  duplicates bigint NOT NULL DEFAULT 0,
  invalid bigint NOT NULL DEFAULT 0,
  rejected bigint NOT NULL DEFAULT 0,
  started_at timestamp with time zone NOT NULL DEFAULT now(),
  updated_at timestamp with time zone NOT NULL DEFAULT now(),
  finished_at timestamp with time zone,
  CONSTRAINT import_files_pkey PRIMARY KEY (source, size, modified_at)
);
CREATE UNIQUE INDEX import_files_pkey ON :schema.import_files USING btree (source, size, modified_at);

CREATE TABLE :schema.rollup_browser_day (
  tenant_id bigint NOT NULL,
  bucket timestamp with time zone NOT NULL,
  events bigint NOT NULL,
  revenue numeric NOT NULL,
  browser text NOT NULL,
  CONSTRAINT rollup_browser_day_pkey PRIMARY KEY (tenant_id, bucket, browser)
);
CREATE INDEX rollup_browser_day_bucket_idx ON :schema.rollup_browser_day USING brin (bucket);
CREATE UNIQUE INDEX rollup_browser_day_pkey ON :schema.rollup_browser_day USING btree (tenant_id, bucket, browser);

CREATE TABLE :schema.rollup_browser_hour (
  tenant_id bigint NOT NULL,
  bucket timestamp with time zone NOT NULL,
  events bigint NOT NULL,
  revenue numeric NOT NULL,
  browser text NOT NULL,
  CONSTRAINT rollup_browser_hour_pkey PRIMARY KEY (tenant_id, bucket, browser)
);
CREATE INDEX rollup_browser_hour_bucket_idx ON :schema.rollup_browser_hour USING brin (bucket);
CREATE UNIQUE INDEX rollup_browser_hour_pkey ON :schema.rollup_browser_hour USING btree (tenant_id, bucket, browser);

CREATE TABLE :schema.rollup_campaign_type_day (
  tenant_id bigint NOT NULL,
  bucket timestamp with time zone NOT NULL,
  events bigint NOT NULL,
  revenue numeric NOT NULL,
  campaign_id text NOT NULL,
  type text NOT NULL,
  CONSTRAINT rollup_campaign_type_day_pkey PRIMARY KEY (tenant_id, bucket, campaign_id, type)
);
CREATE INDEX rollup_campaign_type_day_bucket_idx ON :schema.rollup_campaign_type_day USING brin (bucket);
CREATE UNIQUE INDEX rollup_campaign_type_day_pkey ON :schema.rollup_campaign_type_day USING btree (tenant_id, bucket, campaign_id, type);

CREATE TABLE :schema.rollup_campaign_type_hour (
  tenant_id bigint NOT NULL,
  bucket timestamp with time zone NOT NULL,
  events bigint NOT NULL,
  revenue numeric NOT NULL,
  campaign_id text NOT NULL,
  type text NOT NULL,
  CONSTRAINT rollup_campaign_type_hour_pkey PRIMARY KEY (tenant_id, bucket, campaign_id, type)
);
CREATE INDEX rollup_campaign_type_hour_bucket_idx ON :schema.rollup_campaign_type_hour USING brin (bucket);
CREATE UNIQUE INDEX rollup_campaign_type_hour_pkey ON :schema.rollup_campaign_type_hour USING btree (tenant_id, bucket, campaign_id, type);

CREATE TABLE :schema.rollup_country_day (
  tenant_id bigint NOT NULL,
  bucket timestamp with time zone NOT NULL,
  events bigint NOT NULL,
  revenue numeric NOT NULL,
  country text NOT NULL,
  CONSTRAINT rollup_country_day_pkey PRIMARY KEY (tenant_id, bucket, country)
);
CREATE INDEX rollup_country_day_bucket_idx ON :schema.rollup_country_day USING brin (bucket);
CREATE UNIQUE INDEX rollup_country_day_pkey ON :schema.rollup_country_day USING btree (tenant_id, bucket, country);

CREATE TABLE :schema.rollup_country_hour (
  tenant_id bigint NOT NULL,
  bucket timestamp with time zone NOT NULL,
  events bigint NOT NULL,
  revenue numeric NOT NULL,
  country text NOT NULL,
  CONSTRAINT rollup_country_hour_pkey PRIMARY KEY (tenant_id, bucket, country)
);
CREATE INDEX rollup_country_hour_bucket_idx ON :schema.rollup_country_hour USING brin (bucket);
CREATE UNIQUE INDEX rollup_country_hour_pkey ON :schema.rollup_country_hour USING btree (tenant_id, bucket, country);

CREATE TABLE :schema.rollup_custom_specs (
  name text NOT NULL,
  spec jsonb NOT NULL,
  horizon bigint NOT NULL,
  backfill_seq bigint NOT NULL DEFAULT 0,
  backfill_rows bigint NOT NULL DEFAULT 0,
  backfilled_at timestamp with time zone,
  created_at timestamp with time zone NOT NULL DEFAULT now(),
  CONSTRAINT rollup_custom_specs_check CHECK ((backfill_seq <= horizon)),
  CONSTRAINT rollup_custom_specs_name_check CHECK ((name ~ '^[a-z][a-z0-9_]{0,30}$'::text)),
  CONSTRAINT rollup_custom_specs_pkey PRIMARY KEY (name)
);
CREATE UNIQUE INDEX rollup_custom_specs_pkey ON :schema.rollup_custom_specs USING btree (name);

CREATE TABLE :schema.rollup_day (
  tenant_id bigint NOT NULL,
  bucket timestamp with time zone NOT NULL,
  type text NOT NULL,
  country text NOT NULL,
  browser text NOT NULL,
  campaign_id text NOT NULL,
  events bigint NOT NULL,
  revenue numeric NOT NULL,
  sessions <sketch> NOT NULL,
  users <sketch> NOT NULL,
  CONSTRAINT rollup_day_pkey PRIMARY KEY (tenant_id, bucket, type, country, browser, campaign_id)
) WITH (fillfactor=70);
CREATE INDEX rollup_day_bucket_idx ON :schema.rollup_day USING btree (bucket);
CREATE UNIQUE INDEX rollup_day_pkey ON :schema.rollup_day USING btree (tenant_id, bucket, type, country, browser, campaign_id);

CREATE TABLE :schema.rollup_history_progress (
  source text NOT NULL,
  target text NOT NULL,
  done_until timestamp with time zone NOT NULL,
  finished boolean NOT NULL DEFAULT false,
  updated_at timestamp with time zone NOT NULL DEFAULT now(),
  CONSTRAINT rollup_history_progress_pkey PRIMARY KEY (source, target)
);
CREATE UNIQUE INDEX rollup_history_progress_pkey ON :schema.rollup_history_progress USING btree (source, target);

CREATE TABLE :schema.rollup_hour (
  tenant_id bigint NOT NULL,
  bucket timestamp with time zone NOT NULL,
  type text NOT NULL,
  country text NOT NULL,
  browser text NOT NULL,
  campaign_id text NOT NULL,
  events bigint NOT NULL,
  revenue numeric NOT NULL,
  sessions <sketch> NOT NULL,
  users <sketch> NOT NULL,
  CONSTRAINT rollup_hour_pkey PRIMARY KEY (tenant_id, bucket, type, country, browser, campaign_id)
) WITH (fillfactor=70);
CREATE INDEX rollup_hour_bucket_idx ON :schema.rollup_hour USING btree (bucket);
CREATE UNIQUE INDEX rollup_hour_pkey ON :schema.rollup_hour USING btree (tenant_id, bucket, type, country, browser, campaign_id);

CREATE TABLE :schema.rollup_minute (
  tenant_id bigint NOT NULL,
  bucket timestamp with time zone NOT NULL,
  type text NOT NULL,
  country text NOT NULL,
  browser text NOT NULL,
  campaign_id text NOT NULL,
  events bigint NOT NULL,
  revenue numeric NOT NULL,
  sessions <sketch> NOT NULL,
  users <sketch> NOT NULL,
  CONSTRAINT rollup_minute_pkey PRIMARY KEY (tenant_id, bucket, type, country, browser, campaign_id)
) WITH (fillfactor=70);
CREATE INDEX rollup_minute_bucket_idx ON :schema.rollup_minute USING btree (bucket);
CREATE UNIQUE INDEX rollup_minute_pkey ON :schema.rollup_minute USING btree (tenant_id, bucket, type, country, browser, campaign_id);

CREATE TABLE :schema.rollup_state (
  name text NOT NULL,
  last_seq bigint NOT NULL DEFAULT 0,
  last_run_at timestamp with time zone,
  last_rows bigint NOT NULL DEFAULT 0,
  last_duration_ms integer,
  created_at timestamp with time zone NOT NULL DEFAULT now(),
  CONSTRAINT rollup_state_pkey PRIMARY KEY (name)
);
CREATE UNIQUE INDEX rollup_state_pkey ON :schema.rollup_state USING btree (name);

CREATE TABLE :schema.rollup_total_day (
  tenant_id bigint NOT NULL,
  bucket timestamp with time zone NOT NULL,
  events bigint NOT NULL,
  revenue numeric NOT NULL,
  sessions <sketch> NOT NULL,
  users <sketch> NOT NULL,
  CONSTRAINT rollup_total_day_pkey PRIMARY KEY (tenant_id, bucket)
);
CREATE INDEX rollup_total_day_bucket_idx ON :schema.rollup_total_day USING brin (bucket);
CREATE UNIQUE INDEX rollup_total_day_pkey ON :schema.rollup_total_day USING btree (tenant_id, bucket);

CREATE TABLE :schema.rollup_total_hour (
  tenant_id bigint NOT NULL,
  bucket timestamp with time zone NOT NULL,
  events bigint NOT NULL,
  revenue numeric NOT NULL,
  sessions <sketch> NOT NULL,
  users <sketch> NOT NULL,
  CONSTRAINT rollup_total_hour_pkey PRIMARY KEY (tenant_id, bucket)
);
CREATE INDEX rollup_total_hour_bucket_idx ON :schema.rollup_total_hour USING brin (bucket);
CREATE UNIQUE INDEX rollup_total_hour_pkey ON :schema.rollup_total_hour USING btree (tenant_id, bucket);

CREATE TABLE :schema.rollup_total_minute (
  tenant_id bigint NOT NULL,
  bucket timestamp with time zone NOT NULL,
  events bigint NOT NULL,
  revenue numeric NOT NULL,
  sessions <sketch> NOT NULL,
  users <sketch> NOT NULL,
  CONSTRAINT rollup_total_minute_pkey PRIMARY KEY (tenant_id, bucket)
);
CREATE INDEX rollup_total_minute_bucket_idx ON :schema.rollup_total_minute USING brin (bucket);
CREATE UNIQUE INDEX rollup_total_minute_pkey ON :schema.rollup_total_minute USING btree (tenant_id, bucket);

CREATE TABLE :schema.rollup_type_day (
  tenant_id bigint NOT NULL,
  bucket timestamp with time zone NOT NULL,
  events bigint NOT NULL,
  revenue numeric NOT NULL,
  type text NOT NULL,
  CONSTRAINT rollup_type_day_pkey PRIMARY KEY (tenant_id, bucket, type)
);
CREATE INDEX rollup_type_day_bucket_idx ON :schema.rollup_type_day USING brin (bucket);
CREATE UNIQUE INDEX rollup_type_day_pkey ON :schema.rollup_type_day USING btree (tenant_id, bucket, type);

CREATE TABLE :schema.rollup_type_hour (
  tenant_id bigint NOT NULL,
  bucket timestamp with time zone NOT NULL,
  events bigint NOT NULL,
  revenue numeric NOT NULL,
  type text NOT NULL,
  CONSTRAINT rollup_type_hour_pkey PRIMARY KEY (tenant_id, bucket, type)
);
CREATE INDEX rollup_type_hour_bucket_idx ON :schema.rollup_type_hour USING brin (bucket);
CREATE UNIQUE INDEX rollup_type_hour_pkey ON :schema.rollup_type_hour USING btree (tenant_id, bucket, type);

CREATE TABLE :schema.rollup_type_minute (
  tenant_id bigint NOT NULL,
  bucket timestamp with time zone NOT NULL,
  events bigint NOT NULL,
  revenue numeric NOT NULL,
  type text NOT NULL,
  CONSTRAINT rollup_type_minute_pkey PRIMARY KEY (tenant_id, bucket, type)
);
CREATE INDEX rollup_type_minute_bucket_idx ON :schema.rollup_type_minute USING brin (bucket);
CREATE UNIQUE INDEX rollup_type_minute_pkey ON :schema.rollup_type_minute USING btree (tenant_id, bucket, type);

CREATE TABLE :schema.tenants (
  tenant_id bigint NOT NULL,
  name text,
  first_seen_at timestamp with time zone NOT NULL DEFAULT now(),
  CONSTRAINT tenants_pkey PRIMARY KEY (tenant_id)
);
CREATE UNIQUE INDEX tenants_pkey ON :schema.tenants USING btree (tenant_id);

CREATE SEQUENCE :schema.dead_letters_id_seq AS bigint START 1 INCREMENT 1 MINVALUE 1 MAXVALUE 9223372036854775807 CACHE 1 OWNED BY :schema.dead_letters.id;
CREATE SEQUENCE :schema.events_ingest_seq_seq AS bigint START 1 INCREMENT 1 MINVALUE 1 MAXVALUE 9223372036854775807 CACHE 1 OWNED BY :schema.events.ingest_seq;
