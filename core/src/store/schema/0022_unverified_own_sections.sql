-- At a restored host: its own host section of a member, as a peer's
-- holdings showed it, under an agreement this node did not know when it
-- took those holdings (a restore made it forget the agreement), so it could
-- not take the section back then (docs/restore.md, Taking back one's own
-- records). Once this node knows the agreement again, as its inflow party,
-- it takes the section back if it is still newer than its own. One row per
-- member: the highest version seen.
CREATE TABLE unverified_own_sections (
    member_id  TEXT PRIMARY KEY,
    generation INTEGER NOT NULL CHECK (generation >= 0),
    counter    INTEGER NOT NULL CHECK (counter >= 0),
    section    BLOB NOT NULL
) STRICT;
