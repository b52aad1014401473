//! Applying a batch of a peer's events (docs/replication.md).
//!
//! The batch and the cursor move in one transaction, and the cursor guards
//! it: events at or below it are skipped, and it never moves back. So a
//! batch applies exactly once, in origin order, across crashes, restarts,
//! duplicates and an old stream still draining. Each event is checked
//! against the authority of the record it carries; one that can never be
//! valid is quarantined with its reason, audited, and passed over, so one
//! bad event never blocks a peer.
//!
//! This module only dispatches each event to its concept (`hosting` for
//! home sections and host records, `agreements`, `transfers`), which
//! checks it and applies it, and moves the cursor.

use liaison_proto::v1 as pb;
use liaison_proto::v1::EventKind;
use liaison_types::identity::NodeId;
use rusqlite::{Connection, TransactionBehavior};

use crate::outcome::{ApplyReport, BatchError, Faults, Rejection};
use crate::{agreements, hosting, log, members, quarantine, transfers, Ctx, Error};

/// Applies `events` from `origin`'s log `log_id` in one IMMEDIATE transaction.
pub fn apply_batch(
    conn: &mut Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    log_id: &str,
    events: &[pb::Event],
) -> Result<ApplyReport, BatchError> {
    apply_batch_in(conn, ctx, origin, log_id, events, Faults::default())
}

/// [`apply_batch`], with the test-only switches `skip_authority` and
/// `cursor_in_separate_tx`.
#[cfg(feature = "faults")]
pub fn apply_batch_with_faults(
    conn: &mut Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    log_id: &str,
    events: &[pb::Event],
    faults: Faults,
) -> Result<ApplyReport, BatchError> {
    apply_batch_in(conn, ctx, origin, log_id, events, faults)
}

fn apply_batch_in(
    conn: &mut Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    log_id: &str,
    events: &[pb::Event],
    faults: Faults,
) -> Result<ApplyReport, BatchError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if crate::epoch::awaits_adoption(&tx, origin.as_str())? {
        return Err(BatchError::NotAdopted {
            origin: origin.to_string(),
        });
    }
    if crate::epoch::awaits_retake(&tx, origin.as_str(), log_id)? {
        return Err(BatchError::NotRetaken {
            origin: origin.to_string(),
        });
    }
    let start = log::cursor(&tx, origin, log_id)?;
    let mut report = ApplyReport {
        cursor: start,
        ..ApplyReport::default()
    };
    let mut memo = hosting::Memo::default();
    for event in events {
        if event.seq <= report.cursor {
            report.skipped += 1;
            continue;
        }
        // The end of a restored origin's re-emission, and under which of
        // its log ids each home-section copy arrived, need the log id
        // (docs/restore.md).
        let applied = if event.kind == EventKind::EpochComplete as i32 {
            hosting::apply_epoch_complete(&tx, ctx, origin, log_id, event).map(|_| ())
        } else {
            apply_event_in(&tx, ctx, origin, log_id, event, faults, &mut memo)
        };
        // A copy stored by this event records the log it came in; one the
        // event left as it was is marked as sent again in this log too,
        // unless it is newer than what the owner sent again (it came from
        // a branch of the owner's that its restore forgot).
        let left_as_it_was = memo.left_as_it_was.take();
        if let Some(sent) = left_as_it_was.filter(|_| applied.is_ok()) {
            members::note_copy_epoch(&tx, origin, &event.entity, log_id, sent)?;
        }
        match applied {
            Ok(()) => report.applied += 1,
            Err(rejection @ (Rejection::Invalid(_) | Rejection::Unknown(_))) => {
                let reason = quarantine::reason(&tx, rejection)?;
                quarantine::hold(&tx, ctx, origin, log_id, event, &reason)?;
                report.quarantined += 1;
            }
            Err(Rejection::Stop(reason)) => {
                return Err(BatchError::Stopped {
                    seq: event.seq,
                    kind: log::kind_name(event.kind).to_string(),
                    reason,
                })
            }
            Err(Rejection::Store(error)) => return Err(error.into()),
        }
        report.cursor = event.seq;
    }
    if faults.cursor_in_separate_tx() {
        // Broken on purpose: the events and their count commit first, the
        // cursor after, in its own transaction.
        log::advance_cursor(&tx, origin, log_id, start, report.applied, ctx.now_ms)?;
        tx.commit()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        log::advance_cursor(&tx, origin, log_id, report.cursor, 0, ctx.now_ms)?;
        tx.commit()?;
        return Ok(report);
    }
    log::advance_cursor(
        &tx,
        origin,
        log_id,
        report.cursor,
        report.applied,
        ctx.now_ms,
    )?;
    tx.commit()?;
    Ok(report)
}

/// Applies one event that came in `origin`'s log `log_id`, or says why it
/// can never be valid.
pub fn apply_event(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    log_id: &str,
    event: &pb::Event,
) -> Result<(), Rejection> {
    apply_event_in(
        conn,
        ctx,
        origin,
        log_id,
        event,
        Faults::default(),
        &mut hosting::Memo::default(),
    )
}

fn apply_event_in(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    log_id: &str,
    event: &pb::Event,
    faults: Faults,
    memo: &mut hosting::Memo,
) -> Result<(), Rejection> {
    let kind = EventKind::try_from(event.kind)
        .map_err(|_| Rejection::Invalid(format!("unknown event kind {}", event.kind)))?;
    if !matches!(kind, EventKind::HomeSection | EventKind::Unshare) {
        memo.forget();
    }
    match kind {
        EventKind::HomeSection
        | EventKind::Unshare
        | EventKind::HostSection
        | EventKind::Contact
        | EventKind::Activity => {
            hosting::apply(conn, ctx, (origin, log_id), event, kind, faults, memo)
        }
        EventKind::AgreementVersion
        | EventKind::AgreementVote
        | EventKind::AgreementActivated
        | EventKind::AgreementEnded
        | EventKind::AgreementEndApplied
        | EventKind::CopiesDropped => {
            if faults.skip_authority() {
                return Ok(());
            }
            agreements::apply(conn, ctx, origin, log_id, event, kind)
        }
        EventKind::TransferOffer
        | EventKind::TransferAccept
        | EventKind::TransferReject
        | EventKind::TransferRelease
        | EventKind::TransferAbort
        | EventKind::TransferReceipt
        | EventKind::Moved => transfers::apply(conn, ctx, origin, event, kind),
        EventKind::ShareWanted => crate::superseded::apply_share_wanted(conn, ctx, origin, event),
        // Applied by `apply_batch`, which knows the log id it arrived under.
        EventKind::EpochComplete => Err(Rejection::Invalid(
            "epoch_complete can only be applied with the batch it arrived in".into(),
        )),
        EventKind::Unspecified => Err(Rejection::Invalid("event kind unspecified".into())),
    }
}

/// Checks quarantined event `id` again (after an operator fixed what it
/// lacked, or after an upgrade). Applied: it leaves the quarantine; still
/// invalid: it stays, with the new reason. The cursor is not touched.
pub fn quarantine_retry(
    conn: &Connection,
    ctx: &Ctx<'_>,
    id: u64,
) -> Result<pb::QuarantineEntry, Error> {
    quarantine::retry(conn, ctx, id, apply_event)
}
