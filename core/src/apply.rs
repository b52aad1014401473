//! Applying a batch of a peer's events (DESIGN §4).
//!
//! The batch and the cursor move in one transaction, and the cursor guards
//! it: events at or below it are skipped, and it never moves back. So a
//! batch applies exactly once, in origin order, across crashes, restarts,
//! duplicates and an old stream still draining. Each event is checked
//! against the authority of the record it carries; one that can never be
//! valid is quarantined with its reason, audited, and passed over, so one
//! bad event never blocks a peer.

use liaison_proto::v1 as pb;
use liaison_proto::v1::EventKind;
use prost::Message;
use rusqlite::{params, Connection, TransactionBehavior};

use super::{log, members, Ctx};
use crate::store::audit::{self, Actor, NewEntry, Outcome};
use crate::Error;
use liaison_types::identity::NodeId;

/// What became of a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    pub applied: u64,
    pub skipped: u64,
    pub quarantined: u64,
    /// The cursor after the batch.
    pub cursor: u64,
}

/// Why one event was not applied: the outcomes of applying an event other
/// than "applied".
#[derive(Debug)]
pub enum Rejection {
    /// It can never be valid: quarantine it and move on.
    Invalid(String),
    /// A transfer decision (`release`, `abort`) that cannot be applied now.
    /// Decisions are never quarantined (DESIGN §4): the peer's stream
    /// stops at this event, cursor unmoved, until a restart or an upgrade
    /// applies it.
    Stop(String),
    /// The core failed (storage, or a refusal of a step it took): abort
    /// the batch, cursor unmoved.
    Store(Error),
}

/// Why a batch was not applied. Nothing of it was: the cursor did not move.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// A decision that cannot be applied ([`Rejection::Stop`]).
    #[error("{kind} event {seq} cannot be applied: {reason}; the stream from this peer stops here until a restart or an upgrade applies it")]
    Stopped {
        seq: u64,
        kind: String,
        reason: String,
    },
    #[error(transparent)]
    Core(#[from] Error),
}

impl From<rusqlite::Error> for BatchError {
    fn from(e: rusqlite::Error) -> Self {
        BatchError::Core(e.into())
    }
}

impl From<Error> for Rejection {
    fn from(e: Error) -> Self {
        Rejection::Store(e)
    }
}

impl From<rusqlite::Error> for Rejection {
    fn from(e: rusqlite::Error) -> Self {
        Rejection::Store(e.into())
    }
}

/// Test-only switches that break the protocol on purpose, so the tests and
/// the simulator can show that their checks catch each break.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Skip the authority checks: apply whatever a peer sends.
    pub skip_authority: bool,
    /// Commit the applied events (and their count) in one transaction and
    /// advance the cursor in a second one, so a crash between the two
    /// applies the same events again after the restart.
    pub cursor_in_separate_tx: bool,
    /// The receiver of a transfer enrols the member as its own when its
    /// operator accepts the offer, before the sender's `release` arrives
    /// (`transfers::accept_with_faults`): two owners until then.
    pub receiver_owns_on_accept: bool,
}

/// Applies `events` from `origin`'s log `log_id` in one IMMEDIATE transaction.
pub fn apply_batch(
    conn: &mut Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    log_id: &str,
    events: &[pb::Event],
    faults: Faults,
) -> Result<ApplyReport, BatchError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let start = log::cursor(&tx, origin, log_id)?;
    let mut report = ApplyReport {
        cursor: start,
        ..ApplyReport::default()
    };
    let mut memo = Memo::default();
    for event in events {
        if event.seq <= report.cursor {
            report.skipped += 1;
            continue;
        }
        // The end of a restored origin's re-emission, and under which of
        // its log ids each home-section copy arrived, need the log id
        // (DESIGN §7).
        let applied = if event.kind == EventKind::EpochComplete as i32 {
            super::reconcile::apply_epoch_complete(&tx, origin, log_id, event).map(|_| ())
        } else {
            apply_event_in(&tx, ctx, origin, log_id, event, faults, &mut memo)
        };
        // A copy stored by this event records the log it came in; one the
        // event left as it was is marked as sent again in this log too.
        if applied.is_ok()
            && event.kind == EventKind::HomeSection as i32
            && !std::mem::take(&mut memo.copy_stored)
        {
            super::reconcile::note_copy_epoch(&tx, origin, &event.entity, log_id)?;
        }
        match applied {
            Ok(()) => report.applied += 1,
            Err(Rejection::Invalid(reason)) => {
                quarantine(&tx, ctx, origin, log_id, event, &reason)?;
                report.quarantined += 1;
            }
            Err(Rejection::Stop(reason)) => {
                return Err(BatchError::Stopped {
                    seq: event.seq,
                    kind: log::kind_name(event.kind).to_string(),
                    reason,
                })
            }
            Err(Rejection::Store(error)) => return Err(error.into()),
        }
        report.cursor = event.seq;
    }
    if faults.cursor_in_separate_tx {
        // Broken on purpose: the events and their count commit first, the
        // cursor after, in its own transaction.
        log::advance_cursor(&tx, origin, log_id, start, report.applied, ctx.now_ms)?;
        tx.commit()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        log::advance_cursor(&tx, origin, log_id, report.cursor, 0, ctx.now_ms)?;
        tx.commit()?;
        return Ok(report);
    }
    log::advance_cursor(
        &tx,
        origin,
        log_id,
        report.cursor,
        report.applied,
        ctx.now_ms,
    )?;
    tx.commit()?;
    Ok(report)
}

