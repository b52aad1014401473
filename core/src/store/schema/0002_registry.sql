-- The member registry (一库) and the change log that replicates it.

-- Organizations of this node: branches, committees, mobile-member branches.
CREATE TABLE orgs (
    org_id         TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    level          TEXT NOT NULL,
    form           TEXT NOT NULL DEFAULT '',
    parent_org     TEXT NOT NULL DEFAULT '',
    contact_person TEXT NOT NULL DEFAULT '',
    phone          TEXT NOT NULL DEFAULT '',
    created_at_ms  INTEGER NOT NULL
) STRICT;

-- Members whose home section this node holds: its own (owner = this node)
-- and, later, tombstones of members transferred away. Sensitive fields
-- (national_id, birth_date, home_address, native_place) never leave the
-- node but inside a transfer offer. national_id is deliberately not unique
-- (DESIGN §3: an incoming transfer may clash and is flagged, not refused).
CREATE TABLE members (
    member_id          TEXT PRIMARY KEY,
    owner              TEXT NOT NULL,
    generation         INTEGER NOT NULL,
    counter            INTEGER NOT NULL,
    name               TEXT NOT NULL,
    gender             TEXT NOT NULL,
    birth_date         TEXT NOT NULL,
    ethnicity          TEXT NOT NULL DEFAULT '',
    native_place       TEXT NOT NULL DEFAULT '',
    national_id        TEXT NOT NULL DEFAULT '',
    education          TEXT NOT NULL DEFAULT '',
    occupation         TEXT NOT NULL DEFAULT '',
    origin             TEXT NOT NULL DEFAULT '',
    party_status       TEXT NOT NULL,
    joined_on          TEXT NOT NULL DEFAULT '',
    full_member_on     TEXT NOT NULL DEFAULT '',
    home_branch        TEXT NOT NULL REFERENCES orgs (org_id),
    phone              TEXT NOT NULL DEFAULT '',
    home_address       TEXT NOT NULL DEFAULT '',
    membership_state   TEXT NOT NULL DEFAULT 'normal',
    -- The official contact status as of the current version (DOMAIN §6.2):
    -- derived from both sides' contact events, or an operator's decision.
    contact_status     TEXT NOT NULL DEFAULT 'in_contact',
    -- An operator's contact decision (searching / regained / unreachable)
    -- and when it was made; the rest of the status is derived.
    contact_manual     TEXT NOT NULL DEFAULT '',
    contact_manual_at  TEXT NOT NULL DEFAULT '',
    created_at_ms      INTEGER NOT NULL,
    updated_at_ms      INTEGER NOT NULL
) STRICT;

CREATE INDEX members_national_id ON members (national_id) WHERE national_id <> '';
CREATE INDEX members_branch ON members (home_branch);
CREATE INDEX members_name ON members (name);

-- Outflow registrations (流出登记) of owned members; at most one open each.
CREATE TABLE outflows (
    outflow_id            TEXT PRIMARY KEY,
    member_id             TEXT NOT NULL REFERENCES members (member_id),
    destination_place     TEXT NOT NULL,
    destination_node      TEXT NOT NULL DEFAULT '',
    direction             TEXT NOT NULL DEFAULT '',
    departed_on           TEXT NOT NULL,
    expected_return       TEXT NOT NULL DEFAULT '',
    reason                TEXT NOT NULL DEFAULT '',
    fixed_location        INTEGER NOT NULL DEFAULT 0,
    certificate_no        TEXT NOT NULL DEFAULT '',
    certificate_issuer    TEXT NOT NULL DEFAULT '',
    certificate_issued_on TEXT NOT NULL DEFAULT '',
    card_no               TEXT NOT NULL DEFAULT '',
    state                 TEXT NOT NULL CHECK (state IN ('open', 'returned')),
    returned_on           TEXT NOT NULL DEFAULT '',
    created_at_ms         INTEGER NOT NULL
) STRICT;

CREATE UNIQUE INDEX outflows_one_open ON outflows (member_id) WHERE state = 'open';
CREATE INDEX outflows_destination ON outflows (destination_place);

-- Copies of home sections that owners shared with this node as a host:
-- only the fields DESIGN §3 allows.
CREATE TABLE home_copies (
    member_id           TEXT PRIMARY KEY,
    owner               TEXT NOT NULL,
    generation          INTEGER NOT NULL,
    counter             INTEGER NOT NULL,
    name                TEXT NOT NULL,
    gender              TEXT NOT NULL,
    birth_year          INTEGER NOT NULL,
    phone               TEXT NOT NULL,
    party_status        TEXT NOT NULL,
    home_branch_name    TEXT NOT NULL,
    home_branch_contact TEXT NOT NULL,
    membership_state    TEXT NOT NULL,
    contact_status      TEXT NOT NULL,
    basis               TEXT NOT NULL,
    outflow             BLOB NOT NULL,
    received_at_ms      INTEGER NOT NULL
) STRICT;

