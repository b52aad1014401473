//! Home-section copies: what an owner shared with this node as a host, and
//! under which of the owner's log ids each copy last arrived (docs/restore.md).

use liaison_proto::v1 as pb;
use liaison_types::identity::NodeId;
use prost::Message;
use rusqlite::Row;
use rusqlite::{params, Connection, OptionalExtension};

use crate::Error;

/// A home section a peer shared with this node as a host.
#[derive(Debug, Clone)]
pub struct HomeCopy {
    pub section: pb::HomeSection,
    pub received_at_ms: i64,
}

impl std::ops::Deref for HomeCopy {
    type Target = pb::HomeSection;
    fn deref(&self) -> &pb::HomeSection {
        &self.section
    }
}

pub fn load_copy(conn: &Connection, member_id: &str) -> Result<Option<HomeCopy>, Error> {
    Ok(conn
        .prepare_cached(
            "SELECT member_id, owner, generation, counter, name, gender, birth_year, phone, party_status,
                    home_branch_name, home_branch_contact, membership_state, contact_status, basis, outflow, received_at_ms
             FROM home_copies WHERE member_id = ?1",
        )?
        .query_row([member_id], read_copy)
        .optional()?)
}

fn read_copy(r: &Row<'_>) -> rusqlite::Result<HomeCopy> {
    let outflow: Vec<u8> = r.get(14)?;
    Ok(HomeCopy {
        section: pb::HomeSection {
            member_id: r.get(0)?,
            owner: r.get(1)?,
            version: Some(pb::Version {
                generation: r.get(2)?,
                counter: r.get(3)?,
            }),
            name: r.get(4)?,
            gender: r.get(5)?,
            birth_year: r.get(6)?,
            phone: r.get(7)?,
            party_status: r.get(8)?,
            home_branch_name: r.get(9)?,
            home_branch_contact: r.get(10)?,
            membership_state: r.get(11)?,
            contact_status: r.get(12)?,
            basis: r.get(13)?,
            outflow: pb::Outflow::decode(outflow.as_slice()).ok(),
            // Kept for a host's judgement only (`copy_release`): the
            // copy is sent on as the owner's section, which names its
            // release where the owner sends it.
            letter_no: String::new(),
            transfer_id: String::new(),
        },
        received_at_ms: r.get(15)?,
    })
}

/// The owner and version of the copy of `member_id` held here, if any.
pub fn copy_version(
    conn: &Connection,
    member_id: &str,
) -> Result<Option<(String, pb::Version)>, Error> {
    Ok(conn
        .prepare_cached("SELECT owner, generation, counter FROM home_copies WHERE member_id = ?1")?
        .query_row([member_id], super::contacts::text_and_version)
        .optional()?)
}

