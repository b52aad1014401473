-- Backup, restore and reconcile (DESIGN §7).
--
-- A restored node (a backup copied into place, or a new database under a
-- node id its peers already know) keeps its reconciliation state in `meta`
-- (`reconcile_state`, `restored_at_ms`, `restore_backup_at_ms`,
-- `previous_log_ids`, `restore_seq_floor`) and its progress per peer here.
CREATE TABLE reconcile_peers (
    peer          TEXT PRIMARY KEY,
    -- waiting: not yet adopted; adopted: its holdings were adopted and the
    -- re-emission ends with EpochComplete; skipped: an operator went on
    -- without it (`reconcile --without-peer`), it is still adopted when it
    -- returns.
    state         TEXT NOT NULL CHECK (state IN ('waiting', 'adopted', 'skipped')),
    updated_at_ms INTEGER NOT NULL,
    detail        TEXT NOT NULL DEFAULT ''
) STRICT;

-- At a host: under which log id of its owner each home-section copy last
-- arrived, so that the owner's EpochComplete drops exactly the copies of an
-- older log id that were not sent again.
CREATE TABLE copy_epochs (
    origin    TEXT NOT NULL,
    member_id TEXT NOT NULL,
    log_id    TEXT NOT NULL,
    PRIMARY KEY (origin, member_id)
) STRICT;
