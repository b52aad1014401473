//! The receiver's side: it votes (accepts or rejects) and installs the
//! released record; a restored receiver answers an offer of a member it
//! already received as received (`docs/transfers.md`).

use liaison_proto::v1 as pb;
use liaison_proto::v1::EventKind;
use liaison_types::identity::NodeId;
use liaison_types::validate;
use prost::Message;
use rusqlite::{params, Connection, OptionalExtension};

use super::state::{
    node, offered_generation, require, save, Direction, Row, TransferState, REJECT_CODES,
};
use super::views::view;
use crate::outcome::Faults;
use crate::{log, members};
use crate::{Ctx, Error};

fn require_incoming(conn: &Connection, transfer_id: &str) -> Result<Row, Error> {
    let t = require(conn, transfer_id)?;
    if t.direction != Direction::Incoming {
        return Err(Error::conflict(format!(
            "transfer {} goes to {}: only the receiver may do this",
            t.transfer_id, t.receiver
        )));
    }
    Ok(t)
}

pub fn accept(
    conn: &Connection,
    ctx: &Ctx<'_>,
    transfer_id: &str,
    branch: &str,
) -> Result<pb::TransferView, Error> {
    accept_in(conn, ctx, transfer_id, branch, Faults::default())
}

/// [`accept`], with the test-only switch `receiver_owns_on_accept`.
#[cfg(feature = "faults")]
pub fn accept_with_faults(
    conn: &Connection,
    ctx: &Ctx<'_>,
    transfer_id: &str,
    branch: &str,
    faults: Faults,
) -> Result<pb::TransferView, Error> {
    accept_in(conn, ctx, transfer_id, branch, faults)
}

fn accept_in(
    conn: &Connection,
    ctx: &Ctx<'_>,
    transfer_id: &str,
    branch: &str,
    faults: Faults,
) -> Result<pb::TransferView, Error> {
    crate::epoch::act_as_owner(conn)?;
    let mut t = require_incoming(conn, transfer_id)?;
    if t.state != TransferState::Pending {
        return Err(Error::conflict(format!(
            "transfer {} is {}: only a pending offer can be accepted",
            t.transfer_id, t.state
        )));
    }
    let branch = branch.trim();
    let known: bool = conn
        .query_row("SELECT 1 FROM orgs WHERE org_id = ?1", [branch], |_| Ok(()))
        .optional()?
        .is_some();
    if !known {
        return Err(Error::not_found(format!(
            "branch `{branch}` is not an organization of this node: pick one from `org list` (--branch ORG)"
        )));
    }
    t.branch = branch.to_owned();
    t.state = TransferState::Accepted;
    save(conn, &t, ctx.now_ms)?;
    let vote = pb::TransferVote {
        transfer_id: t.transfer_id.clone(),
        vote: "accept".into(),
        branch: branch.to_owned(),
        ..Default::default()
    };
    log::append(
        conn,
        &node(&t.sender)?,
        EventKind::TransferAccept,
        &t.transfer_id,
        &vote.encode_to_vec(),
        ctx.now_ms,
    )?;
    if faults.receiver_owns_on_accept() {
        // Broken on purpose: the member is enrolled before `release`.
        if let Some(offer) = t.offer.as_deref() {
            let record = pb::MemberRecord::decode(offer)
                .map_err(|e| Error::invalid(format!("stored offer: {e}")))?;
            let generation = record.version.unwrap_or_default().generation + 1;
            install(conn, ctx, &record, generation, branch, None)?;
        }
    }
    view(conn, ctx, &t.transfer_id)
}

pub fn reject(
    conn: &Connection,
    ctx: &Ctx<'_>,
    transfer_id: &str,
    code: &str,
    reason: &str,
) -> Result<pb::TransferView, Error> {
    crate::epoch::act_as_owner(conn)?;
    let mut t = require_incoming(conn, transfer_id)?;
    match t.state {
        TransferState::Pending => {}
        TransferState::Accepted => {
            return Err(Error::conflict(format!(
                "transfer {} was accepted: a receiver cannot reject after accepting; the sender decides",
                t.transfer_id
            )))
        }
        other => return Err(Error::conflict(format!("transfer {} is {other}", t.transfer_id))),
    }
    let code = code.trim();
    if !REJECT_CODES.contains(&code) {
        return Err(Error::invalid(format!(
            "reason code `{code}` is not one of {}: an organization may not refuse without cause",
            REJECT_CODES.join(", ")
        )));
    }
    t.reject_code = code.to_owned();
    t.reject_reason = validate::text("reason", reason, 500)?;
    if code == "other" && t.reject_reason.is_empty() {
        return Err(Error::invalid(
            "reason code `other` needs the reason in words (--reason TEXT): the sender's operators see it".into(),
        ));
    }
    t.state = TransferState::Rejected;
    purge(&mut t);
    save(conn, &t, ctx.now_ms)?;
    let vote = pb::TransferVote {
        transfer_id: t.transfer_id.clone(),
        vote: "reject".into(),
        reason_code: t.reject_code.clone(),
        reason: t.reject_reason.clone(),
        ..Default::default()
    };
    log::append(
        conn,
        &node(&t.sender)?,
        EventKind::TransferReject,
        &t.transfer_id,
        &vote.encode_to_vec(),
        ctx.now_ms,
    )?;
    view(conn, ctx, &t.transfer_id)
}

