//! What is shared with whom (docs/authority.md, docs/agreements.md): an owned member's home
//! section goes to every host whose active agreement covers the member,
//! and is withdrawn (`Unshare`) from hosts no longer covered. A member's
//! new version is shared at once; an agreement's activation or amendment
//! re-evaluates every member in scope, in chunks resumed from a durable
//! mark ([`request_reshare`], [`reshare_next_chunk`]).

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{Datelike, NaiveDate};
use liaison_proto::v1 as pb;
use liaison_proto::v1::EventKind;
use liaison_types::identity::NodeId;
use prost::Message;
use rusqlite::{params, Connection};

use super::orgs::org_contact;
use super::outflows::{open_outflow, read_outflow, OUTFLOW_COLUMNS, OUTFLOW_COLUMNS_N};
use super::records::{
    letter_of_generation, load_home, read_home_at, save_home, HomeRecord, ReleaseRef, HOME_COLUMNS,
};
use super::scope::Scope;
use super::status::contact_state;
use crate::log;
use crate::{Ctx, Error};

/// The fields of the home section a host receives (docs/authority.md), for the
/// disclosure log.
const SHARED_FIELDS: &str =
    "name,gender,birth_year,phone,party_status,home_branch,home_branch_contact,membership_state,contact_status,outflow,certificate";

/// Records a new version of an owned home section and shares it with the
/// node that may hold it.
pub(super) fn bump_and_share(
    conn: &Connection,
    ctx: &Ctx<'_>,
    m: &mut HomeRecord,
) -> Result<(), Error> {
    m.counter += 1;
    m.updated_at_ms = ctx.now_ms;
    m.contact_status = contact_state(conn, ctx, m)?.status;
    save_home(conn, m)?;
    share(conn, ctx, m)
}

/// Shares the current version of an owned member again (after it arrived
/// by a transfer).
pub fn reshare_member(conn: &Connection, ctx: &Ctx<'_>, member_id: &str) -> Result<(), Error> {
    match load_home(conn, member_id)? {
        Some(m) if m.owner == ctx.me.as_str() => sync_shares(conn, ctx, &m, true),
        _ => Ok(()),
    }
}

/// Shares an owned member with `host` as if for the first time, where an
/// agreement with it covers the member: the host holds no copy of it (it
/// asked for one, `ShareWanted`), whatever this node recorded shared.
pub fn share_again_with(
    conn: &Connection,
    ctx: &Ctx<'_>,
    member_id: &str,
    host: &NodeId,
) -> Result<(), Error> {
    let Some(m) = load_home(conn, member_id)? else {
        return Ok(());
    };
    if m.owner != ctx.me.as_str() {
        return Ok(());
    }
    conn.execute(
        "DELETE FROM shares WHERE member_id = ?1 AND peer = ?2",
        params![member_id, host.as_str()],
    )?;
    sync_shares(conn, ctx, &m, false)
}

/// Withdraws the member's home section from every host holding it.
pub fn unshare_everywhere(conn: &Connection, ctx: &Ctx<'_>, m: &HomeRecord) -> Result<(), Error> {
    let held: Vec<String> = conn
        .prepare("SELECT peer FROM shares WHERE member_id = ?1")?
        .query_map([&m.member_id], |r| r.get(0))?
        .collect::<Result<Vec<_>, _>>()?;
    for peer in held {
        let host = NodeId::parse(&peer).map_err(|e| Error::invalid(e.to_string()))?;
        unshare(conn, ctx, &host, m, "the member was transferred")?;
    }
    conn.execute("DELETE FROM shares WHERE member_id = ?1", [&m.member_id])?;
    Ok(())
}

/// Shares an owned member's home section with every host whose active
/// agreement covers the member now, and withdraws it (Unshare) from hosts
/// whose agreement no longer does (docs/authority.md, docs/agreements.md). With `resend`, hosts
/// that already hold a copy get the current version too.
fn sync_shares(
    conn: &Connection,
    ctx: &Ctx<'_>,
    m: &HomeRecord,
    resend: bool,
) -> Result<(), Error> {
    sync_shares_except(conn, ctx, m, resend, None)
}

