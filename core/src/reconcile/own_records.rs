//! Step 4b of an adoption: the records this node authored that the peer
//! holds in full and this node may hold itself, taken back, and sent to
//! the peer again where this node still sends it records.

use liaison_proto::v1 as pb;
use liaison_proto::v1::EventKind;
use prost::Message;
use rusqlite::{params, Connection, OptionalExtension};

use super::report::AdoptReport;
use crate::{agreements, log, members, Ctx, Error};
use liaison_types::identity::NodeId;

/// Records this node authored, held in full by the peer, that it
///  may hold itself: about a member it owns (after the transfer rule,
///  a member it released is a tombstone here and its records went with
///  the release), or made as a host under an agreement in which it is
///  the inflow party.
pub(super) fn adopt_own_host_sections(
    tx: &Connection,
    ctx: &Ctx<'_>,
    peer: &NodeId,
    batches: &[pb::HoldingsBatch],
    restored_at_ms: i64,
    report: &mut AdoptReport,
) -> Result<(), Error> {
    let me = ctx.me.as_str();
    for held in batches.iter().flat_map(|b| &b.host_sections) {
        if held.author != me {
            continue;
        }
        // Older than this node's release of the member (a tombstone here:
        // perhaps released just now, by the transfer rule): it went with
        // that release, which carried this node's sections at the versions
        // it held, and the receiver keeps the newer of the two. This node
        // holds none of them, as after any release.
        let released_since = members::load_home(tx, &held.member_id)?.is_some_and(|home| {
            home.owner != me && held.version.unwrap_or_default().generation < home.generation
        });
        if released_since {
            continue;
        }
        let local = members::host_section(tx, &held.member_id, me)?;
        // Relayed to the member's new owner, a section names the transfer
        // as its basis; this node made it under its own agreement, which
        // its section here still names, if it holds one. If it holds
        // none, it cannot hold the section under a basis that is not its
        // own, but no older version of it may come back either, and its
        // next write must pass that version.
        let basis = if may_hold_own_record(tx, me, &held.member_id, &held.basis)? {
            held.basis.clone()
        } else {
            match &local {
                Some(l) if may_hold_own_record(tx, me, &held.member_id, &l.basis)? => {
                    l.basis.clone()
                }
                _ => {
                    members::raise_host_section_floor(
                        tx,
                        &held.member_id,
                        held.version.unwrap_or_default(),
                    )?;
                    continue;
                }
            }
        };
        let section = &pb::HostSection {
            basis,
            ..held.clone()
        };
        let incoming = section.version.unwrap_or_default();
        let incoming = (incoming.generation, incoming.counter);
        let floor = members::host_section_floor(tx, &section.member_id)?;
        // The peer is the outflow party of the agreement the section was
        // made under: it holds it as the member's owner, which is what this
        // node's section must be. Below the floor another peer's later
        // version set (that peer may have lost it since, restored too), it
        // is still taken back at the floor's generation; the next write
        // passes the floor all the same.
        let from_owner =
            agreements::load(tx, &section.basis)?.is_some_and(|a| a.outflow_node == peer.as_str());
        let newer = local
            .as_ref()
            .is_none_or(|c| incoming > (c.generation, c.counter))
            && floor.is_none_or(|f| {
                incoming >= (f.generation, f.counter) || (from_owner && incoming.0 >= f.generation)
            });
        // Written here since the restore (an operator's host-set while
        // this peer was skipped, or before it answered), at a version the
        // peer may hold other contents under: the latest write stands, at a
        // counter past the peer's, where it can still be sent; where it
        // cannot (the agreement ended since), the peer's stands. Either
        // way the two never differ at one version.
        let rewritten = local
            .as_ref()
            .is_some_and(|c| incoming >= (c.generation, c.counter))
            && tx.query_row(
                "SELECT updated_at_ms FROM host_sections WHERE member_id = ?1 AND author = ?2",
                params![section.member_id, me],
                |r| r.get::<_, i64>(0),
            )? > restored_at_ms;
        let ours = |tx: &Connection| -> Result<pb::HostSection, Error> {
            members::host_section_record(tx, &section.member_id, me)?
                .ok_or_else(|| Error::invalid("host section vanished".into()))
        };
        // The same version with other contents, not written since this
        // restore: an earlier restore lost the write the backup restored now
        // holds, and this node then wrote another at the same counter, which
        // the peer holds. What the peer holds is what was sent, and
        // stands.
        let forked = !newer
            && !rewritten
            && local
                .as_ref()
                .is_some_and(|c| incoming == (c.generation, c.counter))
            && floor.is_none_or(|f| incoming >= (f.generation, f.counter))
            && ours(tx)? != *section;
        let section = if rewritten && hosting_open(tx, ctx, peer, &section.basis)? {
            let mut ours = ours(tx)?;
            let held = ours.version.unwrap_or_default();
            ours.version = Some(pb::Version {
                generation: held.generation.max(incoming.0),
                counter: incoming.1 + 1,
            });
            members::save_host_section(tx, &ours, ctx.now_ms)?;
            ours
        } else if newer || rewritten || forked {
            // Adopted, not written: stamped with the restore's time.
            members::save_host_section(tx, section, restored_at_ms)?;
            section.clone()
        } else {
            continue;
        };
        report.host_sections += 1;
        re_send_hosted(
            tx,
            ctx,
            peer,
            EventKind::HostSection,
            &section.member_id,
            &section.basis,
            &section.encode_to_vec(),
        )?;
    }
    Ok(())
}