/// Stores the home section `s`, which arrived in its owner's log `log_id`,
/// as this node's copy unless the copy held is at the same or a later
/// version, or is another owner's at the same generation; true if stored.
/// At the same version, a section under another basis is stored: the
/// owner shares the member under another agreement now (one ended, or the
/// host dropped its copies under it), and the host must hold it under the
/// agreement the owner records, or it drops the copy with the wrong one.
/// Events of one log apply once and in order, so the later basis is the
/// owner's latest.
/// A copy that arrived under another of the owner's logs yields to it
/// whatever the counters: the owner was restored since, and what it sends
/// in its current log is its record. The copy's higher counter is a change
/// the owner forgot (this node being restored later, it was not in the
/// holdings the owner reconciled against); kept, the owner's next change
/// would reach this node under the same counter with other content.
/// One statement, so a copy that is newer (the common case, a catch-up)
/// costs one B-tree descent, not a read and a write; when nothing was
/// stored, [`copy_version`] tells why.
pub fn save_copy_if_newer(
    conn: &Connection,
    s: &pb::HomeSection,
    log_id: &str,
    now_ms: i64,
) -> Result<bool, Error> {
    let version = s.version.unwrap_or_default();
    let outflow = s.outflow.clone().unwrap_or_default().encode_to_vec();
    // An upsert: a row updated in place, not deleted and inserted again
    // (which, with secure_delete, also zeroes the old one).
    let changed = conn
        .prepare_cached(
            "INSERT INTO home_copies (member_id, owner, generation, counter, name, gender, birth_year, phone,
             party_status, home_branch_name, home_branch_contact, membership_state, contact_status, basis, outflow, received_at_ms,
             arrived_log_id, letter_no, transfer_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)
         ON CONFLICT (member_id) DO UPDATE SET owner = excluded.owner, generation = excluded.generation,
             counter = excluded.counter, name = excluded.name, gender = excluded.gender, birth_year = excluded.birth_year,
             phone = excluded.phone, party_status = excluded.party_status, home_branch_name = excluded.home_branch_name,
             home_branch_contact = excluded.home_branch_contact, membership_state = excluded.membership_state,
             contact_status = excluded.contact_status, basis = excluded.basis, outflow = excluded.outflow,
             received_at_ms = excluded.received_at_ms, arrived_log_id = excluded.arrived_log_id,
             letter_no = excluded.letter_no, transfer_id = excluded.transfer_id
         WHERE home_copies.generation < excluded.generation
            OR (home_copies.generation = excluded.generation AND home_copies.owner = excluded.owner
                AND (home_copies.counter < excluded.counter
                     OR home_copies.arrived_log_id <> excluded.arrived_log_id
                     OR (home_copies.counter = excluded.counter AND home_copies.basis <> excluded.basis)))",
        )?
        .execute(params![
            s.member_id,
            s.owner,
            version.generation,
            version.counter,
            s.name,
            s.gender,
            s.birth_year,
            s.phone,
            s.party_status,
            s.home_branch_name,
            s.home_branch_contact,
            s.membership_state,
            s.contact_status,
            s.basis,
            outflow,
            now_ms,
            log_id,
            s.letter_no,
            s.transfer_id
        ])?;
    Ok(changed > 0)
}

/// The release (letter number, transfer id) that gave the owner of the
/// copy of `member_id` held here the member at the copy's generation, as
/// its home section named it; empty where it named none.
pub fn copy_release(conn: &Connection, member_id: &str) -> Result<Option<(String, String)>, Error> {
    Ok(conn
        .prepare_cached("SELECT letter_no, transfer_id FROM home_copies WHERE member_id = ?1")?
        .query_row([member_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

pub fn delete_copy(conn: &Connection, member_id: &str) -> Result<usize, Error> {
    Ok(conn
        .prepare_cached("DELETE FROM home_copies WHERE member_id = ?1")?
        .execute([member_id])?)
}

/// At a host: deletes the copies shared under `basis` (its end).
pub fn delete_copies_with_basis(conn: &Connection, basis: &str) -> Result<usize, Error> {
    Ok(conn.execute("DELETE FROM home_copies WHERE basis = ?1", [basis])?)
}

/// Inside `apply_batch`: the home section of `member_id` that `origin`
/// sent again in its log `log_id` (at version `sent`) left the copy here as
/// it was: a copy no newer than `sent` counts as sent in that log, so the
/// owner's `EpochComplete` for it keeps the copy. A newer one came from a
/// branch the owner's restore forgot, and goes at that `EpochComplete`.
pub fn note_copy_epoch(
    conn: &Connection,
    origin: &NodeId,
    member_id: &str,
    log_id: &str,
    sent: pb::Version,
) -> Result<(), Error> {
    conn.prepare_cached(
        "UPDATE home_copies SET arrived_log_id = ?3
         WHERE member_id = ?2 AND owner = ?1 AND arrived_log_id <> ?3
           AND (generation, counter) <= (?4, ?5)",
    )?
    .execute(params![
        origin.as_str(),
        member_id,
        log_id,
        sent.generation,
        sent.counter
    ])?;
    Ok(())
}