/// The node a tombstone's forward pointer names; anything else is a
/// damaged database, never a peer's fault.
fn forward_pointer(member_id: &str, to_node: &str) -> Result<NodeId, Rejection> {
    NodeId::parse(to_node).map_err(|_| {
        Rejection::Store(Error::corrupt(
            format!("the forward pointer of member {member_id}"),
            to_node,
            "a node id",
        ))
    })
}

fn quarantine(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    log_id: &str,
    event: &pb::Event,
    reason: &str,
) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO quarantine (origin, log_id, seq, kind, entity, payload, reason, state, received_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'held', ?8)",
    )?
    .execute(params![
        origin.as_str(),
        log_id,
        event.seq,
        event.kind,
        event.entity,
        event.payload,
        reason,
        ctx.now_ms
    ])?;
    let id = conn.last_insert_rowid();
    tracing::warn!(peer = %origin, seq = event.seq, kind = %log::kind_name(event.kind), entity = %event.entity, reason, "event quarantined");
    audit::append(
        conn,
        ctx.now_ms,
        &NewEntry {
            actor: &Actor::Peer(origin.to_string()),
            action: "replication.quarantine",
            target: &event.entity,
            outcome: Outcome::Refused,
            detail: &format!(
                "quarantine {id}: {} event seq {}: {reason}",
                log::kind_name(event.kind),
                event.seq
            ),
        },
    )?;
    Ok(())
}

fn decode<M: Message + Default>(event: &pb::Event) -> Result<M, Rejection> {
    M::decode(event.payload.as_slice()).map_err(|e| {
        Rejection::Invalid(format!(
            "malformed {} payload: {e}",
            log::kind_name(event.kind)
        ))
    })
}

/// What the events of one batch from one origin look up again and again:
/// whether this node may hold home sections under a basis. Only home
/// sections and Unshares leave it valid; any other event (an agreement's,
/// a transfer's) may change an agreement, so it is forgotten first.
#[derive(Debug, Default)]
struct Memo {
    may_hold: std::collections::HashMap<String, Option<bool>>,
    /// The last home section applied stored its copy (with its log id).
    copy_stored: bool,
}

/// Applies one event that came in `origin`'s log `log_id`, or says why it
/// can never be valid.
pub fn apply_event(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    log_id: &str,
    event: &pb::Event,
    faults: Faults,
) -> Result<(), Rejection> {
    apply_event_in(
        conn,
        ctx,
        origin,
        log_id,
        event,
        faults,
        &mut Memo::default(),
    )
}

