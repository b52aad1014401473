//! Outflow registrations: a member away from home, where to and since when.

use liaison_proto::v1 as pb;
use rusqlite::Row;
use rusqlite::{params, Connection, OptionalExtension};

use crate::Error;

/// How many columns [`OUTFLOW_COLUMNS`] names.
pub(super) const OUTFLOW_COLUMNS_N: usize = 16;

pub(super) const OUTFLOW_COLUMNS: &str = "o.outflow_id, o.member_id, COALESCE(m.name, ''), o.destination_place, o.destination_node,
    o.direction, o.departed_on, o.expected_return, o.reason, o.fixed_location, o.certificate_no, o.certificate_issuer,
    o.certificate_issued_on, o.card_no, o.state, o.returned_on";

pub(super) fn read_outflow(r: &Row<'_>) -> rusqlite::Result<pb::OutflowView> {
    Ok(pb::OutflowView {
        outflow_id: r.get(0)?,
        member_id: r.get(1)?,
        member_name: r.get(2)?,
        destination_place: r.get(3)?,
        destination_node: r.get(4)?,
        direction: r.get(5)?,
        departed_on: r.get(6)?,
        expected_return: r.get(7)?,
        reason: r.get(8)?,
        fixed_location: r.get(9)?,
        certificate_no: r.get(10)?,
        certificate_issuer: r.get(11)?,
        certificate_issued_on: r.get(12)?,
        card_no: r.get(13)?,
        state: r.get(14)?,
        returned_on: r.get(15)?,
    })
}

pub fn open_outflow(conn: &Connection, member_id: &str) -> Result<Option<pb::OutflowView>, Error> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {OUTFLOW_COLUMNS} FROM outflows o LEFT JOIN members m ON m.member_id = o.member_id
             WHERE o.member_id = ?1 AND o.state = 'open'"
        ))?
        .query_row([member_id], read_outflow)
        .optional()?)
}

/// The peer serving `place`: the longest served prefix wins.
pub(super) fn serving_peer(conn: &Connection, place: &str) -> Result<Option<String>, Error> {
    Ok(conn
        .prepare_cached(
            "SELECT node_id FROM peer_places WHERE ?1 LIKE place || '%' ORDER BY LENGTH(place) DESC, node_id LIMIT 1",
        )?
        .query_row([place], |r| r.get(0))
        .optional()?)
}

pub fn outflow_list(
    conn: &Connection,
    req: &pb::OutflowListRequest,
) -> Result<Vec<pb::OutflowView>, Error> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {OUTFLOW_COLUMNS} FROM outflows o LEFT JOIN members m ON m.member_id = o.member_id
         WHERE (?1 OR o.state = 'open') AND (?2 = '' OR o.destination_place LIKE ?2 || '%')
         ORDER BY o.departed_on, o.outflow_id"
    ))?;
    let list = stmt
        .query_map(
            params![req.include_returned, req.destination.trim()],
            read_outflow,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(list)
}
