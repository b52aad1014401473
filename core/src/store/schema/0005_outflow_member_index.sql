-- A full index on outflows (member_id): the foreign key to members and
-- every per-member lookup use it (the partial index covers open outflows only).
CREATE INDEX outflows_member ON outflows (member_id);