/// [`sync_shares`], leaving out agreement `except` (one whose copies the
/// host has just dropped).
fn sync_shares_except(
    conn: &Connection,
    ctx: &Ctx<'_>,
    m: &HomeRecord,
    resend: bool,
    except: Option<&str>,
) -> Result<(), Error> {
    let scope = Scope::load(conn, ctx)?;
    let held = held_shares(conn, &m.member_id)?;
    let outflow = open_outflow(conn, &m.member_id)?;
    sync_shares_in(
        conn,
        ctx,
        &scope,
        None,
        m,
        (held, outflow),
        (resend, except),
    )
}

/// The hosts holding a copy of `member_id`, each with its basis.
fn held_shares(conn: &Connection, member_id: &str) -> Result<Vec<(String, String)>, Error> {
    Ok(conn
        .prepare_cached("SELECT peer, basis FROM shares WHERE member_id = ?1")?
        .query_map([member_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?)
}

/// What [`reshare_range`] reads once for every member it shares: the
/// branches' contacts and, per host, which members of the range have a
/// home section or an Unshare queued (so a first share skips the
/// superseding delete).
#[derive(Default)]
struct Bulk {
    /// The member ids visited: after `.0`, up to `.1` (inclusive) if set.
    range: (String, Option<String>),
    contacts: HashMap<String, (String, String)>,
    queued: HashMap<String, HashSet<String>>,
}

/// [`sync_shares_except`] against a `scope` read once by the caller (and,
/// in [`reshare_all`], what it read once in `bulk`), for member `m` whose
/// shares are `held` and whose open outflow is `outflow`.
fn sync_shares_in(
    conn: &Connection,
    ctx: &Ctx<'_>,
    scope: &Scope,
    mut bulk: Option<&mut Bulk>,
    m: &HomeRecord,
    (held, outflow): (Vec<(String, String)>, Option<pb::OutflowView>),
    (resend, except): (bool, Option<&str>),
) -> Result<(), Error> {
    if held.is_empty() && scope.is_empty() {
        return Ok(());
    }
    // One basis per host: the one it holds while that still covers the
    // member (a host keeps the basis it got), else the first that does.
    let mut covering: Vec<(String, String)> = Vec::new();
    for (agreement_id, host) in scope.covering(conn, &m.member_id, outflow.as_ref())? {
        if except == Some(agreement_id.as_str()) {
            continue;
        }
        let held_basis = held
            .iter()
            .any(|(peer, basis)| *peer == host && *basis == agreement_id);
        match covering.iter_mut().find(|(_, h)| *h == host) {
            Some(entry) if held_basis => entry.0 = agreement_id,
            Some(_) => {}
            None => covering.push((agreement_id, host)),
        }
    }
    for (peer, _) in held
        .iter()
        .filter(|(peer, _)| !covering.iter().any(|(_, host)| host == peer))
    {
        let host = NodeId::parse(peer).map_err(|e| Error::invalid(e.to_string()))?;
        unshare(conn, ctx, &host, m, "the member left the agreement's scope")?;
        if let Some(bulk) = bulk.as_deref_mut() {
            if let Some(queued) = bulk.queued.get_mut(peer) {
                queued.insert(m.member_id.clone());
            }
        }
        conn.prepare_cached("DELETE FROM shares WHERE member_id = ?1 AND peer = ?2")?
            .execute(params![m.member_id, peer])?;
    }
    let outflow = outflow.unwrap_or_default();
    // The branch's contact and the release the member came by, read once
    // for all the hosts it goes to.
    let mut contact: Option<(String, String)> = None;
    let mut release: Option<ReleaseRef> = None;
    for (agreement_id, host) in &covering {
        let current = held
            .iter()
            .any(|(peer, basis)| peer == host && basis == agreement_id);
        if current && !resend {
            continue;
        }
        let host = NodeId::parse(host).map_err(|e| Error::invalid(e.to_string()))?;
        let contact = match &contact {
            Some(contact) => contact.clone(),
            None => contact
                .insert(branch_contact(conn, bulk.as_deref_mut(), &m.home_branch)?)
                .clone(),
        };
        let first = match bulk.as_deref_mut() {
            Some(bulk) => {
                let (after, upto) = (&bulk.range.0, bulk.range.1.as_deref());
                let queued = match bulk.queued.entry(host.to_string()) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(log::queued_entities(conn, &host, after, upto)?)
                    }
                };
                // Nothing of this member queued for the host: the append
                // has nothing to supersede. It is queued from now on.
                queued.insert(m.member_id.clone())
            }
            None => false,
        };
        let release = match &release {
            Some(release) => release,
            None => release.insert(own_release(conn, ctx, m)?),
        };
        let section = home_section_with(m, &outflow, agreement_id, contact, release);
        let payload = section.encode_to_vec();
        if first {
            log::append_unqueued(
                conn,
                &host,
                EventKind::HomeSection,
                &m.member_id,
                &payload,
                ctx.now_ms,
            )?;
        } else {
            log::append(
                conn,
                &host,
                EventKind::HomeSection,
                &m.member_id,
                &payload,
                ctx.now_ms,
            )?;
        }
        log::disclose(
            conn,
            &host,
            "home_section",
            &m.member_id,
            SHARED_FIELDS,
            m.generation,
            m.counter,
            agreement_id,
            ctx.now_ms,
        )?;
        if current {
            // The host holds it on this basis already: nothing to record.
            continue;
        }
        conn.prepare_cached(
            "INSERT INTO shares (member_id, peer, basis) VALUES (?1, ?2, ?3)
             ON CONFLICT (member_id, peer) DO UPDATE SET basis = excluded.basis",
        )?
        .execute(params![m.member_id, host.as_str(), agreement_id])?;
    }
    Ok(())
}

