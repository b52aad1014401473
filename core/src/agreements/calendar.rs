//! The decisions the clock brings: the coordinator activates a version and
//! expires the agreement, a host drops its copies past the end plus the
//! grace period; and what both parties do on an agreement's end.

use chrono::NaiveDate;
use liaison_proto::v1 as pb;
use liaison_proto::v1::EventKind;
use prost::Message;
use rusqlite::Connection;

use super::storage::{
    date, load, save, send, signature_of, state_message, terms_hash, version_terms, Agreement,
    AgreementState,
};
use crate::{log, members};
use crate::{Ctx, Error};

/// Days after `effective_until` at which a host drops its copies on its own
/// clock, whether or not it heard of the end.
pub const GRACE_DAYS: i64 = 30;

/// Decisions the calendar makes: the coordinator activates and expires;
/// the host drops copies at the end date plus grace. Run periodically.
pub fn tick(conn: &Connection, ctx: &Ctx<'_>) -> Result<usize, Error> {
    let ids: Vec<String> = conn
        .prepare("SELECT agreement_id FROM agreements WHERE state IN ('proposed', 'active') OR (inflow_node = ?1)")?
        .query_map([ctx.me.as_str()], |r| r.get(0))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut changed = 0;
    for id in ids {
        if let Some(mut a) = load(conn, &id)? {
            let before = (a.state, a.active_version, a.copies_dropped_for.clone());
            tick_one(conn, ctx, &mut a)?;
            if (a.state, a.active_version, a.copies_dropped_for.clone()) != before {
                changed += 1;
            }
        }
    }
    Ok(changed)
}

pub(super) fn tick_one(conn: &Connection, ctx: &Ctx<'_>, a: &mut Agreement) -> Result<(), Error> {
    let today = ctx.today();
    if a.outflow_node == ctx.me.as_str() {
        // A reconciling node makes no agreement decisions (docs/restore.md), also
        // not on applying a vote: the calendar's first tick after the
        // reconciliation does. Until then this node may still believe it
        // owns a member it released and forgot, and an activation would
        // share it.
        if a.is_final() || a.version == 0 || crate::epoch::is_reconciling(conn)? {
            return Ok(());
        }
        let Some(terms) = version_terms(conn, &a.agreement_id, a.version)? else {
            return Ok(());
        };
        let from = date(&terms.effective_from, "effective from")?;
        let until = date(&terms.effective_until, "effective until")?;
        let hash = terms_hash(&terms);
        let signed_by = |node: &str| -> Result<bool, Error> {
            Ok(signature_of(conn, &a.agreement_id, a.version, node)?.is_some_and(|h| h == hash))
        };
        let fully_signed = signed_by(&a.outflow_node)? && signed_by(&a.inflow_node)?;
        if a.active_version < a.version && fully_signed && today >= from && today <= until {
            a.active_version = a.version;
            a.state = AgreementState::Active;
            save(conn, a, ctx.now_ms)?;
            let inflow = a.other_party(ctx.me)?;
            send(
                conn,
                ctx,
                &inflow,
                EventKind::AgreementActivated,
                &a.agreement_id,
                state_message(a, "active", ctx.me.as_str()),
            )?;
            // Activation shares every member already in scope; an
            // amendment re-evaluates who is in scope. The first chunk in
            // this transaction, the rest in their own (docs/transfers.md).
            members::request_reshare(conn, ctx)?;
        }
        if let Some(active_until) = ended_by_date(conn, ctx, a)? {
            a.state = AgreementState::Expired;
            a.ended_reason = format!("effective until {active_until}");
            a.ended_by = ctx.me.to_string();
            save(conn, a, ctx.now_ms)?;
            let inflow = a.other_party(ctx.me)?;
            send(
                conn,
                ctx,
                &inflow,
                EventKind::AgreementEnded,
                &a.agreement_id,
                state_message(a, "expired", ctx.me.as_str()),
            )?;
            act_on_end(conn, ctx, a)?;
        }
        return Ok(());
    }
    // The host, on its own clock.
    host_grace(conn, ctx, a, false)
}

