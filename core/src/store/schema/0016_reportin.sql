-- Report-in (一键报到, docs/reportin.md): the service stations a host runs
-- and the claims members submit there from their phones.

-- Service stations (流动党员服务站 / 联络站) of this node. `code` is the last
-- segment of the station's QR URL: random, so that no one can enumerate
-- stations from one code.
CREATE TABLE stations (
    code           TEXT PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    address        TEXT NOT NULL DEFAULT '',
    hours          TEXT NOT NULL DEFAULT '',
    contact_person TEXT NOT NULL DEFAULT '',
    contact_phone  TEXT NOT NULL DEFAULT '',
    -- The organization of this node that runs the station.
    host_org       TEXT NOT NULL REFERENCES orgs (org_id),
    state          TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed')),
    created_at_ms  INTEGER NOT NULL
) STRICT;

-- Report-in claims, held at this (host) node only: never sent to a peer.
-- A confirmed claim keeps the member it was confirmed against and drops
-- the personal data it came with (the member's records hold them); a
-- rejected one is deleted after `report_in.rejected_kept_days`.
CREATE TABLE reportin_claims (
    claim_id          TEXT PRIMARY KEY,
    station           TEXT NOT NULL REFERENCES stations (code),
    -- The submission's time in China Standard Time (as contact times).
    submitted_at      TEXT NOT NULL,
    name              TEXT NOT NULL,
    phone             TEXT NOT NULL,
    home_place        TEXT NOT NULL,
    home_branch       TEXT NOT NULL DEFAULT '',
    certificate_no    TEXT NOT NULL DEFAULT '',
    employer          TEXT NOT NULL DEFAULT '',
    address           TEXT NOT NULL DEFAULT '',
    state             TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'confirmed', 'rejected')),
    member_id         TEXT NOT NULL DEFAULT '',
    -- The member's contact status as the owner last shared it, when the
    -- claim was confirmed: a member out of contact then (overdue, lost,
    -- searching, unreachable) was regained through this report-in.
    status_before     TEXT NOT NULL DEFAULT '',
    decided_by        TEXT NOT NULL DEFAULT '',
    decided_at_ms     INTEGER,
    reason            TEXT NOT NULL DEFAULT '',
    submitted_at_ms   INTEGER NOT NULL
) STRICT;

CREATE INDEX reportin_claims_state ON reportin_claims (state, submitted_at_ms);
CREATE INDEX reportin_claims_station ON reportin_claims (station, submitted_at);

-- Deleting a claim, or blanking its personal data on confirmation, is an
-- erasure (migration 0013): the write-ahead log is checkpointed after it.
CREATE TRIGGER erasure_reportin_claim AFTER DELETE ON reportin_claims BEGIN
    INSERT INTO counters (name, value) VALUES ('erasures', 1)
        ON CONFLICT (name) DO UPDATE SET value = value + 1;
END;

CREATE TRIGGER erasure_reportin_claim_blanked AFTER UPDATE OF name ON reportin_claims
    WHEN old.name <> '' AND new.name = ''
BEGIN
    INSERT INTO counters (name, value) VALUES ('erasures', 1)
        ON CONFLICT (name) DO UPDATE SET value = value + 1;
END;

-- The station a member reported in at, in the host's section (sent to the
-- owner with it): the station's name, as people at the owner read it.
ALTER TABLE host_sections ADD COLUMN station TEXT NOT NULL DEFAULT '';

-- How a regained member was found: 'report-in' when a report-in at a
-- host's station ended the lost contact; '' for an operator's decision.
ALTER TABLE contact_decisions ADD COLUMN via TEXT NOT NULL DEFAULT '';
