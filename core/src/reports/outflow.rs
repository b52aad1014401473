//! `report outflow`: the members of this node away (流出党员), by
//! destination, reason, industry and the profile of the study (四多四少),
//! with their share of all members of the node.

use std::collections::BTreeMap;

use rusqlite::Connection;

use super::places::by_destination;
use super::query::{
    age_band, age_sql, away_moved, away_own, members_held, org_label, org_names, Departed, Query,
    AGE_BANDS, AWAY_FROM, MOVED_SINCE, NOT_RECORDED,
};
use super::table::{by_dimension, count, define, percent, text, Kind, Names, Table};
use super::Report;
use crate::Error;

/// Education up to senior secondary school (高中及以下): the study's "low
/// education" (四多四少).
pub(super) const LOW_EDUCATION: [&str; 8] = [
    "文盲", "小学", "初中", "高中", "中专", "中技", "技校", "职高",
];

/// The label of a member away whose destination was never known.
pub(super) const UNKNOWN_DIRECTION: &str = "不掌握流向";

/// Counts of the members away at the date, by dimension (one statement:
/// the members away are read once, then counted by each dimension).
#[derive(Debug, Default)]
pub(super) struct Counts {
    pub(super) held: i64,
    pub(super) away: i64,
    pub(super) by: BTreeMap<&'static str, Vec<(String, i64)>>,
}

impl Counts {
    pub(super) fn of(&self, dimension: &str) -> &[(String, i64)] {
        self.by.get(dimension).map(Vec::as_slice).unwrap_or(&[])
    }

    fn total(&self, dimension: &str) -> i64 {
        self.of(dimension).iter().map(|(_, n)| n).sum()
    }
}

/// The dimensions counted, and the SQL expression each groups by over the
/// members away (`away`, with `moved` for the members transferred since,
/// whose details are not kept).
fn dimensions() -> Vec<(&'static str, String)> {
    let kept = |column: &str| format!("CASE WHEN moved THEN '·moved' ELSE {column} END");
    vec![
        ("branch", "home_branch".to_owned()),
        ("reason", kept("reason")),
        (
            "industry",
            kept("COALESCE(NULLIF(industry, ''), NULLIF(direction, ''), '')"),
        ),
        ("gender", kept("gender")),
        ("age", kept(&age_sql("birth_date"))),
        ("education", kept("education")),
        ("origin", kept("origin")),
        (
            "certificate",
            kept("CASE WHEN certificate THEN 'yes' ELSE 'no' END"),
        ),
        (
            "reported",
            kept("CASE WHEN reported THEN 'yes' ELSE 'no' END"),
        ),
        (
            "six_months",
            "CASE WHEN departed_on <= :six THEN 'yes' ELSE 'no' END".to_owned(),
        ),
    ]
}

/// Reads the counts at the query's date.
pub(super) fn counts(conn: &Connection, q: &Query) -> Result<Counts, Error> {
    let mut params = q.params();
    params.set(":six", q.months_before(6));
    let mut counts = Counts {
        held: members_held(conn, &params)?,
        ..Counts::default()
    };
    let mut selects = vec![
        format!("SELECT 'place', place, COUNT(*) FROM away WHERE direction <> '{UNKNOWN_DIRECTION}' GROUP BY place"),
        format!("SELECT 'unknown', '', COUNT(*) FROM away WHERE direction = '{UNKNOWN_DIRECTION}'"),
    ];
    for (dimension, expr) in dimensions() {
        selects.push(format!(
            "SELECT '{dimension}', {expr}, COUNT(*) FROM away GROUP BY 2"
        ));
    }
    let sql = format!(
        "WITH away AS MATERIALIZED (
             SELECT m.member_id, m.gender, m.birth_date, m.education, m.origin, m.home_branch, 0 AS moved,
                    o.destination_place AS place, o.direction, o.reason, o.certificate_no <> '' AS certificate,
                    o.departed_on,
                    EXISTS (SELECT 1 FROM host_sections s WHERE s.member_id = m.member_id
                                AND s.reported_on <> '' AND s.reported_on <= :d) AS reported,
                    COALESCE((SELECT s.industry FROM host_sections s WHERE s.member_id = m.member_id
                                AND s.industry <> '' ORDER BY s.updated_at_ms DESC LIMIT 1), '') AS industry
               FROM {AWAY_FROM}
              WHERE {own}
             UNION ALL
             SELECT m.member_id, '', '', '', '', m.home_branch, 1, m.moved_away_place, '', '', 0,
                    m.moved_away_since, 0, ''
               FROM members m WHERE {moved})
         {selects}",
        own = away_own(Departed::InPeriod),
        moved = away_moved(Departed::InPeriod),
        selects = selects.join("\nUNION ALL "),
    );
    params.each(conn, &sql, |row| {
        let dimension: String = row.get(0)?;
        let value: String = row.get::<_, Option<String>>(1)?.unwrap_or_default();
        let n: i64 = row.get(2)?;
        let key = match dimension.as_str() {
            "place" => "place",
            "unknown" => "unknown",
            other => dimensions()
                .into_iter()
                .find(|(d, _)| *d == other)
                .map(|(d, _)| d)
                .unwrap_or("other"),
        };
        counts.by.entry(key).or_default().push((value, n));
        Ok(())
    })?;
    counts.away = counts.total("gender");
    Ok(counts)
}

