-- At a host: owners whose home section of a member it did not store because
-- it held a later owner's copy (docs/replication.md, A copy superseded and
-- then dropped). If that later copy goes because its owner, restored, no
-- longer has the member, the host asks each of these owners to share the
-- member again (`ShareWanted`).
CREATE TABLE superseded_shares (
    member_id  TEXT NOT NULL,
    owner      TEXT NOT NULL,
    basis      TEXT NOT NULL,
    generation INTEGER NOT NULL CHECK (generation >= 0),
    counter    INTEGER NOT NULL CHECK (counter >= 0),
    PRIMARY KEY (member_id, owner)
) STRICT;
