-- The node's own bookkeeping: settings, peers, callers awaiting admission,
-- and the hash-chained audit log.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- Peers an operator admitted (`liaisonctl peer add`). Trust needs both this
-- row and a certificate chaining to the federation CA (DESIGN §2).
CREATE TABLE peers (
    node_id          TEXT PRIMARY KEY,
    display_name     TEXT NOT NULL,
    endpoint         TEXT NOT NULL,
    fingerprint      TEXT,
    state            TEXT NOT NULL CHECK (state IN ('active', 'paused')),
    added_at_ms      INTEGER NOT NULL,
    updated_at_ms    INTEGER NOT NULL,
    last_contact_ms  INTEGER
) STRICT;

-- Place codes a peer serves (`peer add --serves`), matched by outflow
-- destinations and agreement scopes.
CREATE TABLE peer_places (
    node_id TEXT NOT NULL REFERENCES peers (node_id) ON DELETE CASCADE,
    place   TEXT NOT NULL,
    PRIMARY KEY (node_id, place)
) STRICT;

-- Nodes with a valid federation certificate that called but are not peers.
CREATE TABLE pending_peers (
    node_id          TEXT PRIMARY KEY,
    remote_addr      TEXT NOT NULL,
    endpoint         TEXT NOT NULL,
    fingerprint      TEXT NOT NULL,
    first_attempt_ms INTEGER NOT NULL,
    last_attempt_ms  INTEGER NOT NULL,
    attempts         INTEGER NOT NULL,
    ignored          INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Append-only: each entry carries the hash of the previous one.
CREATE TABLE audit (
    seq       INTEGER PRIMARY KEY,
    at_ms     INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash      BLOB NOT NULL
) STRICT;

CREATE INDEX audit_at ON audit (at_ms);

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
