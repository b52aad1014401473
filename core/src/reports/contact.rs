//! `report contact`: the members away by contact status at the date
//!, and the two lost-contact registers of DOMAIN §8: members
//! found after six months or more out of contact (经查找取得联系党员登记表)
//! and members still unreachable (经查找仍然无法取得联系党员登记表), with
//! their time out of contact and its cause.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use liaison_types::validate::LOST_CAUSES;
use rusqlite::Connection;

use super::inflow::HOSTED;
use super::places::place_label;
use super::query::{
    away_own, org_label, org_names, Departed, Query, AWAY_FROM, NOT_RECEIVED_LATER, NOT_RECORDED,
    OWN,
};
use super::table::{by_dimension, count, define, number, text, Kind, Table};
use super::Report;
use crate::members::{ContactFacts, LOST_AFTER_DAYS};
use crate::Error;

/// The statuses in the order of DOMAIN §6.2, with their names.
pub(super) const STATUSES: [(&str, &str); 6] = [
    ("in_contact", "保持联系 in contact"),
    ("overdue", "联系逾期 overdue"),
    ("lost", "失联 lost"),
    ("searching", "查找中 searching"),
    ("regained", "经查找取得联系 regained"),
    ("unreachable", "经查找仍然无法取得联系 unreachable"),
];

fn status_label(status: &str) -> String {
    STATUSES
        .iter()
        .find(|(s, _)| *s == status)
        .map(|(_, label)| (*label).to_owned())
        .unwrap_or_else(|| {
            if status.is_empty() {
                NOT_RECORDED.to_owned()
            } else {
                status.to_owned()
            }
        })
}

/// A cause code as the registers print it: `① 外出务工经商`.
fn cause_label(code: &str) -> String {
    const CIRCLED: [&str; 7] = ["①", "②", "③", "④", "⑤", "⑥", "⑦"];
    LOST_CAUSES
        .iter()
        .zip(CIRCLED)
        .find(|((c, _), _)| *c == code)
        .map(|((_, name), circled)| format!("{circled} {name}"))
        .unwrap_or_default()
}

/// Months between two dates, to one decimal (a month of 30.44 days).
fn months(from: &str, to: NaiveDate) -> f64 {
    NaiveDate::parse_from_str(from.get(..10).unwrap_or(from), "%Y-%m-%d")
        .map(|d| (to - d).num_days() as f64 / 30.44)
        .unwrap_or(0.0)
}

fn date_of(local_time: &str) -> NaiveDate {
    NaiveDate::parse_from_str(local_time.get(..10).unwrap_or(local_time), "%Y-%m-%d")
        .unwrap_or_default()
}

