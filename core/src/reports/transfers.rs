//! `report transfers`: letters (组织关系转接) by peer and by their state
//! at the date, and the receipts overdue: released a month or
//! more before with no receipt (DOMAIN R8).

use std::collections::BTreeMap;

use rusqlite::Connection;

use super::query::{peer_label, peer_names, Query};
use super::table::{count, define, text, Kind, Table};
use super::Report;
use crate::transfers::RECEIPT_DUE_DAYS;
use crate::Error;

/// The sender's states, then the receiver's, as the table's columns.
const SENT: [(&str, &str, &str); 6] = [
    ("offered", "已开出", "offered"),
    ("released", "已放行", "released"),
    ("completed", "已完成", "completed"),
    ("expired", "已过期", "expired"),
    ("rejected", "被拒绝", "rejected"),
    ("cancelled", "已撤销", "cancelled"),
];

const RECEIVED: [(&str, &str, &str); 6] = [
    ("pending", "待接收", "pending"),
    ("accepted", "已同意", "accepted"),
    ("completed", "已完成", "completed"),
    ("aborted", "已中止", "aborted"),
    ("rejected", "已拒绝", "rejected"),
    ("awaiting_sender", "待转出方决定", "awaiting sender"),
];

/// A letter's state at `:d`, from its current state and its dates: a
/// release before the end of the day decides (the receipt too, at the
/// sender); a letter still to be decided then shows as offered (pending
/// at the receiver) if its last change came after the day.
const STATE_AT: &str = "CASE
    WHEN released_at_ms IS NOT NULL AND released_at_ms < :end_ms THEN
        CASE WHEN direction = 'incoming' THEN 'completed'
             WHEN receipt_at_ms IS NOT NULL AND receipt_at_ms < :end_ms THEN 'completed'
             ELSE 'released' END
    WHEN state IN ('released', 'completed') OR updated_at_ms >= :end_ms THEN
        CASE WHEN direction = 'outgoing' THEN 'offered' ELSE 'pending' END
    ELSE state END";

