-- Who may read which storefront when the app runs with HUBSINK_ACCESS=entra (README, "Access per
-- storefront"). One row grants one Microsoft Entra principal, a group or a user (by its object id),
-- one storefront, or every storefront. `hubsink access grant|revoke|list` manages the rows; the HTTP
-- functions read them on every request, so a revoke takes effect on the next request.
--
-- tenant_id 0 stands for every storefront (the central team): storefront ids are positive (the
-- metrics API refuses anything else), so 0 never names one, and the key stays a plain primary key.
CREATE TABLE access_grants (
  principal_kind text        NOT NULL CONSTRAINT access_grants_kind CHECK (principal_kind IN ('group', 'user')),
  principal_id   uuid        NOT NULL,
  tenant_id      bigint      NOT NULL CONSTRAINT access_grants_tenant CHECK (tenant_id >= 0),
  note           text        CONSTRAINT access_grants_note_length CHECK (char_length(note) <= 200),
  granted_at     timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT access_grants_pkey PRIMARY KEY (principal_kind, principal_id, tenant_id)
);

-- A request looks up the caller's user id and group ids at once: by object id, whatever the kind.
CREATE INDEX access_grants_principal_idx ON access_grants (principal_id);

-- On Citus a reference table: a handful of rows, written rarely (two-phase commit is fine then) and
-- read on every request. Replicated to every node, it can also be joined with the distributed
-- rollups should a query ever filter by grants in SQL; a coordinator-only table could not.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
    PERFORM create_reference_table('access_grants');
  END IF;
END $$;
