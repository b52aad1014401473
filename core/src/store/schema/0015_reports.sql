-- Reports (docs/reports.md): the node's year-end counts, the owner's
-- contact decisions with their dates and causes, what a tombstone keeps of
-- the member's departure, and the indexes the reports count with.

-- Year-end counts (`report trend`): the members away (流出党员) and all
-- members this node held on 31 December of `year`, recorded by the node
-- itself the day after (source 'node'), or imported for the years before
-- it kept its own (source 'import', `report trend --import`).
CREATE TABLE year_end_counts (
    year           INTEGER PRIMARY KEY CHECK (year BETWEEN 1921 AND 9999),
    mobile         INTEGER NOT NULL CHECK (mobile >= 0),
    -- All members; 0: not known (an imported year may give only a share).
    members        INTEGER NOT NULL CHECK (members >= 0),
    -- The share as published, in per cent, for a year whose `members` is
    -- not known; 0 otherwise.
    share_pct      REAL NOT NULL DEFAULT 0 CHECK (share_pct >= 0 AND share_pct <= 100),
    source         TEXT NOT NULL CHECK (source IN ('node', 'import')),
    note           TEXT NOT NULL DEFAULT '',
    recorded_at_ms INTEGER NOT NULL
) STRICT;

-- The owner's contact decisions (DOMAIN §6.2: searching, regained,
-- unreachable), each with its date and, for a search, the cause of the
-- lost contact (the registers' code 1-7). `members.contact_manual` keeps
-- the latest; these keep the history, so a report counts the statuses of
-- an earlier date and the registers find who was found after how long.
-- Local to the owner: a tombstone deletes them with the member's other
-- records.
CREATE TABLE contact_decisions (
    decision_id    INTEGER PRIMARY KEY,
    member_id      TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('searching', 'regained', 'unreachable')),
    -- The node's local time, as `members.contact_manual_at`.
    decided_at     TEXT NOT NULL,
    cause          TEXT NOT NULL DEFAULT '' CHECK (cause IN ('', '1', '2', '3', '4', '5', '6', '7')),
    recorded_at_ms INTEGER NOT NULL
) STRICT;

CREATE INDEX contact_decisions_member ON contact_decisions (member_id, decided_at);

INSERT INTO contact_decisions (member_id, status, decided_at, recorded_at_ms)
SELECT member_id, contact_manual, contact_manual_at, updated_at_ms FROM members
 WHERE contact_manual IN ('searching', 'regained', 'unreachable') AND contact_manual_at <> '';

-- A tombstone keeps when the member it was had left for where (the open
-- outflow at the release: a date and a place code, as the letter's stub
-- names the destination), so a report as of a date before the release
-- still counts the member away; '' when the member was at home.
ALTER TABLE members ADD COLUMN moved_away_since TEXT NOT NULL DEFAULT '';
ALTER TABLE members ADD COLUMN moved_away_place TEXT NOT NULL DEFAULT '';

-- Counting the members a node holds at a date reads these indexes alone:
-- its own (by branch), and the tombstones of those transferred since.
CREATE INDEX members_counted ON members (owner, moved_on, home_branch, joined_on, membership_state);
CREATE INDEX members_moved_on ON members (moved_on) WHERE moved_on <> '';
-- Activities of a period.
CREATE INDEX activities_date ON activities (date);
