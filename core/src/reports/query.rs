//! A report's request as the node reads it (the date counted at and the
//! filters), and the SQL that says which members count at that date.
//!
//! Counting at a date uses the dated facts the node keeps (docs/reports.md):
//! a member counts here from the day it joined (or, if it came by a
//! transfer, from the release) until the release of a transfer away, whose
//! tombstone keeps the date and where the member was away then; an outflow
//! counts from its departure to its return. Every other field is its
//! current value.

use chrono::{Days, Months, NaiveDate};
use liaison_proto::v1 as pb;
use liaison_types::validate;
use rusqlite::types::Value;
use rusqlite::Connection;

use crate::{Ctx, Error};

/// Rows of a table that lists members, unless the request says otherwise.
pub(super) const LIMIT_DEFAULT: usize = 1_000;

/// Which filters a report takes; it refuses the others, saying why.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Takes {
    pub(super) branch: bool,
    pub(super) destination: bool,
    pub(super) period: bool,
}

/// The request, checked.
#[derive(Debug, Clone)]
pub(super) struct Query {
    pub(super) as_of: NaiveDate,
    pub(super) today: NaiveDate,
    /// An organization code ('' for all).
    pub(super) branch: String,
    /// A place code prefix ('' for all).
    pub(super) destination: String,
    /// YYYY-MM-DD or ''.
    pub(super) from: String,
    pub(super) until: String,
    /// Rows of a table that lists members; `None`: all.
    pub(super) limit: Option<usize>,
    me: String,
    /// The node's zone: its calendar days.
    zone: liaison_types::time::Tz,
}

impl Query {
    pub(super) fn parse(
        report: &'static str,
        req: &pb::ReportRequest,
        ctx: &Ctx<'_>,
        takes: Takes,
    ) -> Result<Query, Error> {
        let today = ctx.today();
        let as_of = if req.as_of.trim().is_empty() {
            today
        } else {
            validate::date("--as-of", &req.as_of, today, false)?
        };
        let refuse = |flag: &str| {
            Err(Error::invalid(format!(
                "`report {}` takes no {flag}: leave it out (docs/reports.md lists what each report takes)",
                report.replace('_', "-")
            )))
        };
        let branch = validate::text("--branch", &req.branch, 100)?;
        if !branch.is_empty() && !takes.branch {
            return refuse("--branch");
        }
        let destination = req.destination.trim().to_owned();
        if !destination.is_empty() {
            if !takes.destination {
                return refuse("--destination");
            }
            if !(matches!(destination.len(), 2 | 4 | 6)
                && destination.bytes().all(|b| b.is_ascii_digit()))
            {
                return Err(Error::invalid(format!(
                    "--destination `{destination}` is not a place code of 2, 4 or 6 digits: give a place name or code"
                )));
            }
        }
        let date = |flag: &str, value: &str| -> Result<String, Error> {
            Ok(validate::optional_date(flag, value, today, true)?
                .map(|d| d.to_string())
                .unwrap_or_default())
        };
        let from = date("--from", &req.period_from)?;
        let until = date("--until", &req.period_until)?;
        if (!from.is_empty() || !until.is_empty()) && !takes.period {
            return refuse("--from or --until");
        }
        if !from.is_empty() && !until.is_empty() && from > until {
            return Err(Error::invalid(format!(
                "the period runs from {from} until {until}: --from must not be after --until"
            )));
        }
        let limit = match (req.all_rows, req.limit) {
            (true, _) => None,
            (false, 0) => Some(LIMIT_DEFAULT),
            (false, n) => Some(n as usize),
        };
        Ok(Query {
            as_of,
            today,
            branch,
            destination,
            from,
            until,
            limit,
            me: ctx.me.to_string(),
            zone: ctx.zone,
        })
    }

    /// This node's id.
    pub(super) fn me(&self) -> &str {
        &self.me
    }

