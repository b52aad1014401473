-- The peer whose holdings showed a kept own section. A section relayed
-- under a transfer names that peer's release of the member: the peer,
-- restored to before it relayed it, gets it back in this node's holdings
-- and relays it again (docs/restore.md, Taking back one's own records).
ALTER TABLE unverified_own_sections ADD COLUMN shown_by TEXT NOT NULL DEFAULT '';
