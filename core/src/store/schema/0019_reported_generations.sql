-- Generations a peer's holdings reported of members this restored node
-- did not own at that generation when it adopted them (docs/restore.md,
-- The transfer rule): a release that installs one of them later, at a
-- lower generation, is a release of a branch the peers have moved past,
-- and the node yields at once. The highest reported per member.
CREATE TABLE reported_generations (
    member_id   TEXT PRIMARY KEY,
    generation  INTEGER NOT NULL CHECK (generation > 0),
    owner       TEXT NOT NULL,
    letter_no   TEXT NOT NULL,
    transfer_id TEXT NOT NULL
) STRICT;
