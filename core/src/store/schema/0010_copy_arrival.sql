-- At a host: under which log id of its owner each home-section copy last
-- arrived (DESIGN §7) moves from `copy_epochs` into the copy's own row, so
-- that applying a copy writes one row, not two (docs/BENCHMARKS.md, P13).
-- The owner's EpochComplete drops the copies it owns whose log id is not
-- the one it completed ('' : arrived before any was recorded).
ALTER TABLE home_copies ADD COLUMN arrived_log_id TEXT NOT NULL DEFAULT '';
UPDATE home_copies SET arrived_log_id = COALESCE(
    (SELECT e.log_id FROM copy_epochs e
      WHERE e.origin = home_copies.owner AND e.member_id = home_copies.member_id),
    '');
DROP TABLE copy_epochs;
