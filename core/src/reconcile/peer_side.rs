//! The peer's side: what it holds from a restored node, in bounded batches.

use liaison_proto::v1 as pb;
use liaison_proto::v1::EventKind;
use liaison_types::identity::NodeId;
use prost::Message;
use rusqlite::{params, Connection};

use crate::{epoch, members, Ctx, Error};

/// Records per `HoldingsBatch` (an agreement counts one per version).
pub const HOLDINGS_BATCH_RECORDS: usize = 200;

/// Encoded bytes per `HoldingsBatch`: a quarter of the default federation
/// message limit (`limits.message_bytes_max`, 4 MiB), so a batch always fits.
pub const HOLDINGS_BATCH_BYTES: usize = 1024 * 1024;

/// The holdings answer as it is read, cut into bounded batches: each batch
/// goes to `send` once the next record would not fit in it.
struct Batches<'s> {
    batch: pb::HoldingsBatch,
    /// This node's log id, on every batch.
    log_id: String,
    /// Records and encoded bytes in `batch`.
    count: (usize, usize),
    send: &'s mut dyn FnMut(pb::HoldingsBatch) -> bool,
    /// `send` returned false: the rest of the answer is not wanted.
    stopped: bool,
}

impl Batches<'_> {
    /// Room for one more record of `weight` records and `bytes` encoded
    /// bytes: sends the batch and starts a new one when the record would
    /// pass either bound.
    fn room(&mut self, weight: usize, bytes: usize) -> &mut pb::HoldingsBatch {
        let full = self.count.0 + weight > HOLDINGS_BATCH_RECORDS
            || self.count.1 + bytes > HOLDINGS_BATCH_BYTES;
        if full && self.count.0 > 0 {
            let batch = std::mem::replace(
                &mut self.batch,
                pb::HoldingsBatch {
                    log_id: self.log_id.clone(),
                    ..pb::HoldingsBatch::default()
                },
            );
            if !self.stopped {
                self.stopped = !(self.send)(batch);
            }
            self.count = (0, 0);
        }
        self.count.0 += weight;
        self.count.1 += bytes;
        &mut self.batch
    }
}

/// What this node holds from `requester`, in bounded batches (at least
/// one; the last is marked): the cursors of its logs, copies of its home
/// sections, and every record it authored that this node holds in full.
/// [`send_holdings`], collected.
pub fn holdings_for(
    conn: &Connection,
    ctx: &Ctx<'_>,
    requester: &NodeId,
    branch: &[pb::LogCursor],
) -> Result<Vec<pb::HoldingsBatch>, Error> {
    let mut batches = Vec::new();
    send_holdings(conn, ctx, (requester, branch), &mut |batch| {
        batches.push(batch);
        true
    })?;
    Ok(batches)
}

