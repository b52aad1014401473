//! Letter numbers (docs/transfers.md): `<NODE>-<YEAR>-<NNNNNN>`, numbered
//! from 1 again each year as paper registers are, so a number means
//! nothing without its year. Every comparison goes through
//! [`LetterPlace`], which orders by (year, number).
//!
//! Each year has its own counter (`counters` row `letter:<YEAR>`). A
//! letter's year is the later of this node's calendar year and the latest
//! year it has numbered in: a clock set back across New Year never numbers
//! into a year already left, so a later letter always has a later place.

use std::fmt;

use chrono::Datelike;
use rusqlite::{Connection, OptionalExtension};

use crate::Error;

/// The prefix of the per-year letter counters in `counters`.
const COUNTER_PREFIX: &str = "letter:";

/// Where a letter stands in its issuer's numbering: ordered by year, then
/// number. `LetterPlace::NONE` stands before every letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct LetterPlace {
    pub year: i32,
    pub number: u64,
}

impl LetterPlace {
    /// Before every letter: a node that has issued none.
    pub const NONE: LetterPlace = LetterPlace { year: 0, number: 0 };
}

impl fmt::Display for LetterPlace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == LetterPlace::NONE {
            f.write_str("none")
        } else {
            write!(f, "{}-{:06}", self.year, self.number)
        }
    }
}

/// A letter number this system issues, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LetterNo {
    /// The issuing node's id, upper case.
    pub issuer: String,
    pub place: LetterPlace,
}

impl LetterNo {
    /// Parses `<NODE>-<YEAR>-<NNNNNN>`; `None` for anything else (a paper
    /// letter's number as an operator typed it).
    pub fn parse(letter_no: &str) -> Option<LetterNo> {
        let mut parts = letter_no.rsplitn(3, '-');
        let number = parts.next()?;
        let year = parts.next()?;
        let issuer = parts.next()?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if issuer.is_empty() || year.len() != 4 || !digits(year) || !digits(number) {
            return None;
        }
        Some(LetterNo {
            issuer: issuer.to_string(),
            place: LetterPlace {
                year: year.parse().ok()?,
                number: number.parse().ok()?,
            },
        })
    }

    /// The place of `letter_no` in its issuer's numbering;
    /// [`LetterPlace::NONE`] when it is not one of this system's numbers.
    pub fn place_of(letter_no: &str) -> LetterPlace {
        LetterNo::parse(letter_no).map_or(LetterPlace::NONE, |l| l.place)
    }

    /// Whether node `me` issued this number.
    pub fn is_issued_by(&self, me: &str) -> bool {
        self.issuer == me.to_uppercase()
    }

    /// Whether `later` is a letter of the same issuer as `earlier`,
    /// numbered after it (by year, then number). Letters of two issuers,
    /// or numbers this system did not issue, are not ordered.
    pub fn is_later_of_same_issuer(later: &str, earlier: &str) -> bool {
        match (LetterNo::parse(later), LetterNo::parse(earlier)) {
            (Some(a), Some(b)) => a.issuer == b.issuer && a.place > b.place,
            _ => false,
        }
    }

    /// Whether the release `later` (letter number, transfer id) came after
    /// `earlier` from the same issuer: a later number, or the same number
    /// under a later transfer id. One number comes twice only from a
    /// sender restored to before the first letter where no peer it
    /// reconciled with held it; transfer ids are UUIDv7, ordered by the
    /// time they were made, so the one made later (on the later branch)
    /// is the greater. Unknown transfer ids leave one number unordered.
    pub fn is_later_release(later: (&str, &str), earlier: (&str, &str)) -> bool {
        if LetterNo::is_later_of_same_issuer(later.0, earlier.0) {
            return true;
        }
        later.0 == earlier.0
            && LetterNo::parse(later.0).is_some()
            && !later.1.is_empty()
            && !earlier.1.is_empty()
            && later.1 > earlier.1
    }
}

impl fmt::Display for LetterNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}-{:06}",
            self.issuer, self.place.year, self.place.number
        )
    }
}

fn counter_name(year: i32) -> String {
    format!("{COUNTER_PREFIX}{year}")
}

/// The last number counted in `year` (0 before its first letter).
pub fn counted(conn: &Connection, year: i32) -> Result<u64, Error> {
    Ok(conn
        .prepare_cached("SELECT value FROM counters WHERE name = ?1")?
        .query_row([counter_name(year)], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}

fn set_counted(conn: &Connection, year: i32, number: u64) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO counters (name, value) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )?
    .execute(rusqlite::params![counter_name(year), number])?;
    Ok(())
}

/// The place of the last letter this node numbered (issued, or learnt of
/// from a peer's report after a restore).
pub fn last_issued(conn: &Connection) -> Result<LetterPlace, Error> {
    let mut rows = conn.prepare_cached(
        "SELECT name, value FROM counters WHERE name LIKE 'letter:%' AND value > 0",
    )?;
    let mut last = LetterPlace::NONE;
    for row in rows.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?)))? {
        let (name, number) = row?;
        let year = name[COUNTER_PREFIX.len()..].parse::<i32>().map_err(|_| {
            Error::corrupt("a letter counter's name", name.clone(), "letter:<YEAR>")
        })?;
        last = last.max(LetterPlace { year, number });
    }
    Ok(last)
}

/// Numbers a new letter of node `me` on `today`, never a place already
/// counted.
pub fn issue(conn: &Connection, me: &str, today: chrono::NaiveDate) -> Result<LetterNo, Error> {
    let year = today.year().max(last_issued(conn)?.year);
    let number = counted(conn, year)? + 1;
    set_counted(conn, year, number)?;
    Ok(LetterNo {
        issuer: me.to_uppercase(),
        place: LetterPlace { year, number },
    })
}

