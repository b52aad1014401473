//! Reports and statistics (docs/reports.md): the year-end figures, the
//! contact registers and the rosters an organization department keeps,
//! computed from this node's own records.
//!
//! Every report is tables of counts (and of members, for the registers
//! and rosters), each column named in Chinese and English, with the
//! counting rule and the definitions; `liaisonctl` prints them as text,
//! JSON Lines, CSV, an Excel workbook or a chart without knowing the
//! report ([`table`]). Reports only read: the node runs them on a
//! read-only connection, in one read transaction, so a report is one
//! snapshot and never holds the writer; [`trend`] also records the
//! year-end counts and imports earlier years, the only writes here.
//!
//! Counting: an owner counts its members wherever they are; a
//! host reports on the members it hosts from the fields shared with it,
//! apart, never added to its own totals. Counts at an earlier date come
//! from the dated facts the node keeps ([`query`]).
//!
//! Layout, bottom to top (a file uses only those before it; `layer_tests`
//! checks it): `table` (the shape), `query` (the request and the SQL of
//! who counts), `places` (places grouped province → city → county), then
//! one file per report (`reportin`: report-ins per station and month, and
//! members regained through them).

mod activity;
mod agreements;
mod contact;
mod due;
mod inflow;
mod outflow;
mod places;
mod query;
mod reportin;
mod table;
mod transfers;
mod trend;
mod uncovered;

use liaison_proto::v1 as pb;
use rusqlite::Connection;

use crate::{Ctx, Error};
use query::{Query, Takes};

pub use trend::{count_year_end, import_years, record_year_end, year_end_due, YearEnd};

/// The reports, as `ReportRequest.report` names them.
pub const REPORTS: [&str; 10] = [
    "outflow",
    "inflow",
    "contact",
    "transfers",
    "transfer_due",
    "activity",
    "trend",
    "uncovered",
    "agreements",
    "reportin",
];

/// A report before the node names itself in it.
#[derive(Debug, Default)]
struct Report {
    title_zh: String,
    title_en: String,
    notes: Vec<String>,
    tables: Vec<pb::ReportTable>,
    definitions: Vec<pb::ReportDefinition>,
}

impl Report {
    fn new(zh: &str, en: &str) -> Report {
        Report {
            title_zh: zh.into(),
            title_en: en.into(),
            ..Report::default()
        }
    }
}

/// The counting rule of every report on a node's own members.
const RULE_OWNER: &str = "党员按组织关系所在地统计：本节点统计组织关系在本节点的党员，无论其身在何处 — a member counts where the formal relationship (组织关系) is: this node counts its own members wherever they are.";

/// The counting rule of a host's part.
const RULE_HOST: &str = "流入党员单独统计，计入其流出地，不计入本节点党员总数；只用对方共享的字段 — members hosted here count at their home node and are never added to this node's totals; their part uses only the fields their owner shares.";

/// Where a member in transfer counts.
const RULE_TRANSFER: &str = "转接中的党员在转出方统计至介绍信放行之日，自放行之日起在接收方统计 — a member in transfer counts at the sender up to the release and at the receiver from the day of the release.";

/// The report `req` asks for, at its date, from `conn` (a read-only
/// connection; the report reads in one transaction of its own unless the
/// caller holds one).
pub fn report(
    conn: &Connection,
    ctx: &Ctx<'_>,
    req: &pb::ReportRequest,
) -> Result<pb::ReportResponse, Error> {
    let name = req.report.trim().replace('-', "_");
    let Some(&report) = REPORTS.iter().find(|r| **r == name) else {
        return Err(Error::invalid(format!(
            "there is no report `{}`: the reports are {}",
            req.report.trim(),
            REPORTS.map(|r| r.replace('_', "-")).join(", ")
        )));
    };
    let all = Takes {
        branch: true,
        destination: true,
        period: true,
    };
    let takes = match report {
        "inflow" => Takes {
            destination: false,
            ..all
        },
        "transfers" | "trend" => Takes {
            period: true,
            ..Takes::default()
        },
        "agreements" => Takes::default(),
        "reportin" => Takes {
            period: true,
            ..Takes::default()
        },
        _ => all,
    };
    let q = Query::parse(report, req, ctx, takes)?;
    // One snapshot: every statement of the report reads the same state.
    let snapshot = if conn.is_autocommit() {
        Some(conn.unchecked_transaction()?)
    } else {
        None
    };
    let mut built = match report {
        "outflow" => outflow::report(conn, &q)?,
        "inflow" => inflow::report(conn, &q)?,
        "contact" => contact::report(conn, &q)?,
        "transfers" => transfers::report(conn, &q)?,
        "transfer_due" => due::report(conn, &q)?,
        "activity" => activity::report(conn, &q)?,
        "trend" => trend::report(conn, &q)?,
        "uncovered" => uncovered::report(conn, ctx, &q)?,
        "reportin" => reportin::report(conn, ctx, &q)?,
        _ => agreements::report(conn, &q)?,
    };
    drop(snapshot);
    let mut rules = match report {
        "inflow" => vec![RULE_HOST.to_owned()],
        "contact" | "activity" | "reportin" => vec![RULE_OWNER.to_owned(), RULE_HOST.to_owned()],
        _ => vec![RULE_OWNER.to_owned()],
    };
    if matches!(report, "outflow" | "transfers" | "trend") {
        rules.push(RULE_TRANSFER.to_owned());
    }
    let mut notes = q.filter_notes();
    if q.in_the_past() && report != "trend" {
        notes.push(format!(
            "截至 {d} 的人数由本节点有日期的记录推算（流出登记的外出与返回日期、转接的放行日期、联系记录与决定、介绍信存根）；其他维度取当前值 — counts as of {d} come from the dated facts this node keeps (departures and returns, releases of transfers, contact events and decisions, letter stubs); every other dimension is its current value.",
            d = q.d()
        ));
    }
    notes.append(&mut built.notes);
    Ok(pb::ReportResponse {
        report: report.to_owned(),
        title_zh: built.title_zh,
        title_en: built.title_en,
        node_id: ctx.me.to_string(),
        node_name: String::new(),
        as_of: q.d(),
        generated_at_ms: ctx.now_ms,
        rules,
        notes,
        tables: built.tables,
        definitions: built.definitions,
    })
}
