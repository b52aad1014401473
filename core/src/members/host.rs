//! Host sections: what a host writes about a member it hosts, one per host.

use liaison_proto::v1 as pb;
use rusqlite::Row;
use rusqlite::{params, Connection, OptionalExtension};

use super::labels::basis_label_sql;
use crate::Error;

fn read_host_section(r: &Row<'_>) -> rusqlite::Result<pb::HostSectionView> {
    Ok(pb::HostSectionView {
        author: r.get(0)?,
        generation: r.get(1)?,
        counter: r.get(2)?,
        host_branch: r.get(3)?,
        reported_on: r.get(4)?,
        address: r.get(5)?,
        employer: r.get(6)?,
        industry: r.get(7)?,
        job: r.get(8)?,
        contact_person: r.get(9)?,
        contact_phone: r.get(10)?,
        last_seen_at_host: r.get(11)?,
        basis: r.get(12)?,
        basis_label: r.get(13)?,
        station: r.get(14)?,
    })
}

/// The columns [`read_host_section`] reads, the basis named as people
/// name it last.
fn host_columns() -> String {
    format!(
        "author, generation, counter, host_branch, reported_on, address, employer, industry, job,
         contact_person, contact_phone, last_seen_at_host, basis, {}, station",
        basis_label_sql("basis")
    )
}

pub fn host_sections(
    conn: &Connection,
    member_id: &str,
) -> Result<Vec<pb::HostSectionView>, Error> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {} FROM host_sections WHERE member_id = ?1 ORDER BY author",
        host_columns()
    ))?;
    let list = stmt
        .query_map([member_id], read_host_section)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(list)
}

pub fn host_section(
    conn: &Connection,
    member_id: &str,
    author: &str,
) -> Result<Option<pb::HostSectionView>, Error> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {} FROM host_sections WHERE member_id = ?1 AND author = ?2",
            host_columns()
        ))?
        .query_row([member_id, author], read_host_section)
        .optional()?)
}

pub fn save_host_section(conn: &Connection, s: &pb::HostSection, now_ms: i64) -> Result<(), Error> {
    let version = s.version.unwrap_or_default();
    conn.prepare_cached(
        "INSERT INTO host_sections (member_id, author, generation, counter, host_branch, reported_on,
             address, employer, industry, job, contact_person, contact_phone, last_seen_at_host, basis, updated_at_ms, station)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
         ON CONFLICT (member_id, author) DO UPDATE SET generation = excluded.generation, counter = excluded.counter,
             host_branch = excluded.host_branch, reported_on = excluded.reported_on, address = excluded.address,
             employer = excluded.employer, industry = excluded.industry, job = excluded.job,
             contact_person = excluded.contact_person, contact_phone = excluded.contact_phone,
             last_seen_at_host = excluded.last_seen_at_host, basis = excluded.basis, updated_at_ms = excluded.updated_at_ms,
             station = excluded.station",
    )?
    .execute(params![
        s.member_id,
        s.author,
        version.generation,
        version.counter,
        s.host_branch,
        s.reported_on,
        s.address,
        s.employer,
        s.industry,
        s.job,
        s.contact_person,
        s.contact_phone,
        s.last_seen_at_host,
        s.basis,
        now_ms,
        s.station
    ])?;
    Ok(())
}

/// The version of this node's host section of `member_id` that a peer
/// holds and this node could not take back after a restore (it held none
/// of it under a basis of its own): no older version of it is taken back,
/// and its next write passes it. Kept in `meta`; only restores set one.
pub fn host_section_floor(
    conn: &Connection,
    member_id: &str,
) -> Result<Option<pb::Version>, Error> {
    let key = format!("host_section_floor/{member_id}");
    let Some(text) = crate::store::get_meta(conn, &key)? else {
        return Ok(None);
    };
    // A value that does not parse is a damaged database, never no floor:
    // the next write would reuse a version a peer holds.
    text.split_once('.')
        .and_then(|(generation, counter)| {
            Some(pb::Version {
                generation: generation.parse().ok()?,
                counter: counter.parse().ok()?,
            })
        })
        .map(Some)
        .ok_or_else(|| {
            Error::corrupt(
                format!("`meta` key `{key}`"),
                text.as_str(),
                "a version GENERATION.COUNTER",
            )
        })
}

/// Raises [`host_section_floor`] of `member_id` to `version`.
pub fn raise_host_section_floor(
    conn: &Connection,
    member_id: &str,
    version: pb::Version,
) -> Result<(), Error> {
    let higher = host_section_floor(conn, member_id)?
        .is_none_or(|f| (version.generation, version.counter) > (f.generation, f.counter));
    if higher {
        crate::store::set_meta(
            conn,
            &format!("host_section_floor/{member_id}"),
            &format!("{}.{}", version.generation, version.counter),
        )?;
    }
    Ok(())
}
