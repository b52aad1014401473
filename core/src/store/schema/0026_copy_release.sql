-- At a host: the release that gave a copy's owner the member at the
-- copy's generation, as the owner's home section named it (letter number
-- and transfer id; empty for a member its owner created). Two owners may
-- claim one generation, by two releases of one sender (docs/transfers.md,
-- Two releases of one generation): the copy of the later release's
-- receiver is the one a host keeps.
ALTER TABLE home_copies ADD COLUMN letter_no TEXT NOT NULL DEFAULT '';
ALTER TABLE home_copies ADD COLUMN transfer_id TEXT NOT NULL DEFAULT '';
