-- The peers' log ids under which a restored node took their holdings
-- (docs/restore.md, Taking a peer's holdings again). A node that was ever
-- restored takes a peer's holdings again when the peer shows a log id not
-- listed here: the peer was restored since, perhaps to a backup holding
-- what this node forgot and adopted from it without.
CREATE TABLE peer_logs_taken (
    peer        TEXT NOT NULL,
    log_id      TEXT NOT NULL,
    taken_at_ms INTEGER NOT NULL,
    PRIMARY KEY (peer, log_id)
) STRICT;
