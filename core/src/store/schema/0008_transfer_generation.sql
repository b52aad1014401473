-- The ownership generation a transfer's release gave the member, on both
-- sides (0: not released, or released before this column existed). A
-- restored sender that learns from the receiver's holdings that it
-- released a member it forgot writes its tombstone at exactly this
-- generation (DESIGN §7), not at the receiver's current one, which is
-- higher if the member moved on since.
ALTER TABLE transfers ADD COLUMN released_generation INTEGER NOT NULL DEFAULT 0;
