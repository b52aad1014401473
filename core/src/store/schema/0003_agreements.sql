-- Co-management agreements (双向共管协议, DESIGN §4a) and the shares they
-- make legitimate.

CREATE TABLE agreements (
    agreement_id      TEXT PRIMARY KEY,
    number            TEXT NOT NULL,
    -- The outflow party coordinates: it numbers versions, activates, expires.
    outflow_node      TEXT NOT NULL,
    inflow_node       TEXT NOT NULL,
    state             TEXT NOT NULL CHECK (state IN ('proposed', 'active', 'expired', 'terminated')),
    -- The latest version the coordinator published (0: only a proposal of
    -- the inflow party so far).
    version           INTEGER NOT NULL,
    active_version    INTEGER NOT NULL DEFAULT 0,
    -- A counter-proposal of the inflow party: waiting for the coordinator's
    -- operator (at the coordinator), or sent and unanswered (at the inflow party).
    pending_terms     BLOB,
    pending_answers   INTEGER NOT NULL DEFAULT 0,
    pending_signature BLOB,
    ended_reason      TEXT NOT NULL DEFAULT '',
    ended_by          TEXT NOT NULL DEFAULT '',
    -- At the owner: the host applied the end and sends nothing more under it.
    host_end_applied  INTEGER NOT NULL DEFAULT 0,
    -- At the host: the effective_until for which copies were dropped on its clock.
    copies_dropped_for TEXT NOT NULL DEFAULT '',
    created_at_ms     INTEGER NOT NULL,
    updated_at_ms     INTEGER NOT NULL
) STRICT;

CREATE TABLE agreement_versions (
    agreement_id    TEXT NOT NULL REFERENCES agreements (agreement_id),
    version         INTEGER NOT NULL,
    terms           BLOB NOT NULL,
    terms_hash      BLOB NOT NULL,
    published_at_ms INTEGER NOT NULL,
    PRIMARY KEY (agreement_id, version)
) STRICT;

-- A signature stays valid once verified (DESIGN §4a): renewing a
-- certificate never invalidates an agreement.
CREATE TABLE agreement_signatures (
    agreement_id   TEXT NOT NULL,
    version        INTEGER NOT NULL,
    signer         TEXT NOT NULL,
    terms_hash     BLOB NOT NULL,
    signature      BLOB NOT NULL,
    certificate    BLOB NOT NULL,
    verified_at_ms INTEGER NOT NULL,
    PRIMARY KEY (agreement_id, version, signer)
) STRICT;

-- Which peer holds a copy of which owned member's home section, and on
-- which basis: what Unshare and the end of a basis act on.
CREATE TABLE shares (
    member_id TEXT NOT NULL,
    peer      TEXT NOT NULL,
    basis     TEXT NOT NULL,
    PRIMARY KEY (member_id, peer)
) STRICT;

CREATE INDEX shares_basis ON shares (basis);
CREATE INDEX home_copies_basis ON home_copies (basis);