/// What this node holds from `requester` ([`holdings_for`]), handed to
/// `send` batch by batch as it is read, so the first batch can go out
/// before the rest is read. `send` returns false when the rest is not
/// wanted (its reader went away); then no more is read or sent and the
/// answer is `Ok(false)`. Run it in one read transaction, so every batch
/// comes from the same snapshot.
///
/// Refused, before anything is sent, where the requester's `branch` (what
/// its restored history descends from) goes past a point where an earlier
/// restore of it left one of its logs: its backup holds a branch of its
/// history its peers have moved on from ([`refuse_left_branch`]).
pub fn send_holdings(
    conn: &Connection,
    ctx: &Ctx<'_>,
    (requester, branch): (&NodeId, &[pb::LogCursor]),
    send: &mut dyn FnMut(pb::HoldingsBatch) -> bool,
) -> Result<bool, Error> {
    refuse_left_branch(conn, requester, branch)?;
    let who = requester.as_str();
    let log_id = crate::store::get_meta(conn, "log_id")?.unwrap_or_default();
    let mut out = Batches {
        batch: pb::HoldingsBatch {
            log_id: log_id.clone(),
            ..pb::HoldingsBatch::default()
        },
        log_id,
        count: (0, 0),
        send,
        stopped: false,
    };
    out.batch.cursors = conn
        .prepare("SELECT log_id, seq FROM cursors WHERE peer = ?1 ORDER BY log_id")?
        .query_map([who], |r| {
            Ok(pb::LogCursor {
                log_id: r.get(0)?,
                seq: r.get(1)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let copy_ids: Vec<String> = conn
        .prepare("SELECT member_id FROM home_copies WHERE owner = ?1 ORDER BY member_id")?
        .query_map([who], |r| r.get(0))?
        .collect::<Result<Vec<_>, _>>()?;
    for id in copy_ids {
        if out.stopped {
            return Ok(false);
        }
        if let Some(copy) = members::load_copy(conn, &id)? {
            let bytes = copy.section.encoded_len();
            out.room(1, bytes).home_copies.push(copy.section);
        }
    }
    if out.stopped {
        return Ok(false);
    }
    let mut own = members::HostRecords::read(conn, "r.author = ?1", params![who])?;
    add_released_records(conn, who, &mut own)?;
    add_held_records(conn, who, &mut own)?;
    // What this node made as host of the requester's members under an
    // agreement between the two: the requester's copies of them.
    let mut made = members::HostRecords::read(
        conn,
        "r.author = ?2 AND r.basis IN (SELECT agreement_id FROM agreements WHERE outflow_node = ?1 AND inflow_node = ?2)",
        params![who, ctx.me.as_str()],
    )?;
    made.sections.extend(relayed_by(conn, who)?);
    for section in own.sections {
        let bytes = section.encoded_len();
        out.room(1, bytes).host_sections.push(section);
    }
    for contact in own.contacts {
        let bytes = contact.encoded_len();
        out.room(1, bytes).contacts.push(contact);
    }
    for activity in own.activities {
        let bytes = activity.encoded_len();
        out.room(1, bytes).activities.push(activity);
    }
    for section in made.sections {
        let bytes = section.encoded_len();
        out.room(1, bytes).made_host_sections.push(section);
    }
    for contact in made.contacts {
        let bytes = contact.encoded_len();
        out.room(1, bytes).made_contacts.push(contact);
    }
    for activity in made.activities {
        let bytes = activity.encoded_len();
        out.room(1, bytes).made_activities.push(activity);
    }
    if out.stopped {
        return Ok(false);
    }
    for agreement in held_agreements(conn, who)? {
        let bytes = agreement.encoded_len();
        out.room(1 + agreement.versions.len(), bytes)
            .agreements
            .push(agreement);
    }
    let transfers = conn
        .prepare(
            "SELECT t.transfer_id, t.letter_no, t.sender, t.receiver, t.member_id, t.member_name, t.state,
                    t.issued_on, t.expires_on, t.valid_days, t.reason, t.branch,
                    COALESCE((SELECT generation FROM members m WHERE m.member_id = t.member_id), 0),
                    t.released_generation,
                    t.sender = ?2 AND t.state IN ('released', 'completed') AND NOT EXISTS (SELECT 1 FROM events e
                        WHERE e.audience = ?1 AND e.entity = t.transfer_id AND e.kind = ?3),
                    t.offer
             FROM transfers t WHERE t.sender = ?1 OR t.receiver = ?1 ORDER BY t.transfer_id",
        )?
        .query_map(params![who, ctx.me.as_str(), EventKind::TransferRelease as i32], |r| {
            Ok(pb::HeldTransfer {
                transfer_id: r.get(0)?,
                letter_no: r.get(1)?,
                sender: r.get(2)?,
                receiver: r.get(3)?,
                member_id: r.get(4)?,
                member_name: r.get(5)?,
                state: r.get(6)?,
                issued_on: r.get(7)?,
                expires_on: r.get(8)?,
                valid_days: r.get(9)?,
                reason: r.get(10)?,
                branch: r.get(11)?,
                generation: r.get(12)?,
                released_generation: r.get(13)?,
                release_dropped: r.get(14)?,
                offered_generation: crate::transfers::offered_generation(
                    r.get::<_, Option<Vec<u8>>>(15)?.as_deref(),
                ),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    for transfer in transfers {
        let bytes = transfer.encoded_len();
        out.room(1, bytes).transfers.push(transfer);
    }
    // What this node made as host of the requester's members, and under
    // which agreement: the requester shared them so.
    let mut hosted: Vec<pb::HostedUnder> = conn
        .prepare(
            "SELECT DISTINCT r.member_id, r.basis FROM (
                 SELECT member_id, basis, author FROM host_sections
                 UNION ALL SELECT member_id, basis, author FROM contacts
                 UNION ALL SELECT member_id, basis, author FROM activities) r
             JOIN agreements a ON a.agreement_id = r.basis
             WHERE r.author = ?2 AND a.outflow_node = ?1 AND a.inflow_node = ?2
             ORDER BY r.member_id, r.basis",
        )?
        .query_map(params![who, ctx.me.as_str()], |r| {
            Ok(pb::HostedUnder {
                member_id: r.get(0)?,
                basis: r.get(1)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    hosted.extend(hosted_in_log(conn, ctx, who)?);
    hosted.sort_by(|a, b| (&a.member_id, &a.basis).cmp(&(&b.member_id, &b.basis)));
    hosted.dedup();
    for h in hosted {
        let bytes = h.encoded_len();
        out.room(1, bytes).hosted.push(h);
    }
    // Every member moved at least once, as this node holds it (owned, or
    // a tombstone naming the node it went to) with the letter that gave
    // that generation, except those it names the requester the owner of
    // (the transfers above decide those) and those that left on paper.
    let mut stmt = conn.prepare(
        "SELECT member_id, generation, owner, moved_letter_no, moved_transfer_id FROM members
         WHERE generation > 1 AND owner <> ?1 AND moved_to_place = ''
         ORDER BY member_id",
    )?;
    let mut rows = stmt.query([who])?;
    while let Some(r) = rows.next()? {
        if out.stopped {
            return Ok(false);
        }
        let (member_id, generation, owner): (String, u64, String) =
            (r.get(0)?, r.get(1)?, r.get(2)?);
        let release = crate::transfers::letter_of_generation(
            conn,
            ctx.me.as_str(),
            &member_id,
            &owner,
            generation,
            crate::transfers::ReleaseRef {
                letter_no: r.get(3)?,
                transfer_id: r.get(4)?,
            },
        )?;
        let held = pb::HeldGeneration {
            member_id,
            generation,
            owner,
            letter_no: release.letter_no,
            transfer_id: release.transfer_id,
        };
        let bytes = held.encoded_len();
        out.room(1, bytes).generations.push(held);
    }
    if out.stopped {
        return Ok(false);
    }
    let mut last = out.batch;
    last.last = true;
    Ok((out.send)(last))
}

/// Records `who` authored that left this node with a member it released,
/// or that it relays to the member's new owner: the release events in its
/// log carry them (transfer events are never compacted), and so do the
/// relayed records' events: their receiver may not have applied them yet,
/// or may have passed the member on, so no node's tables may hold them
/// when `who`, restored, asks. A restore of this node drops the relayed
/// events its receiver applied from the log, into `relayed_records`.
/// Added to `own` where it holds nothing newer.
fn add_released_records(
    conn: &Connection,
    who: &str,
    own: &mut members::HostRecords,
) -> Result<(), Error> {
    // A relayed record names as its basis the transfer it follows the
    // member under, sent to that transfer's receiver: only those, so that
    // no other record in this log (one this node may not send, say) passes
    // for the requester's.
    let events: Vec<(i32, Vec<u8>)> = conn
        .prepare(
            "SELECT e.seq, e.kind, e.payload FROM events e WHERE e.kind = ?1
                OR (e.kind IN (?2, ?3, ?4) AND e.audience <> ?5 AND EXISTS (SELECT 1 FROM transfers t
                    WHERE t.member_id = e.entity AND t.receiver = e.audience AND t.direction = 'outgoing'))
             UNION ALL
             SELECT k.seq, k.kind, k.payload FROM relayed_records k WHERE k.receiver <> ?5
             ORDER BY 1",
        )?
        .query_map(
            params![
                EventKind::TransferRelease as i32,
                EventKind::HostSection as i32,
                EventKind::Contact as i32,
                EventKind::Activity as i32,
                who
            ],
            |r| Ok((r.get(1)?, r.get(2)?)),
        )?
        .collect::<Result<Vec<_>, _>>()?;
    let sent: std::collections::HashSet<String> = conn
        .prepare("SELECT transfer_id FROM transfers WHERE direction = 'outgoing'")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for (kind, payload) in events {
        if kind == EventKind::TransferRelease as i32 {
            if let Some(record) = pb::TransferRelease::decode(payload.as_slice())
                .ok()
                .and_then(|r| r.record)
            {
                merge_own(
                    own,
                    who,
                    record.host_sections,
                    record.contacts,
                    record.activities,
                );
            }
        } else if let Some(record) = HostRecord::decode(kind, &payload) {
            if sent.contains(record.basis()) {
                record.merge_into(own, who);
            }
        }
    }
    Ok(())
}

/// This node's own sections kept unverified (restored, it forgot the
/// agreement it made them under) that `who`'s holdings showed relayed
/// under a transfer: `who` relayed them under its release of the member,
/// and, restored to before that since, may have lost the relay; it
/// relays them again ([`adopt`](super::adopt), a record reported back
/// under its own release).
fn relayed_by(conn: &Connection, who: &str) -> Result<Vec<pb::HostSection>, Error> {
    let kept: Vec<Vec<u8>> = conn
        .prepare(
            "SELECT u.section FROM unverified_own_sections u WHERE u.shown_by = ?1 ORDER BY u.member_id",
        )?
        .query_map([who], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut sections = Vec::new();
    for bytes in kept {
        let section = pb::HostSection::decode(bytes.as_slice()).map_err(|e| {
            Error::corrupt(
                "an unverified_own_sections row".to_owned(),
                e.to_string(),
                "an encoded host section",
            )
        })?;
        if crate::agreements::parties(conn, &section.basis)?.is_none() {
            sections.push(section);
        }
    }
    Ok(sections)
}

/// Records `who` authored and sent this node that wait in its quarantine
/// (held until their member arrives, or until an operator retries them):
/// this node may still apply them, so `who`, restored, must know it made
/// them (it would otherwise write another record under the same version).
/// Added to `own` where it holds nothing newer.
fn add_held_records(
    conn: &Connection,
    who: &str,
    own: &mut members::HostRecords,
) -> Result<(), Error> {
    let held: Vec<(i32, Vec<u8>)> = conn
        .prepare(
            "SELECT kind, payload FROM quarantine WHERE origin = ?1 AND state = 'held' AND kind IN (?2, ?3, ?4) ORDER BY id",
        )?
        .query_map(
            params![
                who,
                EventKind::HostSection as i32,
                EventKind::Contact as i32,
                EventKind::Activity as i32
            ],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?
        .collect::<Result<Vec<_>, _>>()?;
    for (kind, payload) in held {
        if let Some(record) = HostRecord::decode(kind, &payload) {
            record.merge_into(own, who);
        }
    }
    Ok(())
}

/// A host section, contact or activity as an event's payload carries it.
enum HostRecord {
    Section(pb::HostSection),
    Contact(pb::ContactEvent),
    Activity(pb::ActivityRecord),
}

impl HostRecord {
    /// The record of an event of `kind`; `None` for another kind, or for
    /// a payload that does not decode.
    fn decode(kind: i32, payload: &[u8]) -> Option<HostRecord> {
        if kind == EventKind::HostSection as i32 {
            pb::HostSection::decode(payload)
                .ok()
                .map(HostRecord::Section)
        } else if kind == EventKind::Contact as i32 {
            pb::ContactEvent::decode(payload)
                .ok()
                .map(HostRecord::Contact)
        } else if kind == EventKind::Activity as i32 {
            pb::ActivityRecord::decode(payload)
                .ok()
                .map(HostRecord::Activity)
        } else {
            None
        }
    }

    /// (member, author, basis).
    fn about(&self) -> (&str, &str, &str) {
        match self {
            HostRecord::Section(r) => (&r.member_id, &r.author, &r.basis),
            HostRecord::Contact(r) => (&r.member_id, &r.author, &r.basis),
            HostRecord::Activity(r) => (&r.member_id, &r.author, &r.basis),
        }
    }

    fn basis(&self) -> &str {
        self.about().2
    }

    /// [`merge_own`] of this one record.
    fn merge_into(self, own: &mut members::HostRecords, who: &str) {
        match self {
            HostRecord::Section(r) => merge_own(own, who, vec![r], Vec::new(), Vec::new()),
            HostRecord::Contact(r) => merge_own(own, who, Vec::new(), vec![r], Vec::new()),
            HostRecord::Activity(r) => merge_own(own, who, Vec::new(), Vec::new(), vec![r]),
        }
    }
}

/// Adds to `own` the records of `who` among these that it lacks or holds
/// an older version of.
fn merge_own(
    own: &mut members::HostRecords,
    who: &str,
    sections: Vec<pb::HostSection>,
    contacts: Vec<pb::ContactEvent>,
    activities: Vec<pb::ActivityRecord>,
) {
    let version = |v: &Option<pb::Version>| v.map_or((0, 0), |v| (v.generation, v.counter));
    for section in sections.into_iter().filter(|r| r.author == who) {
        match own
            .sections
            .iter_mut()
            .find(|s| s.member_id == section.member_id && s.author == section.author)
        {
            Some(held) if version(&held.version) >= version(&section.version) => {}
            Some(held) => *held = section,
            None => own.sections.push(section),
        }
    }
    for contact in contacts.into_iter().filter(|r| r.author == who) {
        if !own
            .contacts
            .iter()
            .any(|c| c.contact_id == contact.contact_id)
        {
            own.contacts.push(contact);
        }
    }
    for activity in activities.into_iter().filter(|r| r.author == who) {
        if !own
            .activities
            .iter()
            .any(|a| a.activity_id == activity.activity_id)
        {
            own.activities.push(activity);
        }
    }
}

fn held_agreements(conn: &Connection, who: &str) -> Result<Vec<pb::HeldAgreement>, Error> {
    let mut list: Vec<pb::HeldAgreement> = conn
        .prepare(
            "SELECT agreement_id, number, outflow_node, inflow_node, state, version, active_version, ended_reason, ended_by
             FROM agreements WHERE outflow_node = ?1 OR inflow_node = ?1 ORDER BY agreement_id",
        )?
        .query_map([who], |r| {
            Ok(pb::HeldAgreement {
                agreement_id: r.get(0)?,
                number: r.get(1)?,
                outflow_node: r.get(2)?,
                inflow_node: r.get(3)?,
                state: r.get(4)?,
                version: r.get(5)?,
                active_version: r.get(6)?,
                ended_reason: r.get(7)?,
                ended_by: r.get(8)?,
                versions: Vec::new(),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    for agreement in &mut list {
        let versions: Vec<u64> = conn
            .prepare(
                "SELECT version FROM agreement_versions WHERE agreement_id = ?1 ORDER BY version",
            )?
            .query_map([&agreement.agreement_id], |r| r.get(0))?
            .collect::<Result<Vec<_>, _>>()?;
        for version in versions {
            if let Some(v) =
                crate::agreements::stored_version(conn, &agreement.agreement_id, version)?
            {
                agreement.versions.push(v);
            }
        }
    }
    Ok(list)
}

/// The records this node made as host of the requester's members that its
/// log still holds for the requester, by the agreement they were made
/// under. The record here may since name another agreement (the member
/// passed on to another owner who shares it here under its own), but the
/// requester is still to apply these events, and each needs the share it
/// proves.
fn hosted_in_log(
    conn: &Connection,
    ctx: &Ctx<'_>,
    who: &str,
) -> Result<Vec<pb::HostedUnder>, Error> {
    let me = ctx.me.as_str();
    let mut rows = conn.prepare(
        "SELECT kind, payload FROM events WHERE audience = ?1 AND kind IN (?2, ?3, ?4) ORDER BY seq",
    )?;
    let records = rows
        .query_map(
            params![
                who,
                EventKind::HostSection as i32,
                EventKind::Contact as i32,
                EventKind::Activity as i32
            ],
            |r| Ok((r.get::<_, i32>(0)?, r.get::<_, Vec<u8>>(1)?)),
        )?
        .collect::<Result<Vec<_>, _>>()?;
    let mut hosted = Vec::new();
    for (kind, payload) in records {
        // This node's own events: one that does not decode was never
        // written by this code, and proves nothing.
        let Some(record) = HostRecord::decode(kind, &payload) else {
            continue;
        };
        let (member_id, author, basis) = record.about();
        if author != me || basis.is_empty() {
            continue;
        }
        let (member_id, basis) = (member_id.to_owned(), basis.to_owned());
        let coordinated = conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM agreements WHERE agreement_id = ?1 AND outflow_node = ?2 AND inflow_node = ?3)",
            )?
            .query_row(params![basis, who, me], |r| r.get::<_, bool>(0))?;
        if coordinated {
            hosted.push(pb::HostedUnder { member_id, basis });
        }
    }
    Ok(hosted)
}

/// Refuses a holdings request from a restored `requester` whose `branch`
/// goes past where an earlier restore of it left one of its logs
/// (`epoch::peer_left_branch`), with what its operator can do instead.
pub fn refuse_left_branch(
    conn: &Connection,
    requester: &NodeId,
    branch: &[pb::LogCursor],
) -> Result<(), Error> {
    let Some(left) = epoch::peer_left_branch(conn, requester, branch)? else {
        return Ok(());
    };
    let epoch::PeerLeftBranch {
        log_id,
        claimed,
        kept_to,
    } = left;
    Err(Error::conflict(format!(
        "{requester} was restored from a backup of a branch of its history it had left: the backup holds its log {log_id} to change {claimed}, but a restore of {requester} since kept that log only to change {kept_to}, and its peers moved on from there; restore {requester} again from a backup taken since that restore, or from one taken no later than change {kept_to} of that log (docs/restore.md, A backup of a branch the node left)"
    )))
}
