-- At the coordinator of an agreement: where the host's `AgreementEndApplied`
-- stood in each of the host's logs (log id, seq). A seq is a place in one
-- log only: a host restored from a backup (DESIGN §7) starts a new log, and
-- if it skipped this node (`reconcile --without-peer`) its new seqs may
-- reuse the old log's numbers while it has forgotten the end it applied.
-- The coordinator accepts a host record under the agreement if, in the log
-- the record came in, the host had not applied the end before it
-- (DESIGN §4). The first marker of each log stands.
--
-- Agreements whose end was recorded before this table existed have no row
-- here: their `host_end_seq` is judged against every log, as before.
CREATE TABLE host_end_markers (
    agreement_id TEXT NOT NULL,
    log_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (agreement_id, log_id)
) WITHOUT ROWID;
