//! The restored side: adopting what a peer holds from this node, one step
//! after another, in one transaction.

use liaison_proto::v1 as pb;
use liaison_proto::v1::EventKind;
use liaison_types::identity::NodeId;
use prost::Message;
use rusqlite::TransactionBehavior;
use rusqlite::{params, Connection, OptionalExtension};

use super::agreement::{adopt_agreement, AgreementAdoption};
use super::own_records::{
    adopt_own_contacts_and_activities, adopt_own_host_sections, write_again_after_skip,
};
use super::report::AdoptReport;
use super::restore::{finish, needs_holdings, peer_state_of};
use crate::epoch::{awaits_retake, note_log_taken, restore_row};
use crate::letters::LetterNo;
use crate::store::audit::{self, Actor, NewEntry, Outcome};
use crate::store::get_meta;
use crate::{log, members, transfers};
use crate::{Ctx, Error};

/// Adopts what `peer` holds from this node (docs/restore.md), in one transaction,
/// and ends the re-emission to it with `EpochComplete`. `batches` is the
/// whole answer, the last batch marked.
pub fn adopt(
    conn: &mut Connection,
    ctx: &Ctx<'_>,
    peer: &NodeId,
    batches: &[pb::HoldingsBatch],
) -> Result<AdoptReport, Error> {
    if !batches.last().is_some_and(|b| b.last) {
        return Err(Error::invalid(format!(
            "the holdings of {peer} are incomplete (no last batch): ask again"
        )));
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if !needs_holdings(&tx, peer)? {
        return Err(Error::conflict(format!(
            "{peer} is not waiting to be reconciled: `reconcile status` shows the peers"
        )));
    }
    let restored_at_ms = restore_row(&tx)?.map_or(0, |r| r.restored_at_ms);
    let mut report = AdoptReport::default();
    let skipped = peer_state_of(&tx, peer.as_str())?.as_deref() == Some("skipped");

    let (seq_floor, other_branch) = drop_applied_events(&tx, peer, batches, &mut report)?;
    take_holdings(
        &tx,
        ctx,
        peer,
        batches,
        (restored_at_ms, other_branch, seq_floor),
        &mut report,
    )?;
    if skipped {
        write_again_after_skip(&tx, ctx, peer, restored_at_ms, &mut report)?;
    }
    // The peer's log these holdings came from (empty from a peer that
    // does not say: it is then taken again once, at its next session).
    let peer_log_id = batches.last().map_or("", |b| b.log_id.as_str());
    note_log_taken(&tx, peer.as_str(), peer_log_id, ctx.now_ms)?;
    let summary = end_epoch(&tx, ctx, peer, &report)?;
    tx.commit()?;
    tracing::info!(%peer, summary = %summary, "reconciled with peer");
    report.finished = finish(conn, ctx)?;
    Ok(report)
}

/// Takes `peer`'s holdings again (docs/restore.md, Taking a peer's holdings
/// again), in one transaction: this node was restored once and adopted the
/// peer, and the peer has a new log id since ([`awaits_retake`]). The
/// comparisons of an adoption run again (agreements, transfers, the
/// generation rule, the records this node authored, the peer's records as
/// host, version counters), since the peer may have been restored to a
/// backup holding what this node forgot and adopted it without. This node's
/// own log is not touched and it does not stop acting as an owner: nothing
/// of its own was lost this time.
///
/// `log_id` is the peer's log id the caller saw (at `Hello`); a peer that
/// names another in its answer was restored again meanwhile.
pub fn retake(
    conn: &mut Connection,
    ctx: &Ctx<'_>,
    peer: &NodeId,
    log_id: &str,
    batches: &[pb::HoldingsBatch],
) -> Result<AdoptReport, Error> {
    let Some(last) = batches.last().filter(|b| b.last) else {
        return Err(Error::invalid(format!(
            "the holdings of {peer} are incomplete (no last batch): ask again"
        )));
    };
    if !last.log_id.is_empty() && last.log_id != log_id {
        return Err(Error::conflict(format!(
            "{peer} answered under its log {}, not {log_id}: ask again",
            last.log_id
        )));
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if !awaits_retake(&tx, peer.as_str(), log_id)? {
        return Err(Error::conflict(format!(
            "the holdings of {peer} under its log {log_id} are taken already or not needed"
        )));
    }
    let restored_at_ms = restore_row(&tx)?.map_or(0, |r| r.restored_at_ms);
    let mut report = AdoptReport::default();
    let other_branch = note_other_branches(&tx, batches)?;
    let seq_floor = log::max_seq(&tx)?;
    take_holdings(
        &tx,
        ctx,
        peer,
        batches,
        (restored_at_ms, other_branch, seq_floor),
        &mut report,
    )?;
    note_log_taken(&tx, peer.as_str(), log_id, ctx.now_ms)?;
    let summary = audit_taken(&tx, ctx, peer, "reconcile.retake", &report)?;
    tx.commit()?;
    tracing::info!(%peer, summary = %summary, "took the holdings of a peer restored since");
    Ok(report)
}

/// The steps an adoption and a retake share, in order; `seq_floor`: the
/// home sections re-sent to the peer are those appended past it.
fn take_holdings(
    tx: &Connection,
    ctx: &Ctx<'_>,
    peer: &NodeId,
    batches: &[pb::HoldingsBatch],
    (restored_at_ms, other_branch, seq_floor): (i64, bool, u64),
    report: &mut AdoptReport,
) -> Result<(), Error> {
    adopt_agreements(tx, ctx, peer, batches, report)?;
    note_hosted(tx, ctx, peer, batches)?;
    adopt_sent_transfers(
        tx,
        ctx,
        peer,
        batches,
        (restored_at_ms, other_branch),
        report,
    )?;
    adopt_received_transfers(tx, ctx, peer, batches, report)?;
    yield_to_later_generations(tx, ctx, batches, report)?;
    adopt_own_host_sections(tx, ctx, peer, batches, restored_at_ms, report)?;
    adopt_own_contacts_and_activities(tx, ctx, peer, batches, report)?;
    apply_peer_records(tx, ctx, peer, batches, report)?;
    re_emit(tx, ctx, peer, batches, seq_floor, report)?;
    answer_stale_offers(tx, ctx, peer)
}

/// The old log: events the peer applied go; the sequence jumps past
/// every cursor. Along one database file's lineage (a backup and the
/// epochs restored from it) sequence numbers only rise, since every
/// reconciliation jumps past the peers' cursors, so the peer applied
/// an old event iff one of its cursors on a log of that lineage
/// reaches its seq. A log of another branch (this node restored
/// before from another backup, or a new database under a known id)
/// numbered its own events, which may reuse this file's numbers: its
/// cursors prove nothing about this file's events (dropping by them
/// would drop an event the peer never got).
fn drop_applied_events(
    tx: &Connection,
    peer: &NodeId,
    batches: &[pb::HoldingsBatch],
    report: &mut AdoptReport,
) -> Result<(u64, bool), Error> {
    let cursor_max = batches
        .iter()
        .flat_map(|b| &b.cursors)
        .map(|c| c.seq)
        .max()
        .unwrap_or(0);
    let known: std::collections::HashSet<String> = tx
        .prepare("SELECT log_id FROM past_log_ids WHERE lineage = 1")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let applied_max = batches
        .iter()
        .flat_map(|b| &b.cursors)
        .filter(|c| known.contains(&c.log_id))
        .map(|c| c.seq)
        .max()
        .unwrap_or(0);
    let seq_floor = restore_row(tx)?.map_or(0, |r| r.seq_floor);
    let upto = applied_max.min(seq_floor);
    // A host's records relayed to the peer under a release stay for the
    // host's holdings: the host, restored too, may not have taken them back
    // yet, and no other node's log holds them.
    tx.execute(
        "INSERT OR IGNORE INTO relayed_records (seq, receiver, kind, entity, payload)
         SELECT e.seq, e.audience, e.kind, e.entity, e.payload FROM events e
         WHERE e.audience = ?1 AND e.seq <= ?2 AND e.kind IN (?3, ?4, ?5)
           AND EXISTS (SELECT 1 FROM transfers t WHERE t.member_id = e.entity
                       AND t.receiver = e.audience AND t.direction = 'outgoing')",
        params![
            peer.as_str(),
            upto,
            EventKind::HostSection as i32,
            EventKind::Contact as i32,
            EventKind::Activity as i32
        ],
    )?;
    report.events_dropped = tx.execute(
        "DELETE FROM events WHERE audience = ?1 AND seq <= ?2",
        params![peer.as_str(), upto],
    )? as u64;
    jump_sequence(tx, cursor_max)?;
    Ok((seq_floor, note_other_branches(tx, batches)?))
}

/// Whether the peer pulled a log of this node that this file's lineage
/// never had: this node was restored before, from another backup, and
/// acted on that branch (it may have issued letter numbers again). Such
/// logs are remembered as past logs of another branch.
fn note_other_branches(tx: &Connection, batches: &[pb::HoldingsBatch]) -> Result<bool, Error> {
    let known: std::collections::HashSet<String> = tx
        .prepare("SELECT log_id FROM past_log_ids WHERE lineage = 1")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let current_log_id = get_meta(tx, "log_id")?.unwrap_or_default();
    let other_branch = batches
        .iter()
        .flat_map(|b| &b.cursors)
        .any(|c| c.log_id != current_log_id && !known.contains(&c.log_id));
    // A new database under a known node id descends from every log its
    // peers hold of the node, at a point no one knows.
    let reinstalled = restore_row(tx)?.is_some_and(|r| r.backup_at_ms == 0);
    for cursor in batches.iter().flat_map(|b| &b.cursors) {
        if cursor.log_id != current_log_id {
            tx.execute(
                "INSERT OR IGNORE INTO past_log_ids (log_id, lineage) VALUES (?1, 0)",
                [&cursor.log_id],
            )?;
            if reinstalled {
                tx.execute(
                    "INSERT OR IGNORE INTO branch_logs (log_id, last_seq) VALUES (?1, NULL)",
                    [&cursor.log_id],
                )?;
            }
        }
    }
    Ok(other_branch)
}

/// Members the peer holds past this node's own record (a later
/// generation, or the same one by a later letter of the same sender),
/// moved on by a release no peer reported
/// ([`transfers::yield_to_later_generation`]); after the transfers, which
/// decide the members they name. Each generation is remembered too, for a
/// release that brings the member here after it
/// ([`transfers::remember_reported_generation`]).
fn yield_to_later_generations(
    tx: &Connection,
    ctx: &Ctx<'_>,
    batches: &[pb::HoldingsBatch],
    report: &mut AdoptReport,
) -> Result<(), Error> {
    for held in batches.iter().flat_map(|b| &b.generations) {
        transfers::remember_reported_generation(tx, ctx, held)?;
        if transfers::yield_to_later_generation(tx, ctx, held)? {
            report.conflicts.push(format!(
                "member {}: {} holds it at generation {}{}, past this node's; now a tombstone naming {}",
                held.member_id,
                held.owner,
                held.generation,
                if held.letter_no.is_empty() {
                    String::new()
                } else {
                    format!(" by letter {}", held.letter_no)
                },
                held.owner
            ));
        }
    }
    Ok(())
}

/// Agreements first: they decide what is shared.
fn adopt_agreements(
    tx: &Connection,
    ctx: &Ctx<'_>,
    peer: &NodeId,
    batches: &[pb::HoldingsBatch],
    report: &mut AdoptReport,
) -> Result<(), Error> {
    let me = ctx.me.as_str();
    for held in batches.iter().flat_map(|b| &b.agreements) {
        if held.outflow_node != me && held.inflow_node != me {
            continue;
        }
        match adopt_agreement(tx, ctx, held)? {
            AgreementAdoption::Changed => report.agreements += 1,
            AgreementAdoption::Unchanged => {}
            AgreementAdoption::Refused(why) => {
                tracing::warn!(%peer, agreement = %held.agreement_id, why = %why, "agreement report not adopted");
                report.refused.push(why);
            }
        }
    }

    //    Open agreements the peer coordinates and no longer holds: it
    //    forgot them in a restore of its own; remind it.
    let reported: std::collections::BTreeSet<&str> = batches
        .iter()
        .flat_map(|b| &b.agreements)
        .map(|a| a.agreement_id.as_str())
        .collect();
    crate::agreements::remind_forgotten(tx, ctx, peer, &reported)?;
    Ok(())
}

/// Members the peer hosted under an agreement with this node were
/// shared with it under that agreement, even if this node forgot:
/// the peer's records under that basis stay acceptable here
/// (`agreements::host_record_allowed`), also once the transfer rule
/// below releases the member.
/// The member may be one this node released since (its records go
/// to the new owner) or, received after the backup, one it does not
/// know yet (its sender releases it again), or one a peer's later
/// generation made a tombstone here (it names the node it went to, with
/// no transfer): only a member another node owns and this node never
/// held is not this node's to say.
fn note_hosted(
    tx: &Connection,
    ctx: &Ctx<'_>,
    peer: &NodeId,
    batches: &[pb::HoldingsBatch],
) -> Result<(), Error> {
    let me = ctx.me.as_str();
    for h in batches.iter().flat_map(|b| &b.hosted) {
        let owned = tx
            .prepare_cached(
                "SELECT NOT EXISTS (SELECT 1 FROM members WHERE member_id = ?1 AND owner <> ?2 AND moved_transfer_id = '' AND moved_to_node = '')",
            )?
            .query_row([h.member_id.as_str(), me], |r| r.get::<_, bool>(0))?;
        if owned && coordinates(tx, &h.basis, me, peer)? {
            note_disclosed(tx, ctx, peer, &h.member_id, &h.basis, (0, 0))?;
        }
    }
    Ok(())
}

/// Transfers this node sent: at most one per member is finished.
fn adopt_sent_transfers(
    tx: &Connection,
    ctx: &Ctx<'_>,
    peer: &NodeId,
    batches: &[pb::HoldingsBatch],
    (restored_at_ms, other_branch): (i64, bool),
    report: &mut AdoptReport,
) -> Result<(), Error> {
    let me = ctx.me.as_str();
    let sent: Vec<&pb::HeldTransfer> = batches
        .iter()
        .flat_map(|b| &b.transfers)
        .filter(|t| t.sender == me && t.receiver == peer.as_str())
        .collect();
    for held in &sent {
        // Another transfer of the same member under a later letter.
        let later = |other: &&&pb::HeldTransfer| {
            other.member_id == held.member_id
                && (LetterNo::place_of(&other.letter_no), &other.letter_no)
                    > (LetterNo::place_of(&held.letter_no), &held.letter_no)
        };
        let newest =
            !sent.iter().any(|o| later(&o)) && !newer_local_transfer(tx, held, restored_at_ms)?;
        let later_completed = sent.iter().filter(later).any(|o| o.state == "completed");
        match transfers::adopt_reported(
            tx,
            ctx,
            held,
            (newest, later_completed),
            restored_at_ms,
            other_branch,
        )? {
            transfers::Adopted::Released => report.transfers_released += 1,
            transfers::Adopted::Completed { edited } => {
                report.transfers_completed += 1;
                if edited {
                    report.conflicts.push(held.member_id.clone());
                }
            }
            transfers::Adopted::Aborted => report.transfers_aborted += 1,
            transfers::Adopted::Refused(why) => {
                tracing::warn!(%peer, transfer = %held.transfer_id, why = %why, "transfer report not adopted");
                report.refused.push(why);
            }
            transfers::Adopted::Kept | transfers::Adopted::Recorded => {}
        }
    }
    Ok(())
}

///    Offers the peer sent this node: those it received first, then
/// the peer's decision on the others, where this node forgot it
/// applied it. In that order: applying a cancel may answer a stale
/// offer (`transfers::offer_is_stale`), and an offer is not stale if
/// its re-issue brought the member.
fn adopt_received_transfers(
    tx: &Connection,
    ctx: &Ctx<'_>,
    peer: &NodeId,
    batches: &[pb::HoldingsBatch],
    report: &mut AdoptReport,
) -> Result<(), Error> {
    for held in batches.iter().flat_map(|b| &b.transfers) {
        if transfers::adopt_received(tx, ctx, peer, held)? {
            report.transfers_completed += 1;
        }
    }
    for held in batches.iter().flat_map(|b| &b.transfers) {
        if transfers::adopt_sender_decision(tx, ctx, peer, held)? {
            report.transfers_aborted += 1;
        }
    }
    Ok(())
}

/// Records the peer made as host of this node's members: the copies
///  this node held of them may predate the backup. Applied as the
///  peer's events are (the same authority checks; a record seen
///  before changes nothing), so one the peer may not send is not
///  taken either.
fn apply_peer_records(
    tx: &Connection,
    ctx: &Ctx<'_>,
    peer: &NodeId,
    batches: &[pb::HoldingsBatch],
    report: &mut AdoptReport,
) -> Result<(), Error> {
    // (kind, member, basis, the host section's generation, payload).
    let made = batches.iter().flat_map(|b| {
        let sections = b.made_host_sections.iter().map(|r| {
            (
                EventKind::HostSection,
                &r.member_id,
                r.basis.as_str(),
                Some(r.version.unwrap_or_default().generation),
                r.encode_to_vec(),
            )
        });
        let contacts = b.made_contacts.iter().map(|r| {
            (
                EventKind::Contact,
                &r.member_id,
                r.basis.as_str(),
                None,
                r.encode_to_vec(),
            )
        });
        let activities = b.made_activities.iter().map(|r| {
            (
                EventKind::Activity,
                &r.member_id,
                r.basis.as_str(),
                None,
                r.encode_to_vec(),
            )
        });
        sections.chain(contacts).chain(activities)
    });
    for (kind, member_id, basis, generation, payload) in made {
        let written = generation.map(|g| (g, basis));
        let event = pb::Event {
            kind: kind as i32,
            entity: member_id.clone(),
            payload,
            ..pb::Event::default()
        };
        // A section the peer wrote at a later generation than this node
        // holds the member at (released, or held as another owner's copy),
        // under an agreement this node coordinates with it, was written for
        // this node as the member's owner: the member comes here (again) by
        // a release the peer's log, or another's, still brings. Held until
        // it arrives (`hosting::retry_held_about`).
        if let Some((generation, basis)) = written {
            if written_for_a_later_ownership(tx, ctx, peer, member_id, generation, basis)? {
                let reason = format!(
                    "{peer} wrote its section of member {member_id} at generation {generation}, past the generation this node holds it at: {}",
                    crate::hosting::HELD_UNTIL_RELEASED
                );
                crate::quarantine::hold(tx, ctx, peer, "", &event, &reason)?;
                continue;
            }
        }
        // A member that went to the peer itself is the peer's to hold.
        if members::moved_of(tx, member_id)?.is_some_and(|m| m.to_node == peer.as_str()) {
            continue;
        }
        // Reported in the peer's holdings: seq 0, in no log.
        match crate::apply::apply_event(tx, ctx, peer, "", &event) {
            Ok(()) => report.peer_records += 1,
            // About a member this node does not hold yet: one whose release
            // the peer's log still brings (a restored receiver). Held like
            // such an event from the log, applied once the member arrives
            // (`hosting::retry_held_about`). So is one this node hosts as
            // another owner's copy, where the peer made the record under an
            // agreement this node coordinates with it: made for this node
            // as the member's owner, by a release it forgot.
            Err(rejection @ crate::outcome::Rejection::Unknown(_))
                if members::load_home(tx, member_id)?.is_none()
                    && (members::load_copy(tx, member_id)?.is_none()
                        || crate::agreements::parties(tx, basis)?.is_some_and(|p| {
                            p.outflow == ctx.me.as_str() && p.inflow == peer.as_str()
                        })) =>
            {
                let reason = crate::quarantine::reason(tx, rejection)?;
                crate::quarantine::hold(tx, ctx, peer, "", &event, &reason)?;
            }
            Err(
                crate::outcome::Rejection::Invalid(why) | crate::outcome::Rejection::Unknown(why),
            ) => {
                tracing::debug!(%peer, member = %member_id, kind = %log::kind_name(kind as i32), why = %why, "record the peer made as host not taken");
            }
            Err(crate::outcome::Rejection::Stop(why)) => {
                return Err(Error::conflict(format!(
                    "a record {peer} holds cannot be adopted now: {why}"
                )))
            }
            Err(crate::outcome::Rejection::Store(e)) => return Err(e),
        }
    }
    Ok(())
}

/// Version counters jump past the copies the peer holds, and the home
/// sections go out again under the new log id.
fn re_emit(
    tx: &Connection,
    ctx: &Ctx<'_>,
    peer: &NodeId,
    batches: &[pb::HoldingsBatch],
    seq_floor: u64,
    report: &mut AdoptReport,
) -> Result<(), Error> {
    let me = ctx.me.as_str();
    let mut re_emit: Vec<String> = tx
        .prepare("SELECT member_id FROM shares WHERE peer = ?1")?
        .query_map([peer.as_str()], |r| r.get(0))?
        .collect::<Result<Vec<_>, _>>()?;
    for copy in batches.iter().flat_map(|b| &b.home_copies) {
        if copy.owner != me {
            continue;
        }
        let held = copy.version.unwrap_or_default();
        let home = members::load_home(tx, &copy.member_id)?;
        let owned = home.as_ref().is_some_and(|h| h.owner == me);
        // The peer holds it, so it was disclosed: the host's records under
        // that basis stay acceptable (`agreements::host_record_allowed`),
        // also where this node forgot the member (received after the
        // backup, its sender may release it again) or released it since
        // (possibly just now, by the transfer rule: the records the host
        // made before it learnt of the release are relayed to the new
        // owner, as they would have been).
        if owned || coordinates(tx, &copy.basis, me, peer)? {
            note_disclosed(
                tx,
                ctx,
                peer,
                &copy.member_id,
                &copy.basis,
                (held.generation, held.counter),
            )?;
        }
        let forgotten = home.is_none();
        let Some(mut home) = home.filter(|_| owned) else {
            report.forgotten += u64::from(forgotten);
            continue;
        };
        if (held.generation, held.counter) >= (home.generation, home.counter) {
            home.generation = home.generation.max(held.generation);
            home.counter = held.counter + 1;
            home.updated_at_ms = ctx.now_ms;
            members::save_home_record(tx, &home)?;
        }
        // The peer holds a copy: it counts as shared with the peer under the
        // basis it holds it under, where this node (restored to before it
        // shared it) records no share. Resharing then sends it again where
        // an agreement still covers it, and withdraws it (Unshare) where
        // none does, so no host keeps a copy its owner stopped updating.
        tx.prepare_cached(
            "INSERT INTO shares (member_id, peer, basis) VALUES (?1, ?2, ?3)
             ON CONFLICT (member_id, peer) DO NOTHING",
        )?
        .execute(params![copy.member_id, peer.as_str(), copy.basis])?;
        re_emit.push(copy.member_id.clone());
    }
    re_emit.sort();
    re_emit.dedup();
    for member_id in &re_emit {
        members::reshare_member(tx, ctx, member_id)?;
    }
    // Members newly covered by an adopted agreement.
    members::reshare_all(tx, ctx)?;
    report.re_sent = tx.query_row(
        "SELECT COUNT(DISTINCT entity) FROM events WHERE audience = ?1 AND kind = ?2 AND seq > ?3",
        params![peer.as_str(), EventKind::HomeSection as i32, seq_floor],
        |r| r.get(0),
    )?;
    Ok(())
}

/// Offers this node holds of members it now knows it received and
///  passed on since (the transfer rule above may have just said so):
///  their restored senders forgot the release; answered as received.
///  Only offers of this peer or of senders adopted already: one not
///  adopted yet may hold a re-issue whose release brought the member,
///  which makes the older letter void, not stale.
fn answer_stale_offers(tx: &Connection, ctx: &Ctx<'_>, peer: &NodeId) -> Result<(), Error> {
    crate::transfers::answer_stale_offers(tx, ctx, |sender| {
        Ok(sender == peer.as_str()
            || !matches!(
                peer_state_of(tx, sender)?.as_deref(),
                Some("waiting" | "skipped")
            ))
    })?;
    Ok(())
}

/// The end of the re-emission to this peer.
fn end_epoch(
    tx: &Connection,
    ctx: &Ctx<'_>,
    peer: &NodeId,
    report: &AdoptReport,
) -> Result<String, Error> {
    let log_id = get_meta(tx, "log_id")?.unwrap_or_default();
    let complete = pb::EpochComplete {
        log_id: log_id.clone(),
        re_sent: report.re_sent,
        branch: crate::epoch::branch(tx)?,
    };
    log::append(
        tx,
        peer,
        EventKind::EpochComplete,
        &log_id,
        &complete.encode_to_vec(),
        ctx.now_ms,
    )?;
    let summary = audit_taken(tx, ctx, peer, "reconcile.adopt", report)?;
    tx.execute(
        "UPDATE reconcile_peers SET state = 'adopted', updated_at_ms = ?2, detail = ?3 WHERE peer = ?1",
        params![peer.as_str(), ctx.now_ms, summary],
    )?;
    Ok(summary)
}

/// The audit entry of an adoption or a retake (`action`), with the
/// report's summary, which it returns: an error outcome where something
/// conflicted or was refused.
fn audit_taken(
    tx: &Connection,
    ctx: &Ctx<'_>,
    peer: &NodeId,
    action: &str,
    report: &AdoptReport,
) -> Result<String, Error> {
    let summary = report.summary();
    audit::append(
        tx,
        ctx.now_ms,
        &NewEntry {
            actor: &Actor::Node,
            action,
            target: peer.as_str(),
            outcome: if report.conflicts.is_empty() && report.refused.is_empty() {
                Outcome::Ok
            } else {
                Outcome::Error
            },
            detail: &summary,
        },
    )?;
    Ok(summary)
}

/// Whether this node holds a transfer of the same member with a higher
/// letter number than `held` (so `held` is not the newest). One it issued
/// since the restore (going on without the peer) does not count: it was
/// made without knowing what the peer reports, and a completed transfer
/// the peer reports ends it (docs/restore.md), even a re-issue of the very offer
/// the peer completed.
fn newer_local_transfer(
    conn: &Connection,
    held: &pb::HeldTransfer,
    restored_at_ms: i64,
) -> Result<bool, Error> {
    let letters: Vec<String> = conn
        .prepare(
            "SELECT letter_no FROM transfers WHERE member_id = ?1 AND direction = 'outgoing' AND transfer_id <> ?2
               AND created_at_ms <= ?3",
        )?
        .query_map(
            params![held.member_id, held.transfer_id, restored_at_ms],
            |r| r.get(0),
        )?
        .collect::<Result<Vec<_>, _>>()?;
    let place = LetterNo::place_of(&held.letter_no);
    Ok(letters.iter().any(|l| LetterNo::place_of(l) > place))
}

/// Makes the next event's seq exceed `seq`.
fn jump_sequence(conn: &Connection, seq: u64) -> Result<(), Error> {
    let updated = conn.execute(
        "UPDATE sqlite_sequence SET seq = MAX(seq, ?1) WHERE name = 'events'",
        [seq],
    )?;
    if updated == 0 && seq > 0 {
        conn.execute(
            "INSERT INTO sqlite_sequence (name, seq) VALUES ('events', ?1)",
            [seq],
        )?;
    }
    Ok(())
}

/// Whether `peer` wrote its section of `member_id` at `generation`, under
/// an agreement (`basis`) this node coordinates with it, past the
/// generation this node holds the member at without owning it (a
/// tombstone, or another owner's copy): for this node as the owner at that
/// generation, which it does not know yet.
fn written_for_a_later_ownership(
    conn: &Connection,
    ctx: &Ctx<'_>,
    peer: &NodeId,
    member_id: &str,
    generation: u64,
    basis: &str,
) -> Result<bool, Error> {
    let held = match members::load_home(conn, member_id)? {
        Some(home) if home.owner == ctx.me.as_str() => return Ok(false),
        Some(home) => Some(home.generation),
        None => {
            members::load_copy(conn, member_id)?.map(|c| c.version.unwrap_or_default().generation)
        }
    };
    Ok(held.is_some_and(|held| held < generation)
        && coordinates(conn, basis, ctx.me.as_str(), peer)?)
}

/// Whether `basis` is an agreement this node coordinates with `peer` as host.
fn coordinates(conn: &Connection, basis: &str, me: &str, peer: &NodeId) -> Result<bool, Error> {
    Ok(crate::agreements::parties(conn, basis)?
        .is_some_and(|p| p.outflow == me && p.inflow == peer.as_str()))
}

/// Records that `member_id`'s home section was disclosed to `peer` under
/// `basis`, unless already recorded: what a restored node learns from the
/// peer's holdings about sharing it forgot.
fn note_disclosed(
    conn: &Connection,
    ctx: &Ctx<'_>,
    peer: &NodeId,
    member_id: &str,
    basis: &str,
    (generation, counter): (u64, u64),
) -> Result<(), Error> {
    let known = conn
        .prepare_cached(
            "SELECT 1 FROM disclosures WHERE peer = ?1 AND record_id = ?2 AND basis = ?3 LIMIT 1",
        )?
        .query_row(params![peer.as_str(), member_id, basis], |_| Ok(()))
        .optional()?
        .is_some();
    if known {
        return Ok(());
    }
    log::disclose(
        conn,
        peer,
        "home_section",
        member_id,
        "home section (as the peer reported when this node was restored)",
        generation,
        counter,
        basis,
        ctx.now_ms,
    )
}