/// The end date of the active version, if `a` is still active and this
/// node's date (in its zone) is past it: the agreement has ended by
/// date. The coordinator expires it then (its calendar's next run, `tick`);
/// a host only shows it, since the coordinator's end decides, and drops its
/// copies after the grace period on its own.
pub fn ended_by_date(
    conn: &Connection,
    ctx: &Ctx<'_>,
    a: &Agreement,
) -> Result<Option<NaiveDate>, Error> {
    if a.state != AgreementState::Active {
        return Ok(None);
    }
    let Some(active) = version_terms(conn, &a.agreement_id, a.active_version)? else {
        return Ok(None);
    };
    let until = date(&active.effective_until, "effective until")?;
    Ok((ctx.today() > until).then_some(until))
}

/// The first day on which a host drops its copies under an agreement that
/// ended on `until` (more than [`GRACE_DAYS`] past it).
pub fn copies_dropped_on(until: NaiveDate) -> NaiveDate {
    until + chrono::Duration::days(GRACE_DAYS + 1)
}

/// The version whose end a host keeps copies until: the active one (a
/// version only proposed extends nothing), else the latest.
pub(super) fn host_version(a: &Agreement) -> u64 {
    if a.active_version > 0 {
        a.active_version
    } else {
        a.version
    }
}

/// At a host, on its own clock: past the end of the agreement's active
/// version plus the grace period, the copies shared under it go, once, and
/// the owner learns it (`CopiesDropped`, so that it shares again if it
/// renewed the agreement) if any went. `refused`: a share was just refused
/// for that reason, which the owner believes the host holds: it learns it
/// whatever this node held, else it would go on believing the host holds
/// the share it refused (and never share it again on a renewal).
pub(super) fn host_grace(
    conn: &Connection,
    ctx: &Ctx<'_>,
    a: &mut Agreement,
    refused: bool,
) -> Result<(), Error> {
    let version = host_version(a);
    let Some(terms) = version_terms(conn, &a.agreement_id, version)? else {
        return Ok(());
    };
    let until = date(&terms.effective_until, "effective until")?;
    let past = (ctx.today() - until).num_days() > GRACE_DAYS;
    if !past || (a.copies_dropped_for == terms.effective_until && !refused) {
        return Ok(());
    }
    let dropped = members::delete_copies_with_basis(conn, &a.agreement_id)?;
    a.copies_dropped_for = terms.effective_until.clone();
    save(conn, a, ctx.now_ms)?;
    if dropped > 0 || refused {
        let owner = a.other_party(ctx.me)?;
        let message = pb::AgreementState {
            agreement_id: a.agreement_id.clone(),
            version,
            state: "copies_dropped".into(),
            reason: a.ended_reason.clone(),
            by: ctx.me.to_string(),
        };
        send(
            conn,
            ctx,
            &owner,
            EventKind::CopiesDropped,
            &a.agreement_id,
            message.encode_to_vec(),
        )?;
    }
    Ok(())
}

/// Both parties act on the end itself: the owner stops sharing, the host
/// deletes its copies and tells the owner it sends nothing more under it.
pub(crate) fn act_on_end(conn: &Connection, ctx: &Ctx<'_>, a: &mut Agreement) -> Result<(), Error> {
    if a.outflow_node == ctx.me.as_str() {
        let inflow = a.other_party(ctx.me)?;
        let shared: Vec<String> = conn
            .prepare("SELECT member_id FROM shares WHERE basis = ?1")?
            .query_map([&a.agreement_id], |r| r.get(0))?
            .collect::<Result<Vec<_>, _>>()?;
        // A section dropped unsent may be the one that moved the host's
        // copy here from another basis: the host may still hold the member
        // under that one.
        let mut unsent = Vec::new();
        for member_id in &shared {
            if log::drop_queued_home_sections(conn, &inflow, member_id)? > 0 {
                unsent.push(member_id.clone());
            }
        }
        conn.execute("DELETE FROM shares WHERE basis = ?1", [&a.agreement_id])?;
        // Another agreement with the same host may still cover some of them.
        members::reshare_after_basis_ended(conn, ctx, &shared, None)?;
        members::unshare_unless_shared(
            conn,
            ctx,
            &inflow,
            &unsent,
            "the agreement it was shared under ended",
        )?;
    } else {
        members::delete_copies_with_basis(conn, &a.agreement_id)?;
        let owner = a.other_party(ctx.me)?;
        send(
            conn,
            ctx,
            &owner,
            EventKind::AgreementEndApplied,
            &a.agreement_id,
            state_message(a, "end_applied", ctx.me.as_str()),
        )?;
    }
    Ok(())
}