/// Counts `place` as issued (a peer reported a letter of ours this copy
/// of the database forgot): later letters are numbered past it.
pub fn count_past(conn: &Connection, place: LetterPlace) -> Result<(), Error> {
    if place != LetterPlace::NONE && place.number > counted(conn, place.year)? {
        set_counted(conn, place.year, place.number)?;
    }
    Ok(())
}

/// The numbers of the letters this node sent to nodes (a paper letter's
/// number is the one an operator typed).
fn sent_letters(conn: &Connection) -> Result<Vec<String>, Error> {
    Ok(conn
        .prepare(
            "SELECT letter_no FROM transfers WHERE direction = 'outgoing' AND receiver NOT LIKE 'place:%'",
        )?
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?)
}

/// Checks at start that each year's counter is past every letter number
/// this node issued in that year (paper letters excluded: an operator
/// types those). A counter behind them (edited by hand, or a damaged file)
/// would issue a number again: refused as a damaged database, never
/// repaired silently.
pub fn check_counters(conn: &Connection, me: &str) -> Result<(), Error> {
    let mut highest: std::collections::BTreeMap<i32, (u64, String)> = Default::default();
    for letter_no in sent_letters(conn)? {
        let Some(letter) = LetterNo::parse(&letter_no).filter(|l| l.is_issued_by(me)) else {
            continue;
        };
        let entry = highest
            .entry(letter.place.year)
            .or_insert((0, String::new()));
        if letter.place.number > entry.0 {
            *entry = (letter.place.number, letter_no);
        }
    }
    for (year, (number, letter_no)) in highest {
        let counter = counted(conn, year)?;
        if number > counter {
            return Err(Error::corrupt(
                format!("the letter counter of {year} (`counters` row `{}`)", counter_name(year)),
                counter.to_string(),
                format!("at least {number}: this node issued letter {letter_no}, and a lower counter would issue its number again"),
            ));
        }
    }
    Ok(())
}

/// Migration 0012: the single counter that numbered letters across years
/// becomes one counter per year, and a restore's letter floor gets its
/// year. Each year's counter starts at the highest number issued in it;
/// the latest year's at the old counter if that is higher (it may have
/// jumped past a peer's report). A counter with no letter behind it
/// numbered nothing that can come back, so it is dropped.
pub(crate) fn migrate_to_yearly(tx: &Connection) -> Result<(), Error> {
    let old: u64 = tx
        .query_row(
            "SELECT value FROM counters WHERE name = 'letter'",
            [],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let mut places: Vec<LetterPlace> = sent_letters(tx)?
        .iter()
        .filter_map(|l| LetterNo::parse(l).map(|l| l.place))
        .collect();
    places.sort();
    for place in &places {
        count_past(tx, *place)?;
    }
    if let Some(latest) = places.last() {
        count_past(
            tx,
            LetterPlace {
                year: latest.year,
                number: old,
            },
        )?;
    }
    tx.execute("DELETE FROM counters WHERE name = 'letter'", [])?;
    // The floor was a number of the single counter: its year is that of
    // the latest letter numbered up to it.
    let floor: Option<u64> = tx
        .query_row("SELECT letter_floor FROM restore WHERE id = 1", [], |r| {
            r.get(0)
        })
        .optional()?;
    if let Some(floor) = floor {
        let year = places
            .iter()
            .filter(|p| p.number <= floor)
            .map(|p| p.year)
            .max()
            .unwrap_or(0);
        tx.execute(
            "UPDATE restore SET letter_floor_year = ?1 WHERE id = 1",
            [year],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn db() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT;",
        )
        .unwrap();
        conn
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn places_order_by_year_before_number() {
        let late_2026 = LetterNo::place_of("PINGLIANG-2026-000950");
        let early_2027 = LetterNo::place_of("PINGLIANG-2027-000002");
        assert!(early_2027 > late_2026);
        assert!(LetterNo::place_of("纸质〔2026〕12号") == LetterPlace::NONE);
        assert!(LetterPlace::NONE < early_2027);
        let parsed = LetterNo::parse("XI-AN-2027-000002").unwrap();
        assert_eq!(parsed.issuer, "XI-AN", "an issuer id may hold a dash");
        assert_eq!(parsed.to_string(), "XI-AN-2027-000002");
        assert!(LetterNo::parse("PINGLIANG-27-000002").is_none());
        assert!(LetterNo::parse("-2027-000002").is_none());
        assert!(LetterNo::parse("PINGLIANG-2027-").is_none());
    }

    #[test]
    fn numbering_restarts_each_year_and_never_goes_back_a_year() {
        let conn = db();
        let issue = |d| issue(&conn, "pingliang", d).unwrap().to_string();
        assert_eq!(issue(date(2026, 12, 31)), "PINGLIANG-2026-000001");
        assert_eq!(issue(date(2026, 12, 31)), "PINGLIANG-2026-000002");
        assert_eq!(issue(date(2027, 1, 1)), "PINGLIANG-2027-000001");
        // A clock set back across New Year numbers on in 2027.
        assert_eq!(issue(date(2026, 12, 30)), "PINGLIANG-2027-000002");
        assert_eq!(
            last_issued(&conn).unwrap(),
            LetterPlace {
                year: 2027,
                number: 2
            }
        );
        // A reported letter of an earlier year moves only that year's counter.
        count_past(&conn, LetterNo::place_of("PINGLIANG-2026-000009")).unwrap();
        assert_eq!(counted(&conn, 2026).unwrap(), 9);
        assert_eq!(issue(date(2027, 1, 2)), "PINGLIANG-2027-000003");
    }
}
