-- Letter numbers restart at 1 each year (docs/transfers.md): one counter
-- per year (`counters` rows `letter:<YEAR>`, filled by this migration's
-- hook from the single counter `letter`), and a restore's letter floor is
-- a (year, number) place.
ALTER TABLE restore ADD COLUMN letter_floor_year INTEGER NOT NULL DEFAULT 0 CHECK (letter_floor_year >= 0);
