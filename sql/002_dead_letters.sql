-- Parked poison: events the pipeline could not write and that retrying cannot fix (reason
-- `invalid` or `rejected`). The `deadletter` function parks them; operators list, replay and
-- discard them with `hubsink dlq`. Transient failures are never parked: they wait on the
-- dead-letter hub until the database is back.
--
-- A plain table on every backend, also on a Citus coordinator: poison is rare, operators query it
-- across tenants, and a global bigserial id keeps `hubsink dlq show ID` simple. It is never joined
-- with distributed tables.
CREATE TABLE dead_letters (
  id                    bigserial   PRIMARY KEY,
  reason                text        NOT NULL CONSTRAINT dead_letters_reason CHECK (reason IN ('invalid', 'rejected')),
  error                 text        NOT NULL,
  status                text        NOT NULL DEFAULT 'parked'
                                    CONSTRAINT dead_letters_status CHECK (status IN ('parked', 'replayed', 'discarded')),
  -- What is known of the event; either may be missing when it could not be parsed.
  tenant_id             bigint,
  event_id              uuid,
  -- The original bytes and application properties, unchanged.
  body                  bytea       NOT NULL,
  properties            jsonb       NOT NULL DEFAULT '{}',
  body_sha256           bytea       NOT NULL,
  -- Where the event came from (the ingest hub, or the dead-letter hub itself for a dead letter
  -- that could not be decoded). source_hub is stored lower-cased: Event Hubs names are not case-sensitive.
  source_hub            text        NOT NULL,
  source_consumer_group text        NOT NULL,
  source_partition      text        NOT NULL,
  source_sequence       bigint      NOT NULL,
  source_offset         text        NOT NULL,
  source_enqueued_at    timestamptz NOT NULL,
  source_partition_key  text,
  attempts              integer     NOT NULL,
  first_failure_at      timestamptz NOT NULL,
  last_failure_at       timestamptz NOT NULL,
  parked_at             timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now(),
  -- Replays: how many were tried, when the last one ran and what it did ('inserted',
  -- 'already present', or the error that left the event parked).
  replay_attempts       integer     NOT NULL DEFAULT 0,
  last_replay_at        timestamptz,
  outcome               text,
  -- A redelivered dead letter (the dead-letter hub is at-least-once) must be parked once. An event is
  -- identified by hub, partition and sequence number; the enqueued time guards against a hub that was
  -- deleted and re-created (its sequence numbers restart), and the body hash against events whose
  -- coordinates were unreadable (they all carry partition 'unknown' and sequence -1). The consumer
  -- group is left out on purpose: the same event dead-lettered by two consumer groups (a redeployment
  -- with a new group reading the hub again) is still one poison event.
  CONSTRAINT dead_letters_source_key UNIQUE (source_hub, source_partition, source_sequence, source_enqueued_at, body_sha256)
);

-- `dlq list` / `replay` / `discard` page through one status in id order.
CREATE INDEX dead_letters_status_id_idx ON dead_letters (status, id);
-- `dlq stats` and the --tenant / --since filters.
CREATE INDEX dead_letters_tenant_idx ON dead_letters (tenant_id, parked_at);
CREATE INDEX dead_letters_parked_at_idx ON dead_letters (parked_at);
