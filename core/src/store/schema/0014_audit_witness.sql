-- The audit heads (entry count and last hash) each peer's batches carried,
-- per log of the peer: the highest seen is kept, and a head that moved
-- back below it (entries deleted at the peer) is audited once per value
-- (`backwards_to`).
CREATE TABLE audit_witnessed (
    peer          TEXT NOT NULL,
    log_id        TEXT NOT NULL,
    entries       INTEGER NOT NULL CHECK (entries >= 0),
    hash          BLOB NOT NULL,
    seen_at_ms    INTEGER NOT NULL,
    backwards_to  INTEGER,
    PRIMARY KEY (peer, log_id)
) STRICT;

-- This node's own audit head as each peer reported having witnessed it
-- (its `Hello` answer), under this node's log id then: `audit verify`
-- checks the chain against them.
CREATE TABLE audit_anchors (
    peer           TEXT PRIMARY KEY,
    log_id         TEXT NOT NULL,
    entries        INTEGER NOT NULL CHECK (entries >= 0),
    hash           BLOB NOT NULL,
    reported_at_ms INTEGER NOT NULL
) STRICT;
