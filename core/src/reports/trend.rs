//! `report trend`: year-end counts by year, their share of all members,
//! and the growth between the first and the last year, as a total change
//! and as a compound annual rate, with the formula.
//!
//! The node records its own counts for each 31 December it held
//! ([`record_year_end`], run by the calendar), counted as of that day from
//! its dated facts; the years before are imported ([`import_years`]).

use chrono::{Datelike, NaiveDate};
use liaison_proto::v1 as pb;
use rusqlite::{params, Connection, OptionalExtension};

use super::outflow;
use super::query::{Query, Takes};
use super::table::{count, define, number, text, Kind, Table};
use super::Report;
use crate::{Ctx, Error};

/// One year's row.
#[derive(Debug, Clone)]
struct Year {
    year: i32,
    mobile: i64,
    members: i64,
    share_pct: f64,
    source: String,
    note: String,
}

/// The share of a year: from its members where known, else as imported.
fn share_of(y: &Year) -> Option<f64> {
    if y.members > 0 {
        Some(super::table::share(y.mobile, y.members))
    } else if y.share_pct > 0.0 {
        Some(y.share_pct)
    } else {
        None
    }
}

pub(super) fn report(conn: &Connection, q: &Query) -> Result<Report, Error> {
    let first = if q.from.is_empty() {
        0
    } else {
        q.from[..4].parse().unwrap_or(0)
    };
    let mut last = q.as_of.year();
    if !q.until.is_empty() {
        last = last.min(q.until[..4].parse().unwrap_or(last));
    }
    let years: Vec<Year> = conn
        .prepare_cached(
            "SELECT year, mobile, members, share_pct, source, note FROM year_end_counts
              WHERE year >= ?1 AND year <= ?2 ORDER BY year",
        )?
        .query_map(params![first, last], |r| {
            Ok(Year {
                year: r.get(0)?,
                mobile: r.get(1)?,
                members: r.get(2)?,
                share_pct: r.get(3)?,
                source: r.get(4)?,
                note: r.get(5)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut table = Table::new(
        "by_year",
        "历年年底流出党员",
        "Members away at each year's end",
    )
    .col("year", "年份", "year", Kind::Count)
    .col("mobile", "流出党员", "members away", Kind::Count)
    .col("members", "党员总数", "all members", Kind::Count)
    .col(
        "share_pct",
        "占党员总数(%)",
        "share of all members (%)",
        Kind::Percent,
    )
    .col(
        "change",
        "比上年增减",
        "change from the year before",
        Kind::Count,
    )
    .col("change_pct", "增减(%)", "change (%)", Kind::Percent)
    .col("source", "来源", "source", Kind::Text);
    let mut previous: Option<&Year> = None;
    for y in &years {
        let consecutive = previous.filter(|p| p.year + 1 == y.year);
        table.row(vec![
            count(i64::from(y.year)),
            count(y.mobile),
            if y.members > 0 {
                count(y.members)
            } else {
                text("")
            },
            share_of(y).map(number).unwrap_or_else(|| text("")),
            consecutive
                .map(|p| count(y.mobile - p.mobile))
                .unwrap_or_else(|| text("")),
            consecutive
                .filter(|p| p.mobile > 0)
                .map(|p| number((y.mobile - p.mobile) as f64 * 100.0 / p.mobile as f64))
                .unwrap_or_else(|| text("")),
            text(match (y.source.as_str(), y.note.is_empty()) {
                ("node", _) => "本节点 this node".to_owned(),
                (_, true) => "导入 imported".to_owned(),
                (_, false) => format!("导入 imported: {}", y.note),
            }),
        ]);
        previous = Some(y);
    }
    for line in growth(&years) {
        table.note(line);
    }
    let mut report = Report::new("流出党员历年变化", "Members away by year (trend)");
    report.tables.push(table.done());
    report.definitions = vec![
        define("年底人数", "year-end count", "Members away (流出党员) and all members on 31 December: counted by this node from its records the day after (来源 this node), or imported for the years before it kept its own (`report trend --import`)."),
        define("复合年增长率", "compound annual growth rate", "(last / first)^(1 / years) − 1: the constant yearly rate that leads from the first year's count to the last's."),
        define("总增幅", "total change", "last − first, and (last − first) / first."),
    ];
    Ok(report)
}

/// The growth between the first and the last year, with the formulas; no
/// rate at all with fewer than two years or nothing to grow from.
fn growth(years: &[Year]) -> Vec<String> {
    let (Some(first), Some(last)) = (years.first(), years.last()) else {
        return vec!["没有年底数据 no year-end counts yet: the node records each 31 December; earlier years are imported with `report trend --import FILE`".into()];
    };
    let span = last.year - first.year;
    if span < 1 || first.mobile <= 0 {
        return Vec::new();
    }
    let change = last.mobile - first.mobile;
    let change_pct = change as f64 * 100.0 / first.mobile as f64;
    let rate =
        ((last.mobile as f64 / first.mobile as f64).powf(1.0 / f64::from(span)) - 1.0) * 100.0;
    vec![
        format!(
            "总增幅 total change {fy}–{ly}: {l} − {f} = {change:+} ({change:+} / {f} = {change_pct:+.1}%)",
            fy = first.year,
            ly = last.year,
            l = last.mobile,
            f = first.mobile,
        ),
        format!(
            "复合年增长率 compound annual growth rate = ({l} / {f})^(1/{span}) − 1 = {rate:.1}% 每年 a year",
            l = last.mobile,
            f = first.mobile,
        ),
    ]
}

/// The counts of members away and all members at `date`, as the outflow
/// report counts them.
fn counts_at(conn: &Connection, ctx: &Ctx<'_>, date: NaiveDate) -> Result<(i64, i64), Error> {
    let req = pb::ReportRequest {
        as_of: date.to_string(),
        ..Default::default()
    };
    let q = Query::parse("trend", &req, ctx, Takes::default())?;
    let counts = outflow::counts(conn, &q)?;
    Ok((counts.away, counts.held))
}

/// A year's end as the node counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YearEnd {
    pub year: i32,
    pub mobile: i64,
    pub members: i64,
}

/// The counts of 31 December of `year`, counted as of that day from the
/// dated facts (so a node that was down on the day counts the same
/// later). A read: run it on a read-only connection.
pub fn count_year_end(conn: &Connection, ctx: &Ctx<'_>, year: i32) -> Result<YearEnd, Error> {
    let day = NaiveDate::from_ymd_opt(year, 12, 31)
        .ok_or_else(|| Error::invalid(format!("there is no 31 December of year {year}")))?;
    let (mobile, members) = counts_at(conn, ctx, day)?;
    Ok(YearEnd {
        year,
        mobile,
        members,
    })
}

/// Records `counts` as the node's own; an imported figure for the year
/// gives way, a count the node recorded before stays.
pub fn record_year_end(conn: &Connection, ctx: &Ctx<'_>, counts: &YearEnd) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO year_end_counts (year, mobile, members, share_pct, source, note, recorded_at_ms)
         VALUES (?1, ?2, ?3, 0, 'node', '', ?4)
         ON CONFLICT (year) DO UPDATE SET mobile = excluded.mobile, members = excluded.members,
             share_pct = 0, source = 'node', note = excluded.note, recorded_at_ms = excluded.recorded_at_ms
         WHERE year_end_counts.source = 'import'",
    )?
    .execute(params![counts.year, counts.mobile, counts.members, ctx.now_ms])?;
    Ok(())
}

/// The year whose end the node should record now, if any: the last
/// 31 December before today, if the database existed by then and holds
/// no count of its own for it.
pub fn year_end_due(conn: &Connection, ctx: &Ctx<'_>) -> Result<Option<i32>, Error> {
    let year = ctx.today().year() - 1;
    let created_at_ms = crate::store::meta_number(conn, "created_at_ms")?.unwrap_or(i64::MAX);
    let created_on = chrono::DateTime::from_timestamp_millis(created_at_ms)
        .map(|t| t.with_timezone(&ctx.zone).date_naive());
    if created_on.is_none_or(|d| d.year() > year) {
        return Ok(None);
    }
    let recorded: Option<String> = conn
        .prepare_cached("SELECT source FROM year_end_counts WHERE year = ?1")?
        .query_row([year], |r| r.get(0))
        .optional()?;
    Ok((recorded.as_deref() != Some("node")).then_some(year))
}

/// Imports year-end counts of years before the node kept its own (the
/// study's 2012-2018 figures). A year the node recorded itself is refused;
/// an imported year is replaced. Returns (imported, replaced).
pub fn import_years(
    conn: &Connection,
    ctx: &Ctx<'_>,
    req: &pb::ReportTrendImportRequest,
) -> Result<(u32, u32), Error> {
    if req.years.is_empty() {
        return Err(Error::invalid(
            "the file has no years: give a header row (年份,流出党员,党员总数,占比) and a row per year".into(),
        ));
    }
    let this_year = ctx.today().year();
    let mut seen = std::collections::HashSet::new();
    let mut replaced = 0;
    for y in &req.years {
        if !(1921..this_year).contains(&y.year) {
            return Err(Error::invalid(format!(
                "year {}: a year-end count is of a past year, from 1921 to {}",
                y.year,
                this_year - 1
            )));
        }
        if !seen.insert(y.year) {
            return Err(Error::invalid(format!("year {} appears twice", y.year)));
        }
        if y.members > 0 && y.mobile > y.members {
            return Err(Error::invalid(format!(
                "year {}: {} members away is more than all {} members",
                y.year, y.mobile, y.members
            )));
        }
        if !(0.0..=100.0).contains(&y.share_pct) || y.share_pct.is_nan() {
            return Err(Error::invalid(format!(
                "year {}: the share {} is not a per cent between 0 and 100",
                y.year, y.share_pct
            )));
        }
        let note = liaison_types::validate::text("note", &y.note, 200)?;
        let source: Option<String> = conn
            .prepare_cached("SELECT source FROM year_end_counts WHERE year = ?1")?
            .query_row([y.year], |r| r.get(0))
            .optional()?;
        match source.as_deref() {
            Some("node") => {
                return Err(Error::conflict(format!(
                    "year {}: this node recorded its own count for that year's end; leave the year out of the file",
                    y.year
                )))
            }
            Some(_) => replaced += 1,
            None => {}
        }
        conn.prepare_cached(
            "INSERT INTO year_end_counts (year, mobile, members, share_pct, source, note, recorded_at_ms)
             VALUES (?1, ?2, ?3, ?4, 'import', ?5, ?6)
             ON CONFLICT (year) DO UPDATE SET mobile = excluded.mobile, members = excluded.members,
                 share_pct = excluded.share_pct, source = 'import', note = excluded.note,
                 recorded_at_ms = excluded.recorded_at_ms",
        )?
        .execute(params![
            y.year,
            i64::try_from(y.mobile).unwrap_or(i64::MAX),
            i64::try_from(y.members).unwrap_or(i64::MAX),
            if y.members > 0 { 0.0 } else { y.share_pct },
            note,
            ctx.now_ms
        ])?;
    }
    Ok((req.years.len() as u32, replaced))
}
