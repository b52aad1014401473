//! Counts by place, grouped province → city → county, each place by its
//! GB/T 2260 name and code, with the peer serving it.

use std::collections::BTreeMap;

use liaison_proto::v1 as pb;
use liaison_types::places;
use rusqlite::Connection;

use super::query::place_code6;
use super::table::{count, percent, text, Kind, Table};
use crate::Error;

/// The places each peer serves (`peer add --serves`), as code prefixes.
#[derive(Debug, Default)]
struct Servers(Vec<(String, String)>);

impl Servers {
    fn load(conn: &Connection) -> Result<Servers, Error> {
        let rows = conn
            .prepare_cached("SELECT node_id, place FROM peer_places ORDER BY node_id, place")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<(String, String)>, _>>()?;
        Ok(Servers(
            rows.into_iter()
                .map(|(node, place)| (node, prefix(&place)))
                .collect(),
        ))
    }

    /// The peers serving all of the place `code` (a prefix), joined by ", ".
    fn of(&self, code: &str) -> String {
        let code = prefix(code);
        let mut nodes: Vec<&str> = self
            .0
            .iter()
            .filter(|(_, served)| !served.is_empty() && code.starts_with(served.as_str()))
            .map(|(node, _)| node.as_str())
            .collect();
        nodes.dedup();
        nodes.join(", ")
    }
}

/// A place code (2, 4 or 6 digits) as people read it, with the names of
/// its parents that tell it from its namesakes: `兰州市城关区 (620102)`;
/// '' for none.
pub(super) fn place_label(code: &str) -> String {
    if code.trim().is_empty() {
        return String::new();
    }
    places::display(&place_code6(&prefix(code)))
}

/// The table of members by destination (`by_destination`): counts by
/// place code, grouped, with the peers that serve each place.
pub(super) fn by_destination(
    conn: &Connection,
    counts: &[(String, i64)],
    unknown: i64,
    total: i64,
) -> Result<pb::ReportTable, Error> {
    Ok(grouped(
        "by_destination",
        ("按去向地", "By destination"),
        counts,
        unknown,
        &Servers::load(conn)?,
        total,
    ))
}

/// A place code as the prefix that matches the places within it:
/// `620000` → `62`, `620100` → `6201`, `620102` as it is.
pub(super) fn prefix(code: &str) -> String {
    let code = code.trim();
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        if code.ends_with("0000") {
            return code[..2].to_owned();
        }
        if code.ends_with("00") {
            return code[..4].to_owned();
        }
    }
    code.to_owned()
}

#[derive(Debug, Default)]
struct Group {
    n: i64,
    below: BTreeMap<String, Group>,
}

/// Counts by place (codes of 2, 4 or 6 digits, as outflows hold them)
/// as a table grouped province → city → county, each row with its share
/// of `total`; `unknown` members (不掌握流向) in a last row of their own.
fn grouped(
    key: &str,
    (zh, en): (&str, &str),
    counts: &[(String, i64)],
    unknown: i64,
    servers: &Servers,
    total: i64,
) -> pb::ReportTable {
    let mut root = Group::default();
    let mut other: BTreeMap<String, i64> = BTreeMap::new();
    for (code, n) in counts {
        let code = prefix(code);
        if !(matches!(code.len(), 2 | 4 | 6) && code.bytes().all(|b| b.is_ascii_digit())) {
            // Text that is no code (written out on an older record).
            *other.entry(code).or_default() += n;
            continue;
        }
        let mut group = &mut root;
        group.n += n;
        for len in [2, 4, 6] {
            if code.len() < len {
                break;
            }
            group = group.below.entry(code[..len].to_owned()).or_default();
            group.n += n;
        }
    }
    let mut table = Table::new(key, zh, en)
        .col("place", "地区", "place", Kind::Text)
        .col("code", "代码", "code", Kind::Text)
        .col("level", "级别", "level", Kind::Text)
        .col("node", "服务节点", "serving node", Kind::Text)
        .counted();
    const LEVELS: [&str; 3] = ["省级 province", "地级 city", "县级 county"];
    fn rows(table: &mut Table, group: &Group, depth: u32, servers: &Servers, total: i64) {
        for (code, below) in &group.below {
            let code6 = place_code6(code);
            let name = match places::by_code(&code6) {
                Some(place) => place.name.to_owned(),
                None => places::display(&code6),
            };
            table.row_at(
                depth,
                vec![
                    text(name),
                    text(code6),
                    text(LEVELS[depth as usize]),
                    text(servers.of(code)),
                    count(below.n),
                    percent(below.n, total),
                ],
            );
            rows(table, below, depth + 1, servers, total);
        }
    }
    rows(&mut table, &root, 0, servers, total);
    for (written, n) in other {
        table.row(vec![
            text(written),
            text(""),
            text(""),
            text(""),
            count(n),
            percent(n, total),
        ]);
    }
    if unknown > 0 {
        table.row(vec![
            text("不掌握流向 unknown destination"),
            text(""),
            text(""),
            text(""),
            count(unknown),
            percent(unknown, total),
        ]);
    }
    table.note(format!("合计 total: {total}"));
    table.done()
}
