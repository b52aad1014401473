-- Records of a host that this node relayed to a member's new owner under
-- the transfer that released the member, kept here once a restored node
-- drops the events from its log because their receiver applied them: the
-- host, restored too, takes them back from this node's holdings as it
-- would from the log (docs/restore.md, Taking back one's own records).
-- Never compacted, like the release events they follow.
CREATE TABLE relayed_records (
    seq      INTEGER PRIMARY KEY,
    receiver TEXT NOT NULL,
    kind     INTEGER NOT NULL,
    entity   TEXT NOT NULL,
    payload  BLOB NOT NULL
) STRICT;