/// The name and contact of `branch`, from `bulk`'s cache when there is one
/// (a re-evaluation reads each branch once for all its members).
fn branch_contact(
    conn: &Connection,
    bulk: Option<&mut Bulk>,
    branch: &str,
) -> Result<(String, String), Error> {
    let Some(bulk) = bulk else {
        return org_contact(conn, branch);
    };
    if let Some(contact) = bulk.contacts.get(branch) {
        return Ok(contact.clone());
    }
    let contact = org_contact(conn, branch)?;
    bulk.contacts.insert(branch.to_owned(), contact.clone());
    Ok(contact)
}

fn share(conn: &Connection, ctx: &Ctx<'_>, m: &HomeRecord) -> Result<(), Error> {
    sync_shares(conn, ctx, m, true)
}

/// Re-evaluates every owned member against the active agreements: shares
/// with hosts newly covering, unshares from hosts no longer covering, all
/// in the caller's transaction. A re-evaluation still pending from
/// [`request_reshare`] is done by this one and cleared.
///
/// Only members that some active agreement covers or that some host holds
/// can change, so only those are visited (in member id order, as a visit
/// of every owned member would): the agreements' terms are decoded once,
/// and the members away are read with one query.
pub fn reshare_all(conn: &Connection, ctx: &Ctx<'_>) -> Result<(), Error> {
    reshare_range(conn, ctx, "", None)?;
    conn.execute("DELETE FROM meta WHERE key = ?1", [RESHARE_MARK])?;
    Ok(())
}

/// The `meta` key of a re-evaluation of every owned member that is under
/// way: its value is the last member id done ('' before the first chunk).
/// It is durable, so a crash between chunks resumes where it stopped.
const RESHARE_MARK: &str = "reshare_after";

/// Members one transaction of a chunked re-evaluation visits at most: an
/// activation sharing 100,000 members then holds the database for tens of
/// milliseconds at a time, not seconds, and the hosts pull the first
/// chunks while the owner appends the next ones.
pub const RESHARE_CHUNK: usize = 2_000;

