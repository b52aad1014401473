//! `report inflow`: the members this node hosts (流入党员), by home region,
//! host branch, industry and reported-in date, from the fields their
//! owners share and this node's own host sections.

use std::collections::BTreeMap;

use rusqlite::Connection;

use super::query::{
    age_band, org_label, org_names, peer_label, peer_names, Query, AGE_BANDS, NOT_RECORDED,
};
use super::table::{by_dimension, count, define, percent, Kind, Names, Table};
use super::Report;
use crate::Error;

/// The members hosted, one row each: the copy its owner shares (at most
/// the fields the owner shares) and this node's host section, if any.
pub(super) const HOSTED: &str = "hosted AS MATERIALIZED (
    SELECT c.member_id, c.owner, c.name, c.gender, c.birth_year, c.party_status, c.contact_status,
           COALESCE(s.host_branch, '') AS host_branch, COALESCE(s.industry, '') AS industry,
           COALESCE(s.station, '') AS station,
           CASE WHEN s.reported_on <> '' AND s.reported_on <= :d THEN s.reported_on ELSE '' END AS reported_on
      FROM home_copies c LEFT JOIN host_sections s ON s.member_id = c.member_id AND s.author = :me
     WHERE (:branch = '' OR s.host_branch = :branch))";

pub(super) fn report(conn: &Connection, q: &Query) -> Result<Report, Error> {
    let params = q.params();
    let dimensions = [
        ("home", "owner"),
        ("branch", "host_branch"),
        ("industry", "industry"),
        ("reported", "substr(reported_on, 1, 7)"),
        ("station", "station"),
        ("gender", "gender"),
        (
            "age",
            "CASE WHEN birth_year > 0 THEN CAST(CAST(substr(:d, 1, 4) AS INTEGER) - birth_year AS TEXT) ELSE '' END",
        ),
        ("party_status", "party_status"),
    ];
    let selects: Vec<String> = dimensions
        .iter()
        .map(|(dimension, expr)| {
            format!("SELECT '{dimension}', {expr}, COUNT(*) FROM hosted_in_period GROUP BY 2")
        })
        .collect();
    let sql = format!(
        "WITH {HOSTED},
         hosted_in_period AS (SELECT * FROM hosted
             WHERE (:from = '' OR reported_on >= :from) AND (:until = '' OR (reported_on <> '' AND reported_on <= :until)))
         {}",
        selects.join("\nUNION ALL ")
    );
    let mut by: BTreeMap<String, Vec<(String, i64)>> = BTreeMap::new();
    params.each(conn, &sql, |row| {
        let dimension: String = row.get(0)?;
        let value: String = row.get::<_, Option<String>>(1)?.unwrap_or_default();
        by.entry(dimension).or_default().push((value, row.get(2)?));
        Ok(())
    })?;
    let total: i64 = by
        .get("gender")
        .map(|rows| rows.iter().map(|(_, n)| n).sum())
        .unwrap_or(0);
    let peers = peer_names(conn)?;
    let orgs = org_names(conn)?;
    let label = |dimension: &str, value: &str| -> String {
        match (dimension, value) {
            ("reported", "") => "未报到 not reported in".into(),
            ("station", "") => "未经服务站报到 not at a station".into(),
            (_, "") => NOT_RECORDED.into(),
            ("home", node) => peer_label(&peers, node),
            ("branch", code) => org_label(&orgs, code),
            ("age", age) => age
                .parse::<i64>()
                .map(|a| age_band(a).to_owned())
                .unwrap_or_else(|_| NOT_RECORDED.into()),
            ("party_status", "正式") => "正式党员 full member".into(),
            ("party_status", "预备") => "预备党员 probationary".into(),
            (_, other) => other.into(),
        }
    };
    let mut report = Report::new("流入党员统计", "Members hosted (inflow)");
    let mut summary = Table::new("summary", "总体", "Summary")
        .col("hosted", "流入党员", "members hosted", Kind::Count)
        .col("reported", "已报到", "reported in", Kind::Count)
        .col(
            "reported_share_pct",
            "报到率(%)",
            "reported in (%)",
            Kind::Percent,
        );
    let not_reported = by
        .get("reported")
        .and_then(|rows| rows.iter().find(|(v, _)| v.is_empty()))
        .map_or(0, |(_, n)| *n);
    summary.row(vec![
        count(total),
        count(total - not_reported),
        percent(total - not_reported, total),
    ]);
    report.tables.push(summary.done());
    let tables: [(&str, Names, Names); 8] = [
        (
            "home",
            ("按流出地", "By home region"),
            ("流出地", "home region"),
        ),
        (
            "branch",
            ("按所在党组织", "By host branch"),
            ("流入地党组织", "host branch"),
        ),
        ("industry", ("按行业", "By industry"), ("行业", "industry")),
        (
            "reported",
            ("按报到时间", "By reported-in month"),
            ("报到月份", "reported in (month)"),
        ),
        (
            "station",
            ("按报到服务站", "By station reported in at"),
            ("服务站", "station"),
        ),
        ("gender", ("按性别", "By gender"), ("性别", "gender")),
        ("age", ("按年龄", "By age"), ("年龄段", "age band")),
        (
            "party_status",
            ("按党员类别", "By party status"),
            ("党员类别", "party status"),
        ),
    ];
    for (dimension, title, column) in tables {
        let mut merged: BTreeMap<String, i64> = BTreeMap::new();
        for (value, n) in by.get(dimension).map(Vec::as_slice).unwrap_or(&[]) {
            *merged.entry(label(dimension, value)).or_default() += n;
        }
        let mut rows: Vec<(String, i64)> = merged.into_iter().collect();
        match dimension {
            // In time order, the members not reported in last.
            "reported" => rows.sort_by_key(|(l, _)| (l.starts_with("未报到"), l.clone())),
            "age" => rows.sort_by_key(|(l, _)| {
                AGE_BANDS
                    .iter()
                    .position(|(band, _, _)| band == l)
                    .unwrap_or(AGE_BANDS.len())
            }),
            _ => rows.sort_by_key(|(l, n)| (l == NOT_RECORDED, std::cmp::Reverse(*n), l.clone())),
        }
        report.tables.push(by_dimension(
            &format!("by_{dimension}"),
            title,
            column,
            &rows,
            total,
        ));
    }
    report.notes.push(
        "流入党员为本节点现持有的共享记录；报到日期取本节点填写的流入地信息 — the members hosted are those whose records are shared with this node now; reported-in dates are this node's own host sections.".into(),
    );
    report.definitions = vec![
        define("流入党员", "member hosted", "A member of another node whose home section its owner shares with this node under an active co-management agreement (双向共管协议)."),
        define("流出地", "home region", "The node that holds the member's organizational relationship (组织关系)."),
        define("已报到", "reported in", "This node recorded a reported-in date (报到) in its host section, on or before the date."),
        define("年龄段", "age band", "Age at the date from the birth year the owner shares (a host holds no birth date)."),
    ];
    Ok(report)
}