pub(super) fn report(conn: &Connection, q: &Query) -> Result<Report, Error> {
    let mut params = q.params();
    let due_ms = q.end_ms() - RECEIPT_DUE_DAYS * 86_400_000;
    params.set(":due_ms", due_ms);
    let in_period = "issued_on <= :d AND (:from = '' OR issued_on >= :from) AND (:until = '' OR issued_on <= :until)";
    let mut by_peer: BTreeMap<String, ([i64; 6], [i64; 6], i64)> = BTreeMap::new();
    params.each(
        conn,
        &format!(
            "SELECT CASE WHEN direction = 'outgoing' THEN receiver ELSE sender END, direction, {STATE_AT}, COUNT(*)
               FROM transfers WHERE {in_period} GROUP BY 1, 2, 3"
        ),
        |row| {
            let peer: String = row.get(0)?;
            let direction: String = row.get(1)?;
            let state: String = row.get(2)?;
            let n: i64 = row.get(3)?;
            let entry = by_peer.entry(peer).or_default();
            let (states, counts) = if direction == "outgoing" {
                (&SENT, &mut entry.0)
            } else {
                (&RECEIVED, &mut entry.1)
            };
            if let Some(idx) = states.iter().position(|(s, _, _)| *s == state) {
                counts[idx] += n;
            }
            Ok(())
        },
    )?;
    let overdue_where = format!(
        "direction = 'outgoing' AND {in_period} AND released_at_ms IS NOT NULL AND released_at_ms < :due_ms
         AND (receipt_at_ms IS NULL OR receipt_at_ms >= :end_ms)"
    );
    params.each(
        conn,
        &format!("SELECT receiver, COUNT(*) FROM transfers WHERE {overdue_where} GROUP BY 1"),
        |row| {
            by_peer.entry(row.get(0)?).or_default().2 = row.get(1)?;
            Ok(())
        },
    )?;
    let peers = peer_names(conn)?;
    let mut table =
        Table::new("by_peer", "按对方节点", "By peer").col("peer", "对方节点", "peer", Kind::Text);
    for (state, zh, en) in SENT {
        table = table.col(
            &format!("sent_{state}"),
            &format!("转出{zh}"),
            &format!("sent {en}"),
            Kind::Count,
        );
    }
    for (state, zh, en) in RECEIVED {
        table = table.col(
            &format!("received_{state}"),
            &format!("转入{zh}"),
            &format!("received {en}"),
            Kind::Count,
        );
    }
    table = table.col(
        "receipts_overdue",
        "回执逾期",
        "receipts overdue",
        Kind::Count,
    );
    let mut totals = ([0i64; 6], [0i64; 6], 0i64);
    for (peer, (sent, received, overdue)) in &by_peer {
        let mut cells = vec![text(peer_label(&peers, peer))];
        cells.extend(sent.iter().map(|n| count(*n)));
        cells.extend(received.iter().map(|n| count(*n)));
        cells.push(count(*overdue));
        table.row(cells);
        for idx in 0..6 {
            totals.0[idx] += sent[idx];
            totals.1[idx] += received[idx];
        }
        totals.2 += overdue;
    }
    table.note(format!(
        "合计 total: 转出 sent {}, 转入 received {}, 回执逾期 receipts overdue {}",
        totals.0.iter().sum::<i64>(),
        totals.1.iter().sum::<i64>(),
        totals.2
    ));
    let mut report = Report::new(
        "组织关系转接统计",
        "Transfers of the organizational relationship",
    );
    report.tables.push(table.done());
    report
        .tables
        .push(overdue_register(conn, q, &params, &overdue_where, &peers)?);
    report.definitions = vec![
        define("转出 / 转入", "sent / received", "Letters this node issued as the sender, and letters it received; counted if issued on or before the date (and in the period, if one is given)."),
        define("状态", "state", "The letter's state at the date: a release on or before it makes it released (completed once the receipt came, at the sender; completed at the receiver); a letter decided after the date counts as still offered (pending at the receiver)."),
        define("回执逾期", "receipt overdue", "Released 30 days or more before the date with no receipt by then (the receipt is due within a month)."),
    ];
    Ok(report)
}

/// The letters whose receipt is overdue, one a row.
fn overdue_register(
    conn: &Connection,
    q: &Query,
    params: &super::query::Params,
    overdue_where: &str,
    peers: &std::collections::HashMap<String, String>,
) -> Result<liaison_proto::v1::ReportTable, Error> {
    let mut table = Table::new(
        "receipts_overdue",
        "回执逾期的介绍信",
        "Letters with the receipt overdue",
    )
    .col("letter_no", "介绍信编号", "letter number", Kind::Text)
    .col("name", "姓名", "name", Kind::Text)
    .col("receiver", "接收方", "receiver", Kind::Text)
    .col("released_on", "放行日期", "released on", Kind::Date)
    .col("days_overdue", "逾期天数", "days overdue", Kind::Count);
    let mut n = 0u64;
    params.each(
        conn,
        &format!(
            "SELECT letter_no, member_name, receiver, released_at_ms FROM transfers WHERE {overdue_where}
              ORDER BY released_at_ms, letter_no"
        ),
        |row| {
            n += 1;
            if q.limit.is_some_and(|limit| table.rows() >= limit) {
                return Ok(());
            }
            let released_ms: i64 = row.get(3)?;
            let released_on = q.day_of(released_ms);
            let receiver: String = row.get(2)?;
            table.row(vec![
                text(row.get::<_, String>(0)?),
                text(row.get::<_, String>(1)?),
                text(peer_label(peers, &receiver)),
                text(released_on.to_string()),
                count((q.as_of - released_on).num_days() - RECEIPT_DUE_DAYS),
            ]);
            Ok(())
        },
    )?;
    table.left_out(n - table.rows() as u64);
    table.note(format!("合计 total: {n}"));
    Ok(table.done())
}
