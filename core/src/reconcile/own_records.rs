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
        if held.author != me || released_since(tx, me, held)? {
            continue;
        }
        let local = members::host_section(tx, &held.member_id, me)?;
        // Relayed to the member's new owner, a section names the transfer
        // as its basis; this node made it under its own agreement, which
        // its section here still names, if it holds one. If it holds
        // none, it cannot hold the section under a basis that is not its
        // own, but no older version of it may come back either, and its
        // next write must pass that version.
        let Some(basis) = own_basis(tx, me, held, local.as_ref())? else {
            members::raise_host_section_floor(
                tx,
                &held.member_id,
                held.version.unwrap_or_default(),
            )?;
            // Under an agreement this node does not know, or knows as its
            // inflow party but not as active (restored to before it
            // accepted it), or relayed under a transfer: a later peer's
            // holdings may teach it the agreement's activation (the
            // coordinator's) or give it a section of the member under it.
            let verifiable = agreements::parties(tx, &held.basis)?.is_none_or(|p| p.inflow == me);
            if verifiable {
                hold_unverified(tx, peer, held)?;
            }
            continue;
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
            agreements::parties(tx, &section.basis)?.is_some_and(|p| p.outflow == peer.as_str());
        let newer = local
            .as_ref()
            .is_none_or(|c| incoming > (c.generation, c.counter))
            && floor.is_none_or(|f| {
                incoming >= (f.generation, f.counter) || (from_owner && incoming.0 >= f.generation)
            });
        let ours = |tx: &Connection| -> Result<pb::HostSection, Error> {
            members::host_section_record(tx, &section.member_id, me)?
                .ok_or_else(|| Error::invalid("host section vanished".into()))
        };
        // The peer holds what this node holds at that version, perhaps
        // under another basis (a host keeps its own where it sent a new
        // owner its section under their agreement): nothing this node wrote
        // is missing there, and it is not written again.
        let same_write = local
            .as_ref()
            .is_some_and(|c| incoming == (c.generation, c.counter))
            && pb::HostSection {
                basis: section.basis.clone(),
                ..ours(tx)?
            } == *section;
        // Written here since the restore (an operator's host-set while
        // this peer was skipped, or before it answered), at a version the
        // peer may hold other contents under: the latest write stands, at a
        // counter past the peer's, where it can still be sent; where it
        // cannot (the agreement ended since), the peer's stands. Either
        // way the two never differ at one version.
        let rewritten = !same_write
            && local
                .as_ref()
                .is_some_and(|c| incoming >= (c.generation, c.counter))
            && tx.query_row(
                "SELECT updated_at_ms FROM host_sections WHERE member_id = ?1 AND author = ?2",
                params![section.member_id, me],
                |r| r.get::<_, i64>(0),
            )? > restored_at_ms;
        // The same version with other contents, not written since this
        // restore: an earlier restore lost the write the backup restored now
        // holds, and this node then wrote another at the same counter, which
        // the peer holds. Or the same contents under another basis. What
        // the peer holds is what was sent, and stands.
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
            // Sent under the basis the peer holds it under.
            pb::HostSection {
                basis: section.basis.clone(),
                ..ours
            }
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
    // After the peer's own: one of them may be this node's section under
    // the agreement a kept one was relayed from.
    take_back_verified(tx, ctx, restored_at_ms, report)?;
    Ok(())
}