/// A dimension's values as people read them, most members first (age
/// bands and yes/no in their order).
fn labelled(counts: &Counts, dimension: &str) -> Vec<(String, i64)> {
    let label = |value: &str| -> String {
        match value {
            "·moved" => MOVED_SINCE.into(),
            "" => NOT_RECORDED.into(),
            "yes" => "是 yes".into(),
            "no" => "否 no".into(),
            other => other.into(),
        }
    };
    let mut merged: BTreeMap<String, i64> = BTreeMap::new();
    if dimension == "age" {
        for (value, n) in counts.of("age") {
            let band = match value.as_str() {
                "·moved" => MOVED_SINCE.to_owned(),
                "" => NOT_RECORDED.to_owned(),
                age => age
                    .parse::<i64>()
                    .map(|a| age_band(a).to_owned())
                    .unwrap_or_else(|_| NOT_RECORDED.to_owned()),
            };
            *merged.entry(band).or_default() += n;
        }
        let mut rows: Vec<(String, i64)> = AGE_BANDS
            .iter()
            .filter_map(|(band, _, _)| merged.remove(*band).map(|n| ((*band).to_owned(), n)))
            .collect();
        rows.extend(merged);
        return rows;
    }
    for (value, n) in counts.of(dimension) {
        *merged.entry(label(value)).or_default() += n;
    }
    let mut rows: Vec<(String, i64)> = merged.into_iter().collect();
    let last = |l: &str| l == NOT_RECORDED || l == MOVED_SINCE;
    rows.sort_by(|a, b| {
        (
            last(&a.0),
            a.0.starts_with("否"),
            std::cmp::Reverse(a.1),
            &a.0,
        )
            .cmp(&(
                last(&b.0),
                b.0.starts_with("否"),
                std::cmp::Reverse(b.1),
                &b.0,
            ))
    });
    rows
}

