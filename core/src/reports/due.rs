//! `report transfer-due`: members away six months or more at a fixed
//! place whose relationship has not been transferred (DOMAIN R1: 应转尽转),
//! one a row, and their counts by branch and destination.

use std::collections::BTreeMap;

use rusqlite::Connection;

use super::places::{by_destination, place_label};
use super::query::{away_own, org_label, org_names, Departed, Query, AWAY_FROM};
use super::table::{by_dimension, define, number, text, Kind, Table};
use super::Report;
use crate::Error;

pub(super) fn report(conn: &Connection, q: &Query) -> Result<Report, Error> {
    let mut params = q.params();
    params.set(":six", q.months_before(6));
    let orgs = org_names(conn)?;
    let mut members = Table::new("members", "应转未转党员名单", "Members due for transfer")
        .col("name", "姓名", "name", Kind::Text)
        .col("branch", "所在支部", "home branch", Kind::Text)
        .col("destination", "去向地", "destination", Kind::Text)
        .col("departed_on", "外出日期", "departed on", Kind::Date)
        .col("months_away", "外出时间(月)", "months away", Kind::Number)
        .col("open_letter", "在办介绍信", "letter under way", Kind::Text);
    let mut by_branch: BTreeMap<String, i64> = BTreeMap::new();
    let mut by_place: BTreeMap<String, i64> = BTreeMap::new();
    let mut n = 0i64;
    params.each(
        conn,
        &format!(
            "SELECT m.name, m.home_branch, o.destination_place, o.departed_on,
                    COALESCE((SELECT t.letter_no FROM transfers t
                               WHERE t.member_id = m.member_id AND t.direction = 'outgoing'
                                 AND t.issued_on <= :d AND (t.state = 'offered' OR t.updated_at_ms >= :end_ms)
                               ORDER BY t.issued_on DESC LIMIT 1), '')
               FROM {AWAY_FROM}
              WHERE {} AND o.fixed_location = 1 AND o.departed_on <= :six
              ORDER BY o.departed_on, m.member_id",
            away_own(Departed::InPeriod)
        ),
        |row| {
            n += 1;
            let branch: String = row.get(1)?;
            let place: String = row.get(2)?;
            let departed_on: String = row.get(3)?;
            *by_branch.entry(branch.clone()).or_default() += 1;
            *by_place.entry(place.clone()).or_default() += 1;
            if q.limit.is_none_or(|limit| members.rows() < limit) {
                let months = chrono::NaiveDate::parse_from_str(&departed_on, "%Y-%m-%d")
                    .map(|d| (q.as_of - d).num_days() as f64 / 30.44)
                    .unwrap_or(0.0);
                members.row(vec![
                    text(row.get::<_, String>(0)?),
                    text(org_label(&orgs, &branch)),
                    text(place_label(&place)),
                    text(departed_on),
                    number(months),
                    text(row.get::<_, String>(4)?),
                ]);
            }
            Ok(())
        },
    )?;
    members.left_out(n as u64 - members.rows() as u64);
    members.note(format!("合计 total: {n}"));
    let mut report = Report::new("应转未转组织关系", "Relationships due for transfer (R1)");
    let branches: Vec<(String, i64)> = by_branch
        .into_iter()
        .map(|(branch, n)| (org_label(&orgs, &branch), n))
        .collect();
    report.tables.push(by_dimension(
        "by_branch",
        ("按所在支部", "By home branch"),
        ("所在支部", "home branch"),
        &branches,
        n,
    ));
    let places: Vec<(String, i64)> = by_place.into_iter().collect();
    report.tables.push(by_destination(conn, &places, 0, n)?);
    report.tables.push(members.done());
    report.definitions = vec![
        define("应转未转", "due for transfer", "Away since six months or more before the date at a relatively fixed place (the outflow registration's fixed location), and still a member of this node: the relationship must be transferred (应转尽转)."),
        define("在办介绍信", "letter under way", "A letter this node issued for the member that was still open at the date."),
    ];
    Ok(report)
}
