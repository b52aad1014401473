-- A host's own sections, found by author: a host applying an owner's home
-- sections asks once per batch whether it wrote any section at all, before
-- it looks for one per member (docs/replication.md).
CREATE INDEX host_sections_author ON host_sections (author);