pub(super) fn report(conn: &Connection, q: &Query) -> Result<Report, Error> {
    let params = q.params();
    let orgs = org_names(conn)?;
    let mut by_status: BTreeMap<String, i64> = BTreeMap::new();
    let mut by_branch: BTreeMap<String, [i64; 6]> = BTreeMap::new();
    let mut unreachable = register_table(
        "unreachable",
        (
            "经查找仍然无法取得联系党员登记表",
            "Register: still unreachable after searching",
        ),
        false,
    );
    let mut unreachable_n = 0u64;
    let sql = format!(
        "SELECT m.member_id, m.name, m.home_branch, o.destination_place, o.departed_on,
                COALESCE((SELECT MAX(c.at) FROM contacts c WHERE c.member_id = m.member_id AND c.at < :next), ''),
                COALESCE((SELECT MAX(c.at) FROM contacts c WHERE c.member_id = m.member_id AND c.at < :next
                              AND c.channel IN ('org_life', 'dues')), ''),
                COALESCE((SELECT d.status || '|' || d.decided_at FROM contact_decisions d
                           WHERE d.member_id = m.member_id AND d.decided_at < :next
                           ORDER BY d.decided_at DESC, d.decision_id DESC LIMIT 1), ''),
                COALESCE((SELECT d.cause FROM contact_decisions d
                           WHERE d.member_id = m.member_id AND d.decided_at < :next AND d.cause <> ''
                           ORDER BY d.decided_at DESC, d.decision_id DESC LIMIT 1), '')
           FROM {AWAY_FROM}
          WHERE {}
          ORDER BY o.departed_on, m.member_id",
        away_own(Departed::Any)
    );
    params.each(conn, &sql, |row| {
        let name: String = row.get(1)?;
        let branch: String = row.get(2)?;
        let place: String = row.get(3)?;
        let departed_on: String = row.get(4)?;
        let last_contact: String = row.get(5)?;
        let last_org_life: String = row.get(6)?;
        let decision: String = row.get(7)?;
        let cause: String = row.get(8)?;
        let (manual, manual_at) = decision.split_once('|').unwrap_or(("", ""));
        let state = ContactFacts {
            last_contact: &last_contact,
            last_org_life: &last_org_life,
            departed_on: &departed_on,
            manual,
            manual_at,
        }
        .state_on(q.as_of);
        *by_status.entry(state.status.clone()).or_default() += 1;
        if let Some(idx) = STATUSES.iter().position(|(s, _)| *s == state.status) {
            by_branch.entry(branch.clone()).or_default()[idx] += 1;
        }
        if state.status == "unreachable" {
            unreachable_n += 1;
            if q.limit.is_none_or(|limit| unreachable.rows() < limit) {
                unreachable.row(vec![
                    text(name),
                    text(org_label(&orgs, &branch)),
                    text(place_label(&place)),
                    text(state.lost_since.clone()),
                    number(months(&state.lost_since, q.as_of)),
                    text(cause_label(&cause)),
                ]);
            }
        }
        Ok(())
    })?;
    let away: i64 = by_status.values().sum();
    let mut report = Report::new(
        "联系情况与失联党员登记",
        "Contact status and lost-contact registers",
    );
    let rows: Vec<(String, i64)> = STATUSES
        .iter()
        .map(|(s, label)| ((*label).to_owned(), by_status.get(*s).copied().unwrap_or(0)))
        .collect();
    report.tables.push(by_dimension(
        "by_status",
        ("按联系状态", "By contact status"),
        ("联系状态", "status"),
        &rows,
        away,
    ));
    let mut branches = Table::new("by_branch", "按所在支部", "By home branch").col(
        "branch",
        "所在支部",
        "home branch",
        Kind::Text,
    );
    for (status, label) in STATUSES {
        let zh = label.split(' ').next().unwrap_or(label);
        let en = label.split_once(' ').map_or(label, |(_, en)| en);
        branches = branches.col(status, zh, en, Kind::Count);
    }
    branches = branches.col("members", "合计", "total", Kind::Count);
    for (branch, n) in &by_branch {
        let mut cells = vec![text(org_label(&orgs, branch))];
        cells.extend(n.iter().map(|n| count(*n)));
        cells.push(count(n.iter().sum()));
        branches.row(cells);
    }
    report.tables.push(branches.done());
    let (found, found_n) = found_register(conn, q, &orgs)?;
    report.tables.push(found);
    unreachable.left_out(unreachable_n - unreachable.rows() as u64);
    unreachable.note(format!("合计 total: {unreachable_n}"));
    report.tables.push(unreachable.done());
    report.tables.push(hosted(conn, q)?);
    let (from, until) = q.period_or_year();
    report.notes.push(format!(
        "经查找取得联系登记表列出 {from} 至 {until} 间找到、失联6个月以上的党员 — the register of members found lists those found from {from} until {until} after six months or more out of contact ({found_n})."
    ));
    report.definitions = vec![
        define("联系状态", "contact status", "Derived on the date from the contact events of both sides and the owner's decisions: in contact up to 92 days since the last contact or the departure, overdue up to 183 days, then lost (失联); searching, regained and unreachable are the owner's decisions, and a contact after a search makes the member regained."),
        define("失联时间", "time out of contact", "From the last organizational life or dues payment before the search (else the departure) to the day found, or to the date for a member still unreachable, in months of 30.44 days."),
        define("失联原因", "cause", "The cause the owner gave with the search (`contact status --set searching --cause`): ① 外出务工经商 ② 单位改制或破产 ③ 毕业后去向不明 ④ 工作单位改变 ⑤ 出国(境) ⑥ 居住地改变 ⑦ 其他."),
        define("流入党员联系状态", "status of members hosted", "The status their owner decided and shares; a host never derives one."),
    ];
    Ok(report)
}

/// A register's table: one member a row; the register of members found
/// also says when.
fn register_table(key: &str, (zh, en): (&str, &str), found: bool) -> Table {
    let table = Table::new(key, zh, en)
        .col("name", "姓名", "name", Kind::Text)
        .col("branch", "所在支部", "home branch", Kind::Text)
        .col("destination", "去向地", "destination", Kind::Text)
        .col(
            "lost_since",
            "失联起始日期",
            "out of contact since",
            Kind::Date,
        );
    let table = if found {
        table.col("found_on", "取得联系日期", "found on", Kind::Date)
    } else {
        table
    };
    table
        .col(
            "months_out",
            "失联时间(月)",
            "months out of contact",
            Kind::Number,
        )
        .col("cause", "失联原因", "cause", Kind::Text)
}

