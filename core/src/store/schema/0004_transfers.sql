-- Transfers of the organizational relationship (组织关系转接, DESIGN §5).

CREATE TABLE transfers (
    transfer_id        TEXT PRIMARY KEY,
    letter_no          TEXT NOT NULL,
    -- 'outgoing': this node is the sender (it decides); 'incoming': the receiver (it votes).
    direction          TEXT NOT NULL CHECK (direction IN ('outgoing', 'incoming')),
    sender             TEXT NOT NULL,
    receiver           TEXT NOT NULL,
    member_id          TEXT NOT NULL,
    member_name        TEXT NOT NULL DEFAULT '',
    state              TEXT NOT NULL,
    issued_on          TEXT NOT NULL,
    expires_on         TEXT NOT NULL,
    valid_days         INTEGER NOT NULL,
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
    possible_duplicate TEXT NOT NULL DEFAULT '',
    created_at_ms      INTEGER NOT NULL,
    updated_at_ms      INTEGER NOT NULL
) STRICT;

CREATE INDEX transfers_member ON transfers (member_id);
CREATE UNIQUE INDEX transfers_letter ON transfers (letter_no, direction);

-- Letter numbers made void (cancelled, re-issued, aborted): refused if they
-- ever come back (DOMAIN R10).
CREATE TABLE void_letters (
    letter_no   TEXT PRIMARY KEY,
    transfer_id TEXT NOT NULL
) STRICT;

-- A member transferred away is a tombstone: only its id, generation and
-- this forward pointer stay (DOMAIN §9).
ALTER TABLE members ADD COLUMN moved_to_node TEXT NOT NULL DEFAULT '';
ALTER TABLE members ADD COLUMN moved_to_place TEXT NOT NULL DEFAULT '';
ALTER TABLE members ADD COLUMN moved_transfer_id TEXT NOT NULL DEFAULT '';
ALTER TABLE members ADD COLUMN moved_letter_no TEXT NOT NULL DEFAULT '';
ALTER TABLE members ADD COLUMN moved_on TEXT NOT NULL DEFAULT '';

ALTER TABLE peers ADD COLUMN auto_accept_branch TEXT NOT NULL DEFAULT '';
