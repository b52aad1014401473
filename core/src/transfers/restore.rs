//! Reconciliation after a restore (docs/restore.md): the transfers a peer
//! reports, adopted by the transfer rule on the sender's side, and the
//! sender's releases and decisions a restored receiver forgot.

use liaison_proto::v1 as pb;
use liaison_proto::v1::EventKind;
use liaison_types::identity::NodeId;
use prost::Message;
use rusqlite::{params, Connection, OptionalExtension};

use super::events::apply_abort;
use super::receiver::{answer_stale, intake_branch, offer_is_stale, purge, send_receipt};
use super::sender::{abort, abort_other_offers, moved_here, release, tombstone};
use super::state::{load, node, releases_at, save, Direction, Row, TransferState};
use crate::letters::LetterNo;
use crate::outcome::Rejection;
use crate::{log, members};
use crate::{Ctx, Error};

/// What reconciliation did with one transfer a peer reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adopted {
    /// Nothing to change here.
    Kept,
    /// Recorded here as the peer holds it (a final state, or an open offer).
    Recorded,
    /// The newest transfer of the member, accepted at the peer: released now.
    Released,
    /// Completed at the peer: the member is a tombstone here now. `edited`
    /// says the member was edited here after the restore (a conflict for
    /// the operator: the peer's record wins).
    Completed { edited: bool },
    /// An older transfer still open at the peer: aborted.
    Aborted,
    /// Not believed or not applicable; the reason, for the operator. The
    /// rest of the adoption goes on (one bad report never blocks it).
    Refused(String),
}

/// The transfer rule of a restore (docs/restore.md) found `t` completed at its
/// receiver: this node, which believed it still owned the member, may have
/// taken records other hosts made about it meanwhile. They go on to the
/// receiver with `t` as their basis, as records reaching a tombstone do
/// (§5); the receiver keeps what it already had (a record seen twice
/// changes nothing). Records this node or the receiver made are not
/// relayed. Returns how many were.
fn relay_held_records(conn: &Connection, ctx: &Ctx<'_>, t: &Row) -> Result<usize, Error> {
    let held = members::HostRecords::read(
        conn,
        "r.member_id = ?1 AND r.author NOT IN (?2, ?3)",
        params![t.member_id, ctx.me.as_str(), t.receiver],
    )?;
    let to = node(&t.receiver)?;
    let basis = || t.transfer_id.clone();
    let mut relayed = 0;
    for section in held.sections {
        let section = pb::HostSection {
            basis: basis(),
            ..section
        };
        // Not `append`: a relayed section may be older than one of the
        // same host queued already; both go, and the owner keeps the newer.
        log::append_unqueued(
            conn,
            &to,
            EventKind::HostSection,
            &t.member_id,
            &section.encode_to_vec(),
            ctx.now_ms,
        )?;
        relayed += 1;
    }
    for contact in held.contacts {
        let contact = pb::ContactEvent {
            basis: basis(),
            ..contact
        };
        log::append(
            conn,
            &to,
            EventKind::Contact,
            &t.member_id,
            &contact.encode_to_vec(),
            ctx.now_ms,
        )?;
        relayed += 1;
    }
    for activity in held.activities {
        let activity = pb::ActivityRecord {
            basis: basis(),
            ..activity
        };
        log::append(
            conn,
            &to,
            EventKind::Activity,
            &t.member_id,
            &activity.encode_to_vec(),
            ctx.now_ms,
        )?;
        relayed += 1;
    }
    if relayed > 0 {
        tracing::info!(transfer = %t.transfer_id, member = %t.member_id, relayed, "restored: records other hosts made meanwhile relayed to the member's new owner");
    }
    Ok(relayed)
}