/// Drops everything the offer added beyond what the receiver holds as a
/// host: the record (with the ID number) and the name.
pub(super) fn purge(t: &mut Row) {
    t.offer = None;
    t.member_name.clear();
    t.possible_duplicate.clear();
}

/// Tells the sender that this node received the member by `transfer_id`.
pub(super) fn send_receipt(
    conn: &Connection,
    ctx: &Ctx<'_>,
    sender: &NodeId,
    transfer_id: &str,
    letter_no: &str,
) -> Result<(), Error> {
    let receipt = pb::TransferReceipt {
        transfer_id: transfer_id.to_owned(),
        letter_no: letter_no.to_owned(),
        received_on: ctx.today().to_string(),
    };
    log::append(
        conn,
        sender,
        EventKind::TransferReceipt,
        transfer_id,
        &receipt.encode_to_vec(),
        ctx.now_ms,
    )?;
    Ok(())
}

/// Where members released without an accepted branch land until an
/// operator assigns them.
pub(super) fn intake_branch(conn: &Connection, ctx: &Ctx<'_>) -> Result<String, Error> {
    conn.execute(
        "INSERT OR IGNORE INTO orgs (org_id, name, level, created_at_ms) VALUES ('transfer-intake', '转入待分配', '党支部', ?1)",
        [ctx.now_ms],
    )?;
    Ok("transfer-intake".into())
}

/// Makes the released record this node's own, every part with its author.
/// `previous`: this node's record of the member, installed before by an
/// older release of the same transfer; what this node decided about the
/// member's contact since stays.
pub(super) fn install(
    conn: &Connection,
    ctx: &Ctx<'_>,
    r: &pb::MemberRecord,
    generation: u64,
    branch: &str,
    previous: Option<&members::HomeRecord>,
) -> Result<(), Error> {
    let version = r.version.unwrap_or_default();
    let m = members::HomeRecord {
        member_id: r.member_id.clone(),
        owner: ctx.me.to_string(),
        generation,
        counter: version.counter,
        name: r.name.clone(),
        gender: r.gender.clone(),
        birth_date: r.birth_date.clone(),
        ethnicity: r.ethnicity.clone(),
        native_place: r.native_place.clone(),
        national_id: r.national_id.clone(),
        education: r.education.clone(),
        occupation: r.occupation.clone(),
        origin: r.origin.clone(),
        party_status: r.party_status.clone(),
        joined_on: r.joined_on.clone(),
        full_member_on: r.full_member_on.clone(),
        home_branch: branch.to_owned(),
        phone: r.phone.clone(),
        home_address: r.home_address.clone(),
        membership_state: if r.membership_state.is_empty() {
            "normal".into()
        } else {
            r.membership_state.clone()
        },
        contact_status: previous.map_or_else(|| "in_contact".into(), |p| p.contact_status.clone()),
        contact_manual: previous
            .map(|p| p.contact_manual.clone())
            .unwrap_or_default(),
        contact_manual_at: previous
            .map(|p| p.contact_manual_at.clone())
            .unwrap_or_default(),
        created_at_ms: previous.map_or(ctx.now_ms, |p| p.created_at_ms),
        updated_at_ms: ctx.now_ms,
    };
    members::save_home_record(conn, &m)?;
    // The receiver was perhaps the member's host: the copy merges into the owned record.
    members::delete_copy(conn, &r.member_id)?;
    take_parts(conn, ctx, r, true)
}

/// Takes in the parts of a released record this node lacks: outflows
/// (closed, the member having arrived), host sections newer than its own,
/// contacts and activities (each kept once by its id). Outflows go with
/// the home section's version (a change to one moves the counter), so an
/// outflow this node holds already takes the released content only with
/// `newer_home_section`; whatever else it holds stays.
pub(super) fn take_parts(
    conn: &Connection,
    ctx: &Ctx<'_>,
    r: &pb::MemberRecord,
    newer_home_section: bool,
) -> Result<(), Error> {
    let released_on = ctx.today().to_string();
    for o in &r.outflows {
        conn.execute(
            "INSERT INTO outflows (outflow_id, member_id, destination_place, destination_node, direction, departed_on,
                 expected_return, reason, fixed_location, certificate_no, certificate_issuer, certificate_issued_on, card_no,
                 state, returned_on, created_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 'returned', ?14, ?15)
             ON CONFLICT (outflow_id) DO UPDATE SET destination_place = excluded.destination_place,
                 destination_node = excluded.destination_node, direction = excluded.direction,
                 departed_on = excluded.departed_on, expected_return = excluded.expected_return,
                 reason = excluded.reason, fixed_location = excluded.fixed_location,
                 certificate_no = excluded.certificate_no, certificate_issuer = excluded.certificate_issuer,
                 certificate_issued_on = excluded.certificate_issued_on, card_no = excluded.card_no
               WHERE ?16 AND outflows.member_id = excluded.member_id",
            params![
                o.outflow_id, r.member_id, o.destination_place, o.destination_node, o.direction, o.departed_on,
                o.expected_return, o.reason, o.fixed_location, o.certificate_no, o.certificate_issuer,
                o.certificate_issued_on, o.card_no, released_on, ctx.now_ms, newer_home_section
            ],
        )?;
    }
    for h in &r.host_sections {
        let current = members::host_section(conn, &r.member_id, &h.author)?;
        let incoming = h.version.unwrap_or_default();
        if current
            .is_none_or(|c| (incoming.generation, incoming.counter) > (c.generation, c.counter))
        {
            members::save_host_section(conn, h, ctx.now_ms)?;
        }
    }
    for c in &r.contacts {
        members::save_contact(conn, c, ctx.now_ms)?;
    }
    for a in &r.activities {
        members::save_activity(conn, a, ctx.now_ms)?;
    }
    members::refresh_contact_status(conn, ctx, &r.member_id)?;
    Ok(())
}