CREATE INDEX home_copies_owner ON home_copies (owner);

-- Host sections: written by the host (author); the owner holds copies.
CREATE TABLE host_sections (
    member_id         TEXT NOT NULL,
    author            TEXT NOT NULL,
    generation        INTEGER NOT NULL,
    counter           INTEGER NOT NULL,
    host_branch       TEXT NOT NULL DEFAULT '',
    reported_on       TEXT NOT NULL DEFAULT '',
    address           TEXT NOT NULL DEFAULT '',
    employer          TEXT NOT NULL DEFAULT '',
    industry          TEXT NOT NULL DEFAULT '',
    job               TEXT NOT NULL DEFAULT '',
    contact_person    TEXT NOT NULL DEFAULT '',
    contact_phone     TEXT NOT NULL DEFAULT '',
    last_seen_at_host TEXT NOT NULL DEFAULT '',
    basis             TEXT NOT NULL DEFAULT '',
    updated_at_ms     INTEGER NOT NULL,
    PRIMARY KEY (member_id, author)
) STRICT;

-- Contact events (visit, phone, message, org life, dues), by their author.
CREATE TABLE contacts (
    contact_id     TEXT PRIMARY KEY,
    member_id      TEXT NOT NULL,
    author         TEXT NOT NULL,
    at             TEXT NOT NULL,
    channel        TEXT NOT NULL,
    by_whom        TEXT NOT NULL DEFAULT '',
    outcome        TEXT NOT NULL DEFAULT '',
    basis          TEXT NOT NULL DEFAULT '',
    recorded_at_ms INTEGER NOT NULL
) STRICT;

CREATE INDEX contacts_member ON contacts (member_id, at);

-- Activities (三会一课, theme party day, study, service), by their author.
CREATE TABLE activities (
    activity_id    TEXT PRIMARY KEY,
    member_id      TEXT NOT NULL,
    author         TEXT NOT NULL,
    kind           TEXT NOT NULL,
    date           TEXT NOT NULL,
    branch         TEXT NOT NULL DEFAULT '',
    hours          REAL NOT NULL DEFAULT 0,
    note           TEXT NOT NULL DEFAULT '',
    basis          TEXT NOT NULL DEFAULT '',
    recorded_at_ms INTEGER NOT NULL
) STRICT;

CREATE INDEX activities_member ON activities (member_id, date);

-- The change log (DESIGN §4): one row per event and audience. seq never
-- repeats, even after compaction deletes the newest rows.
CREATE TABLE events (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    audience      TEXT NOT NULL,
    kind          INTEGER NOT NULL,
    entity        TEXT NOT NULL,
    payload       BLOB NOT NULL,
    created_at_ms INTEGER NOT NULL
);

CREATE INDEX events_audience_seq ON events (audience, seq);
CREATE INDEX events_audience_entity ON events (audience, entity);

-- How far this node applied each peer's log, per log id of that peer.
CREATE TABLE cursors (
    peer          TEXT NOT NULL,
    log_id        TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    applied_total INTEGER NOT NULL DEFAULT 0,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (peer, log_id)
) STRICT;

-- What each peer last asked of our log (from its Pull), for `peer status`.
CREATE TABLE peer_progress (
    peer          TEXT PRIMARY KEY,
    since         INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
) STRICT;

-- Events that can never be valid, kept with the reason (DESIGN §4).
CREATE TABLE quarantine (
    id             INTEGER PRIMARY KEY,
    origin         TEXT NOT NULL,
    log_id         TEXT NOT NULL,
    seq            INTEGER NOT NULL,
    kind           INTEGER NOT NULL,
    entity         TEXT NOT NULL,
    payload        BLOB NOT NULL,
    reason         TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('held', 'applied', 'discarded')),
    received_at_ms INTEGER NOT NULL,
    retried_at_ms  INTEGER
) STRICT;

-- Every disclosure to a peer: what, which version, on which basis; never
-- the values, never compacted (DESIGN §3).
CREATE TABLE disclosures (
    id          INTEGER PRIMARY KEY,
    peer        TEXT NOT NULL,
    record_kind TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    fields      TEXT NOT NULL,
    generation  INTEGER NOT NULL,
    counter     INTEGER NOT NULL,
    basis       TEXT NOT NULL,
    at_ms       INTEGER NOT NULL
) STRICT;

CREATE INDEX disclosures_record ON disclosures (record_id);
