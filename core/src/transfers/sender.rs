//! The sender's side: the member's owner offers, extends, cancels or
//! re-issues a letter and decides (releases or aborts); a release leaves a
//! tombstone with a forward pointer here.

use chrono::NaiveDate;
use liaison_proto::v1 as pb;
use liaison_proto::v1::EventKind;
use liaison_types::identity::NodeId;
use liaison_types::validate;
use prost::Message;
use rusqlite::{params, Connection, OptionalExtension};

use super::state::{
    load, next_letter_no, node, require, save, void, Direction, LetterRules, Row, TransferState,
};
use super::views::view;
use crate::store::audit::{self, Actor, NewEntry, Outcome};
use crate::{log, members};
use crate::{Ctx, Error};

/// The member's complete record as this node holds it now.
fn record(conn: &Connection, member_id: &str) -> Result<pb::MemberRecord, Error> {
    let m = members::load_home(conn, member_id)?
        .ok_or_else(|| Error::not_found(format!("no member {member_id}")))?;
    let branch: String = conn
        .query_row(
            "SELECT name FROM orgs WHERE org_id = ?1",
            [&m.home_branch],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or_default();
    let outflows = conn
        .prepare(
            "SELECT outflow_id, destination_place, destination_node, direction, departed_on, expected_return, reason,
                    fixed_location, certificate_no, certificate_issuer, certificate_issued_on, card_no
             FROM outflows WHERE member_id = ?1 ORDER BY departed_on, outflow_id",
        )?
        .query_map([member_id], |r| {
            Ok(pb::Outflow {
                outflow_id: r.get(0)?,
                destination_place: r.get(1)?,
                destination_node: r.get(2)?,
                direction: r.get(3)?,
                departed_on: r.get(4)?,
                expected_return: r.get(5)?,
                reason: r.get(6)?,
                fixed_location: r.get(7)?,
                certificate_no: r.get(8)?,
                certificate_issuer: r.get(9)?,
                certificate_issued_on: r.get(10)?,
                card_no: r.get(11)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let host_sections = members::host_sections(conn, member_id)?
        .into_iter()
        .map(|h| pb::HostSection {
            member_id: member_id.to_owned(),
            version: Some(pb::Version {
                generation: h.generation,
                counter: h.counter,
            }),
            author: h.author,
            host_branch: h.host_branch,
            reported_on: h.reported_on,
            address: h.address,
            employer: h.employer,
            industry: h.industry,
            job: h.job,
            contact_person: h.contact_person,
            contact_phone: h.contact_phone,
            last_seen_at_host: h.last_seen_at_host,
            basis: h.basis,
            station: h.station,
        })
        .collect();
    let contacts = conn
        .prepare("SELECT contact_id, author, at, channel, by_whom, outcome, basis FROM contacts WHERE member_id = ?1 ORDER BY at, contact_id")?
        .query_map([member_id], |r| {
            Ok(pb::ContactEvent {
                contact_id: r.get(0)?,
                member_id: member_id.to_owned(),
                author: r.get(1)?,
                at: r.get(2)?,
                channel: r.get(3)?,
                by: r.get(4)?,
                outcome: r.get(5)?,
                basis: r.get(6)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let activities = conn
        .prepare("SELECT activity_id, author, kind, date, branch, hours, note, basis FROM activities WHERE member_id = ?1 ORDER BY date, activity_id")?
        .query_map([member_id], |r| {
            Ok(pb::ActivityRecord {
                activity_id: r.get(0)?,
                member_id: member_id.to_owned(),
                author: r.get(1)?,
                kind: r.get(2)?,
                date: r.get(3)?,
                branch: r.get(4)?,
                hours: r.get(5)?,
                note: r.get(6)?,
                basis: r.get(7)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(pb::MemberRecord {
        member_id: m.member_id.clone(),
        version: Some(pb::Version {
            generation: m.generation,
            counter: m.counter,
        }),
        name: m.name,
        gender: m.gender,
        birth_date: m.birth_date,
        ethnicity: m.ethnicity,
        native_place: m.native_place,
        national_id: m.national_id,
        education: m.education,
        occupation: m.occupation,
        origin: m.origin,
        party_status: m.party_status,
        joined_on: m.joined_on,
        full_member_on: m.full_member_on,
        home_branch_name: branch,
        phone: m.phone,
        home_address: m.home_address,
        membership_state: m.membership_state,
        contact_status: m.contact_status,
        outflows,
        host_sections,
        contacts,
        activities,
    })
}

fn disclose_record(
    conn: &Connection,
    ctx: &Ctx<'_>,
    to: &NodeId,
    r: &pb::MemberRecord,
    transfer_id: &str,
) -> Result<(), Error> {
    let v = r.version.unwrap_or_default();
    log::disclose(
        conn,
        to,
        "member_record",
        &r.member_id,
        "complete record incl. national_id, birth_date, home_address, native_place, outflows, host sections, contacts, activities",
        v.generation,
        v.counter,
        transfer_id,
        ctx.now_ms,
    )
}

pub fn start(
    conn: &Connection,
    ctx: &Ctx<'_>,
    member_id: &str,
    to: &str,
    valid_days: u32,
    reason: &str,
    rules: LetterRules,
) -> Result<pb::TransferView, Error> {
    crate::epoch::act_as_owner(conn)?;
    let member_id = validate::member_id(member_id)?;
    let receiver = node(to.trim())?;
    if receiver == *ctx.me {
        return Err(Error::invalid(
            "a member cannot be transferred to this node itself".into(),
        ));
    }
    crate::store::peers::require(conn, &receiver)?;
    let m = members::load_owned(conn, ctx, &member_id)?;
    let valid_days = if valid_days == 0 {
        rules.valid_days_default
    } else {
        valid_days
    };
    if valid_days > rules.valid_days_max {
        return Err(Error::invalid(format!(
            "a letter is valid at most {} days (transfers.valid_days_max); asked for {valid_days}",
            rules.valid_days_max
        )));
    }
    let today = ctx.today();
    let t = Row {
        transfer_id: ctx.new_id(),
        letter_no: next_letter_no(conn, ctx)?,
        direction: Direction::Outgoing,
        sender: ctx.me.to_string(),
        receiver: receiver.to_string(),
        member_id: member_id.clone(),
        member_name: m.name.clone(),
        state: TransferState::Offered,
        issued_on: today.to_string(),
        expires_on: (today + chrono::Duration::days(i64::from(valid_days))).to_string(),
        valid_days,
        reason: validate::text("reason", reason, 200)?,
        updated_at_ms: ctx.now_ms,
        ..Row::default()
    };
    save(conn, &t, ctx.now_ms)?;
    send_offer(conn, ctx, &t, false)?;
    view(conn, ctx, &t.transfer_id)
}

fn send_offer(conn: &Connection, ctx: &Ctx<'_>, t: &Row, extension: bool) -> Result<(), Error> {
    let record = record(conn, &t.member_id)?;
    let receiver = node(&t.receiver)?;
    disclose_record(conn, ctx, &receiver, &record, &t.transfer_id)?;
    let offer = pb::TransferOffer {
        transfer_id: t.transfer_id.clone(),
        letter_no: t.letter_no.clone(),
        sender: t.sender.clone(),
        receiver: t.receiver.clone(),
        issued_on: t.issued_on.clone(),
        expires_on: t.expires_on.clone(),
        valid_days: t.valid_days,
        reason: t.reason.clone(),
        record: Some(record),
        extension,
    };
    log::append(
        conn,
        &receiver,
        EventKind::TransferOffer,
        &t.transfer_id,
        &offer.encode_to_vec(),
        ctx.now_ms,
    )?;
    Ok(())
}

fn require_outgoing(conn: &Connection, transfer_id: &str) -> Result<Row, Error> {
    let t = require(conn, transfer_id)?;
    if t.direction != Direction::Outgoing {
        return Err(Error::conflict(format!(
            "transfer {} comes from {}: only the sender may do this",
            t.transfer_id, t.sender
        )));
    }
    Ok(t)
}

pub(super) fn abort(
    conn: &Connection,
    ctx: &Ctx<'_>,
    t: &mut Row,
    state: TransferState,
    why: &str,
) -> Result<(), Error> {
    t.state = state;
    t.abort_why = why.into();
    save(conn, t, ctx.now_ms)?;
    void(conn, &t.letter_no, &t.transfer_id)?;
    let message = pb::TransferAbort {
        transfer_id: t.transfer_id.clone(),
        letter_no: t.letter_no.clone(),
        why: why.into(),
    };
    log::append(
        conn,
        &node(&t.receiver)?,
        EventKind::TransferAbort,
        &t.transfer_id,
        &message.encode_to_vec(),
        ctx.now_ms,
    )?;
    Ok(())
}

pub fn cancel(
    conn: &Connection,
    ctx: &Ctx<'_>,
    transfer_id: &str,
) -> Result<pb::TransferView, Error> {
    crate::epoch::act_as_owner(conn)?;
    let mut t = require_outgoing(conn, transfer_id)?;
    if t.state != TransferState::Offered {
        return Err(Error::conflict(format!(
            "transfer {} is {}: only an open offer can be cancelled",
            t.transfer_id, t.state
        )));
    }
    abort(conn, ctx, &mut t, TransferState::Cancelled, "cancelled")?;
    view(conn, ctx, &t.transfer_id)
}

pub fn extend(
    conn: &Connection,
    ctx: &Ctx<'_>,
    transfer_id: &str,
    days: u32,
    rules: LetterRules,
) -> Result<pb::TransferView, Error> {
    crate::epoch::act_as_owner(conn)?;
    let mut t = require_outgoing(conn, transfer_id)?;
    if t.state != TransferState::Offered {
        return Err(Error::conflict(format!(
            "transfer {} is {}: only an open offer can be extended",
            t.transfer_id, t.state
        )));
    }
    if days == 0 {
        return Err(Error::invalid(
            "extend by at least one day (--days N)".into(),
        ));
    }
    let issued = validate::date("issued on", &t.issued_on, NaiveDate::MAX, true)?;
    let expires = validate::date("expires on", &t.expires_on, NaiveDate::MAX, true)?;
    let new_expires = expires + chrono::Duration::days(i64::from(days));
    let total = (new_expires - issued).num_days();
    if total > i64::from(rules.valid_days_max) {
        return Err(Error::invalid(format!(
            "the letter would be valid {total} days from its issue on {issued}; the maximum is {} (re-issue it instead: `transfer reissue {}`)",
            rules.valid_days_max, t.transfer_id
        )));
    }
    t.expires_on = new_expires.to_string();
    t.valid_days = total as u32;
    save(conn, &t, ctx.now_ms)?;
    send_offer(conn, ctx, &t, true)?;
    view(conn, ctx, &t.transfer_id)
}

/// Cancels `transfer_id` (its letter becomes void) and opens a new transfer
/// of the same member to the same receiver with a new letter number.
pub fn reissue(
    conn: &Connection,
    ctx: &Ctx<'_>,
    transfer_id: &str,
    rules: LetterRules,
) -> Result<pb::TransferView, Error> {
    crate::epoch::act_as_owner(conn)?;
    let mut old = require_outgoing(conn, transfer_id)?;
    if !matches!(old.state, TransferState::Offered | TransferState::Expired) {
        return Err(Error::conflict(format!(
            "transfer {} is {}: nothing to re-issue",
            old.transfer_id, old.state
        )));
    }
    if old.state == TransferState::Offered {
        abort(conn, ctx, &mut old, TransferState::Cancelled, "cancelled")?;
    }
    let new = start(
        conn,
        ctx,
        &old.member_id,
        &old.receiver,
        old.valid_days.min(rules.valid_days_max),
        &old.reason,
        rules,
    )?;
    old.reissued_as = new.transfer_id.clone();
    save(conn, &old, ctx.now_ms)?;
    conn.execute(
        "UPDATE transfers SET reissue_of = ?2 WHERE transfer_id = ?1",
        params![new.transfer_id, old.transfer_id],
    )?;
    view(conn, ctx, &new.transfer_id)
}

/// The sender releases: the receiver owns the member from now on; here a
/// tombstone with a forward pointer stays.
pub(super) fn release(conn: &Connection, ctx: &Ctx<'_>, t: &mut Row) -> Result<(), Error> {
    let receiver = node(&t.receiver)?;
    let mut record = record(conn, &t.member_id)?;
    let version = record.version.unwrap_or_default();
    let generation = version.generation + 1;
    record.version = Some(pb::Version {
        generation,
        counter: version.counter + 1,
    });
    disclose_record(conn, ctx, &receiver, &record, &t.transfer_id)?;
    let message = pb::TransferRelease {
        transfer_id: t.transfer_id.clone(),
        letter_no: t.letter_no.clone(),
        sender: t.sender.clone(),
        receiver: t.receiver.clone(),
        generation,
        record: Some(record),
        released_on: ctx.today().to_string(),
        earlier_owners: members::earlier_owners(conn, &t.member_id)?,
    };
    log::append(
        conn,
        &receiver,
        EventKind::TransferRelease,
        &t.transfer_id,
        &message.encode_to_vec(),
        ctx.now_ms,
    )?;
    moved_here(conn, ctx, t, generation)?;
    t.state = TransferState::Released;
    t.released_at_ms = Some(ctx.now_ms);
    t.released_generation = generation;
    save(conn, t, ctx.now_ms)
}

/// The member went to `t`'s receiver at `generation`: other hosts are
/// told, and here a tombstone with a forward pointer stays.
pub(super) fn moved_here(
    conn: &Connection,
    ctx: &Ctx<'_>,
    t: &Row,
    generation: u64,
) -> Result<(), Error> {
    tell_holders_moved(conn, ctx, t, generation)?;
    tombstone(
        conn,
        ctx,
        &t.member_id,
        generation,
        &t.receiver,
        "",
        &t.transfer_id,
        &t.letter_no,
        &ctx.today().to_string(),
    )
}

/// In the release's transaction: every other host holding a copy learns
/// the member moved (never the receiver), share events still queued go,
/// and this node shares the member no more.
pub(super) fn tell_holders_moved(
    conn: &Connection,
    ctx: &Ctx<'_>,
    t: &Row,
    generation: u64,
) -> Result<(), Error> {
    let holders: Vec<String> = conn
        .prepare("SELECT peer FROM shares WHERE member_id = ?1 AND peer <> ?2")?
        .query_map(params![t.member_id, t.receiver], |r| r.get(0))?
        .collect::<Result<Vec<_>, _>>()?;
    for holder in holders {
        let moved = pb::Moved {
            member_id: t.member_id.clone(),
            generation,
            new_owner: t.receiver.clone(),
            transfer_id: t.transfer_id.clone(),
            letter_no: t.letter_no.clone(),
        };
        let holder = node(&holder)?;
        log::drop_queued_home_sections(conn, &holder, &t.member_id)?;
        log::append(
            conn,
            &holder,
            EventKind::Moved,
            &t.member_id,
            &moved.encode_to_vec(),
            ctx.now_ms,
        )?;
    }
    log::drop_queued_home_sections(conn, &node(&t.receiver)?, &t.member_id)?;
    conn.execute("DELETE FROM shares WHERE member_id = ?1", [&t.member_id])?;
    Ok(())
}

/// Reduces a member row to a tombstone: id, generation and where it went.
#[allow(clippy::too_many_arguments)]
pub(super) fn tombstone(
    conn: &Connection,
    ctx: &Ctx<'_>,
    member_id: &str,
    generation: u64,
    to_node: &str,
    to_place: &str,
    transfer_id: &str,
    letter_no: &str,
    moved_on: &str,
) -> Result<(), Error> {
    // Where the member was away when it moved (its open outflow), kept for
    // the reports as of an earlier date (docs/reports.md); '' at home.
    let (away_since, away_place): (String, String) = conn
        .prepare_cached(
            "SELECT departed_on, destination_place FROM outflows WHERE member_id = ?1 AND state = 'open'",
        )?
        .query_row([member_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or_default();
    conn.execute(
        "UPDATE members SET owner = ?2, generation = ?3, name = '', gender = '', birth_date = '', ethnicity = '',
             native_place = '', national_id = '', education = '', occupation = '', origin = '', party_status = '',
             joined_on = '', full_member_on = '', phone = '', home_address = '', contact_manual = '',
             contact_manual_at = '', moved_to_node = ?4, moved_to_place = ?5, moved_transfer_id = ?6,
             moved_letter_no = ?7, moved_on = ?8, moved_away_since = ?9, moved_away_place = ?10
         WHERE member_id = ?1",
        params![member_id, if to_node.is_empty() { to_place } else { to_node }, generation, to_node, to_place, transfer_id, letter_no, moved_on, away_since, away_place],
    )?;
    for table in ["outflows", "contacts", "activities", "contact_decisions"] {
        conn.execute(
            &format!("DELETE FROM {table} WHERE member_id = ?1"),
            [member_id],
        )?;
    }
    // The member's host sections go with it, but for one this node wrote
    // at the release's generation or later: its own as host of a later
    // owner (a restored node learns late that it released the member,
    // after it hosted it), which stays, as the copy it hosts by does, under
    // an agreement in which this node is the inflow party. Relayed back to
    // this node while it owned the member, it names a transfer instead, the
    // agreement it was written under unknown: it goes too, and its version
    // is the floor this node's next section passes.
    let me = ctx.me.as_str();
    let mut keep_own = false;
    if let Some((basis, version)) = members::host_section_basis(conn, member_id, me)? {
        let hosted_here = crate::agreements::parties(conn, &basis)?.is_some_and(|p| p.inflow == me);
        let at_or_after = version.generation >= generation;
        keep_own = at_or_after && hosted_here;
        if at_or_after && !hosted_here {
            members::raise_host_section_floor(conn, member_id, version)?;
        }
    }
    conn.execute(
        "DELETE FROM host_sections WHERE member_id = ?1 AND (author <> ?2 OR NOT ?3)",
        params![member_id, me, keep_own],
    )?;
    // A copy this node held as host of an owner before: stale now (a
    // restored node may hold one from its backup of a member that came here
    // and moved on since, docs/restore.md).
    conn.execute(
        "DELETE FROM home_copies WHERE member_id = ?1 AND generation < ?2",
        params![member_id, generation],
    )?;
    Ok(())
}

/// A transfer to a place with no node, recorded on paper: no message is
/// sent; the member becomes a tombstone pointing to the place.
pub fn out_on_paper(
    conn: &Connection,
    ctx: &Ctx<'_>,
    member_id: &str,
    place: &str,
    letter_no: &str,
    reason: &str,
) -> Result<pb::Member, Error> {
    crate::epoch::act_as_owner(conn)?;
    let member_id = validate::member_id(member_id)?;
    let m = members::load_owned(conn, ctx, &member_id)?;
    crate::store::peers::validate_place(place.trim())?;
    let letter_no = validate::text("letter number", letter_no, 60)?;
    if letter_no.is_empty() {
        return Err(Error::invalid(
            "the paper letter's number is required (--letter NO)".into(),
        ));
    }
    // Hosts holding a copy are told to drop it: the member is gone.
    members::unshare_everywhere(conn, ctx, &m)?;
    let transfer_id = ctx.new_id();
    let today = ctx.today().to_string();
    let t = Row {
        transfer_id: transfer_id.clone(),
        letter_no: letter_no.clone(),
        direction: Direction::Outgoing,
        sender: ctx.me.to_string(),
        receiver: format!("place:{}", place.trim()),
        member_id: member_id.clone(),
        member_name: m.name.clone(),
        state: TransferState::Completed,
        issued_on: today.clone(),
        expires_on: today.clone(),
        reason: validate::text("reason", reason, 200)?,
        released_at_ms: Some(ctx.now_ms),
        updated_at_ms: ctx.now_ms,
        ..Row::default()
    };
    save(conn, &t, ctx.now_ms)?;
    tombstone(
        conn,
        ctx,
        &member_id,
        m.generation + 1,
        "",
        place.trim(),
        &transfer_id,
        &letter_no,
        &today,
    )?;
    members::member_view(conn, ctx, &member_id)
}

/// Whether a sender may release `t` again although it let it expire or
/// cancelled it, on its receiver's word that it already received the
/// member: only a node restored from a backup can have forgotten a
/// release, and only a member still owned here and offered to nobody else
/// can be released.
pub(super) fn may_release_again(conn: &Connection, ctx: &Ctx<'_>, t: &Row) -> Result<bool, Error> {
    if !crate::epoch::was_restored(conn)? {
        return Ok(false);
    }
    let owned = members::load_home(conn, &t.member_id)?.is_some_and(|m| m.owner == ctx.me.as_str());
    let offered_elsewhere = conn
        .prepare_cached(
            "SELECT 1 FROM transfers WHERE member_id = ?1 AND direction = 'outgoing' AND state = 'offered'
               AND transfer_id <> ?2",
        )?
        .query_row(params![t.member_id, t.transfer_id], |_| Ok(()))
        .optional()?
        .is_some();
    Ok(owned && !offered_elsewhere)
}

/// Before a restored node finishes `t` (the newest of its member): its
/// other open offers of the member go. Only a reissued letter number (the
/// same number, another transfer, from an earlier branch of this node's
/// backups) leaves one open.
pub(super) fn abort_other_offers(conn: &Connection, ctx: &Ctx<'_>, t: &Row) -> Result<(), Error> {
    let open: Vec<String> = conn
        .prepare(
            "SELECT transfer_id FROM transfers WHERE member_id = ?1 AND direction = 'outgoing' AND state = 'offered' AND transfer_id <> ?2",
        )?
        .query_map(params![t.member_id, t.transfer_id], |r| r.get(0))?
        .collect::<Result<Vec<_>, _>>()?;
    for id in open {
        if let Some(mut other) = load(conn, &id)? {
            tracing::warn!(transfer = %id, newer = %t.transfer_id, member = %t.member_id, "restored: an open offer of a member another transfer took is aborted");
            abort(
                conn,
                ctx,
                &mut other,
                TransferState::Cancelled,
                "sender_restored",
            )?;
        }
    }
    Ok(())
}

/// At a restored node's reconciliation, a peer holds `held.member_id` at
/// `held.generation`, owned by `held.owner` (another node), past this
/// node's own record of it:
///
/// - at a later generation. Generations rise only with releases, so this
///   node released the member on a branch its restore forgot, and no peer
///   reported that transfer;
/// - or at the same generation by a later letter of the same sender than
///   the one that brought it here. Two releases of one generation can only
///   come from two branches of the sender's backups (it released, was
///   restored to before, and released again under a new letter; or the
///   receiver was restored to a backup holding the first release). The
///   sender numbers its letters in order and a restore never numbers
///   backwards past what its peers hold, so the later letter is the
///   release of the sender's latest branch: the older one yields. Where
///   no peer the sender reconciled with held the first letter, it may
///   number the second the same; the later transfer id then decides
///   ([`crate::letters::LetterNo::is_later_release`]).
///
/// A generation never goes back: this node's record becomes a tombstone
/// at that generation pointing to the owner, with no transfer (none is
/// known here) and the letter the peer names, its open offers end and its
/// hosts learn the member moved; the records its hosts sent it meanwhile
/// are held for its own release (`hosting::hold_hosts_records`), and
/// events held until the release was learned are judged again. Audited as
/// a conflict for the operator: local edits since the backup are lost.
/// Returns whether this node yielded.
pub fn yield_to_later_generation(
    conn: &Connection,
    ctx: &Ctx<'_>,
    held: &pb::HeldGeneration,
) -> Result<bool, Error> {
    let (member_id, generation, owner) = (
        held.member_id.as_str(),
        held.generation,
        held.owner.as_str(),
    );
    let Some(home) = members::load_home(conn, member_id)? else {
        return Ok(false);
    };
    if home.owner != ctx.me.as_str() || owner == ctx.me.as_str() {
        return Ok(false);
    }
    let later_letter = || -> Result<bool, Error> {
        let ours = members::letter_of_generation(
            conn,
            ctx.me.as_str(),
            member_id,
            &home.owner,
            home.generation,
            members::ReleaseRef::default(),
        )?;
        Ok(crate::letters::LetterNo::is_later_release(
            (&held.letter_no, &held.transfer_id),
            (&ours.letter_no, &ours.transfer_id),
        ))
    };
    if !(home.generation < generation || home.generation == generation && later_letter()?) {
        return Ok(false);
    }
    let owner_id = node(owner)?;
    // What this node queued for the owner as the member's owner at that
    // generation (an Unshare at an agreement's end this adoption applied)
    // speaks for an ownership it did not have: the owner would quarantine
    // it. No holder needs it either: `moved` follows.
    log::drop_queued_owner_snapshots(conn, &owner_id, member_id)?;
    let t = Row {
        member_id: member_id.to_owned(),
        receiver: owner_id.to_string(),
        ..Row::default()
    };
    abort_other_offers(conn, ctx, &t)?;
    tell_holders_moved(conn, ctx, &t, generation)?;
    crate::hosting::hold_hosts_records(conn, ctx, member_id, owner_id.as_str())?;
    tombstone(
        conn,
        ctx,
        member_id,
        generation,
        owner_id.as_str(),
        "",
        "",
        &held.letter_no,
        &ctx.today().to_string(),
    )?;
    tracing::warn!(
        member = %member_id,
        owned_at = home.generation,
        generation,
        %owner,
        letter = %held.letter_no,
        "restored: a peer holds a member this node owned, past its record here; it moved on under a release the restore forgot"
    );
    audit::append(
        conn,
        ctx.now_ms,
        &NewEntry {
            actor: &Actor::Node,
            action: "reconcile.conflict",
            target: member_id,
            outcome: Outcome::Ok,
            detail: &format!(
                "member {member_id}: owned here at generation {}, but {owner} holds it at generation {generation}: {}; the record here is now a tombstone naming {owner}, and changes made to it here since the backup are lost",
                home.generation,
                if home.generation < generation {
                    "released on a branch of this node's backups that the restore forgot".to_owned()
                } else {
                    format!(
                        "by {}, a later letter of the sender than the one it came here by, released again on a later branch of the sender's backups",
                        held.letter_no
                    )
                }
            ),
        },
    )?;
    crate::hosting::retry_held_about(conn, ctx, member_id)?;
    Ok(true)
}

/// Remembers the generation a peer's holdings (`held`) reported of a
/// member this restored node does not own at it: a release may bring the
/// member here later (a restored sender sends again a release its
/// receiver forgot), at a generation the peers have moved past, and no
/// peer would report it again. The highest per member.
pub fn remember_reported_generation(
    conn: &Connection,
    ctx: &Ctx<'_>,
    held: &pb::HeldGeneration,
) -> Result<(), Error> {
    if held.owner == ctx.me.as_str() || NodeId::parse(&held.owner).is_err() {
        return Ok(());
    }
    conn.execute(
        "INSERT INTO reported_generations (member_id, generation, owner, letter_no, transfer_id)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (member_id) DO UPDATE SET generation = excluded.generation, owner = excluded.owner,
             letter_no = excluded.letter_no, transfer_id = excluded.transfer_id
           WHERE excluded.generation > reported_generations.generation",
        params![
            held.member_id,
            held.generation,
            held.owner,
            held.letter_no,
            held.transfer_id
        ],
    )?;
    Ok(())
}

/// After a release made `member_id` this node's own: if a peer's
/// holdings reported it at a later generation when this node adopted
/// them, the release is of a branch the peers have moved past, and this
/// node yields to that generation's owner at once
/// ([`yield_to_later_generation`]). Returns whether it yielded.
pub fn yield_to_reported(conn: &Connection, ctx: &Ctx<'_>, member_id: &str) -> Result<bool, Error> {
    let held: Option<pb::HeldGeneration> = conn
        .prepare_cached(
            "SELECT generation, owner, letter_no, transfer_id FROM reported_generations WHERE member_id = ?1",
        )?
        .query_row([member_id], |r| {
            Ok(pb::HeldGeneration {
                member_id: member_id.to_owned(),
                generation: r.get(0)?,
                owner: r.get(1)?,
                letter_no: r.get(2)?,
                transfer_id: r.get(3)?,
            })
        })
        .optional()?;
    match held {
        Some(held) => yield_to_later_generation(conn, ctx, &held),
        None => Ok(false),
    }
}