/// Whether this node received `t`'s member under this very offer, forgot it
/// and passed the member on since: the sender, restored from a backup older
/// than its release (and this node from one older than its receipt),
/// offers again what it released (docs/restore.md). Only then is the offer
/// answered as received; an offer that merely arrives late (cancelled
/// meanwhile, the member come here by other letters) waits for the
/// sender's decision like any other, so both sides record one outcome.
///
/// The evidence, all of which must hold:
/// - this node was restored from a backup: a node that never was keeps
///   every transfer it received, so an offer it has no row for is one it
///   never received the member under;
/// - the member is held elsewhere now, at a later generation;
/// - this node released the member from the generation this offer's
///   release gives (`offered + 1`). Generations rise by one with every
///   release and only the owner at the offer's generation (the sender) can
///   release it, so the member came here from the sender, under this
///   letter or a re-issue of it;
/// - not a re-issue: a re-issue offers the member at the same generation
///   under another letter, and if that one's release brought the member,
///   this offer is only an older letter, voided by the sender.
pub(super) fn offer_is_stale(conn: &Connection, ctx: &Ctx<'_>, t: &Row) -> Result<bool, Error> {
    let Some(offer) = t.offer.as_deref() else {
        return Ok(false);
    };
    if !crate::epoch::was_restored(conn)? {
        return Ok(false);
    }
    let record = pb::MemberRecord::decode(offer)
        .map_err(|e| Error::invalid(format!("stored offer: {e}")))?;
    let offered = record.version.unwrap_or_default().generation;
    if !members::load_home(conn, &t.member_id)?.is_some_and(|m| {
        m.owner != ctx.me.as_str() && offered.checked_add(1).is_some_and(|g| m.generation > g)
    }) {
        return Ok(false);
    }
    let passed_on_from_offered: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM transfers
                 WHERE direction = 'outgoing' AND member_id = ?1 AND released_generation = ?2)",
        params![t.member_id, offered + 2],
        |r| r.get(0),
    )?;
    if !passed_on_from_offered {
        return Ok(false);
    }
    let received_by_another: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM transfers
                 WHERE direction = 'incoming' AND member_id = ?1 AND sender = ?2
                   AND transfer_id <> ?3 AND state = 'completed' AND released_generation = ?4)",
        params![t.member_id, t.sender, t.transfer_id, offered + 1],
        |r| r.get(0),
    )?;
    Ok(!received_by_another)
}

/// Answers a stale offer: this node received the member by it, so the
/// transfer is completed here, and the sender gets an accept saying so
/// (it releases what it forgot it released, and the release is not
/// installed here: it is older than what this node knows of the member)
/// and the receipt (a sender that still knows it released completes on
/// it: the accept alone would be refused as late there).
pub(super) fn answer_stale(conn: &Connection, ctx: &Ctx<'_>, t: &mut Row) -> Result<(), Error> {
    tracing::warn!(transfer = %t.transfer_id, member = %t.member_id, sender = %t.sender, "restored: an offer of a member this node already received and passed on; answered as received");
    let offered = offered_generation(t.offer.as_deref());
    t.state = TransferState::Completed;
    t.offer = None;
    t.released_at_ms = t.released_at_ms.or(Some(ctx.now_ms));
    t.receipt_at_ms = Some(ctx.now_ms);
    t.released_generation = offered + 1;
    save(conn, t, ctx.now_ms)?;
    let sender = node(&t.sender)?;
    let vote = pb::TransferVote {
        transfer_id: t.transfer_id.clone(),
        vote: "accept".into(),
        already_received: true,
        ..Default::default()
    };
    log::append(
        conn,
        &sender,
        EventKind::TransferAccept,
        &t.transfer_id,
        &vote.encode_to_vec(),
        ctx.now_ms,
    )?;
    send_receipt(conn, ctx, &sender, &t.transfer_id, &t.letter_no)?;
    Ok(())
}
