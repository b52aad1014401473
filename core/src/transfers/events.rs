//! Applying the other side's transfer events: offers and the sender's
//! decisions at the receiver, votes and receipts at the sender, and
//! `Moved` at other hosts.

use chrono::NaiveDate;
use liaison_proto::v1 as pb;
use liaison_proto::v1::EventKind;
use liaison_types::identity::NodeId;
use liaison_types::validate;
use prost::Message;
use rusqlite::{params, Connection, OptionalExtension};

use super::receiver::{
    accept, answer_stale, install, intake_branch, offer_is_stale, purge, send_receipt, take_parts,
};
use super::sender::{abort, may_release_again, release, yield_to_later_generation};
use super::state::{is_void, load, releases_at, save, void, Direction, Row, TransferState};
use crate::letters::LetterNo;
use crate::members;
use crate::outcome::Rejection;
use crate::{Ctx, Error};

fn decode<M: Message + Default>(event: &pb::Event) -> Result<M, Rejection> {
    M::decode(event.payload.as_slice())
        .map_err(|e| Rejection::Invalid(format!("malformed transfer payload: {e}")))
}

/// A decision of the sender that cannot be applied stops the peer's stream
/// at that event (docs/replication.md): never quarantined.
fn cannot_apply(message: String) -> Rejection {
    Rejection::Stop(format!("transfer decision cannot be applied: {message}"))
}

pub fn apply(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    event: &pb::Event,
    kind: EventKind,
) -> Result<(), Rejection> {
    match kind {
        EventKind::TransferOffer => apply_offer(conn, ctx, origin, decode(event)?),
        EventKind::TransferAccept | EventKind::TransferReject => {
            apply_vote(conn, ctx, origin, decode(event)?)
        }
        EventKind::TransferRelease => {
            let release: pb::TransferRelease =
                pb::TransferRelease::decode(event.payload.as_slice())
                    .map_err(|e| cannot_apply(format!("malformed release: {e}")))?;
            apply_release(conn, ctx, origin, release)
        }
        EventKind::TransferAbort => {
            let abort: pb::TransferAbort = pb::TransferAbort::decode(event.payload.as_slice())
                .map_err(|e| cannot_apply(format!("malformed abort: {e}")))?;
            apply_abort(conn, ctx, origin, abort)
        }
        EventKind::TransferReceipt => apply_receipt(conn, ctx, origin, decode(event)?),
        EventKind::Moved => apply_moved(conn, ctx, origin, event, decode(event)?),
        _ => Err(Rejection::Invalid(format!(
            "not a transfer event: {kind:?}"
        ))),
    }
}

/// Why `t`, the transfer known here under the id an offer or a release
/// from `origin` names, is not the one they carry on: a transfer id is
/// made once by its sender, for one member. `None` if it is the same.
fn another_transfer(t: &Row, origin: &NodeId, member_id: &str) -> Option<String> {
    if t.direction != Direction::Incoming {
        return Some(format!(
            "this node's own transfer of member {} to {}",
            t.member_id, t.receiver
        ));
    }
    if t.sender != origin.as_str() {
        return Some(format!(
            "a transfer of member {} from {}",
            t.member_id, t.sender
        ));
    }
    if t.member_id != member_id {
        return Some(format!(
            "a transfer of member {}, not {member_id}",
            t.member_id
        ));
    }
    None
}