fn apply_event_in(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    log_id: &str,
    event: &pb::Event,
    faults: Faults,
    memo: &mut Memo,
) -> Result<(), Rejection> {
    let kind = EventKind::try_from(event.kind)
        .map_err(|_| Rejection::Invalid(format!("unknown event kind {}", event.kind)))?;
    if !matches!(kind, EventKind::HomeSection | EventKind::Unshare) {
        memo.may_hold.clear();
    }
    match kind {
        EventKind::HomeSection => {
            let section: pb::HomeSection = decode(event)?;
            if section.member_id != event.entity {
                return Err(Rejection::Invalid(
                    "payload names another member than the event".into(),
                ));
            }
            apply_home_section(conn, ctx, (origin, log_id), &section, faults, memo)
        }
        EventKind::Unshare => {
            let unshare: pb::Unshare = decode(event)?;
            let Some(copy) = members::load_copy(conn, &unshare.member_id)? else {
                return Ok(());
            };
            if copy.owner != origin.as_str() && !faults.skip_authority {
                return Err(Rejection::Invalid(format!(
                    "{origin} may not unshare member {}: its copy here is owned by {}",
                    unshare.member_id, copy.owner
                )));
            }
            members::delete_copy(conn, &unshare.member_id)?;
            Ok(())
        }
        EventKind::HostSection => {
            let section: pb::HostSection = decode(event)?;
            let disposition = check_host_record(
                conn,
                ctx,
                origin,
                HostRecordRef {
                    member_id: &section.member_id,
                    author: &section.author,
                    basis: &section.basis,
                    log_id,
                    seq: event.seq,
                },
                faults,
            )?;
            if matches!(disposition, Disposition::Drop) {
                return Ok(());
            }
            if let Disposition::Relay(to, basis) = disposition {
                let relayed = pb::HostSection { basis, ..section };
                // Not `append`: the snapshots it supersedes are keyed by
                // member, and this node relays the sections of every host
                // of the member (a newer one of the same host is applied
                // over an older one at the owner anyway).
                log::append_unqueued(
                    conn,
                    &to,
                    kind,
                    &relayed.member_id,
                    &relayed.encode_to_vec(),
                    ctx.now_ms,
                )?;
                return Ok(());
            }
            let current = members::host_section(conn, &section.member_id, &section.author)?;
            let incoming = section.version.unwrap_or_default();
            let newer = current.is_none_or(|c| {
                (incoming.generation, incoming.counter) > (c.generation, c.counter)
            });
            if newer {
                members::save_host_section(conn, &section, ctx.now_ms)?;
            }
            Ok(())
        }
        EventKind::Contact => {
            let contact: pb::ContactEvent = decode(event)?;
            let disposition = check_host_record(
                conn,
                ctx,
                origin,
                HostRecordRef {
                    member_id: &contact.member_id,
                    author: &contact.author,
                    basis: &contact.basis,
                    log_id,
                    seq: event.seq,
                },
                faults,
            )?;
            if matches!(disposition, Disposition::Drop) {
                return Ok(());
            }
            if let Disposition::Relay(to, basis) = disposition {
                let relayed = pb::ContactEvent { basis, ..contact };
                log::append(
                    conn,
                    &to,
                    kind,
                    &relayed.member_id,
                    &relayed.encode_to_vec(),
                    ctx.now_ms,
                )?;
                return Ok(());
            }
            if members::save_contact(conn, &contact, ctx.now_ms)? {
                members::refresh_contact_status(conn, ctx, &contact.member_id)?;
            }
            Ok(())
        }
        EventKind::Activity => {
            let activity: pb::ActivityRecord = decode(event)?;
            let disposition = check_host_record(
                conn,
                ctx,
                origin,
                HostRecordRef {
                    member_id: &activity.member_id,
                    author: &activity.author,
                    basis: &activity.basis,
                    log_id,
                    seq: event.seq,
                },
                faults,
            )?;
            if matches!(disposition, Disposition::Drop) {
                return Ok(());
            }
            if let Disposition::Relay(to, basis) = disposition {
                let relayed = pb::ActivityRecord { basis, ..activity };
                log::append(
                    conn,
                    &to,
                    kind,
                    &relayed.member_id,
                    &relayed.encode_to_vec(),
                    ctx.now_ms,
                )?;
                return Ok(());
            }
            members::save_activity(conn, &activity, ctx.now_ms)?;
            Ok(())
        }
        EventKind::AgreementVersion
        | EventKind::AgreementVote
        | EventKind::AgreementActivated
        | EventKind::AgreementEnded
        | EventKind::AgreementEndApplied
        | EventKind::CopiesDropped => {
            if faults.skip_authority {
                return Ok(());
            }
            super::agreements::apply(conn, ctx, origin, log_id, event, kind)
        }
        EventKind::TransferOffer
        | EventKind::TransferAccept
        | EventKind::TransferReject
        | EventKind::TransferRelease
        | EventKind::TransferAbort
        | EventKind::TransferReceipt
        | EventKind::Moved => super::transfers::apply(conn, ctx, origin, event, kind),
        // Applied by `apply_batch`, which knows the log id it arrived under.
        EventKind::EpochComplete => Err(Rejection::Invalid(
            "epoch_complete can only be applied with the batch it arrived in".into(),
        )),
        EventKind::Unspecified => Err(Rejection::Invalid("event kind unspecified".into())),
    }
}

