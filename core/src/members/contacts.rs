//! Contact events and activities, each written by the node that made it.

use liaison_proto::v1 as pb;
use rusqlite::{params, Connection, OptionalExtension};

use super::labels::member_name_sql;
use crate::Error;

/// The columns [`section_record`] reads, in its order.
const SECTION_COLUMNS: &str =
    "member_id, author, generation, counter, host_branch, reported_on, address, employer,
     industry, job, contact_person, contact_phone, last_seen_at_host, basis, station";

/// A host section as it goes on the wire, from a row of [`SECTION_COLUMNS`].
fn section_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<pb::HostSection> {
    Ok(pb::HostSection {
        member_id: r.get(0)?,
        author: r.get(1)?,
        version: Some(pb::Version {
            generation: r.get(2)?,
            counter: r.get(3)?,
        }),
        host_branch: r.get(4)?,
        reported_on: r.get(5)?,
        address: r.get(6)?,
        employer: r.get(7)?,
        industry: r.get(8)?,
        job: r.get(9)?,
        contact_person: r.get(10)?,
        contact_phone: r.get(11)?,
        last_seen_at_host: r.get(12)?,
        basis: r.get(13)?,
        station: r.get(14)?,
    })
}

/// The basis and version of `author`'s host section of `member_id`, if it
/// holds one: the host's apply path asks for every copy it stores, so a
/// primary-key lookup of two columns, by a fixed statement.
pub fn host_section_basis(
    conn: &Connection,
    member_id: &str,
    author: &str,
) -> Result<Option<(String, pb::Version)>, Error> {
    Ok(conn
        .prepare_cached(
            "SELECT basis, generation, counter FROM host_sections WHERE member_id = ?1 AND author = ?2",
        )?
        .query_row([member_id, author], text_and_version)
        .optional()?)
}

/// A text column then a version's generation and counter, from column 0.
pub(super) fn text_and_version(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, pb::Version)> {
    Ok((
        r.get(0)?,
        pb::Version {
            generation: r.get(1)?,
            counter: r.get(2)?,
        },
    ))
}

/// Whether `author` wrote any host section held here (an index lookup).
pub fn writes_host_sections(conn: &Connection, author: &str) -> Result<bool, Error> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM host_sections WHERE author = ?1 LIMIT 1")?
        .query_row([author], |_| Ok(()))
        .optional()?
        .is_some())
}

/// `author`'s host section of `member_id`, as it goes on the wire.
pub fn host_section_record(
    conn: &Connection,
    member_id: &str,
    author: &str,
) -> Result<Option<pb::HostSection>, Error> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {SECTION_COLUMNS} FROM host_sections WHERE member_id = ?1 AND author = ?2"
        ))?
        .query_row([member_id, author], section_record)
        .optional()?)
}

/// Host sections, contact events and activities matching `filter` (an SQL
/// condition over the record as `r`).
#[derive(Default)]
pub struct HostRecords {
    pub sections: Vec<pb::HostSection>,
    pub contacts: Vec<pb::ContactEvent>,
    pub activities: Vec<pb::ActivityRecord>,
}

