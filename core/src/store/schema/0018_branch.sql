-- The branch of this node's history this file holds (docs/restore.md,
-- A backup of a branch the node left): each earlier log id this file
-- descends from, with the last sequence number of that log it kept (the
-- seq floor of the restore that left it). A backup taken under one of
-- these logs past that number holds a history the node has left.
-- `last_seq` NULL: not known (a restore before this table existed).
CREATE TABLE branch_logs (
    log_id   TEXT PRIMARY KEY,
    last_seq INTEGER CHECK (last_seq IS NULL OR last_seq >= 0)
) STRICT;

INSERT INTO branch_logs (log_id, last_seq)
SELECT log_id, NULL FROM past_log_ids WHERE lineage = 1;
INSERT INTO branch_logs (log_id, last_seq)
SELECT previous_log_id, seq_floor FROM restore WHERE previous_log_id <> ''
ON CONFLICT (log_id) DO UPDATE SET last_seq = excluded.last_seq;
