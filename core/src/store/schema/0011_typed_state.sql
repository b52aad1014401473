-- Typed states, unchanging letter numbers, and restore bookkeeping in
-- tables of its own (it was text in `meta`). The values kept in `meta`
-- before are moved by this migration's hook (`store::migrate_meta`), which
-- refuses a value that does not parse instead of reading it as 0.

-- Transfers: direction and state checked against the states each side
-- has (DESIGN §5). A letter number is never rewritten: a restored sender
-- that went on without a peer may have issued one number twice, and the
-- transfer that got the number again is named in `number_issued_again_as`.
CREATE TABLE transfers_typed (
    transfer_id        TEXT PRIMARY KEY,
    letter_no          TEXT NOT NULL,
    direction          TEXT NOT NULL CHECK (direction IN ('outgoing', 'incoming')),
    sender             TEXT NOT NULL,
    receiver           TEXT NOT NULL,
    member_id          TEXT NOT NULL,
    member_name        TEXT NOT NULL DEFAULT '',
    state              TEXT NOT NULL CHECK (
        (direction = 'outgoing' AND state IN ('offered', 'released', 'completed', 'expired', 'rejected', 'cancelled'))
        OR (direction = 'incoming' AND state IN ('pending', 'accepted', 'completed', 'aborted', 'rejected', 'awaiting_sender'))
    ),
    issued_on          TEXT NOT NULL,
    expires_on         TEXT NOT NULL,
    valid_days         INTEGER NOT NULL CHECK (valid_days >= 0),
    reason             TEXT NOT NULL DEFAULT '',
    branch             TEXT NOT NULL DEFAULT '',
    reject_code        TEXT NOT NULL DEFAULT '',
    reject_reason      TEXT NOT NULL DEFAULT '',
    abort_why          TEXT NOT NULL DEFAULT '',
    -- At the receiver: the offered record (it carries the ID number, as the
    -- paper letter does); purged when the transfer does not complete.
    offer              BLOB,
    released_at_ms     INTEGER,
    receipt_at_ms      INTEGER,
    reissue_of         TEXT NOT NULL DEFAULT '',
    reissued_as        TEXT NOT NULL DEFAULT '',
    number_issued_again_as TEXT NOT NULL DEFAULT '',
    possible_duplicate TEXT NOT NULL DEFAULT '',
    created_at_ms      INTEGER NOT NULL,
    updated_at_ms      INTEGER NOT NULL,
    -- The ownership generation the release gave the member (0: not released).
    released_generation INTEGER NOT NULL DEFAULT 0 CHECK (released_generation >= 0)
) STRICT;

INSERT INTO transfers_typed (transfer_id, letter_no, direction, sender, receiver, member_id, member_name, state,
    issued_on, expires_on, valid_days, reason, branch, reject_code, reject_reason, abort_why, offer, released_at_ms,
    receipt_at_ms, reissue_of, reissued_as, number_issued_again_as, possible_duplicate, created_at_ms, updated_at_ms,
    released_generation)
SELECT transfer_id,
    CASE WHEN instr(letter_no, ' (reissued as ') > 0
         THEN substr(letter_no, 1, instr(letter_no, ' (reissued as ') - 1) ELSE letter_no END,
    direction, sender, receiver, member_id, member_name, state, issued_on, expires_on, valid_days, reason, branch,
    reject_code, reject_reason, abort_why, offer, released_at_ms, receipt_at_ms, reissue_of, reissued_as,
    CASE WHEN instr(letter_no, ' (reissued as ') > 0
         THEN rtrim(substr(letter_no, instr(letter_no, ' (reissued as ') + 14), ')') ELSE '' END,
    possible_duplicate, created_at_ms, updated_at_ms, released_generation
FROM transfers;

DROP TABLE transfers;
ALTER TABLE transfers_typed RENAME TO transfers;
CREATE INDEX transfers_member ON transfers (member_id);
CREATE INDEX transfers_letter ON transfers (letter_no, direction);

-- Log ids this database wrote under before its current one (`meta`
-- `log_id`). `lineage`: its sequence numbers are this file's (it was this
-- file's log, or an ancestor backup's, before the latest restore); 0 for a
-- log of another branch learned from a peer's cursors while reconciling.
CREATE TABLE past_log_ids (
    log_id  TEXT PRIMARY KEY,
    lineage INTEGER NOT NULL CHECK (lineage IN (0, 1))
) STRICT;

-- The latest restore of this database (DESIGN §7): at most one row.
CREATE TABLE restore (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    reconciling     INTEGER NOT NULL CHECK (reconciling IN (0, 1)),
    restored_at_ms  INTEGER NOT NULL CHECK (restored_at_ms > 0),
    -- When the backup was taken; 0: a new database under a known node id.
    backup_at_ms    INTEGER NOT NULL CHECK (backup_at_ms >= 0),
    previous_log_id TEXT NOT NULL,
    -- The last sequence number this file had written when it was restored.
    seq_floor       INTEGER NOT NULL CHECK (seq_floor >= 0),
    -- The last letter number this file had issued when it was restored.
    letter_floor    INTEGER NOT NULL CHECK (letter_floor >= 0),
    -- 0 while reconciling.
    finished_at_ms  INTEGER NOT NULL DEFAULT 0 CHECK (finished_at_ms >= 0)
) STRICT;

-- Counters that only rise (`letter`: the last letter number issued).
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL CHECK (value >= 0)
) STRICT;