/// Reconciliation after a restore: adopts one outgoing transfer that the
/// receiver `peer` reports (`held`, in the receiver's state), by §7's rule.
/// `newest` says it has the highest letter number among the transfers of
/// its member that peers reported; `later_completed`, that the peer
/// reports a later letter of the member completed; `restored_at_ms` dates
/// the restore.
pub fn adopt_reported(
    conn: &Connection,
    ctx: &Ctx<'_>,
    held: &pb::HeldTransfer,
    (newest, later_completed): (bool, bool),
    restored_at_ms: i64,
    other_branch: bool,
) -> Result<Adopted, Error> {
    let letter = LetterNo::parse(&held.letter_no).filter(|l| l.is_issued_by(ctx.me.as_str()));
    let local = load(conn, &held.transfer_id)?;
    if local.is_none() && !letter_believed(conn, held, letter.as_ref(), other_branch)? {
        return Ok(Adopted::Refused(format!(
            "transfer {} with letter {} is unknown here and not a letter this node issued after its backup (letters up to {})",
            held.transfer_id,
            held.letter_no,
            crate::epoch::letter_floor(conn)?
        )));
    }
    // Letter numbers jump past every one the peers hold.
    if let Some(letter) = &letter {
        crate::letters::count_past(conn, letter.place)?;
    }
    let Some(mut t) = reported_row(conn, ctx, held, local)? else {
        return Ok(Adopted::Refused(format!(
            "{} reports transfer {} as sent by this node to it, but this node holds it otherwise",
            held.receiver, held.transfer_id
        )));
    };
    let finished_here = matches!(t.state, TransferState::Released | TransferState::Completed);
    if !held.expires_on.is_empty() {
        t.expires_on = held.expires_on.clone();
    }
    match held.state.as_str() {
        "completed" => adopt_completed(conn, ctx, held, t, newest, restored_at_ms),
        "accepted" if newest => {
            if finished_here {
                return Ok(Adopted::Kept);
            }
            adopt_accepted(conn, ctx, held, t)
        }
        "pending" | "accepted" | "awaiting_sender" if !newest => {
            if finished_here
                || t.state != TransferState::Offered && load(conn, &t.transfer_id)?.is_some()
            {
                return Ok(Adopted::Kept);
            }
            abort(conn, ctx, &mut t, TransferState::Cancelled, "cancelled")?;
            Ok(Adopted::Aborted)
        }
        // The newest, still open at the receiver (`awaiting_sender`: past
        // its date there, the receiver waits for this node's decision, which
        // its calendar makes).
        "pending" | "awaiting_sender" => adopt_open(conn, ctx, held, t),
        "rejected" | "aborted" => {
            // Finished here, ended at the receiver, which holds the member
            // by a later letter: the receiver lost this one's release with
            // a restore, and ended the offer again on a branch of this
            // node's backups that then sent the member by the later letter.
            // The receiver's record stands; the later release names the
            // member's generation (`two_releases_of_one_generation`).
            if finished_here && !later_completed
                || matches!(
                    t.state,
                    TransferState::Rejected | TransferState::Cancelled | TransferState::Expired
                )
            {
                return Ok(Adopted::Kept);
            }
            if held.state == "rejected" {
                abort(conn, ctx, &mut t, TransferState::Rejected, "rejected")?;
            } else {
                abort(conn, ctx, &mut t, TransferState::Cancelled, "cancelled")?;
            }
            Ok(Adopted::Recorded)
        }
        _ => Ok(Adopted::Kept),
    }
}

/// Whether a transfer this node does not know can be one it issued: it
/// must have been issued after the backup, so its letter is one of ours
/// numbered past the backup's (not past what an earlier peer's report made
/// the counter jump to). A peer cannot make this node adopt a letter it
/// never could have issued.
fn letter_believed(
    conn: &Connection,
    held: &pb::HeldTransfer,
    letter: Option<&LetterNo>,
    other_branch: bool,
) -> Result<bool, Error> {
    let Some(letter) = letter else {
        return Ok(false);
    };
    if letter.place > crate::epoch::letter_floor(conn)? {
        return Ok(true);
    }
    let outgoing_under_number = |except: &str| -> Result<bool, Error> {
        Ok(conn
            .prepare_cached(
                "SELECT 1 FROM transfers WHERE letter_no = ?1 AND direction = 'outgoing' AND transfer_id <> ?2",
            )?
            .query_row(params![held.letter_no, except], |_| Ok(()))
            .optional()?
            .is_some())
    };
    // A number up to the floor is believed when the peer pulled a log of
    // another branch of this node's backups (`other_branch`: restored
    // before from an older backup, it issued numbers again there) and this
    // node holds another transfer under that number;
    if other_branch && outgoing_under_number(&held.transfer_id)? {
        return Ok(true);
    }
    // and when no transfer here holds that number: the counter passed it
    // without issuing it (it jumped past a peer's report in an earlier
    // restore, and this copy was taken since), so a branch this node
    // forgot issued it. Issuing numbers never leaves one out.
    Ok(!outgoing_under_number("")?)
}

