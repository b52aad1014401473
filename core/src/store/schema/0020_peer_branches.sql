-- Where each peer's restores left its earlier logs (docs/restore.md, A
-- backup of a branch the node left), as its `EpochComplete` said: the
-- lowest sequence number of the log that a branch of the peer's history
-- kept. A later restore of that peer whose holdings request claims more
-- of the log is of a branch the peer left, and is refused.
CREATE TABLE peer_branch_points (
    origin  TEXT NOT NULL,
    log_id  TEXT NOT NULL,
    kept_to INTEGER NOT NULL CHECK (kept_to >= 0),
    PRIMARY KEY (origin, log_id)
) STRICT;