/// A home section is authored by the member's owner, which must be the
/// event's origin, and may never overwrite a member this node owns. A node
/// that released the member (it keeps a tombstone) may host it afterwards,
/// under an agreement with its new owner.
/// `(origin, log_id)`: who sent it, in which of its logs.
fn apply_home_section(
    conn: &Connection,
    ctx: &Ctx<'_>,
    (origin, log_id): (&NodeId, &str),
    section: &pb::HomeSection,
    faults: Faults,
    memo: &mut Memo,
) -> Result<(), Rejection> {
    let Some(version) = section.version else {
        return Err(Rejection::Invalid("home section without a version".into()));
    };
    if !faults.skip_authority {
        if section.owner != origin.as_str() {
            return Err(Rejection::Invalid(format!(
                "home section of member {} names owner `{}` but was sent by {origin}",
                section.member_id, section.owner
            )));
        }
        if let Some(home) = members::load_home(conn, &section.member_id)? {
            if home.owner == ctx.me.as_str() && version.generation < home.generation {
                // From an owner before this node, which released the member
                // since: stale, as a host would find it (a restored former
                // owner's log may still hold such a share for this node).
                return Ok(());
            }
            if home.owner == ctx.me.as_str() {
                // Generations rise only with releases: a later one means
                // this node released the member, after the backup it was
                // restored from (DESIGN §7). Held; the transfer rule that
                // makes it a tombstone here applies it again.
                if version.generation > home.generation && super::reconcile::was_restored(conn)? {
                    return Err(Rejection::Invalid(format!(
                        "{origin} sent the home section of member {} at generation {}, above this node's {}: restored from a backup, this node released the member since; {HELD_UNTIL_RELEASED}",
                        section.member_id, version.generation, home.generation
                    )));
                }
                return Err(Rejection::Invalid(format!(
                    "{origin} may not write the home section of member {} ({}), which is owned by {}",
                    section.member_id, home.name, home.owner
                )));
            }
            // A tombstone: this node released the member (generation
            // `home.generation`, to `home.owner`), and may host it now.
            if version.generation < home.generation {
                // From an owner before the one it was released to: stale.
                return Ok(());
            }
            if version.generation == home.generation && home.owner != origin.as_str() {
                return Err(Rejection::Invalid(format!(
                    "{origin} claims generation {} of member {}, which this node released to {}",
                    version.generation, section.member_id, home.owner
                )));
            }
        }
    } else if members::load_home(conn, &section.member_id)?.is_some() {
        // The broken variant: overwrite the owned record as if authorized.
        conn.execute(
            "UPDATE members SET name = ?2 WHERE member_id = ?1",
            params![section.member_id, section.name],
        )?;
        return Ok(());
    }
    if !faults.skip_authority {
        let may_hold = match memo.may_hold.get(&section.basis) {
            Some(may_hold) => *may_hold,
            None => {
                let may_hold = super::agreements::host_may_hold(conn, ctx, origin, &section.basis)?;
                memo.may_hold.insert(section.basis.clone(), may_hold);
                if may_hold == Some(false) {
                    // Past the grace period on this node's clock: its
                    // copies under that agreement go too, and the owner,
                    // which believes this node holds what it sent, is told
                    // (once per basis and batch).
                    super::agreements::host_past_grace(conn, ctx, &section.basis)?;
                }
                may_hold
            }
        };
        match may_hold {
            None => {
                return Err(Rejection::Invalid(format!(
                    "home section of member {} names basis `{}`, which is no agreement between {origin} and this node",
                    section.member_id, section.basis
                )))
            }
            // Crossed the end of its agreement: a legitimate race, not
            // stored.
            Some(false) => return Ok(()),
            Some(true) => {}
        }
    }
    if members::save_copy_if_newer(conn, section, log_id, ctx.now_ms)? {
        memo.copy_stored = true;
        return Ok(());
    }
    // Not stored: the copy held is at a later generation (a newer owner
    // already shared it: the higher generation stays) or at the same or a
    // later version of this owner (a duplicate), unless another owner
    // claims this generation.
    if let Some((held_owner, held)) = members::copy_version(conn, &section.member_id)? {
        if held.generation == version.generation && held_owner != section.owner {
            return Err(Rejection::Invalid(format!(
                "{origin} and {} both claim generation {} of member {}",
                held_owner, version.generation, section.member_id
            )));
        }
    }
    Ok(())
}