    /// The date counted at, YYYY-MM-DD.
    pub(super) fn d(&self) -> String {
        self.as_of.to_string()
    }

    /// The day after, YYYY-MM-DD: a local time `t` is on or before the
    /// date counted at if `t < next_day`.
    pub(super) fn next_day(&self) -> String {
        self.as_of
            .checked_add_days(Days::new(1))
            .unwrap_or(self.as_of)
            .to_string()
    }

    /// The first millisecond after the date counted at, on the node's
    /// calendar (its zone).
    pub(super) fn end_ms(&self) -> i64 {
        let next = self
            .as_of
            .checked_add_days(Days::new(1))
            .unwrap_or(self.as_of);
        next.and_hms_opt(0, 0, 0)
            .and_then(|t| t.and_local_timezone(self.zone).earliest())
            .map(|t| t.timestamp_millis())
            .unwrap_or(i64::MAX)
    }

    /// The node's calendar day of a time.
    pub(super) fn day_of(&self, ms: i64) -> NaiveDate {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap_or_default()
            .with_timezone(&self.zone)
            .date_naive()
    }

    /// The date `months` months before the date counted at.
    pub(super) fn months_before(&self, months: u32) -> String {
        self.as_of
            .checked_sub_months(Months::new(months))
            .unwrap_or(self.as_of)
            .to_string()
    }

    /// The date `days` days before the date counted at.
    pub(super) fn days_before(&self, days: u64) -> String {
        self.as_of
            .checked_sub_days(Days::new(days))
            .unwrap_or(self.as_of)
            .to_string()
    }

    /// The period a report counts in: the request's, else from the first
    /// of January of the date counted at until that date.
    pub(super) fn period_or_year(&self) -> (String, String) {
        let from = if self.from.is_empty() {
            format!("{}-01-01", self.as_of.format("%Y"))
        } else {
            self.from.clone()
        };
        let until = if self.until.is_empty() || self.until > self.d() {
            self.d()
        } else {
            self.until.clone()
        };
        (from, until)
    }

    /// Whether the report counts at an earlier date than today.
    pub(super) fn in_the_past(&self) -> bool {
        self.as_of < self.today
    }

    /// The named parameters every report's SQL may use.
    pub(super) fn params(&self) -> Params {
        let mut params = Params::default();
        params
            .set(":me", self.me.clone())
            .set(":d", self.d())
            .set(":next", self.next_day())
            .set(":end_ms", self.end_ms())
            .set(":branch", self.branch.clone())
            .set(":dest", self.destination.clone())
            .set(":from", self.from.clone())
            .set(":until", self.until.clone());
        params
    }

    /// What the filters were, for the report's notes.
    pub(super) fn filter_notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if !self.branch.is_empty() {
            notes.push(format!("支部 branch: {}", self.branch));
        }
        if !self.destination.is_empty() {
            notes.push(format!(
                "去向 destination: {}",
                liaison_types::places::display(&place_code6(&self.destination))
            ));
        }
        if !self.from.is_empty() || !self.until.is_empty() {
            notes.push(format!(
                "期间 period: {} – {}",
                if self.from.is_empty() {
                    "…"
                } else {
                    &self.from
                },
                if self.until.is_empty() {
                    "…"
                } else {
                    &self.until
                }
            ));
        }
        notes
    }
}

/// A place code of 2 or 4 digits (a province or city as the node matches
/// it) as the 6-digit code of the division table.
pub(super) fn place_code6(code: &str) -> String {
    format!("{code:0<6}")
}

