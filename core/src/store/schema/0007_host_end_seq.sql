-- At the coordinator of an agreement: where in the host's log the host's
-- `AgreementEndApplied` stood (its seq). The coordinator accepts a host
-- record under the agreement only if the host appended it before that
-- marker (DESIGN §4), and a record that arrives late, held until its member
-- arrived after a restore or sent again in the host's holdings, is judged
-- by its own place in the log, not by when it is checked.
--
-- Rows that recorded the end before this column existed keep 0: every
-- record after the end is refused, as before.
ALTER TABLE agreements ADD COLUMN host_end_seq INTEGER NOT NULL DEFAULT 0;