/// Starts a re-evaluation of every owned member (as [`reshare_all`]) in
/// chunks of `ctx.reshare_chunk` members, each its own transaction: the first runs
/// now, in the caller's transaction; the rest, if any, are left durable for
/// [`reshare_next_chunk`]. A re-evaluation already under way starts over
/// (what changed since may concern members it has passed).
///
/// Between chunks a host may see an agreement active before all its
/// members arrive, as it would see them arrive over several batches
/// anyway; every member's own writes share it at once meanwhile.
pub fn request_reshare(conn: &Connection, ctx: &Ctx<'_>) -> Result<(), Error> {
    crate::store::set_meta(conn, RESHARE_MARK, "")?;
    reshare_next_chunk(conn, ctx)?;
    Ok(())
}

/// Whether a chunked re-evaluation is under way.
pub fn reshare_pending(conn: &Connection) -> Result<bool, Error> {
    Ok(crate::store::get_meta(conn, RESHARE_MARK)?.is_some())
}

/// Runs the next chunk of a re-evaluation under way, if any, in the
/// caller's transaction. Returns whether one ran (the caller commits and
/// calls again until it returns false). A reconciling node runs none: it
/// makes no owner decisions yet (docs/restore.md); each adoption of a peer
/// re-evaluates everything ([`reshare_all`], which clears the mark), and a
/// mark set after the last one runs once the reconciliation has ended.
pub fn reshare_next_chunk(conn: &Connection, ctx: &Ctx<'_>) -> Result<bool, Error> {
    let Some(after) = crate::store::get_meta(conn, RESHARE_MARK)? else {
        return Ok(false);
    };
    if crate::epoch::is_reconciling(conn)? {
        return Ok(false);
    }
    match reshare_range(conn, ctx, &after, Some(ctx.reshare_chunk.max(1)))? {
        Some(upto) => crate::store::set_meta(conn, RESHARE_MARK, &upto)?,
        None => {
            conn.execute("DELETE FROM meta WHERE key = ?1", [RESHARE_MARK])?;
        }
    }
    Ok(true)
}