///    Contact events and activities this node authored, held in full by
/// the peer, that it may hold itself.
pub(super) fn adopt_own_contacts_and_activities(
    tx: &Connection,
    ctx: &Ctx<'_>,
    peer: &NodeId,
    batches: &[pb::HoldingsBatch],
    report: &mut AdoptReport,
) -> Result<(), Error> {
    let me = ctx.me.as_str();
    for contact in batches.iter().flat_map(|b| &b.contacts) {
        if contact.author == me
            && may_hold_own_record(tx, me, &contact.member_id, &contact.basis)?
            && members::save_contact(tx, contact, ctx.now_ms)?
        {
            report.contacts += 1;
            let payload = contact.encode_to_vec();
            re_send_hosted(
                tx,
                ctx,
                peer,
                EventKind::Contact,
                &contact.member_id,
                &contact.basis,
                &payload,
            )?;
        }
    }
    for activity in batches.iter().flat_map(|b| &b.activities) {
        if activity.author == me
            && may_hold_own_record(tx, me, &activity.member_id, &activity.basis)?
            && members::save_activity(tx, activity, ctx.now_ms)?
        {
            report.activities += 1;
            let payload = activity.encode_to_vec();
            re_send_hosted(
                tx,
                ctx,
                peer,
                EventKind::Activity,
                &activity.member_id,
                &activity.basis,
                &payload,
            )?;
        }
    }
    Ok(())
}

/// A record this node made as host and adopted back is in its own log
/// again, for the owner `peer` (which holds it: applying it twice changes
/// nothing there), so that an owner restored later from an older backup
/// gets it back by pulling. Only while the agreement it was made under is
/// active here and this node has not applied its end (docs/replication.md).
fn re_send_hosted(
    conn: &Connection,
    ctx: &Ctx<'_>,
    peer: &NodeId,
    kind: EventKind,
    member_id: &str,
    basis: &str,
    payload: &[u8],
) -> Result<(), Error> {
    if hosting_open(conn, ctx, peer, basis)? {
        log::append(conn, peer, kind, member_id, payload, ctx.now_ms)?;
    }
    Ok(())
}

/// Whether this node, as host, still sends `peer` records under `basis`:
/// the agreement is active here and this node has not applied its end.
fn hosting_open(
    conn: &Connection,
    ctx: &Ctx<'_>,
    peer: &NodeId,
    basis: &str,
) -> Result<bool, Error> {
    Ok(agreements::load(conn, basis)?.is_some_and(|a| {
        a.inflow_node == ctx.me.as_str()
            && a.outflow_node == peer.as_str()
            && a.state == agreements::AgreementState::Active
            && !a.host_end_applied
    }))
}

/// Whether this node may hold a record it authored about `member_id` with
/// `basis` (docs/authority.md): the member is its own, or the record was made as a
/// host under an agreement in which it is the inflow party and which it
/// knows was active (only then could it make one). A node restored to
/// before it accepted the agreement, which neither party remembers active
/// any more, does not take back a record it made under it: it could neither
/// send it to the owner nor would the owner take it, like the activation it
/// is lost (docs/restore.md, What is lost).
fn may_hold_own_record(
    conn: &Connection,
    me: &str,
    member_id: &str,
    basis: &str,
) -> Result<bool, Error> {
    let owned = conn
        .prepare_cached("SELECT 1 FROM members WHERE member_id = ?1 AND owner = ?2")?
        .query_row([member_id, me], |_| Ok(()))
        .optional()?
        .is_some();
    if owned {
        return Ok(true);
    }
    Ok(!basis.is_empty()
        && conn
            .prepare_cached(
                "SELECT 1 FROM agreements WHERE agreement_id = ?1 AND inflow_node = ?2 AND active_version > 0",
            )?
            .query_row([basis, me], |_| Ok(()))
            .optional()?
            .is_some())
}