/// Named parameters, bound only where a statement names them (one set
/// serves every statement of a report).
#[derive(Debug, Default, Clone)]
pub(super) struct Params(Vec<(&'static str, Value)>);

impl Params {
    pub(super) fn set(&mut self, name: &'static str, value: impl Into<Value>) -> &mut Params {
        self.0.retain(|(n, _)| *n != name);
        self.0.push((name, value.into()));
        self
    }

    /// `sql`, prepared (cached) with the parameters it names bound.
    pub(super) fn bind<'c>(
        &self,
        conn: &'c Connection,
        sql: &str,
    ) -> Result<rusqlite::CachedStatement<'c>, Error> {
        let mut stmt = conn.prepare_cached(sql)?;
        for (name, value) in &self.0 {
            if let Some(idx) = stmt.parameter_index(name)? {
                stmt.raw_bind_parameter(idx, value)?;
            }
        }
        Ok(stmt)
    }

    /// Runs `sql` and hands each row to `each`, without keeping the rows.
    pub(super) fn each(
        &self,
        conn: &Connection,
        sql: &str,
        mut each: impl FnMut(&rusqlite::Row<'_>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut stmt = self.bind(conn, sql)?;
        let mut rows = stmt.raw_query();
        while let Some(row) = rows.next()? {
            each(row)?;
        }
        Ok(())
    }

    /// The single number `sql` gives.
    pub(super) fn number(&self, conn: &Connection, sql: &str) -> Result<i64, Error> {
        let mut n = 0;
        self.each(conn, sql, |row| {
            n = row.get::<_, Option<i64>>(0)?.unwrap_or(0);
            Ok(())
        })?;
        Ok(n)
    }
}

/// A member row `m` this node holds as its own at the date `:d`: owned,
/// a member by then (joined on or before it), not removed (its current
/// state), in the `:branch` filter. Members that came by a transfer
/// released after the date are taken out by [`NOT_RECEIVED_LATER`]
/// (apart, so counting reads the index `members_counted` alone).
pub(super) const OWN: &str = "m.owner = :me AND m.moved_on = ''
    AND (m.joined_on = '' OR m.joined_on <= :d) AND m.membership_state <> 'removed'
    AND (:branch = '' OR m.home_branch = :branch)";

/// Not a member that came by a transfer released after the date: it
/// counts at its sender until the release.
pub(super) const NOT_RECEIVED_LATER: &str = "m.member_id NOT IN (SELECT member_id FROM transfers
    WHERE direction = 'incoming' AND state = 'completed' AND released_at_ms >= :end_ms)";

/// A tombstone row `m` of a member transferred away after the date: it
/// counted here then.
pub(super) const MOVED: &str = "m.moved_on <> '' AND m.moved_on > :d
    AND (:branch = '' OR m.home_branch = :branch)";

/// The number of members this node holds at `:d`: its own, less those
/// that came by a transfer released after the date, plus those
/// transferred away after it.
pub(super) fn members_held(conn: &Connection, params: &Params) -> Result<i64, Error> {
    params.number(
        conn,
        &format!(
            "SELECT (SELECT COUNT(*) FROM members m WHERE {OWN})
                  - (SELECT COUNT(DISTINCT m.member_id) FROM transfers t CROSS JOIN members m
                      ON m.member_id = t.member_id
                     WHERE t.direction = 'incoming' AND t.state = 'completed'
                       AND t.released_at_ms >= :end_ms AND {OWN})
                  + (SELECT COUNT(*) FROM members m WHERE {MOVED})"
        ),
    )
}

/// The outflows `o` with their members `m`, read outflow by outflow: a
/// node has no more outflows than members (fewer, most often), and each
/// finds its member by its key. `CROSS JOIN` keeps SQLite to this order:
/// its planner, with no statistics, would rather walk every member and
/// look for an outflow.
pub(super) const AWAY_FROM: &str = "outflows o CROSS JOIN members m ON m.member_id = o.member_id";

/// Which departures a report counts: all, or those in the period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Departed {
    Any,
    InPeriod,
}

