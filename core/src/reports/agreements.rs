//! `report agreements`: the active co-management agreements (双向共管协议),
//! with their numbers, the members in scope, the host's stations and
//! liaisons, and their end dates; those ending within 60 days first.

use chrono::NaiveDate;
use liaison_proto::v1 as pb;
use prost::Message;
use rusqlite::Connection;

use super::query::{peer_label, peer_names, Query};
use super::table::{count, define, text, Kind, Table};
use super::Report;
use crate::Error;

/// Days before its end at which an agreement is listed first.
const ENDING_SOON_DAYS: i64 = 60;

pub(super) fn report(conn: &Connection, q: &Query) -> Result<Report, Error> {
    let params = q.params();
    let mut rows: Vec<(bool, String, Vec<pb::ReportCell>)> = Vec::new();
    let peers = peer_names(conn)?;
    params.each(
        conn,
        "SELECT a.agreement_id, a.number, a.outflow_node, a.inflow_node, v.terms,
                CASE WHEN a.outflow_node = :me
                     THEN (SELECT COUNT(*) FROM shares s WHERE s.basis = a.agreement_id)
                     ELSE (SELECT COUNT(*) FROM home_copies c WHERE c.basis = a.agreement_id) END
           FROM agreements a
           JOIN agreement_versions v ON v.agreement_id = a.agreement_id AND v.version = a.active_version
          WHERE a.state = 'active' AND (a.outflow_node = :me OR a.inflow_node = :me)
          ORDER BY a.number",
        |row| {
            let number: String = row.get(1)?;
            let outflow: String = row.get(2)?;
            let inflow: String = row.get(3)?;
            let terms = pb::AgreementTerms::decode(row.get::<_, Vec<u8>>(4)?.as_slice()).unwrap_or_default();
            let in_scope: i64 = row.get(5)?;
            let coordinator = outflow == q.me();
            let until = NaiveDate::parse_from_str(&terms.effective_until, "%Y-%m-%d").ok();
            let days_left = until.map(|u| (u - q.as_of).num_days());
            let soon = days_left.is_some_and(|d| d <= ENDING_SOON_DAYS);
            let stations: Vec<String> = terms
                .inflow_liaisons
                .iter()
                .map(|l| {
                    if l.role.is_empty() {
                        l.name.clone()
                    } else {
                        format!("{}（{}）", l.name, l.role)
                    }
                })
                .collect();
            let cells = vec![
                text(number.clone()),
                text(if coordinator { "流出方(协调方) outflow party" } else { "流入方 inflow party" }),
                text(peer_label(&peers, if coordinator { &inflow } else { &outflow })),
                text(terms.effective_from.clone()),
                text(terms.effective_until.clone()),
                days_left.map(count).unwrap_or_else(|| text("")),
                count(in_scope),
                text(if terms.scope_kind == "members" { "名单 listed members" } else { "去向地 by destination" }),
                text(stations.join("；")),
                text(if soon { "是 yes" } else { "否 no" }),
            ];
            rows.push((soon, until.map(|u| u.to_string()).unwrap_or_default(), cells));
            Ok(())
        },
    )?;
    // Ending soon first, soonest first; the others by number (as read).
    rows.sort_by(|a, b| match (a.0, b.0) {
        (true, true) => a.1.cmp(&b.1),
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        (false, false) => std::cmp::Ordering::Equal,
    });
    let mut table = Table::new("active", "现行共管协议", "Active agreements")
        .col("number", "协议编号", "agreement number", Kind::Text)
        .col("role", "我方", "this node is", Kind::Text)
        .col("peer", "对方", "other party", Kind::Text)
        .col("effective_from", "生效日期", "effective from", Kind::Date)
        .col("effective_until", "截止日期", "effective until", Kind::Date)
        .col("days_left", "剩余天数", "days left", Kind::Count)
        .col("members", "协议范围内党员", "members in scope", Kind::Count)
        .col("scope", "范围", "scope", Kind::Text)
        .col(
            "stations",
            "流入地联络站/联系人",
            "host stations and liaisons",
            Kind::Text,
        )
        .col(
            "ending_soon",
            "60天内到期",
            "ends within 60 days",
            Kind::Text,
        );
    let n = rows.len();
    for (_, _, cells) in rows {
        table.row(cells);
    }
    table.note(format!("合计 total: {n}"));
    let mut report = Report::new("共管协议", "Co-management agreements");
    report.tables.push(table.done());
    report.notes.push(
        "协议取当前状态与条款；剩余天数按截至日期计算 — agreements as they stand now; days left are counted from the date.".into(),
    );
    report.definitions = vec![
        define("协议范围内党员", "members in scope", "At the outflow party, the members it shares under the agreement; at the inflow party, the members it holds under it."),
        define("流入地联络站/联系人", "host stations and liaisons", "The stations and people the inflow party named in the agreement's terms."),
    ];
    Ok(report)
}