fn apply_offer(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    offer: pb::TransferOffer,
) -> Result<(), Rejection> {
    if offer.sender != origin.as_str() || offer.receiver != ctx.me.as_str() {
        return Err(Rejection::Invalid(format!(
            "offer {} names sender {} and receiver {}, but came from {origin} to this node",
            offer.transfer_id, offer.sender, offer.receiver
        )));
    }
    let record = offer
        .record
        .clone()
        .ok_or_else(|| Rejection::Invalid("offer without a record".into()))?;
    if is_void(conn, &offer.letter_no, &offer.transfer_id)? {
        return Ok(());
    }
    if let Some(mut t) = load(conn, &offer.transfer_id)? {
        // A transfer id is the sender's, made once for one member: an
        // offer under the id of another sender's transfer, of one this
        // node sends, or of another member is not the same letter again.
        if let Some(other) = another_transfer(&t, origin, &record.member_id) {
            return Err(Rejection::Invalid(format!(
                "{origin} offered transfer {}, which is {other}",
                t.transfer_id
            )));
        }
        if offer.extension && matches!(t.state, TransferState::Pending | TransferState::Accepted) {
            t.expires_on = offer.expires_on.clone();
            t.valid_days = offer.valid_days;
            t.offer = Some(record.encode_to_vec());
            save(conn, &t, ctx.now_ms)?;
        }
        return Ok(());
    }
    let duplicate: Option<String> = if record.national_id.is_empty() {
        None
    } else {
        conn.query_row(
            "SELECT member_id FROM members WHERE national_id = ?1 AND national_id <> '' AND owner = ?2 AND member_id <> ?3 LIMIT 1",
            params![record.national_id, ctx.me.as_str(), record.member_id],
            |r| r.get(0),
        )
        .optional()?
    };
    let mut t = Row {
        transfer_id: offer.transfer_id.clone(),
        letter_no: offer.letter_no.clone(),
        direction: Direction::Incoming,
        sender: offer.sender.clone(),
        receiver: offer.receiver.clone(),
        member_id: record.member_id.clone(),
        member_name: record.name.clone(),
        state: TransferState::Pending,
        issued_on: offer.issued_on.clone(),
        expires_on: offer.expires_on.clone(),
        valid_days: offer.valid_days,
        reason: offer.reason.clone(),
        offer: Some(record.encode_to_vec()),
        possible_duplicate: duplicate.unwrap_or_default(),
        updated_at_ms: ctx.now_ms,
        ..Row::default()
    };
    // A sender restored from a backup that went on without this node
    // (`reconcile --without-peer`) may issue a letter number again; it
    // marks the forgotten transfer's number when it learns of it, and so
    // does this node, so that both are kept.
    let clash: Option<String> = conn
        .query_row(
            "SELECT transfer_id FROM transfers WHERE letter_no = ?1 AND direction = 'incoming' AND transfer_id <> ?2",
            params![t.letter_no, t.transfer_id],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(other) = clash {
        tracing::warn!(
            transfer = %t.transfer_id,
            other = %other,
            letter = %t.letter_no,
            sender = %origin,
            "a letter number was issued twice by a restored sender"
        );
        conn.execute(
            "UPDATE transfers SET number_issued_again_as = ?2 WHERE transfer_id = ?1",
            params![other, t.transfer_id],
        )?;
    }
    save(conn, &t, ctx.now_ms)?;
    if offer_is_stale(conn, ctx, &t)? {
        answer_stale(conn, ctx, &mut t)?;
        return Ok(());
    }
    // Auto-accept, by the operator's policy for this sender, members this
    // node co-manages under an active agreement; not while reconciling
    // (an accept is an owner decision): the offer waits for the operator.
    let policy: String = conn
        .query_row(
            "SELECT auto_accept_branch FROM peers WHERE node_id = ?1",
            [origin.as_str()],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or_default();
    if !policy.is_empty() && t.possible_duplicate.is_empty() && !crate::epoch::is_reconciling(conn)?
    {
        let covered = match members::load_copy(conn, &t.member_id)? {
            Some(copy) => {
                crate::agreements::host_may_hold(conn, ctx, origin, &copy.basis)? == Some(true)
            }
            None => false,
        };
        if covered {
            accept(conn, ctx, &t.transfer_id, &policy)?;
            t = load(conn, &t.transfer_id)?.unwrap_or(t);
            tracing::info!(transfer = %t.transfer_id, "transfer accepted by policy");
        }
    }
    Ok(())
}

fn apply_vote(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    vote: pb::TransferVote,
) -> Result<(), Rejection> {
    let Some(mut t) = load(conn, &vote.transfer_id)? else {
        if crate::epoch::was_restored(conn)? {
            return answer_forgotten_offer(conn, ctx, origin, &vote);
        }
        return Err(Rejection::Unknown(format!(
            "vote on unknown transfer {}",
            vote.transfer_id
        )));
    };
    if t.direction != Direction::Outgoing || t.receiver != origin.as_str() {
        return Err(Rejection::Invalid(format!(
            "{origin} is not the receiver of transfer {}",
            t.transfer_id
        )));
    }
    match (vote.vote.as_str(), t.state) {
        ("accept", TransferState::Expired | TransferState::Cancelled)
            if vote.already_received && may_release_again(conn, ctx, &t)? =>
        {
            tracing::warn!(transfer = %t.transfer_id, member = %t.member_id, state = %t.state, "restored: the receiver already received this member; released again");
            t.branch = vote.branch.clone();
            release(conn, ctx, &mut t)?;
        }
        ("accept", TransferState::Offered) => {
            let expires = validate::date("expires on", &t.expires_on, NaiveDate::MAX, true)
                .map_err(Error::from)?;
            let owned_here =
                members::load_home(conn, &t.member_id)?.is_some_and(|m| m.owner == ctx.me.as_str());
            if ctx.today() > expires && !vote.already_received {
                // Expiry is decided by the sender alone: too late.
                abort(conn, ctx, &mut t, TransferState::Expired, "late_accept")?;
            } else if !owned_here {
                // Another transfer took the member since this offer: this
                // node, restored to before the offer, went on without the
                // receiver (`reconcile --without-peer`), offered and
                // released the member again, and took this offer back from
                // the receiver's holdings. Releasing now would give the
                // member a second owner.
                tracing::warn!(transfer = %t.transfer_id, member = %t.member_id, "an accepted offer of a member another transfer took is cancelled");
                abort(
                    conn,
                    ctx,
                    &mut t,
                    TransferState::Cancelled,
                    "sender_restored",
                )?;
            } else {
                t.branch = vote.branch.clone();
                release(conn, ctx, &mut t)?;
            }
        }
        // An accept after the sender decided otherwise: tell it again.
        ("accept", TransferState::Expired | TransferState::Cancelled | TransferState::Rejected) => {
            let state = t.state;
            let why = if state == TransferState::Expired {
                "late_accept"
            } else {
                state.as_str()
            };
            abort(conn, ctx, &mut t, state, why)?;
        }
        ("reject", TransferState::Offered) => {
            t.reject_code = vote.reason_code.clone();
            t.reject_reason = vote.reason.clone();
            abort(conn, ctx, &mut t, TransferState::Rejected, "rejected")?;
        }
        ("accept" | "reject", _) => {}
        (other, _) => {
            return Err(Rejection::Invalid(format!(
                "unknown transfer vote `{other}`"
            )))
        }
    }
    Ok(())
}

/// A vote on an offer this restored node no longer knows: it issued the
/// offer after its backup, and the receiver did not hold it yet when its
/// holdings were adopted (the receiver was itself restored to before the
/// offer, and later to a backup that had it). This node holds nothing to
/// release under it (docs/restore.md): an accept is answered as a
/// cancelled offer, so the receiver's transfer ends aborted and the member
/// stays where it is; a reject ends it already.
fn answer_forgotten_offer(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    vote: &pb::TransferVote,
) -> Result<(), Rejection> {
    match vote.vote.as_str() {
        "accept" => {
            tracing::warn!(transfer = %vote.transfer_id, receiver = %origin, "restored: an accept of an offer this node forgot is answered as cancelled");
            let message = pb::TransferAbort {
                transfer_id: vote.transfer_id.clone(),
                letter_no: String::new(),
                why: "sender_restored".into(),
            };
            crate::log::append(
                conn,
                origin,
                EventKind::TransferAbort,
                &vote.transfer_id,
                &message.encode_to_vec(),
                ctx.now_ms,
            )?;
            Ok(())
        }
        "reject" => Ok(()),
        other => Err(Rejection::Invalid(format!(
            "unknown transfer vote `{other}`"
        ))),
    }
}

fn apply_release(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    release: pb::TransferRelease,
) -> Result<(), Rejection> {
    if release.sender != origin.as_str() || release.receiver != ctx.me.as_str() {
        return Err(cannot_apply(format!(
            "release {} names sender {} and receiver {}, but came from {origin} to this node",
            release.transfer_id, release.sender, release.receiver
        )));
    }
    let record = release
        .record
        .clone()
        .ok_or_else(|| cannot_apply("release without a record".into()))?;
    let known = load(conn, &release.transfer_id)?;
    if let Some(t) = &known {
        if let Some(other) = another_transfer(t, origin, &record.member_id) {
            return Err(cannot_apply(format!(
                "{origin} released transfer {}, which is {other}",
                t.transfer_id
            )));
        }
    }
    let mut t = known.unwrap_or(Row {
        transfer_id: release.transfer_id.clone(),
        letter_no: release.letter_no.clone(),
        direction: Direction::Incoming,
        sender: release.sender.clone(),
        receiver: release.receiver.clone(),
        member_id: record.member_id.clone(),
        issued_on: release.released_on.clone(),
        expires_on: release.released_on.clone(),
        state: TransferState::Pending,
        updated_at_ms: ctx.now_ms,
        ..Row::default()
    });
    if t.state == TransferState::Completed {
        return install_newer_release(conn, ctx, &record, release.generation);
    }
    // A release older than what this node knows of the member (it passed
    // the member on since, and was restored from a backup taken before this
    // release arrived): completed and receipted, but not installed.
    let home = members::load_home(conn, &record.member_id)?;
    let stale = home
        .as_ref()
        .is_some_and(|m| m.owner != ctx.me.as_str() && m.generation > release.generation)
        || from_a_branch_that_yields(conn, origin, &record.member_id, release.generation)?;
    let branch = if t.branch.is_empty() {
        intake_branch(conn, ctx)?
    } else {
        t.branch.clone()
    };
    // This node owns the member at the release's generation already (or
    // past it), though it did not know this letter: restored to before
    // it, it took the member back from a peer's copy of it, which this
    // release had made. Its record stands as a newer one does.
    let owned_already = home
        .as_ref()
        .is_some_and(|m| m.owner == ctx.me.as_str() && m.generation >= release.generation);
    if owned_already {
        install_newer_release(conn, ctx, &record, release.generation)?;
    } else if !stale {
        install(conn, ctx, &record, release.generation, &branch, None).map_err(Rejection::Store)?;
        tell_earlier_owners(conn, ctx, origin, home.as_ref(), &release)?;
        members::note_earlier_owners(
            conn,
            ctx.me.as_str(),
            &record.member_id,
            &release.earlier_owners,
            origin.as_str(),
        )?;
    }
    let duplicate: Option<String> = if record.national_id.is_empty() {
        None
    } else {
        conn.query_row(
            "SELECT member_id FROM members WHERE national_id = ?1 AND national_id <> '' AND owner = ?2 AND member_id <> ?3 LIMIT 1",
            params![record.national_id, ctx.me.as_str(), record.member_id],
            |r| r.get(0),
        )
        .optional()?
    };
    t.state = TransferState::Completed;
    t.member_name = record.name.clone();
    t.branch = branch;
    t.offer = None;
    t.possible_duplicate = duplicate.unwrap_or_default();
    t.released_at_ms = Some(ctx.now_ms);
    t.receipt_at_ms = Some(ctx.now_ms);
    t.released_generation = release.generation;
    save(conn, &t, ctx.now_ms)?;
    send_receipt(conn, ctx, origin, &t.transfer_id, &t.letter_no)?;
    // A peer's holdings named the member at a later generation before this
    // release arrived: the peers have moved past it.
    if !stale && super::yield_to_reported(conn, ctx, &record.member_id)? {
        return Ok(());
    }
    if !stale {
        // Records held until the member arrived are judged once the
        // transfer is completed here: a record the sender relayed under
        // this transfer is admitted only by a completed one.
        crate::hosting::retry_held_about(conn, ctx, &record.member_id)?;
        // The new owner shares under its own agreements from now on.
        members::reshare_member(conn, ctx, &record.member_id)?;
    }
    Ok(())
}

/// Tells the nodes that owned the member before `origin` released it here
/// that this node owns it now, at the release's generation: a `moved`
/// naming this node, to each that is a peer. A node past that generation,
/// or a tombstone, takes it as late (`apply_moved`); one restored to
/// before it released the member, which owns it still beside this node,
/// yields to the owner the `moved` names (`yields_to_its_owner`). They are
/// - the node this node's own tombstone names at an earlier generation:
///   the member came back here, and that node passed it on since unless a
///   restore made it forget it did (and the node it passed it to forgot
///   too, so no peer's holdings tell it);
/// - the earlier owners the release names (`earlier_owners`): no peer's
///   holdings may link a restored one of them to this node, where the
///   nodes in between forgot too.
fn tell_earlier_owners(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    before: Option<&members::HomeRecord>,
    release: &pb::TransferRelease,
) -> Result<(), Error> {
    let member_id = release.record.as_ref().map_or("", |r| r.member_id.as_str());
    let returned_from = before
        .filter(|m| m.owner != ctx.me.as_str() && m.generation < release.generation)
        .map(|m| m.owner.as_str());
    let moved = pb::Moved {
        member_id: member_id.to_owned(),
        generation: release.generation,
        new_owner: ctx.me.to_string(),
        transfer_id: release.transfer_id.clone(),
        letter_no: release.letter_no.clone(),
    };
    let mut told: Vec<&str> = Vec::new();
    for node in returned_from
        .into_iter()
        .chain(release.earlier_owners.iter().map(String::as_str))
    {
        if node == ctx.me.as_str() || node == origin.as_str() || told.contains(&node) {
            continue;
        }
        let Ok(earlier) = NodeId::parse(node) else {
            continue;
        };
        if crate::store::peers::get(conn, &earlier)?.is_none() {
            continue;
        }
        crate::log::append(
            conn,
            &earlier,
            EventKind::Moved,
            member_id,
            &moved.encode_to_vec(),
            ctx.now_ms,
        )?;
        told.push(node);
    }
    Ok(())
}

/// Whether `origin` owned the member it releases here at `generation` by
/// the earlier of two releases this node made of one generation (a
/// restore in between, docs/transfers.md, Two releases of one
/// generation): this node released it to `origin` at the generation
/// before, and released that generation again to another node under a
/// later letter, which stands. `origin`'s claim, and so this release, are
/// of the branch that yields: completed and receipted, never installed.
fn from_a_branch_that_yields(
    conn: &Connection,
    origin: &NodeId,
    member_id: &str,
    generation: u64,
) -> Result<bool, Error> {
    let Some(before) = generation.checked_sub(1).filter(|g| *g > 0) else {
        return Ok(false);
    };
    let releases = releases_at(conn, member_id, before)?;
    Ok(releases
        .iter()
        .filter(|r| r.receiver == origin.as_str())
        .any(|ours| {
            releases.iter().any(|other| {
                other.receiver != origin.as_str()
                    && LetterNo::is_later_release(
                        (&other.letter_no, &other.transfer_id),
                        (&ours.letter_no, &ours.transfer_id),
                    )
            })
        }))
}

/// A release of a transfer completed here, again, or recorded completed
/// from the sender's holdings before its release arrived: the sender,
/// restored, sends from its new log a release of a branch this node did
/// not install, while this node owns the member at that generation (by
/// this letter's release from a branch the sender forgot, or by another
/// letter of the sender at the same generation, when both were restored
/// to before a release and the sender numbered its next letter again).
/// Nothing of either is lost: this node takes in the parts of the record
/// it lacks (outflows, contacts, activities, newer host sections), and
/// the released home section replaces its own only if newer, as a newer
/// home section does; one this node changed since is at least as new and
/// stays. What this node decided about the member's contact stays.
fn install_newer_release(
    conn: &Connection,
    ctx: &Ctx<'_>,
    record: &pb::MemberRecord,
    generation: u64,
) -> Result<(), Rejection> {
    let Some(held) = members::load_home(conn, &record.member_id)?
        .filter(|m| m.owner == ctx.me.as_str() && m.generation == generation)
    else {
        return Ok(());
    };
    if record.version.unwrap_or_default().counter > held.counter {
        install(
            conn,
            ctx,
            record,
            generation,
            &held.home_branch,
            Some(&held),
        )
        .map_err(Rejection::Store)?;
    } else {
        take_parts(conn, ctx, record, false).map_err(Rejection::Store)?;
    }
    members::reshare_member(conn, ctx, &record.member_id)?;
    Ok(())
}

pub(super) fn apply_abort(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    abort: pb::TransferAbort,
) -> Result<(), Rejection> {
    let known = load(conn, &abort.transfer_id)?;
    // A restored sender answering an offer it forgot names no letter: the
    // one this node holds for the transfer is void.
    let letter_no = match (&known, abort.letter_no.is_empty()) {
        (Some(t), true) => t.letter_no.clone(),
        _ => abort.letter_no.clone(),
    };
    if !letter_no.is_empty() {
        void(conn, &letter_no, &abort.transfer_id)?;
    }
    let Some(mut t) = known else {
        return Ok(());
    };
    if t.direction != Direction::Incoming || t.sender != origin.as_str() {
        return Err(cannot_apply(format!(
            "{origin} is not the sender of transfer {}",
            t.transfer_id
        )));
    }
    if t.state == TransferState::Completed {
        return Ok(());
    }
    // Aborted (expired, say) before this node answered an offer it finds
    // stale: the answer still goes, so the restored sender releases.
    if t.state == TransferState::Pending && offer_is_stale(conn, ctx, &t)? {
        answer_stale(conn, ctx, &mut t)?;
        return Ok(());
    }
    if t.state != TransferState::Rejected {
        t.state = TransferState::Aborted;
    }
    t.abort_why = abort.why.clone();
    purge(&mut t);
    save(conn, &t, ctx.now_ms)?;
    Ok(())
}

fn apply_receipt(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    receipt: pb::TransferReceipt,
) -> Result<(), Rejection> {
    let Some(mut t) = load(conn, &receipt.transfer_id)? else {
        return Err(Rejection::Unknown(format!(
            "receipt for unknown transfer {}",
            receipt.transfer_id
        )));
    };
    if t.direction != Direction::Outgoing || t.receiver != origin.as_str() {
        return Err(Rejection::Invalid(format!(
            "{origin} is not the receiver of transfer {}",
            t.transfer_id
        )));
    }
    // The receiver installed the member, but this node holds the transfer
    // unreleased: it was restored from a backup older than its release and
    // learned from the receiver's holdings nothing of it (the receiver was
    // itself restored to before the offer when this node reconciled), and
    // the receiver's accept, sent again, came past the letter's expiry.
    // The receipt proves the release: released again, so that the member
    // has one owner and the letter one outcome.
    if matches!(
        t.state,
        TransferState::Offered | TransferState::Expired | TransferState::Cancelled
    ) && may_release_again(conn, ctx, &t)?
    {
        tracing::warn!(transfer = %t.transfer_id, member = %t.member_id, state = %t.state, "restored: a receipt for a member this node forgot it released; released again");
        release(conn, ctx, &mut t)?;
    } else if matches!(
        t.state,
        TransferState::Offered | TransferState::Expired | TransferState::Cancelled
    ) && left_on_a_forgotten_branch(conn, &t)?
    {
        // The member left this node on a branch of its backups that a
        // restore forgot (a peer's later generation told it: a forward
        // pointer naming no transfer; or the backup is older than the
        // member), and the receiver completed this letter: the receipt is
        // the letter's one outcome. Nothing is released again: the member
        // is no longer here.
        tracing::warn!(transfer = %t.transfer_id, member = %t.member_id, state = %t.state, "restored: a receipt for a letter whose member left on a branch this node forgot; completed");
        t.state = TransferState::Completed;
        t.released_at_ms = t.released_at_ms.or(Some(ctx.now_ms));
        t.receipt_at_ms = Some(ctx.now_ms);
        save(conn, &t, ctx.now_ms)?;
        return Ok(());
    }
    if t.state == TransferState::Released {
        t.state = TransferState::Completed;
        t.receipt_at_ms = Some(ctx.now_ms);
        save(conn, &t, ctx.now_ms)?;
    }
    Ok(())
}

/// Whether `t`'s member left this node on a branch of its backups that a
/// restore forgot: this node, restored, holds it as a forward pointer to a
/// later owner that names no transfer (`yield_to_later_generation`), or
/// holds no record of it at all (it was added here after the backup, and
/// the letter came back from the receiver's holdings).
fn left_on_a_forgotten_branch(conn: &Connection, t: &Row) -> Result<bool, Error> {
    if !crate::epoch::was_restored(conn)? {
        return Ok(false);
    }
    Ok(match members::moved_of(conn, &t.member_id)? {
        Some(m) => !m.to_node.is_empty() && m.transfer_id.is_empty(),
        None => members::load_home(conn, &t.member_id)?.is_none(),
    })
}

/// A releasing owner tells the other hosts of a member that it moved
/// (docs/transfers.md): a copy older than the move goes, if it is the
/// sender's (or already the new owner's); an older copy of a third owner
/// is not the sender's to drop, and stays. A copy as new as the move or newer stays:
/// the `moved` is late. One that contradicts what this node knows
/// (another owner's copy at the generation the move gives; a member this
/// node owns, or released at that generation to another node) is forged.
fn apply_moved(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    event: &pb::Event,
    moved: pb::Moved,
) -> Result<(), Rejection> {
    if moved.member_id != event.entity {
        return Err(Rejection::Invalid(
            "payload names another member than the event".into(),
        ));
    }
    if yields_to_later_letter(conn, ctx, origin, &moved)?
        || yields_to_its_owner(conn, ctx, origin, &moved)?
    {
        return Ok(());
    }
    match crate::hosting::judge_claim(
        conn,
        ctx,
        &moved.member_id,
        moved.generation,
        &moved.new_owner,
    )? {
        // Above the generation this restored node owns the member at: it
        // may have released it since (docs/restore.md). It holds no copy
        // of a member it owns, so there is nothing to delete or hold.
        crate::hosting::Claim::Consistent | crate::hosting::Claim::AboveOwnRestored(_) => {}
        crate::hosting::Claim::Contradicts(why) => {
            return Err(Rejection::Invalid(format!(
                "{origin} may not move member {}: {why}",
                moved.member_id
            )))
        }
    }
    let Some(copy) = members::load_copy(conn, &moved.member_id)? else {
        return Ok(());
    };
    let held = copy.version.unwrap_or_default().generation;
    let parties = copy.owner == origin.as_str() || copy.owner == moved.new_owner;
    if held > moved.generation || (held == moved.generation && parties) {
        return Ok(());
    }
    // An older copy of a third owner stays: that owner released the member
    // since (the move's generation is above the copy's), and its own
    // `moved`, still on its way, drops the copy.
    if !parties && held < moved.generation {
        return Ok(());
    }
    if !parties {
        return Err(Rejection::Invalid(format!(
            "{origin} may not move member {}: its copy here is owned by {} at generation {held}, the generation the move gives",
            moved.member_id, copy.owner
        )));
    }
    members::delete_copy(conn, &moved.member_id)?;
    Ok(())
}

/// Two releases of one generation (docs/transfers.md): this node owns the
/// member at the `moved`'s generation, and its origin, the sender that
/// released it here, names a later letter of its own than the one it came
/// here by. The sender released it twice, on two branches of its backups,
/// and the later letter stands: this node yields to its receiver. Only the
/// issuer of both letters can say so: a node numbers no other's letters.
/// Returns whether this node yielded.
/// A restored node that owns the member below the generation the `moved`
/// gives, from the node it names as the owner at that generation (which
/// got the member back, or from a later owner: `tell_earlier_owners`): by
/// the generation rule (docs/restore.md), this node released it on a
/// branch it forgot, and yields to that owner as it would to a peer's
/// holdings naming it.
fn yields_to_its_owner(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    moved: &pb::Moved,
) -> Result<bool, Rejection> {
    if moved.new_owner != origin.as_str() || !crate::epoch::was_restored(conn)? {
        return Ok(false);
    }
    let owned_below = members::load_home(conn, &moved.member_id)?
        .is_some_and(|m| m.owner == ctx.me.as_str() && m.generation < moved.generation);
    if !owned_below {
        return Ok(false);
    }
    yield_to_moved(conn, ctx, moved)
}

/// This node's record becomes a tombstone naming `moved`'s owner at its
/// generation, by the generation rule (`yield_to_later_generation`).
fn yield_to_moved(conn: &Connection, ctx: &Ctx<'_>, moved: &pb::Moved) -> Result<bool, Rejection> {
    let held = pb::HeldGeneration {
        member_id: moved.member_id.clone(),
        generation: moved.generation,
        owner: moved.new_owner.clone(),
        letter_no: moved.letter_no.clone(),
        transfer_id: moved.transfer_id.clone(),
    };
    Ok(yield_to_later_generation(conn, ctx, &held)?)
}

fn yields_to_later_letter(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    moved: &pb::Moved,
) -> Result<bool, Rejection> {
    let by_origin =
        LetterNo::parse(&moved.letter_no).is_some_and(|l| l.is_issued_by(origin.as_str()));
    if !by_origin || NodeId::parse(&moved.new_owner).is_err() {
        return Ok(false);
    }
    let owned_at_generation = members::load_home(conn, &moved.member_id)?
        .is_some_and(|m| m.owner == ctx.me.as_str() && m.generation == moved.generation);
    if !owned_at_generation {
        return Ok(false);
    }
    yield_to_moved(conn, ctx, moved)
}
