-- Counts the transactions that deleted personal data (a home-section copy
-- dropped, a member or host section deleted, a transfer offer purged, a
-- quarantined event discarded), in `counters` row `erasures`. The node
-- checkpoints the write-ahead log with TRUNCATE soon after the count moves
-- (`store::ERASURES`), so the deleted values do not stay readable in the
-- `-wal` file (secure_delete clears them in the database pages only).
CREATE TRIGGER erasure_home_copy AFTER DELETE ON home_copies BEGIN
    INSERT INTO counters (name, value) VALUES ('erasures', 1)
        ON CONFLICT (name) DO UPDATE SET value = value + 1;
END;

CREATE TRIGGER erasure_member AFTER DELETE ON members BEGIN
    INSERT INTO counters (name, value) VALUES ('erasures', 1)
        ON CONFLICT (name) DO UPDATE SET value = value + 1;
END;

CREATE TRIGGER erasure_host_section AFTER DELETE ON host_sections BEGIN
    INSERT INTO counters (name, value) VALUES ('erasures', 1)
        ON CONFLICT (name) DO UPDATE SET value = value + 1;
END;

CREATE TRIGGER erasure_quarantine AFTER DELETE ON quarantine BEGIN
    INSERT INTO counters (name, value) VALUES ('erasures', 1)
        ON CONFLICT (name) DO UPDATE SET value = value + 1;
END;

CREATE TRIGGER erasure_transfer AFTER DELETE ON transfers BEGIN
    INSERT INTO counters (name, value) VALUES ('erasures', 1)
        ON CONFLICT (name) DO UPDATE SET value = value + 1;
END;

CREATE TRIGGER erasure_offer AFTER UPDATE OF offer, member_name ON transfers
    WHEN (old.offer IS NOT NULL AND new.offer IS NULL)
      OR (old.member_name <> '' AND new.member_name = '')
BEGIN
    INSERT INTO counters (name, value) VALUES ('erasures', 1)
        ON CONFLICT (name) DO UPDATE SET value = value + 1;
END;