/// The transfer row `held` is adopted into: the local one, or a new
/// outgoing row from the report. `None` if this node holds it otherwise
/// (not sent by this node, or to another receiver).
fn reported_row(
    conn: &Connection,
    ctx: &Ctx<'_>,
    held: &pb::HeldTransfer,
    local: Option<Row>,
) -> Result<Option<Row>, Error> {
    let mut t = local.unwrap_or(Row {
        transfer_id: held.transfer_id.clone(),
        letter_no: held.letter_no.clone(),
        direction: Direction::Outgoing,
        sender: ctx.me.to_string(),
        receiver: held.receiver.clone(),
        member_id: held.member_id.clone(),
        member_name: held.member_name.clone(),
        state: TransferState::Offered,
        issued_on: held.issued_on.clone(),
        expires_on: held.expires_on.clone(),
        valid_days: held.valid_days,
        reason: held.reason.clone(),
        branch: held.branch.clone(),
        updated_at_ms: ctx.now_ms,
        ..Row::default()
    });
    if t.direction != Direction::Outgoing || t.receiver != held.receiver {
        return Ok(None);
    }
    // Gone on without this peer (`reconcile --without-peer`), this node may
    // have issued the same letter number again for another transfer: the
    // forgotten one is kept under a marked number, for the operator.
    let clash: Option<String> = conn
        .query_row(
            "SELECT transfer_id FROM transfers WHERE letter_no = ?1 AND direction = 'outgoing' AND transfer_id <> ?2",
            params![t.letter_no, t.transfer_id],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(other) = clash {
        tracing::warn!(
            transfer = %t.transfer_id,
            other = %other,
            letter = %t.letter_no,
            "restored: a letter number was issued twice while a peer was skipped"
        );
        t.number_issued_again_as = other;
    }
    Ok(Some(t))
}

/// The receiver reports the transfer completed: it owns the member since.
fn adopt_completed(
    conn: &Connection,
    ctx: &Ctx<'_>,
    held: &pb::HeldTransfer,
    mut t: Row,
    newest: bool,
    restored_at_ms: i64,
) -> Result<Adopted, Error> {
    if t.state == TransferState::Completed {
        return Ok(Adopted::Kept);
    }
    let home = members::load_home(conn, &t.member_id)?;
    let edited = home
        .as_ref()
        .is_some_and(|m| m.owner == ctx.me.as_str() && m.updated_at_ms > restored_at_ms);
    let owned_here = home.as_ref().is_some_and(|m| m.owner == ctx.me.as_str());
    // The generation the release gave the member, as the receiver
    // recorded it; where it did not (released before it recorded that), at
    // least one past this node's and no less than the receiver holds now
    // (which is higher if it moved on since).
    let released = if held.released_generation > 0 {
        held.released_generation
    } else {
        home.as_ref()
            .map_or(0, |m| m.generation + 1)
            .max(held.generation)
    };
    // Not the newest letter, but its release gave the member a later
    // generation than this node holds: another branch of this node's
    // backups released it under this older letter (after the newer one was
    // issued here), and the receiver owns it since. A generation never
    // goes back, so this node's record is the stale one.
    let supersedes_ours = held.released_generation > 0
        && home
            .as_ref()
            .is_some_and(|m| held.released_generation > m.generation);
    if held.released_generation > 0 {
        two_releases_of_one_generation(conn, ctx, &t, held.released_generation)?;
    }
    // A release that gave no later generation than this node holds did not
    // take the member from it: the member came back here since (by letters
    // this node's peers reported, or in a copy it took back), and its
    // record stands.
    let moved_on_from_ours = home.as_ref().is_some_and(|m| m.generation < released);
    if (newest || supersedes_ours) && owned_here && moved_on_from_ours {
        // The receiver owns the member: here it is a tombstone, and other
        // hosts learn it moved.
        abort_other_offers(conn, ctx, &t)?;
        relay_held_records(conn, ctx, &t)?;
        moved_here(conn, ctx, &t, released)?;
        t.released_generation = released;
        // Home sections its owners since sent this node as their host,
        // held while it believed it owned the member.
        crate::hosting::retry_held_about(conn, ctx, &t.member_id)?;
    } else if newest
        && home
            .as_ref()
            .is_none_or(|m| m.owner != ctx.me.as_str() && m.generation < released)
    {
        // This node got the member after its backup and passed it on (no
        // row here), or got it back after its backup and passed it on
        // again (a tombstone of an earlier transfer): a tombstone at this
        // release says so, so that a late release of the member to this
        // node in between is seen as stale, not installed over the later
        // owner's record.
        if home.is_none() {
            members::save_home_record(
                conn,
                &members::HomeRecord {
                    member_id: t.member_id.clone(),
                    owner: t.receiver.clone(),
                    generation: released,
                    home_branch: intake_branch(conn, ctx)?,
                    created_at_ms: ctx.now_ms,
                    updated_at_ms: ctx.now_ms,
                    ..members::HomeRecord::default()
                },
            )?;
        }
        tombstone(
            conn,
            ctx,
            &t.member_id,
            released,
            &t.receiver,
            "",
            &t.transfer_id,
            &t.letter_no,
            &ctx.today().to_string(),
        )?;
        t.released_generation = released;
        // Host records about the member that arrived before this node
        // learned it released it were held: relayed to its owner now.
        crate::hosting::retry_held_about(conn, ctx, &t.member_id)?;
    }
    if t.released_generation == 0 {
        // An older transfer, adopted as it is: the generation its release
        // gave is what shows later which letter brought the member here
        // (`offer_is_stale`).
        t.released_generation = held.released_generation;
    }
    t.state = TransferState::Completed;
    t.offer = None;
    t.released_at_ms = t.released_at_ms.or(Some(ctx.now_ms));
    t.receipt_at_ms = t.receipt_at_ms.or(Some(ctx.now_ms));
    save(conn, &t, ctx.now_ms)?;
    // The member left here by a release this node forgot, learnt from a
    // later owner (a forward pointer naming no transfer): records about it
    // held for want of a release of this node's to relay them by go on
    // now, by this letter, to its receiver (`relay_route`).
    if members::moved_of(conn, &t.member_id)?
        .is_some_and(|m| !m.to_node.is_empty() && m.transfer_id.is_empty())
    {
        crate::hosting::retry_held_about(conn, ctx, &t.member_id)?;
    }
    Ok(Adopted::Completed { edited })
}

/// Two releases of one generation (docs/transfers.md): the receiver
/// reports `t` completed at `generation`, the generation this node's
/// tombstone of the member records under another of this node's letters.
/// This node released the member twice, on two branches of its backups,
/// and the later letter stands: the tombstone names the later letter's
/// receiver, and the earlier letter's receiver is told the member moved
/// (`moved` naming the later letter), so that it yields.
fn two_releases_of_one_generation(
    conn: &Connection,
    ctx: &Ctx<'_>,
    t: &Row,
    generation: u64,
) -> Result<(), Error> {
    let Some(tomb) = members::moved_of(conn, &t.member_id)?.filter(|m| {
        m.generation == generation
            && !m.to_node.is_empty()
            && (m.letter_no != t.letter_no
                || !m.transfer_id.is_empty() && m.transfer_id != t.transfer_id)
    }) else {
        return other_release_of_the_generation(conn, ctx, t, generation);
    };
    if !issued_here(ctx, &tomb.letter_no) || !issued_here(ctx, &t.letter_no) {
        return Ok(());
    }
    // The later letter's release stands; the earlier letter's receiver is
    // told it moved, by a `moved` naming the later one.
    let moved = |new_owner: &str, transfer_id: &str, letter_no: &str| {
        moved_by(t, generation, new_owner, transfer_id, letter_no)
    };
    let (earlier, moved) = if LetterNo::is_later_release(
        (&t.letter_no, &t.transfer_id),
        (&tomb.letter_no, &tomb.transfer_id),
    ) {
        tombstone(
            conn,
            ctx,
            &t.member_id,
            generation,
            &t.receiver,
            "",
            &t.transfer_id,
            &t.letter_no,
            &tomb.released_on,
        )?;
        (
            tomb.to_node.as_str(),
            moved(&t.receiver, &t.transfer_id, &t.letter_no),
        )
    } else {
        (
            t.receiver.as_str(),
            moved(&tomb.to_node, &tomb.transfer_id, &tomb.letter_no),
        )
    };
    if earlier == moved.new_owner {
        return Ok(());
    }
    tell_the_earlier_receiver(conn, ctx, earlier, &moved)
}

/// Appends `moved`, naming the later letter's release, for the earlier
/// letter's receiver `earlier`, which yields on it.
fn tell_the_earlier_receiver(
    conn: &Connection,
    ctx: &Ctx<'_>,
    earlier: &str,
    moved: &pb::Moved,
) -> Result<(), Error> {
    tracing::warn!(member = %moved.member_id, generation = moved.generation, earlier = %earlier, later = %moved.new_owner, letter = %moved.letter_no, "restored: this node released a member twice at one generation; the later letter stands");
    log::append(
        conn,
        &node(earlier)?,
        EventKind::Moved,
        &moved.member_id,
        &moved.encode_to_vec(),
        ctx.now_ms,
    )?;
    Ok(())
}

/// Two releases of one generation where this node's record no longer
/// names either (the member came back here since, or moved on): the other
/// is a release on record here of the same generation under another of
/// this node's letters. The later letter stands, and the earlier letter's
/// receiver is told the member moved, naming the later, so that it
/// yields if it still owns the member at that generation. The record here
/// is not touched.
fn other_release_of_the_generation(
    conn: &Connection,
    ctx: &Ctx<'_>,
    t: &Row,
    generation: u64,
) -> Result<(), Error> {
    let Some(other) = releases_at(conn, &t.member_id, generation)?
        .into_iter()
        .rfind(|r| r.transfer_id != t.transfer_id)
    else {
        return Ok(());
    };
    if !issued_here(ctx, &other.letter_no)
        || !issued_here(ctx, &t.letter_no)
        || other.receiver == t.receiver
    {
        return Ok(());
    }
    let (earlier, moved) = if LetterNo::is_later_release(
        (&t.letter_no, &t.transfer_id),
        (&other.letter_no, &other.transfer_id),
    ) {
        (
            other.receiver.as_str(),
            moved_by(t, generation, &t.receiver, &t.transfer_id, &t.letter_no),
        )
    } else {
        (
            t.receiver.as_str(),
            moved_by(
                t,
                generation,
                &other.receiver,
                &other.transfer_id,
                &other.letter_no,
            ),
        )
    };
    tell_the_earlier_receiver(conn, ctx, earlier, &moved)
}

/// Whether this node issued `letter`.
fn issued_here(ctx: &Ctx<'_>, letter: &str) -> bool {
    LetterNo::parse(letter).is_some_and(|l| l.is_issued_by(ctx.me.as_str()))
}

/// A `moved` of `t`'s member at `generation` to the receiver of a release.
fn moved_by(
    t: &Row,
    generation: u64,
    new_owner: &str,
    transfer_id: &str,
    letter_no: &str,
) -> pb::Moved {
    pb::Moved {
        member_id: t.member_id.clone(),
        generation,
        new_owner: new_owner.to_owned(),
        transfer_id: transfer_id.to_owned(),
        letter_no: letter_no.to_owned(),
    }
}

/// The newest letter, accepted at the receiver: released now, if this
/// node still holds the member.
fn adopt_accepted(
    conn: &Connection,
    ctx: &Ctx<'_>,
    held: &pb::HeldTransfer,
    mut t: Row,
) -> Result<Adopted, Error> {
    // The member was written after the backup (or released since, by a
    // transfer the receiver reported completed), or the offer was made at a
    // generation this node's backup does not hold it at: this node holds no
    // record to release under this letter. The offer ends; the receiver
    // purges it.
    if let Some(aborted) = abort_unless_owned(conn, ctx, &mut t, held.offered_generation)? {
        tracing::warn!(
            transfer = %t.transfer_id,
            member = %t.member_id,
            offered_generation = held.offered_generation,
            "restored: an accepted transfer of a member this node does not hold at the offer's generation is aborted"
        );
        return Ok(aborted);
    }
    abort_other_offers(conn, ctx, &t)?;
    // The receiver accepted into this branch; the release saves the
    // transfer as released.
    t.branch = held.branch.clone();
    release(conn, ctx, &mut t)?;
    Ok(Adopted::Released)
}

/// The newest letter, still open at the receiver: the offer stands and
/// freezes the member here, if this node still holds the member.
fn adopt_open(
    conn: &Connection,
    ctx: &Ctx<'_>,
    held: &pb::HeldTransfer,
    mut t: Row,
) -> Result<Adopted, Error> {
    if load(conn, &t.transfer_id)?.is_some() {
        return Ok(Adopted::Kept);
    }
    // Written after the backup, or held here at another generation than
    // offered: nothing to release if accepted.
    if let Some(aborted) = abort_unless_owned(conn, ctx, &mut t, held.offered_generation)? {
        return Ok(aborted);
    }
    save(conn, &t, ctx.now_ms)?;
    Ok(Adopted::Recorded)
}

/// A reported offer of a member this node does not own (any more), or owns
/// at another generation than the offer named (`offered`, as the receiver
/// reports it; 0 if it does not), is cancelled: there is nothing here to
/// release under it. A release gives the member the offer's generation
/// plus one; released from another generation, it would give the receiver
/// a generation that another node's release gave, or will give, another
/// owner. So a restored node holding the member from before a round trip
/// (A → B → A) does not release under a letter it issued after getting it
/// back.
fn abort_unless_owned(
    conn: &Connection,
    ctx: &Ctx<'_>,
    t: &mut Row,
    offered: u64,
) -> Result<Option<Adopted>, Error> {
    if members::load_home(conn, &t.member_id)?
        .is_some_and(|m| m.owner == ctx.me.as_str() && (offered == 0 || m.generation == offered))
    {
        return Ok(None);
    }
    abort(conn, ctx, t, TransferState::Cancelled, "sender_restored")?;
    Ok(Some(Adopted::Aborted))
}

/// After a restore's adoption: the offers this node holds pending, from
/// senders `of_sender` admits, that it now finds stale (`offer_is_stale`)
/// are answered. Returns how many.
pub fn answer_stale_offers(
    conn: &Connection,
    ctx: &Ctx<'_>,
    mut of_sender: impl FnMut(&str) -> Result<bool, Error>,
) -> Result<usize, Error> {
    let pending: Vec<(String, String)> = conn
        .prepare(
            "SELECT transfer_id, sender FROM transfers WHERE direction = 'incoming' AND state = 'pending'
             ORDER BY transfer_id",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut answered = 0;
    for (transfer_id, sender) in pending {
        if !of_sender(&sender)? {
            continue;
        }
        let Some(mut t) = load(conn, &transfer_id)? else {
            continue;
        };
        if offer_is_stale(conn, ctx, &t)? {
            answer_stale(conn, ctx, &mut t)?;
            answered += 1;
        }
    }
    Ok(answered)
}

/// A restored receiver learns from the sender's holdings the sender's
/// decision on an offer it still holds open: the abort it applied before
/// and forgot, which the sender no longer holds in its log (it dropped the
/// events this node had applied when it was restored itself). Returns
/// whether it changed anything.
pub fn adopt_sender_decision(
    conn: &Connection,
    ctx: &Ctx<'_>,
    peer: &NodeId,
    held: &pb::HeldTransfer,
) -> Result<bool, Error> {
    if held.sender != peer.as_str() || held.receiver != ctx.me.as_str() {
        return Ok(false);
    }
    if !matches!(held.state.as_str(), "cancelled" | "expired" | "rejected") {
        return Ok(false);
    }
    let open = load(conn, &held.transfer_id)?.is_some_and(|t| {
        t.direction == Direction::Incoming
            && matches!(
                t.state,
                TransferState::Pending | TransferState::Accepted | TransferState::AwaitingSender
            )
    });
    if !open {
        return Ok(false);
    }
    let abort = pb::TransferAbort {
        transfer_id: held.transfer_id.clone(),
        letter_no: held.letter_no.clone(),
        why: held.state.clone(),
    };
    match apply_abort(conn, ctx, peer, abort) {
        Ok(()) => Ok(true),
        Err(Rejection::Store(e)) => Err(e),
        Err(Rejection::Invalid(why) | Rejection::Unknown(why) | Rejection::Stop(why)) => {
            Err(Error::invalid(why))
        }
    }
}

/// A restored receiver learns from the sender's holdings a transfer to it
/// that the sender released or completed (it holds this node's receipt)
/// and that this node forgot, or still holds open (accepted when the
/// backup was taken, the release forgotten), of a member it holds at the release's
/// generation or later (its own backup, or the transfer rule of a later
/// transfer, says the member came here and maybe moved on): recorded as
/// completed, for the history, and receipted again where the sender still
/// waits for the receipt (this node's restore lost it). Known before this
/// node applies the sender's log, it keeps an older letter of the member,
/// voided by this re-issue, from being taken for the one that brought the
/// member (`offer_is_stale`).
///
/// Of a member not here yet, nothing is recorded while the release is
/// still in the sender's log for this node (its cursor went back with the
/// restore): applying it installs the member, and a transfer recorded
/// completed first would not. If the sender says the release is gone from
/// its log (`release_dropped`: the sender's own restore dropped it as
/// applied), it is recorded all the same: another peer's holdings may
/// bring the member back as passed on since, or both sides' restores lost
/// it (docs/restore.md); waiting for the member would leave the transfer open
/// for good. Returns whether it recorded anything.
pub fn adopt_received(
    conn: &Connection,
    ctx: &Ctx<'_>,
    peer: &NodeId,
    held: &pb::HeldTransfer,
) -> Result<bool, Error> {
    let to_me = held.sender == peer.as_str() && held.receiver == ctx.me.as_str();
    let receipted = match held.state.as_str() {
        "completed" => true,
        "released" => false,
        // Ended at the sender without a release, and forgotten here: its
        // letter is void, as the sender's abort makes it, so the offer
        // still in the sender's log for this node does not open it again
        // (to be answered as received before that abort arrives).
        "rejected" | "expired" | "cancelled" if to_me => {
            if load(conn, &held.transfer_id)?.is_none() && !held.letter_no.is_empty() {
                super::state::void(conn, &held.letter_no, &held.transfer_id)?;
            }
            return Ok(false);
        }
        _ => return Ok(false),
    };
    if !to_me {
        return Ok(false);
    }
    // Known here, it counts only while still open: accepted (or pending)
    // when the backup was taken, its release forgotten with the restore.
    // Or ended by the sender's abort: on one branch of the sender's
    // backups a sender never ends a letter it released, so that abort came
    // from a branch it left (restored to before the release, it cancelled
    // the letter, and was then restored onto a backup that holds it
    // released): the sender's holdings stand.
    // Or rejected here: a sender releases a letter only on this node's
    // accept, and a reject after it changes nothing there, so a reject of a
    // letter the sender released was made where this node had forgotten its
    // accept (restored to before it, on this branch or one it returned
    // to): the sender's holdings stand.
    let known = load(conn, &held.transfer_id)?;
    if let Some(t) = &known {
        let open = t.direction == Direction::Incoming
            && matches!(
                t.state,
                TransferState::Pending
                    | TransferState::Accepted
                    | TransferState::AwaitingSender
                    | TransferState::Aborted
                    | TransferState::Rejected
            );
        if !open {
            return Ok(false);
        }
    }
    let released = if held.released_generation > 0 {
        held.released_generation
    } else {
        held.generation
    };
    let arrived = members::load_home(conn, &held.member_id)?
        .is_some_and(|m| released > 0 && m.generation >= released);
    let never_installed = receipted && held.release_dropped;
    if !arrived && !never_installed {
        return Ok(false);
    }
    if let Some(mut t) = known {
        t.state = TransferState::Completed;
        t.reject_code.clear();
        t.reject_reason.clear();
        t.released_at_ms = Some(ctx.now_ms);
        t.receipt_at_ms = Some(ctx.now_ms);
        t.released_generation = released;
        if t.branch.is_empty() {
            t.branch = held.branch.clone();
        }
        purge(&mut t);
        save(conn, &t, ctx.now_ms)?;
        if !receipted {
            send_receipt(conn, ctx, peer, &t.transfer_id, &held.letter_no)?;
        }
        return Ok(true);
    }
    let mut t = Row {
        transfer_id: held.transfer_id.clone(),
        letter_no: held.letter_no.clone(),
        direction: Direction::Incoming,
        sender: held.sender.clone(),
        receiver: held.receiver.clone(),
        member_id: held.member_id.clone(),
        member_name: held.member_name.clone(),
        state: TransferState::Completed,
        issued_on: held.issued_on.clone(),
        expires_on: held.expires_on.clone(),
        valid_days: held.valid_days,
        reason: held.reason.clone(),
        branch: held.branch.clone(),
        released_at_ms: Some(ctx.now_ms),
        receipt_at_ms: Some(ctx.now_ms),
        updated_at_ms: ctx.now_ms,
        released_generation: released,
        ..Row::default()
    };
    let clash: Option<String> = conn
        .query_row(
            "SELECT transfer_id FROM transfers WHERE letter_no = ?1 AND direction = 'incoming'",
            [&t.letter_no],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(other) = clash {
        t.number_issued_again_as = other;
    }
    save(conn, &t, ctx.now_ms)?;
    if !receipted {
        send_receipt(conn, ctx, peer, &t.transfer_id, &held.letter_no)?;
    }
    Ok(true)
}