/// The members found in the period after six months or more out of
/// contact: each search (a searching or unreachable decision) ended by a
/// regained decision or a contact after the last decision.
fn found_register(
    conn: &Connection,
    q: &Query,
    orgs: &std::collections::HashMap<String, String>,
) -> Result<(liaison_proto::v1::ReportTable, u64), Error> {
    let (from, until) = q.period_or_year();
    let params = q.params();
    let mut table = register_table(
        "found",
        (
            "经查找取得联系党员登记表",
            "Register: found after six months or more out of contact",
        ),
        true,
    );
    let mut candidates: Vec<(String, String, String)> = Vec::new();
    params.each(
        conn,
        &format!(
            "SELECT m.member_id, m.name, m.home_branch FROM members m
              WHERE {OWN} AND {NOT_RECEIVED_LATER}
                AND m.member_id IN (SELECT member_id FROM contact_decisions
                                     WHERE decided_at < :next AND status IN ('searching', 'unreachable'))
              ORDER BY m.member_id"
        ),
        |row| {
            candidates.push((row.get(0)?, row.get(1)?, row.get(2)?));
            Ok(())
        },
    )?;
    let mut n = 0u64;
    for (member_id, name, branch) in candidates {
        let mut decisions: Vec<(String, String, String)> = Vec::new();
        conn.prepare_cached(
            "SELECT status, decided_at, cause FROM contact_decisions
              WHERE member_id = ?1 AND decided_at < ?2 ORDER BY decided_at, decision_id",
        )?
        .query_map(rusqlite::params![member_id, q.next_day()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .try_for_each(|d| -> Result<(), Error> {
            decisions.push(d?);
            Ok(())
        })?;
        // Each search: its start, its end (found), its cause.
        let mut episodes: Vec<(String, String, String)> = Vec::new();
        let mut search: Option<(String, String)> = None;
        let mut last_decision = String::new();
        for (status, at, cause) in &decisions {
            last_decision = at.clone();
            match (status.as_str(), &mut search) {
                ("searching" | "unreachable", None) => search = Some((at.clone(), cause.clone())),
                // A later decision of the same search may give the cause.
                ("searching" | "unreachable", Some((_, kept))) if !cause.is_empty() => {
                    *kept = cause.clone();
                }
                ("regained", Some(_)) => {
                    if let Some((start, cause)) = search.take() {
                        episodes.push((start, at.clone(), cause));
                    }
                }
                _ => {}
            }
        }
        if let Some((start, cause)) = search.take() {
            let contact: Option<String> = conn
                .prepare_cached(
                    "SELECT MIN(at) FROM contacts WHERE member_id = ?1 AND at > ?2 AND at < ?3",
                )?
                .query_row(
                    rusqlite::params![member_id, last_decision, q.next_day()],
                    |r| r.get(0),
                )?;
            if let Some(found) = contact {
                episodes.push((start, found, cause));
            }
        }
        for (start, found, cause) in episodes {
            let found_on = found.get(..10).unwrap_or(&found).to_owned();
            if found_on < from || found_on > until {
                continue;
            }
            let last_org_life: Option<String> = conn
                .prepare_cached(
                    "SELECT MAX(at) FROM contacts WHERE member_id = ?1 AND at < ?2 AND channel IN ('org_life', 'dues')",
                )?
                .query_row(rusqlite::params![member_id, start], |r| r.get(0))?;
            let departed: Option<(String, String)> = conn
                .prepare_cached(
                    "SELECT departed_on, destination_place FROM outflows
                      WHERE member_id = ?1 AND departed_on <= ?2 ORDER BY departed_on DESC LIMIT 1",
                )?
                .query_row(rusqlite::params![member_id, start], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map(Some)
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    e => Err(e),
                })?;
            let lost_since = match (&last_org_life, &departed) {
                (Some(at), _) => at.get(..10).unwrap_or(at).to_owned(),
                (None, Some((departed_on, _))) => departed_on.clone(),
                (None, None) => continue,
            };
            let found_date = date_of(&found_on);
            if (found_date - date_of(&lost_since)).num_days() < LOST_AFTER_DAYS {
                continue;
            }
            n += 1;
            if q.limit.is_none_or(|limit| table.rows() < limit) {
                let place = departed.map(|(_, place)| place).unwrap_or_default();
                table.row(vec![
                    text(name.clone()),
                    text(org_label(orgs, &branch)),
                    text(place_label(&place)),
                    text(lost_since.clone()),
                    text(found_on),
                    number(months(&lost_since, found_date)),
                    text(cause_label(&cause)),
                ]);
            }
        }
    }
    table.left_out(n - table.rows() as u64);
    table.note(format!("合计 total: {n}"));
    Ok((table.done(), n))
}

/// The members this node hosts, by the status their owner shares.
fn hosted(conn: &Connection, q: &Query) -> Result<liaison_proto::v1::ReportTable, Error> {
    let mut by: BTreeMap<String, i64> = BTreeMap::new();
    q.params().each(
        conn,
        &format!("WITH {HOSTED} SELECT contact_status, COUNT(*) FROM hosted GROUP BY 1"),
        |row| {
            by.insert(row.get(0)?, row.get(1)?);
            Ok(())
        },
    )?;
    let total = by.values().sum();
    let mut rows: Vec<(String, i64)> = STATUSES
        .iter()
        .filter_map(|(s, _)| by.remove(*s).map(|n| (status_label(s), n)))
        .collect();
    rows.extend(by.into_iter().map(|(s, n)| (status_label(&s), n)));
    Ok(by_dimension(
        "hosted_by_status",
        (
            "流入党员按联系状态（流出地共享）",
            "Members hosted, by the status their owner shares",
        ),
        ("联系状态", "status"),
        &rows,
        total,
    ))
}
