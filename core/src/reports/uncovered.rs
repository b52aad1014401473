//! `report uncovered`: members away whom no active co-management agreement
//! covers, by destination (grouped province → city → county, with the
//! serving node), and one a row; at a host, the report-in claims of people
//! from regions with which it has no agreement, by home region (held
//! here, never sent).

use std::collections::BTreeMap;

use liaison_proto::v1 as pb;
use rusqlite::Connection;

use super::places::{by_destination, place_label};
use super::query::{away_own, org_label, org_names, Departed, Query, AWAY_FROM};
use super::table::{count, define, text, Kind, Table};
use super::Report;
use crate::members::Scope;
use crate::{Ctx, Error};

pub(super) fn report(conn: &Connection, ctx: &Ctx<'_>, q: &Query) -> Result<Report, Error> {
    let scope = Scope::load(conn, ctx)?;
    let orgs = org_names(conn)?;
    let mut by_place: BTreeMap<String, i64> = BTreeMap::new();
    let mut members = Table::new("members", "未覆盖党员名单", "Members uncovered")
        .col("name", "姓名", "name", Kind::Text)
        .col("branch", "所在支部", "home branch", Kind::Text)
        .col("destination", "去向地", "destination", Kind::Text)
        .col("departed_on", "外出日期", "departed on", Kind::Date);
    let mut n = 0i64;
    q.params().each(
        conn,
        &format!(
            "SELECT m.member_id, m.name, m.home_branch, o.destination_place, o.departed_on
               FROM {AWAY_FROM}
              WHERE {} ORDER BY o.destination_place, o.departed_on, m.member_id",
            away_own(Departed::InPeriod)
        ),
        |row| {
            let member_id: String = row.get(0)?;
            let place: String = row.get(3)?;
            let outflow = pb::OutflowView {
                destination_place: place.clone(),
                ..Default::default()
            };
            if !scope.covering(conn, &member_id, Some(&outflow))?.is_empty() {
                return Ok(());
            }
            n += 1;
            *by_place.entry(place.clone()).or_default() += 1;
            if q.limit.is_none_or(|limit| members.rows() < limit) {
                members.row(vec![
                    text(row.get::<_, String>(1)?),
                    text(org_label(&orgs, &row.get::<_, String>(2)?)),
                    text(place_label(&place)),
                    text(row.get::<_, String>(4)?),
                ]);
            }
            Ok(())
        },
    )?;
    members.left_out(n as u64 - members.rows() as u64);
    members.note(format!("合计 total: {n}"));
    let places: Vec<(String, i64)> = by_place.into_iter().collect();
    let mut report = Report::new(
        "未覆盖的流出党员",
        "Members away without an active agreement",
    );
    report.tables.push(by_destination(conn, &places, 0, n)?);
    report.tables.push(members.done());
    report.tables.push(claims_without_agreement(conn, ctx, q)?);
    report
        .notes
        .push("覆盖取当前的现行协议 — coverage is by the agreements active now.".into());
    report.definitions = vec![
        define(
            "未覆盖",
            "uncovered",
            "Away at the date, and no active co-management agreement covers the member (by its destination or by name): nothing about the member is shared with a host.",
        ),
        define(
            "无协议报到申请",
            "claim without agreement",
            "A report-in claim submitted at one of this node's service stations by someone whose home region has no active agreement with this node: held here, never sent, until an agreement exists or a clerk rejects it.",
        ),
    ];
    Ok(report)
}

/// The report-in claims waiting here whose home region has no active
/// agreement with this node, by home region (as of now).
fn claims_without_agreement(
    conn: &Connection,
    ctx: &Ctx<'_>,
    q: &Query,
) -> Result<pb::ReportTable, Error> {
    let mut by_home: BTreeMap<String, i64> = BTreeMap::new();
    q.params().each(
        conn,
        "SELECT home_place, COUNT(*) FROM reportin_claims WHERE state = 'pending'
          GROUP BY home_place ORDER BY home_place",
        |row| {
            let place: String = row.get(0)?;
            if crate::reportin::home_node(conn, ctx, &place)?.is_none() {
                *by_home.entry(place).or_default() += row.get::<_, i64>(1)?;
            }
            Ok(())
        },
    )?;
    let mut table = Table::new(
        "claims_without_agreement",
        "无协议地区的报到申请",
        "Report-in claims from regions without agreement",
    )
    .col("home", "流出地", "home region", Kind::Text)
    .col("claims", "申请数", "claims", Kind::Count);
    let mut total = 0;
    for (place, n) in by_home {
        total += n;
        table.row(vec![
            text(format!("no agreement with {}", place_label(&place))),
            count(n),
        ]);
    }
    table.note(format!(
        "合计 total: {total}（取当前，不发送 — as of now; never sent）"
    ));
    Ok(table.done())
}
