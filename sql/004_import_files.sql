-- Progress of `hubsink import`, one row per input file (src/import/importer.ts). A file is
-- identified by its name (a local path, or a blob URL without its query string) together with its
-- size and modification time, so a file that was rewritten starts again from the top, while an
-- interrupted import of an unchanged file resumes after the last batch it wrote.
--
-- `units` counts lines (NDJSON) or records (CSV) handled, and `bytes` the input bytes they took
-- (uncompressed NDJSON resumes by seeking there). Both move only after the batch they cover was
-- written and its invalid lines parked: resuming repeats at most one batch, which the events key
-- and the dead_letters source key make harmless.
--
-- A plain table on every backend (on Citus it lives on the coordinator): one row per file.
CREATE TABLE import_files (
  source       text        NOT NULL,
  size         bigint      NOT NULL,
  modified_at  timestamptz NOT NULL,
  format       text        NOT NULL,
  units        bigint      NOT NULL DEFAULT 0,
  bytes        bigint      NOT NULL DEFAULT 0,
  inserted     bigint      NOT NULL DEFAULT 0,
  duplicates   bigint      NOT NULL DEFAULT 0,
  invalid      bigint      NOT NULL DEFAULT 0,
  rejected     bigint      NOT NULL DEFAULT 0,
  started_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz,
  PRIMARY KEY (source, size, modified_at)
);