impl HostRecords {
    pub fn read(
        conn: &Connection,
        filter: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Self, Error> {
        let sections = conn
            .prepare(&format!(
                "SELECT {SECTION_COLUMNS} FROM host_sections r WHERE {filter} ORDER BY member_id, author"
            ))?
            .query_map(args, section_record)?
            .collect::<Result<Vec<_>, _>>()?;
        let contacts = conn
            .prepare(&format!(
                "SELECT contact_id, member_id, author, at, channel, by_whom, outcome, basis
                 FROM contacts r WHERE {filter} ORDER BY contact_id"
            ))?
            .query_map(args, |r| {
                Ok(pb::ContactEvent {
                    contact_id: r.get(0)?,
                    member_id: r.get(1)?,
                    author: r.get(2)?,
                    at: r.get(3)?,
                    channel: r.get(4)?,
                    by: r.get(5)?,
                    outcome: r.get(6)?,
                    basis: r.get(7)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let activities = conn
            .prepare(&format!(
                "SELECT activity_id, member_id, author, kind, date, branch, hours, note, basis
                 FROM activities r WHERE {filter} ORDER BY activity_id"
            ))?
            .query_map(args, |r| {
                Ok(pb::ActivityRecord {
                    activity_id: r.get(0)?,
                    member_id: r.get(1)?,
                    author: r.get(2)?,
                    kind: r.get(3)?,
                    date: r.get(4)?,
                    branch: r.get(5)?,
                    hours: r.get(6)?,
                    note: r.get(7)?,
                    basis: r.get(8)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(HostRecords {
            sections,
            contacts,
            activities,
        })
    }
}

pub fn save_contact(conn: &Connection, c: &pb::ContactEvent, now_ms: i64) -> Result<bool, Error> {
    let n = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO contacts (contact_id, member_id, author, at, channel, by_whom, outcome, basis, recorded_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![c.contact_id, c.member_id, c.author, c.at, c.channel, c.by, c.outcome, c.basis, now_ms])?;
    Ok(n == 1)
}

pub fn save_activity(
    conn: &Connection,
    a: &pb::ActivityRecord,
    now_ms: i64,
) -> Result<bool, Error> {
    let n = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO activities (activity_id, member_id, author, kind, date, branch, hours, note, basis, recorded_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?
        .execute(params![a.activity_id, a.member_id, a.author, a.kind, a.date, a.branch, a.hours, a.note, a.basis, now_ms])?;
    Ok(n == 1)
}

pub(super) fn contact_view(c: &pb::ContactEvent, member_name: &str) -> pb::ContactView {
    pb::ContactView {
        member_name: member_name.to_owned(),
        contact_id: c.contact_id.clone(),
        member_id: c.member_id.clone(),
        author: c.author.clone(),
        at: c.at.clone(),
        channel: c.channel.clone(),
        by: c.by.clone(),
        outcome: c.outcome.clone(),
    }
}

pub(super) fn activity_view(a: &pb::ActivityRecord, member_name: &str) -> pb::ActivityView {
    pb::ActivityView {
        member_name: member_name.to_owned(),
        activity_id: a.activity_id.clone(),
        member_id: a.member_id.clone(),
        author: a.author.clone(),
        kind: a.kind.clone(),
        date: a.date.clone(),
        branch: a.branch.clone(),
        hours: a.hours,
        note: a.note.clone(),
    }
}

pub fn activity_list(
    conn: &Connection,
    req: &pb::ActivityListRequest,
) -> Result<Vec<pb::ActivityView>, Error> {
    let limit = if req.limit == 0 {
        100
    } else {
        req.limit.min(10_000)
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT activity_id, member_id, author, kind, date, branch, hours, note, {} FROM activities r
         WHERE (?1 = '' OR member_id = ?1) ORDER BY date DESC, activity_id DESC LIMIT ?2",
        member_name_sql("r.member_id")
    ))?;
    let list = stmt
        .query_map(params![req.member_id.trim(), limit], |r| {
            Ok(pb::ActivityView {
                activity_id: r.get(0)?,
                member_id: r.get(1)?,
                author: r.get(2)?,
                kind: r.get(3)?,
                date: r.get(4)?,
                branch: r.get(5)?,
                hours: r.get(6)?,
                note: r.get(7)?,
                member_name: r.get(8)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(list)
}

pub(super) fn recent_contacts(
    conn: &Connection,
    member_id: &str,
    limit: u32,
) -> Result<Vec<pb::ContactView>, Error> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT contact_id, member_id, author, at, channel, by_whom, outcome, {} FROM contacts r
         WHERE member_id = ?1 ORDER BY at DESC, contact_id DESC LIMIT ?2",
        member_name_sql("r.member_id")
    ))?;
    let list = stmt
        .query_map(params![member_id, limit], |r| {
            Ok(pb::ContactView {
                contact_id: r.get(0)?,
                member_id: r.get(1)?,
                author: r.get(2)?,
                at: r.get(3)?,
                channel: r.get(4)?,
                by: r.get(5)?,
                outcome: r.get(6)?,
                member_name: r.get(7)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(list)
}
