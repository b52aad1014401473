//! What an agreement lets a host hold and send: a host's copies under it
//! until its end plus the grace period on the host's clock, and the host's
//! records at the coordinator only from before the host applied the end,
//! judged by their place in the host's log (docs/replication.md).

use liaison_types::identity::NodeId;
use rusqlite::{params, Connection, OptionalExtension};

use super::calendar::{host_grace, host_version, GRACE_DAYS};
use super::storage::{date, load, version_terms, Agreement, AgreementState};
use crate::outcome::Rejection;
use crate::{Ctx, Error};

/// At a host, on refusing a home section under `basis` because its own
/// clock is past the agreement's end plus the grace period: what its
/// calendar does then, at once, and the owner is told even if nothing was
/// held (`host_grace`). Else a copy held from before would stay behind the
/// refused update, or the owner would believe the host holds what it
/// refused, for good.
pub fn host_past_grace(conn: &Connection, ctx: &Ctx<'_>, basis: &str) -> Result<(), Error> {
    if let Some(mut a) = load(conn, basis)? {
        if a.inflow_node == ctx.me.as_str() && a.state == AgreementState::Active {
            host_grace(conn, ctx, &mut a, true)?;
        }
    }
    Ok(())
}

/// At a host: may it hold a home section shared under `basis` now? `None`
/// if no such agreement is known; `Some(false)` if it is not active here or
/// this node's clock is past its end plus the grace period.
pub fn host_may_hold(
    conn: &Connection,
    ctx: &Ctx<'_>,
    owner: &NodeId,
    basis: &str,
) -> Result<Option<bool>, Error> {
    let Some(a) = load(conn, basis)? else {
        return Ok(None);
    };
    if a.outflow_node != owner.as_str() {
        return Ok(None);
    }
    if a.inflow_node != ctx.me.as_str() || a.state != AgreementState::Active {
        return Ok(Some(false));
    }
    let Some(terms) = version_terms(conn, basis, host_version(&a))? else {
        return Ok(Some(false));
    };
    let until = date(&terms.effective_until, "effective until")?;
    Ok(Some((ctx.today() - until).num_days() <= GRACE_DAYS))
}

/// Whether a host record from `origin` with `basis` is legitimate here: the
/// basis is an agreement this node coordinates with `origin`, it was active,
/// the host appended the record before it applied the end in that log
/// (`(log_id, seq)`: the record's place in `origin`'s log; seq 0 for a
/// record the host reported in its holdings, which it made under the
/// agreement while it was open), and the member was shared under it.
pub fn host_record_allowed(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    member_id: &str,
    basis: &str,
    (log_id, seq): (&str, u64),
) -> Result<Result<(), Rejection>, Error> {
    let Some(a) = load(conn, basis)? else {
        return Ok(Err(Rejection::Unknown(format!(
            "basis `{basis}` is not an agreement known here"
        ))));
    };
    if a.outflow_node != ctx.me.as_str() || a.inflow_node != origin.as_str() {
        return Ok(Err(Rejection::Invalid(format!(
            "agreement {basis} is not between this node and {origin}"
        ))));
    }
    if a.active_version == 0 {
        return Ok(Err(Rejection::Invalid(format!(
            "agreement {basis} was never active"
        ))));
    }
    if a.host_end_applied && seq >= host_end_in(conn, &a, log_id)? {
        return Ok(Err(Rejection::Invalid(format!(
            "{origin} sent it after it applied the end of agreement {basis}"
        ))));
    }
    let shared: bool = conn
        .prepare_cached(
            "SELECT 1 FROM disclosures WHERE peer = ?1 AND record_id = ?2 AND basis = ?3 LIMIT 1",
        )?
        .query_row(params![origin.as_str(), member_id, basis], |_| Ok(()))
        .optional()?
        .is_some();
    if !shared {
        return Ok(Err(Rejection::Unknown(format!(
            "member {member_id} was never shared with {origin} under agreement {basis}"
        ))));
    }
    Ok(Ok(()))
}

/// Where the host applied the end of `a` (which it did) in its log
/// `log_id`: `u64::MAX` if not in that log. A host restored from a backup
/// older than its end starts a new log in which it forgot the end, so its
/// records there come before the end until it applies the end again there
/// (docs/replication.md, docs/restore.md). An end recorded before markers were kept per log
/// (migration 0009) holds for every log.
fn host_end_in(conn: &Connection, a: &Agreement, log_id: &str) -> Result<u64, Error> {
    let mut markers =
        conn.prepare_cached("SELECT log_id, seq FROM host_end_markers WHERE agreement_id = ?1")?;
    let markers: Vec<(String, u64)> = markers
        .query_map([&a.agreement_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    if markers.is_empty() {
        return Ok(a.host_end_seq);
    }
    Ok(markers
        .into_iter()
        .find(|(log, _)| log == log_id)
        .map_or(u64::MAX, |(_, seq)| seq))
}
