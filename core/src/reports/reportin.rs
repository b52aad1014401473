//! `report reportin`: report-in (一键报到, docs/reportin.md). At a host: the
//! report-ins confirmed per service station and month, and how many of
//! them were members out of contact (regained through report-in); the
//! claims waiting, and those from regions without an agreement. At a
//! home: the members regained through a report-in at a host's station,
//! per month and one a row.

use std::collections::BTreeMap;

use rusqlite::Connection;

use super::places::place_label;
use super::query::{org_label, org_names, Query};
use super::table::{count, define, text, Kind, Table};
use super::Report;
use crate::{Ctx, Error};

/// The contact statuses that make a confirmed report-in a regained member.
const OUT_OF_CONTACT: &str = "('overdue', 'lost', 'searching', 'unreachable')";

pub(super) fn report(conn: &Connection, ctx: &Ctx<'_>, q: &Query) -> Result<Report, Error> {
    let (from, until) = q.period_or_year();
    let mut params = q.params();
    params
        .set(":from", from.clone())
        .set(":until", until.clone());
    let mut report = Report::new("流动党员报到情况", "Report-in");
    report.notes.push(format!(
        "期间 period: {from} – {until}（报到按提交日期，找回按决定日期 — report-ins by the day submitted, regained members by the day decided）"
    ));

    let mut by_station = Table::new(
        "by_station_month",
        "按服务站和月份的报到（流入地）",
        "Report-ins by station and month (host)",
    )
    .col("station", "服务站", "station", Kind::Text)
    .col("month", "月份", "month", Kind::Text)
    .col("confirmed", "确认报到", "confirmed", Kind::Count)
    .col("regained", "其中找回", "of them regained", Kind::Count);
    let (mut confirmed_total, mut regained_total) = (0i64, 0i64);
    params.each(
        conn,
        &format!(
            "SELECT COALESCE(s.name, c.station), substr(c.submitted_at, 1, 7), COUNT(*),
                    SUM(c.status_before IN {OUT_OF_CONTACT})
               FROM reportin_claims c LEFT JOIN stations s ON s.code = c.station
              WHERE c.state = 'confirmed' AND substr(c.submitted_at, 1, 10) BETWEEN :from AND :until
              GROUP BY 1, 2 ORDER BY 1, 2"
        ),
        |row| {
            let (confirmed, regained): (i64, i64) = (row.get(2)?, row.get(3)?);
            confirmed_total += confirmed;
            regained_total += regained;
            by_station.row(vec![
                text(row.get::<_, String>(0)?),
                text(row.get::<_, String>(1)?),
                count(confirmed),
                count(regained),
            ]);
            Ok(())
        },
    )?;
    by_station.note(format!(
        "合计 total: {confirmed_total} 人确认报到，其中 {regained_total} 人报到前联系逾期或失联 — {confirmed_total} confirmed, {regained_total} of them out of contact before"
    ));
    report.tables.push(by_station.done());

    // Claims waiting now: to confirm, or from a region without agreement.
    let mut waiting: BTreeMap<(bool, String), i64> = BTreeMap::new();
    params.each(
        conn,
        "SELECT home_place, COUNT(*) FROM reportin_claims WHERE state = 'pending' GROUP BY home_place",
        |row| {
            let place: String = row.get(0)?;
            let covered = crate::reportin::home_node(conn, ctx, &place)?.is_some();
            *waiting.entry((covered, place)).or_default() += row.get::<_, i64>(1)?;
            Ok(())
        },
    )?;
    let mut pending = Table::new("pending", "待确认的报到申请", "Claims waiting")
        .col("home", "流出地", "home region", Kind::Text)
        .col("situation", "情况", "situation", Kind::Text)
        .col("claims", "申请数", "claims", Kind::Count);
    for ((covered, place), n) in &waiting {
        pending.row(vec![
            text(place_label(place)),
            text(if *covered {
                "待确认 to confirm".to_owned()
            } else {
                format!("无协议 no agreement with {}", place_label(place))
            }),
            count(*n),
        ]);
    }
    pending
        .note("取当前 — as of now; 无协议的申请不发送 — a claim without agreement is never sent.");
    report.tables.push(pending.done());

    let orgs = org_names(conn)?;
    let mut by_month: BTreeMap<String, i64> = BTreeMap::new();
    let mut regained = Table::new(
        "regained",
        "经报到找回的党员（流出地）",
        "Members regained through report-in (home)",
    )
    .col("name", "姓名", "name", Kind::Text)
    .col("branch", "所在支部", "home branch", Kind::Text)
    .col("destination", "去向地", "destination", Kind::Text)
    .col("decided_at", "找回日期", "regained on", Kind::Date);
    let mut n = 0u64;
    params.each(
        conn,
        "SELECT m.name, m.home_branch, COALESCE(o.destination_place, ''), substr(d.decided_at, 1, 10)
           FROM contact_decisions d JOIN members m ON m.member_id = d.member_id
           LEFT JOIN outflows o ON o.member_id = m.member_id AND o.state = 'open'
          WHERE d.status = 'regained' AND d.via = 'report-in' AND m.owner = :me
            AND substr(d.decided_at, 1, 10) BETWEEN :from AND :until
          ORDER BY d.decided_at, m.member_id",
        |row| {
            let day: String = row.get(3)?;
            *by_month.entry(day.get(..7).unwrap_or_default().to_owned()).or_default() += 1;
            n += 1;
            if q.limit.is_none_or(|limit| regained.rows() < limit) {
                regained.row(vec![
                    text(row.get::<_, String>(0)?),
                    text(org_label(&orgs, &row.get::<_, String>(1)?)),
                    text(place_label(&row.get::<_, String>(2)?)),
                    text(day),
                ]);
            }
            Ok(())
        },
    )?;
    regained.left_out(n - regained.rows() as u64);
    let mut months = Table::new(
        "regained_by_month",
        "经报到找回的党员人数（流出地，按月）",
        "Members regained through report-in by month (home)",
    )
    .col("month", "月份", "month", Kind::Text)
    .col("members", "人数", "members", Kind::Count);
    for (month, members) in &by_month {
        months.row(vec![text(month.clone()), count(*members)]);
    }
    months.note(format!("合计 total: {n}"));
    report.tables.push(months.done());
    report.tables.push(regained.done());
    report.definitions = vec![
        define(
            "确认报到",
            "confirmed report-in",
            "A member's report-in at one of this node's service stations that a clerk confirmed against a member hosted here under an agreement; it is sent to the member's home as a contact of channel report-in.",
        ),
        define(
            "经报到找回",
            "regained through report-in",
            "A member overdue or out of contact (失联, 查找中, 经查找仍然无法取得联系) whose report-in at a host's station made the home node record the member regained (经查找取得联系). At a host: the confirmed report-ins of members whose home had shared such a status.",
        ),
        define(
            "无协议",
            "no agreement",
            "A claim from a home region with which this node has no active co-management agreement: it holds no member of that region, cannot confirm the claim, and never sends it.",
        ),
    ];
    Ok(report)
}