/// What to do with a host record that passed the checks.
enum Disposition {
    Apply,
    /// The member was released to another node: relay the record there
    /// with the transfer as its basis (DESIGN §5).
    Relay(NodeId, String),
    /// The member left on paper for a place with no node: a legitimate
    /// record that crossed the unshare, with nowhere to go (not stored).
    Drop,
}

/// Host sections, contact events and activities about a member go to the
/// member's owner, authored by the node that sends them, under an agreement
/// that covered the member while it was active, and only until the host
/// applied its end (DESIGN §4); or relayed by the member's previous owner
/// with the transfer as basis.
/// What `check_host_record` judges of a host record.
struct HostRecordRef<'a> {
    member_id: &'a str,
    author: &'a str,
    basis: &'a str,
    /// Its place in the origin's log `log_id` (seq 0: reported in the
    /// origin's holdings).
    log_id: &'a str,
    seq: u64,
}

fn check_host_record(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    record: HostRecordRef<'_>,
    faults: Faults,
) -> Result<Disposition, Rejection> {
    let HostRecordRef {
        member_id,
        author,
        basis,
        log_id,
        seq,
    } = record;
    if faults.skip_authority {
        return Ok(Disposition::Apply);
    }
    let Some(home) = members::load_home(conn, member_id)? else {
        return Err(Rejection::Invalid(format!(
            "member {member_id} is not known here: {origin} sent a record about a member this node does not own"
        )));
    };
    if author != origin.as_str() {
        // Relayed by the previous owner after it released the member here.
        if super::transfers::relay_allowed(conn, ctx, origin, member_id, basis)? {
            if home.owner == ctx.me.as_str() {
                return Ok(Disposition::Apply);
            }
            // Passed on again since (A→B→C): relay along the chain.
            if let Some(moved) =
                members::moved_of(conn, member_id)?.filter(|m| !m.to_node.is_empty())
            {
                let to = forward_pointer(member_id, &moved.to_node)?;
                return Ok(Disposition::Relay(to, moved.transfer_id));
            }
        }
        return Err(Rejection::Invalid(format!(
            "record about member {member_id} names author `{author}` but was sent by {origin}"
        )));
    }
    // Made by the node this one released the member to, as its host
    // before: the record went with the member to its own author, nothing
    // is left to check or relay (a restored sender may have forgotten it
    // shared the member with it, so the agreement check would refuse it).
    if home.owner != ctx.me.as_str()
        && members::moved_of(conn, member_id)?.is_some_and(|m| m.to_node == origin.as_str())
    {
        return Ok(Disposition::Drop);
    }
    if let Err(why) =
        super::agreements::host_record_allowed(conn, ctx, origin, member_id, basis, (log_id, seq))?
    {
        return Err(Rejection::Invalid(format!(
            "{origin} may not send records about member {member_id}: {why}"
        )));
    }
    if home.owner == ctx.me.as_str() {
        return Ok(Disposition::Apply);
    }
    match members::moved_of(conn, member_id)? {
        Some(moved) if !moved.to_node.is_empty() => {
            let to = forward_pointer(member_id, &moved.to_node)?;
            Ok(Disposition::Relay(to, moved.transfer_id))
        }
        // Transferred on paper to a place with no node: nowhere to relay.
        Some(moved) => {
            tracing::info!(
                member = %member_id,
                %origin,
                place = %moved.to_place,
                "a host record about a member transferred on paper is dropped"
            );
            Ok(Disposition::Drop)
        }
        None => Err(Rejection::Invalid(format!(
            "member {member_id} is owned by {}, not this node",
            home.owner
        ))),
    }
}

fn read_quarantine(r: &rusqlite::Row<'_>) -> rusqlite::Result<pb::QuarantineEntry> {
    Ok(pb::QuarantineEntry {
        id: r.get(0)?,
        origin: r.get(1)?,
        seq: r.get(2)?,
        kind: log::kind_name(r.get(3)?),
        entity: r.get(4)?,
        reason: r.get(5)?,
        received_at_ms: r.get(6)?,
        state: r.get(7)?,
    })
}

