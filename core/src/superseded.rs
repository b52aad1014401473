//! A copy superseded and then dropped (docs/replication.md): a host holds
//! one copy of a member, the latest owner's. An owner's section that finds
//! a later owner's copy here is not stored; the host remembers who sent it.
//! Where that later copy goes because its owner, restored, no longer has
//! the member (its `EpochComplete` did not send it again), the member may
//! be the earlier owner's again: both ends of the transfer between them
//! were restored to before it. The host asks each such owner to share the
//! member again (`ShareWanted`), and the owner does if it owns the member
//! and an agreement with the host covers it.

use liaison_proto::v1 as pb;
use liaison_proto::v1::EventKind;
use liaison_types::identity::NodeId;
use prost::Message;
use rusqlite::{params, Connection};

use crate::outcome::Rejection;
use crate::{log, members};
use crate::{Ctx, Error};

/// At a host: `section` was not stored, a later owner's copy being held.
pub(crate) fn remember(
    conn: &Connection,
    section: &pb::HomeSection,
    version: pb::Version,
) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO superseded_shares (member_id, owner, basis, generation, counter)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (member_id, owner) DO UPDATE SET basis = excluded.basis,
             generation = excluded.generation, counter = excluded.counter",
    )?
    .execute(params![
        section.member_id,
        section.owner,
        section.basis,
        version.generation,
        version.counter
    ])?;
    Ok(())
}

/// At a host: `owner` withdrew the member; nothing to ask it for. (A row
/// left after the owner's copy was stored again costs at most a request
/// the owner answers by sharing what the host holds already; a stored
/// copy does not look for one, so that an initial sync pays nothing.)
pub(crate) fn forget(conn: &Connection, member_id: &str, owner: &str) -> Result<(), Error> {
    conn.prepare_cached("DELETE FROM superseded_shares WHERE member_id = ?1 AND owner = ?2")?
        .execute(params![member_id, owner])?;
    Ok(())
}

/// At a host whose copy of `member_id` just went with its restored owner's
/// earlier log: asks every owner whose section that copy kept out to share
/// the member again. Returns how many were asked.
pub(crate) fn ask_again(conn: &Connection, member_id: &str, now_ms: i64) -> Result<usize, Error> {
    let rows: Vec<(String, String, u64, u64)> = conn
        .prepare_cached(
            "SELECT owner, basis, generation, counter FROM superseded_shares WHERE member_id = ?1 ORDER BY owner",
        )?
        .query_map([member_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    for (owner, basis, generation, counter) in &rows {
        let Ok(owner) = NodeId::parse(owner) else {
            continue;
        };
        let wanted = pb::ShareWanted {
            member_id: member_id.to_owned(),
            basis: basis.clone(),
            version: Some(pb::Version {
                generation: *generation,
                counter: *counter,
            }),
        };
        log::append(
            conn,
            &owner,
            EventKind::ShareWanted,
            member_id,
            &wanted.encode_to_vec(),
            now_ms,
        )?;
        tracing::info!(member = %member_id, owner = %owner, basis = %basis, "a later owner's copy went with its restore: the earlier owner is asked to share again");
    }
    conn.prepare_cached("DELETE FROM superseded_shares WHERE member_id = ?1")?
        .execute([member_id])?;
    Ok(rows.len())
}

/// At the owner: a host asks for the member again. Only the inflow party
/// of the agreement it names, with this node its outflow party, may ask;
/// an agreement this node does not know (a restore may have made it
/// forget one) or a member it does not own asks for nothing. The member is
/// shared again wherever an agreement with the host covers it now.
pub(crate) fn apply_share_wanted(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    event: &pb::Event,
) -> Result<(), Rejection> {
    let wanted = pb::ShareWanted::decode(event.payload.as_slice())
        .map_err(|e| Rejection::Invalid(format!("malformed share_wanted payload: {e}")))?;
    if wanted.member_id != event.entity {
        return Err(Rejection::Invalid(
            "payload names another member than the event".into(),
        ));
    }
    let Some(parties) = crate::agreements::parties(conn, &wanted.basis)? else {
        return Ok(());
    };
    if parties.outflow != ctx.me.as_str() || parties.inflow != origin.as_str() {
        return Err(Rejection::Invalid(format!(
            "{origin} asked for member {} under agreement {}, which is not an agreement of this node's with {origin} as the host",
            wanted.member_id, wanted.basis
        )));
    }
    members::share_again_with(conn, ctx, &wanted.member_id, origin)?;
    Ok(())
}