/// The members away after `?2` (owned by `?1`), at most `?3`, each with
/// its open outflow, in member order. CROSS JOIN keeps the outflows
/// outside, walked by `outflows_one_open` from `?2` and stopped at the
/// limit; SQLite would otherwise walk every member of this node by
/// `members_counted` and sort them, a whole-table scan per chunk.
pub(crate) fn away_after_sql() -> String {
    let home_columns = HOME_COLUMNS
        .split(',')
        .map(|c| format!("m.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT {OUTFLOW_COLUMNS}, {home_columns} FROM outflows o
         CROSS JOIN members m ON m.member_id = o.member_id
         WHERE o.state = 'open' AND m.owner = ?1 AND o.member_id > ?2
         ORDER BY o.member_id LIMIT ?3"
    )
}

/// Re-evaluates the members with ids after `after`: all of them, or, with
/// a `limit`, those up to a boundary chosen so that each source of
/// candidates yields at most `limit`. Returns the boundary when members
/// after it are left, `None` when the range reached the end.
fn reshare_range(
    conn: &Connection,
    ctx: &Ctx<'_>,
    after: &str,
    limit: Option<usize>,
) -> Result<Option<String>, Error> {
    let scope = Scope::load(conn, ctx)?;
    let n = limit.map_or(-1, |l| l as i64);
    // The boundary: the smallest last id of a source that was cut short.
    let mut upto: Option<String> = None;
    let mut cut = |count: usize, last: Option<&String>| {
        if let Some(last) = last.filter(|_| limit.is_some_and(|l| count >= l)) {
            if upto.as_ref().is_none_or(|u| last < u) {
                upto = Some(last.clone());
            }
        }
    };
    let held: Vec<String> = conn
        .prepare_cached(
            "SELECT DISTINCT member_id FROM shares WHERE member_id > ?1
             ORDER BY member_id LIMIT ?2",
        )?
        .query_map(params![after, n], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    cut(held.len(), held.last());
    // The members away, each read whole with its outflow in one ordered
    // scan, rather than looked up one by one below.
    let mut away: Vec<(HomeRecord, pb::OutflowView)> = Vec::new();
    if scope.needs_outflow() {
        let mut stmt = conn.prepare_cached(&away_after_sql())?;
        let mut rows = stmt.query(params![ctx.me.as_str(), after, n])?;
        while let Some(row) = rows.next()? {
            away.push((read_home_at(row, OUTFLOW_COLUMNS_N)?, read_outflow(row)?));
        }
        cut(away.len(), away.last().map(|(m, _)| &m.member_id));
    }
    let within = |id: &str| id > after && upto.as_deref().is_none_or(|u| id <= u);
    let mut ids: BTreeSet<String> = held.into_iter().filter(|id| within(id)).collect();
    let mut read: HashMap<String, (HomeRecord, pb::OutflowView)> = HashMap::new();
    for (m, outflow) in away {
        if !within(&m.member_id) {
            continue;
        }
        if ids.contains(&m.member_id)
            || !scope
                .covering(conn, &m.member_id, Some(&outflow))?
                .is_empty()
        {
            ids.insert(m.member_id.clone());
            read.insert(m.member_id.clone(), (m, outflow));
        }
    }
    ids.extend(scope.listed_members().filter(|id| within(id)).cloned());
    // Every share held in the range, read at once.
    let mut shares: HashMap<String, Vec<(String, String)>> = HashMap::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT member_id, peer, basis FROM shares
             WHERE member_id > ?1 AND (?2 IS NULL OR member_id <= ?2)",
        )?;
        let mut rows = stmt.query(params![after, upto])?;
        while let Some(row) = rows.next()? {
            shares
                .entry(row.get(0)?)
                .or_default()
                .push((row.get(1)?, row.get(2)?));
        }
    }
    let mut bulk = Bulk {
        range: (after.to_owned(), upto.clone()),
        ..Bulk::default()
    };
    for id in ids {
        let held = shares.remove(&id).unwrap_or_default();
        let (m, outflow) = match read.remove(&id) {
            Some((m, outflow)) => (m, Some(outflow)),
            None => {
                let Some(m) = load_home(conn, &id)? else {
                    continue;
                };
                // Every open outflow of an owned member in the range was
                // read above, when the scope needs outflows at all.
                let outflow = if scope.needs_outflow() {
                    None
                } else {
                    open_outflow(conn, &id)?
                };
                (m, outflow)
            }
        };
        if m.owner == ctx.me.as_str() {
            sync_shares_in(
                conn,
                ctx,
                &scope,
                Some(&mut bulk),
                &m,
                (held, outflow),
                (false, None),
            )?;
        }
    }
    Ok(upto)
}

/// After the shares under agreement `basis` ended (or its copies were
/// dropped), shares the affected members again under any other agreement
/// with the same host that still covers them (`except` leaves `basis` out).
pub fn reshare_after_basis_ended(
    conn: &Connection,
    ctx: &Ctx<'_>,
    members: &[String],
    except: Option<&str>,
) -> Result<(), Error> {
    for id in members {
        if let Some(m) = load_home(conn, id)? {
            if m.owner == ctx.me.as_str() {
                sync_shares_except(conn, ctx, &m, true, except)?;
            }
        }
    }
    Ok(())
}

/// Tells `host` to delete its copy of each of `members` (owned here) that
/// is shared with it under no agreement now, whatever basis it holds the
/// copy under: after an agreement's end dropped sections still queued for
/// the host, its copy may be under a basis this node no longer records.
pub fn unshare_unless_shared(
    conn: &Connection,
    ctx: &Ctx<'_>,
    host: &NodeId,
    members: &[String],
    reason: &str,
) -> Result<(), Error> {
    for id in members {
        let shared: bool = conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM shares WHERE member_id = ?1 AND peer = ?2)",
            )?
            .query_row(params![id, host.as_str()], |r| r.get(0))?;
        if shared {
            continue;
        }
        if let Some(m) = load_home(conn, id)? {
            if m.owner == ctx.me.as_str() {
                unshare(conn, ctx, host, &m, reason)?;
            }
        }
    }
    Ok(())
}