const QUARANTINE_COLUMNS: &str = "id, origin, seq, kind, entity, reason, received_at_ms, state";

pub fn quarantine_list(
    conn: &Connection,
    include_resolved: bool,
) -> Result<Vec<pb::QuarantineEntry>, Error> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {QUARANTINE_COLUMNS} FROM quarantine WHERE ?1 OR state = 'held' ORDER BY id"
    ))?;
    let list = stmt
        .query_map([include_resolved], read_quarantine)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(list)
}

/// Checks a quarantined event again (after an operator fixed what it
/// lacked, or after an upgrade). Applied: it leaves the quarantine; still
/// invalid: it stays, with the new reason. The cursor is not touched.
pub fn quarantine_retry(
    conn: &Connection,
    ctx: &Ctx<'_>,
    id: u64,
) -> Result<pb::QuarantineEntry, Error> {
    // (origin, the origin's log it came in, state, the event).
    let row: Option<(String, String, String, pb::Event)> =
        rusqlite::OptionalExtension::optional(conn.query_row(
            "SELECT origin, log_id, state, seq, kind, entity, payload FROM quarantine WHERE id = ?1",
            [id],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    pb::Event {
                        seq: r.get(3)?,
                        kind: r.get(4)?,
                        entity: r.get(5)?,
                        payload: r.get(6)?,
                        created_at_ms: 0,
                    },
                ))
            },
        ))?;
    let Some((origin, log_id, state, event)) = row else {
        return Err(Error::not_found(format!(
            "no quarantined event {id}: `quarantine list` shows them"
        )));
    };
    if state != "held" {
        return Err(Error::conflict(format!(
            "quarantined event {id} is already {state}"
        )));
    }
    let origin = NodeId::parse(&origin).map_err(|e| Error::invalid(e.to_string()))?;
    match apply_event(conn, ctx, &origin, &log_id, &event, Faults::default()) {
        Ok(()) => {
            conn.execute(
                "UPDATE quarantine SET state = 'applied', retried_at_ms = ?2 WHERE id = ?1",
                params![id, ctx.now_ms],
            )?;
        }
        Err(Rejection::Invalid(reason)) => {
            conn.execute(
                "UPDATE quarantine SET reason = ?2, retried_at_ms = ?3 WHERE id = ?1",
                params![id, reason, ctx.now_ms],
            )?;
        }
        Err(Rejection::Stop(reason)) => {
            return Err(Error::conflict(format!(
                "quarantined event {id} cannot be applied now: {reason}"
            )))
        }
        Err(Rejection::Store(e)) => return Err(e),
    }
    Ok(conn.query_row(
        &format!("SELECT {QUARANTINE_COLUMNS} FROM quarantine WHERE id = ?1"),
        [id],
        read_quarantine,
    )?)
}

/// The end of the reason a home section is held for at a restored node
/// that still believes it owns the member.
pub const HELD_UNTIL_RELEASED: &str = "held until it learns of the release";

/// After `member_id` arrived here (a release installed it), or left (a
/// restore's transfer rule made it a tombstone): checks again the host
/// records about it that were held because the member was not known here,
/// and the home sections held because this node believed it still owned
/// it. Only a restore makes them arrive first: a host's record of a member
/// this node forgot it had received comes before the release its sender
/// sends again, and a later owner's share before the report of the release
/// this node forgot (DESIGN §7). Returns how many were applied.
pub fn retry_held_about(conn: &Connection, ctx: &Ctx<'_>, member_id: &str) -> Result<usize, Error> {
    let ids: Vec<u64> = conn
        .prepare_cached(
            "SELECT id FROM quarantine WHERE state = 'held' AND entity = ?1 AND kind IN (?2, ?3, ?4, ?5) ORDER BY id",
        )?
        .query_map(
            params![
                member_id,
                EventKind::HostSection as i32,
                EventKind::Contact as i32,
                EventKind::Activity as i32,
                EventKind::HomeSection as i32
            ],
            |r| r.get(0),
        )?
        .collect::<Result<Vec<_>, _>>()?;
    let mut applied = 0;
    for id in ids {
        if quarantine_retry(conn, ctx, id)?.state == "applied" {
            applied += 1;
            tracing::info!(quarantine = id, member = %member_id, "held host record applied once its member arrived");
        }
    }
    Ok(applied)
}