pub(super) fn report(conn: &Connection, q: &Query) -> Result<Report, Error> {
    let counts = counts(conn, q)?;
    let mut report = Report::new("流出党员统计", "Members away (outflow)");
    let away = counts.away;
    let six = counts
        .of("six_months")
        .iter()
        .find(|(v, _)| v == "yes")
        .map_or(0, |(_, n)| *n);
    let unknown = counts.total("unknown");
    let moved = counts
        .of("gender")
        .iter()
        .find(|(v, _)| v == "·moved")
        .map_or(0, |(_, n)| *n);
    let mut summary = Table::new("summary", "总体", "Summary")
        .col("members", "党员总数", "all members", Kind::Count)
        .col("away", "流出党员", "members away", Kind::Count)
        .col(
            "away_share_pct",
            "占党员总数(%)",
            "share of all members (%)",
            Kind::Percent,
        )
        .col(
            "away_six_months",
            "外出6个月以上",
            "away 6 months or more",
            Kind::Count,
        )
        .col(
            "unknown_destination",
            "不掌握流向",
            "unknown destination",
            Kind::Count,
        )
        .col(
            "transferred_since",
            "此后已转出",
            "transferred away since",
            Kind::Count,
        );
    summary.row(vec![
        count(counts.held),
        count(away),
        percent(away, counts.held),
        count(six),
        count(unknown),
        count(moved),
    ]);
    report.tables.push(summary.done());
    report
        .tables
        .push(by_destination(conn, counts.of("place"), unknown, away)?);
    let dimensions: [(&str, Names, Names); 9] = [
        (
            "branch",
            ("按所在支部", "By home branch"),
            ("所在支部", "home branch"),
        ),
        (
            "reason",
            ("按外出原因", "By reason"),
            ("外出原因", "reason"),
        ),
        ("industry", ("按行业", "By industry"), ("行业", "industry")),
        ("gender", ("按性别", "By gender"), ("性别", "gender")),
        ("age", ("按年龄", "By age"), ("年龄段", "age band")),
        (
            "education",
            ("按学历", "By education"),
            ("学历", "education"),
        ),
        (
            "origin",
            ("按城乡", "By rural or urban origin"),
            ("城乡", "origin"),
        ),
        (
            "certificate",
            ("按是否持活动证", "By activity certificate held"),
            ("持流动党员活动证", "certificate held"),
        ),
        (
            "reported",
            ("按是否已报到", "By reported in at the host"),
            ("已在流入地报到", "reported in"),
        ),
    ];
    let names = org_names(conn)?;
    for (dimension, title, column) in dimensions {
        let mut rows = labelled(&counts, dimension);
        if dimension == "branch" {
            for (label, _) in &mut rows {
                *label = org_label(&names, label);
            }
        }
        report.tables.push(by_dimension(
            &format!("by_{dimension}"),
            title,
            column,
            &rows,
            away,
        ));
    }
    report.tables.push(profile(&counts));
    report.definitions = vec![
        define("流出党员", "member away", "A member of this node with an outflow registration (流出登记) open at the date: departed on or before it, not returned by it."),
        define("党员总数", "all members", "The members this node holds at the date: where their organizational relationship (组织关系) is, wherever they live."),
        define("外出6个月以上", "away 6 months or more", "Away since 6 months or more before the date: a mobile member (流动党员) in the sense of the 2024 rules."),
        define("不掌握流向", "unknown destination", "Registered with the destination unit type 不掌握流向: the member's whereabouts are not known; counted apart from the places."),
        define("去向地", "destination", "The place of the outflow registration (GB/T 2260 code), grouped province → city → county; the serving node is the peer that serves it (`peer add --serves`)."),
        define("行业", "industry", "The industry the host recorded in its section, else the destination unit type registered at departure."),
        define("已报到", "reported in", "A host section with a reported-in date (报到) on or before the date."),
        define("年龄段", "age band", "Age in whole years at the date, in the bands of the national party statistics (30 or under, 31-35, …, 61 and over)."),
        define("四多四少", "the study's profile", "More men, more young (35 or under), more with education up to senior secondary school (高中/中专 and below), more from the countryside (农村): each as a share of the members away."),
        define("此后已转出", "transferred away since", "Members away at the date whose relationship was transferred after it: counted here at the date (they counted here until the release); their details went with them, so they appear under 已转出 in the other tables."),
    ];
    Ok(report)
}

/// The study's "four more, four fewer" (四多四少) as shares of the members away.
fn profile(counts: &Counts) -> liaison_proto::v1::ReportTable {
    let away = counts.away;
    let sum = |dimension: &str, pick: &dyn Fn(&str) -> bool| -> i64 {
        counts
            .of(dimension)
            .iter()
            .filter(|(v, _)| pick(v))
            .map(|(_, n)| n)
            .sum()
    };
    let young = sum("age", &|v| v.parse::<i64>().is_ok_and(|age| age <= 35));
    let rows = [
        ("男性 men", sum("gender", &|v| v == "男")),
        ("35岁及以下 aged 35 or under", young),
        (
            "高中及以下学历 education up to senior secondary",
            sum("education", &|v| LOW_EDUCATION.contains(&v)),
        ),
        ("农村户籍 rural origin", sum("origin", &|v| v == "农村")),
    ];
    let mut table = Table::new("profile", "四多四少", "The study's profile (four more)")
        .col("trait", "特征", "trait", Kind::Text)
        .counted();
    for (label, n) in rows {
        table.row(vec![text(label), count(n), percent(n, away)]);
    }
    table.note(format!("流出党员 members away: {away}"));
    table.done()
}