/// After this node went on without `peer` (`reconcile --without-peer`),
/// it may have written its section of one of the peer's members at a
/// version the peer held with other contents, and the peer may have passed
/// the member on since, its release carrying that version where no
/// comparison of holdings reaches it. So each section this node wrote
/// since the restore under an agreement with the peer as owner, still open
/// here, is written again one counter on and sent: its latest words pass
/// whatever went on without it.
pub(super) fn write_again_after_skip(
    tx: &Connection,
    ctx: &Ctx<'_>,
    peer: &NodeId,
    restored_at_ms: i64,
    report: &mut AdoptReport,
) -> Result<(), Error> {
    let me = ctx.me.as_str();
    let written: Vec<String> = tx
        .prepare_cached(
            "SELECT member_id FROM host_sections
             WHERE author = ?1 AND updated_at_ms > ?2
               AND basis IN (SELECT agreement_id FROM agreements WHERE outflow_node = ?3 AND inflow_node = ?1)",
        )?
        .query_map(params![me, restored_at_ms, peer.as_str()], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for member_id in written {
        let Some(mut section) = members::host_section_record(tx, &member_id, me)? else {
            continue;
        };
        if !hosting_open(tx, ctx, peer, &section.basis)? {
            continue;
        }
        let version = section.version.unwrap_or_default();
        section.version = Some(pb::Version {
            counter: version.counter + 1,
            ..version
        });
        members::save_host_section(tx, &section, ctx.now_ms)?;
        log::append(
            tx,
            peer,
            EventKind::HostSection,
            &member_id,
            &section.encode_to_vec(),
            ctx.now_ms,
        )?;
        report.host_sections += 1;
    }
    Ok(())
}

/// The basis this node may hold its own `section` under: the section's,
/// or, for one relayed under a transfer, that of this node's own section
/// of the member (`local`), which names the agreement it made it under.
/// None where it may hold it under neither.
fn own_basis(
    tx: &Connection,
    me: &str,
    section: &pb::HostSection,
    local: Option<&pb::HostSectionView>,
) -> Result<Option<String>, Error> {
    if may_hold_own_record(tx, me, &section.member_id, &section.basis)? {
        return Ok(Some(section.basis.clone()));
    }
    match local {
        Some(l) if may_hold_own_record(tx, me, &section.member_id, &l.basis)? => {
            Ok(Some(l.basis.clone()))
        }
        _ => Ok(None),
    }
}

/// Older than this node's release of the member (a tombstone here:
/// perhaps released just now, by the transfer rule): the section went with
/// that release, which carried this node's sections at the versions it
/// held, and the receiver keeps the newer of the two. This node holds none
/// of them, as after any release.
fn released_since(tx: &Connection, me: &str, held: &pb::HostSection) -> Result<bool, Error> {
    Ok(
        members::load_home(tx, &held.member_id)?.is_some_and(|home| {
            home.owner != me && held.version.unwrap_or_default().generation < home.generation
        }),
    )
}

/// Keeps `held`, this node's own section under an agreement it does not
/// know (a restore made it forget it), until it knows the agreement again:
/// the peer that held it may be the only one left that does, and another
/// peer may teach this node the agreement later in the reconciliation.
/// Only the highest version is kept, with the peer that showed it.
fn hold_unverified(tx: &Connection, peer: &NodeId, held: &pb::HostSection) -> Result<(), Error> {
    let version = held.version.unwrap_or_default();
    tx.prepare_cached(
        "INSERT INTO unverified_own_sections (member_id, generation, counter, section, shown_by)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (member_id) DO UPDATE SET generation = excluded.generation,
             counter = excluded.counter, section = excluded.section, shown_by = excluded.shown_by
         WHERE (excluded.generation, excluded.counter) > (generation, counter)",
    )?
    .execute(params![
        held.member_id,
        version.generation,
        version.counter,
        held.encode_to_vec(),
        peer.as_str()
    ])?;
    Ok(())
}

/// This node's own sections kept by [`hold_unverified`] whose agreement it
/// now knows as its inflow party (or, for one relayed under a transfer,
/// that it holds a section of the member under such an agreement again):
/// taken back where still newer than its own (and not gone with a release
/// since), and sent again to the agreement's owner while the agreement is
/// open here. A section whose agreement is still unknown stays.
fn take_back_verified(
    tx: &Connection,
    ctx: &Ctx<'_>,
    restored_at_ms: i64,
    report: &mut AdoptReport,
) -> Result<(), Error> {
    let me = ctx.me.as_str();
    let kept: Vec<(String, Vec<u8>)> = tx
        .prepare_cached("SELECT member_id, section FROM unverified_own_sections")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (member_id, bytes) in kept {
        let section = pb::HostSection::decode(bytes.as_slice()).map_err(|e| {
            Error::corrupt(
                format!("unverified_own_sections row of member {member_id}"),
                e.to_string(),
                "an encoded host section",
            )
        })?;
        // Relayed to a new owner, the section names the transfer; this
        // node made it under its own agreement, which its section here
        // names once it holds one again.
        let local = members::host_section(tx, &member_id, me)?;
        let Some(basis) = own_basis(tx, me, &section, local.as_ref())? else {
            continue;
        };
        let section = pb::HostSection { basis, ..section };
        tx.prepare_cached("DELETE FROM unverified_own_sections WHERE member_id = ?1")?
            .execute([&member_id])?;
        let version = section.version.unwrap_or_default();
        let newer =
            local.is_none_or(|c| (version.generation, version.counter) > (c.generation, c.counter));
        if !newer || released_since(tx, me, &section)? {
            continue;
        }
        members::save_host_section(tx, &section, restored_at_ms)?;
        report.host_sections += 1;
        let Some(parties) = agreements::parties(tx, &section.basis)? else {
            continue;
        };
        let owner = NodeId::parse(&parties.outflow).map_err(|_| {
            Error::corrupt(
                format!("outflow party of agreement {}", section.basis),
                parties.outflow.as_str(),
                "a node id",
            )
        })?;
        re_send_hosted(
            tx,
            ctx,
            &owner,
            EventKind::HostSection,
            &member_id,
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