fn home_section_with(
    m: &HomeRecord,
    outflow: &pb::OutflowView,
    basis: &str,
    (branch_name, branch_contact): (String, String),
    release: &ReleaseRef,
) -> pb::HomeSection {
    let birth_year = NaiveDate::parse_from_str(&m.birth_date, "%Y-%m-%d")
        .map(|d| d.year())
        .unwrap_or(0);
    pb::HomeSection {
        member_id: m.member_id.clone(),
        version: Some(pb::Version {
            generation: m.generation,
            counter: m.counter,
        }),
        owner: m.owner.clone(),
        name: m.name.clone(),
        gender: m.gender.clone(),
        birth_year,
        phone: m.phone.clone(),
        party_status: m.party_status.clone(),
        home_branch_name: branch_name,
        home_branch_contact: branch_contact,
        membership_state: m.membership_state.clone(),
        contact_status: m.contact_status.clone(),
        basis: basis.to_owned(),
        outflow: Some(pb::Outflow {
            outflow_id: outflow.outflow_id.clone(),
            destination_place: outflow.destination_place.clone(),
            destination_node: outflow.destination_node.clone(),
            direction: outflow.direction.clone(),
            departed_on: outflow.departed_on.clone(),
            expected_return: outflow.expected_return.clone(),
            reason: outflow.reason.clone(),
            fixed_location: outflow.fixed_location,
            certificate_no: outflow.certificate_no.clone(),
            certificate_issuer: outflow.certificate_issuer.clone(),
            certificate_issued_on: outflow.certificate_issued_on.clone(),
            card_no: outflow.card_no.clone(),
        }),
        letter_no: release.letter_no.clone(),
        transfer_id: release.transfer_id.clone(),
    }
}

/// The release that gave this node, `m`'s owner, its generation: named in
/// what it sends as the owner (docs/transfers.md, Two releases of one
/// generation).
fn own_release(conn: &Connection, ctx: &Ctx<'_>, m: &HomeRecord) -> Result<ReleaseRef, Error> {
    letter_of_generation(
        conn,
        ctx.me.as_str(),
        &m.member_id,
        &m.owner,
        m.generation,
        ReleaseRef::default(),
    )
}

/// Tells `host` to delete its copy of `m`'s home section, and drops the
/// shares still queued for it.
fn unshare(
    conn: &Connection,
    ctx: &Ctx<'_>,
    host: &NodeId,
    m: &HomeRecord,
    reason: &str,
) -> Result<(), Error> {
    log::drop_queued_home_sections(conn, host, &m.member_id)?;
    let release = own_release(conn, ctx, m)?;
    let payload = pb::Unshare {
        member_id: m.member_id.clone(),
        version: Some(pb::Version {
            generation: m.generation,
            counter: m.counter,
        }),
        reason: reason.to_owned(),
        letter_no: release.letter_no,
        transfer_id: release.transfer_id,
    };
    log::append(
        conn,
        host,
        EventKind::Unshare,
        &m.member_id,
        &payload.encode_to_vec(),
        ctx.now_ms,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::tests::TestNode;

    /// A re-evaluation's chunk reads the members away after its start in
    /// member order and stops at its limit: walking every member of the
    /// node and sorting them made each chunk cost the whole table.
    #[test]
    fn a_chunk_reads_the_members_away_in_order_without_a_scan_of_every_member() {
        let node = TestNode::new("pingliang");
        let plan: Vec<String> = node
            .store
            .with(|c| {
                let mut stmt =
                    c.prepare(&format!("EXPLAIN QUERY PLAN {}", super::away_after_sql()))?;
                let plan = stmt
                    .query_map(rusqlite::params!["pingliang", "", 2000], |r| r.get(3))?
                    .collect::<Result<Vec<String>, _>>()?;
                Ok(plan)
            })
            .unwrap();
        assert_eq!(plan.len(), 2, "{plan:?}");
        assert!(
            plan[0].contains("USING INDEX outflows_one_open (member_id>?)"),
            "{plan:?}"
        );
        assert!(plan[1].contains("(member_id=?)"), "{plan:?}");
    }
}
