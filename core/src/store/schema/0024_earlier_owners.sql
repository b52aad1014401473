-- Nodes that owned the member before this node's latest generation of it,
-- oldest first, space-separated: sent on with its next release, so that
-- every earlier owner learns where it went (docs/transfers.md).
ALTER TABLE members ADD COLUMN earlier_owners TEXT NOT NULL DEFAULT '';