/// The outflows `o` of members `m` this node holds, open at `:d`, in the
/// destination filter (and the period's, of departure).
pub(super) fn away_own(departed: Departed) -> String {
    let period = match departed {
        Departed::Any => "",
        Departed::InPeriod => {
            "AND (:from = '' OR o.departed_on >= :from) AND (:until = '' OR o.departed_on <= :until)"
        }
    };
    format!(
        "o.departed_on <= :d AND (o.state = 'open' OR o.returned_on > :d)
         AND {OWN} AND {NOT_RECEIVED_LATER}
         AND (:dest = '' OR o.destination_place LIKE :dest || '%') {period}"
    )
}

/// Tombstones `m` of members transferred away after `:d` who were away
/// then, in the destination filter (and the period's, of departure).
pub(super) fn away_moved(departed: Departed) -> String {
    let period = match departed {
        Departed::Any => "",
        Departed::InPeriod => {
            "AND (:from = '' OR m.moved_away_since >= :from) AND (:until = '' OR m.moved_away_since <= :until)"
        }
    };
    format!(
        "{MOVED} AND m.moved_away_since <> '' AND m.moved_away_since <= :d
         AND (:dest = '' OR m.moved_away_place LIKE :dest || '%') {period}"
    )
}

/// The names of this node's organizations, by code.
pub(super) fn org_names(
    conn: &Connection,
) -> Result<std::collections::HashMap<String, String>, Error> {
    let names = conn
        .prepare_cached("SELECT org_id, name FROM orgs")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(names)
}

/// An organization as people read it: its name and code, or the text as
/// written (a host branch a host never registered).
pub(super) fn org_label(names: &std::collections::HashMap<String, String>, code: &str) -> String {
    match names.get(code) {
        Some(name) => format!("{name} ({code})"),
        None if code.is_empty() => NOT_RECORDED.to_owned(),
        None => code.to_owned(),
    }
}

/// The peers' display names, by node id.
pub(super) fn peer_names(
    conn: &Connection,
) -> Result<std::collections::HashMap<String, String>, Error> {
    let names = conn
        .prepare_cached("SELECT node_id, display_name FROM peers")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(names)
}

/// A peer as people read it: `兰州 (lanzhou)`.
pub(super) fn peer_label(names: &std::collections::HashMap<String, String>, node: &str) -> String {
    match names.get(node) {
        Some(name) if name != node => format!("{name} ({node})"),
        _ => node.to_owned(),
    }
}

/// The age bands of the national party statistics, by age in years.
pub(super) const AGE_BANDS: [(&str, i64, i64); 8] = [
    ("30岁及以下 30 or under", 0, 30),
    ("31-35岁", 31, 35),
    ("36-40岁", 36, 40),
    ("41-45岁", 41, 45),
    ("46-50岁", 46, 50),
    ("51-55岁", 51, 55),
    ("56-60岁", 56, 60),
    ("61岁及以上 61 and over", 61, i64::MAX),
];

/// The band of `age`.
pub(super) fn age_band(age: i64) -> &'static str {
    AGE_BANDS
        .iter()
        .find(|(_, lo, hi)| (*lo..=*hi).contains(&age))
        .map(|(label, _, _)| *label)
        .unwrap_or(AGE_BANDS[0].0)
}

/// The SQL age in whole years at `:d` of a birth date `birth` (YYYY-MM-DD),
/// as text; '' where the date is not known.
pub(super) fn age_sql(birth: &str) -> String {
    format!(
        "CASE WHEN length({birth}) < 10 THEN '' ELSE CAST(
            CAST(substr(:d, 1, 4) AS INTEGER) - CAST(substr({birth}, 1, 4) AS INTEGER)
            - (substr(:d, 6, 5) < substr({birth}, 6, 5)) AS TEXT) END"
    )
}

/// The label of a value nobody recorded.
pub(super) const NOT_RECORDED: &str = "未填 not recorded";

/// The label of the members transferred away since the date counted at,
/// whose details went with them.
pub(super) const MOVED_SINCE: &str = "已转出(详情随转) transferred since";
