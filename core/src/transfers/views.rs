//! What operators see of transfers, and what `peer remove` must not leave
//! behind.

use chrono::NaiveDate;
use liaison_proto::v1 as pb;
use liaison_types::identity::NodeId;
use rusqlite::{params, Connection};

use super::state::{read, require, Direction, Row, TransferState, COLUMNS, RECEIPT_DUE_DAYS};
use crate::{Ctx, Error};

/// What a view depends on besides the row: this node's date (China
/// Standard Time) and whether its calendar runs (not while reconciling).
struct Here {
    today: NaiveDate,
    reconciling: bool,
}

impl Here {
    fn of(conn: &Connection, ctx: &Ctx<'_>) -> Result<Here, Error> {
        Ok(Here {
            today: ctx.today(),
            reconciling: crate::epoch::is_reconciling(conn)?,
        })
    }
}

/// Whether the letter is still open and this node's date is past its
/// printed expiry (`expires_on` is the last valid day). Open: offered at
/// the sender, pending or accepted at the receiver. Only the sender's
/// calendar decides expiry; this says what the date on the letter says on
/// this node's clock.
pub fn past_expiry(state: TransferState, expires_on: &str, today: NaiveDate) -> bool {
    let open = matches!(
        state,
        TransferState::Offered | TransferState::Pending | TransferState::Accepted
    );
    open && NaiveDate::parse_from_str(expires_on, "%Y-%m-%d").is_ok_and(|expires| today > expires)
}

fn next_step(t: &Row, here: &Here) -> String {
    let today = here.today.to_string();
    if past_expiry(t.state, &t.expires_on, here.today) {
        return match (t.direction, t.state) {
            (Direction::Outgoing, _) => format!(
                "the letter's validity ran out on {}: this node's calendar expires it {} (`transfer reissue` issues a new one then), and answers an accept arriving now as expired",
                t.expires_on,
                if here.reconciling {
                    "once the reconciliation has ended"
                } else {
                    "at its next run (within a minute)"
                }
            ),
            (_, TransferState::Pending) => format!(
                "the letter's printed expiry {} has passed on this node's clock; {} decides on its calendar whether it still holds: ask it to extend the letter (`transfer extend`), or `transfer accept {} --branch ORG --yes` accepts anyway (answered as expired if {} has expired it); `transfer reject {} --reason-code CODE` declines",
                t.expires_on, t.sender, t.transfer_id, t.sender, t.transfer_id
            ),
            _ => format!(
                "accepted past the letter's printed expiry {}: {} releases the member, unless its calendar had passed that date when the accept arrived; then it answers the accept as expired",
                t.expires_on, t.sender
            ),
        };
    }
    match (t.direction, t.state) {
        (Direction::Outgoing, TransferState::Offered) => format!(
            "waiting for {} to accept by {}; `transfer extend` or `transfer cancel` meanwhile (the member is frozen here)",
            t.receiver, t.expires_on
        ),
        (Direction::Outgoing, TransferState::Released) => {
            if t.released_at_ms.is_some() && t.issued_on.as_str() < today.as_str() {
                format!("released; waiting for the receipt (回执) from {}", t.receiver)
            } else {
                "released; the receipt is on its way".into()
            }
        }
        (Direction::Outgoing, TransferState::Completed) => "completed: receipt recorded".into(),
        (Direction::Outgoing, TransferState::Expired) => format!("the letter expired: `transfer reissue {}` issues a new one", t.transfer_id),
        (Direction::Outgoing, _) => "ended".into(),
        (Direction::Incoming, TransferState::Pending) => format!(
            "`transfer accept {} --branch ORG` or `transfer reject {} --reason-code CODE`",
            t.transfer_id, t.transfer_id
        ),
        (Direction::Incoming, TransferState::Accepted) => format!("accepted; {} releases the member", t.sender),
        (Direction::Incoming, TransferState::Completed) => "completed: the member is this node's now".into(),
        (Direction::Incoming, TransferState::AwaitingSender) => format!("the letter expired without a decision: awaiting {}", t.sender),
        _ => "ended".into(),
    }
}

fn to_view(t: &Row, here: &Here) -> pb::TransferView {
    pb::TransferView {
        transfer_id: t.transfer_id.clone(),
        letter_no: t.letter_no.clone(),
        direction: t.direction.as_str().into(),
        sender: t.sender.clone(),
        receiver: t.receiver.clone(),
        member_id: t.member_id.clone(),
        member_name: t.member_name.clone(),
        state: t.state.as_str().into(),
        issued_on: t.issued_on.clone(),
        expires_on: t.expires_on.clone(),
        valid_days: t.valid_days,
        reason: t.reason.clone(),
        branch: t.branch.clone(),
        reject_code: t.reject_code.clone(),
        reject_reason: t.reject_reason.clone(),
        abort_why: t.abort_why.clone(),
        released_at_ms: t.released_at_ms.unwrap_or(0),
        receipt_at_ms: t.receipt_at_ms.unwrap_or(0),
        reissue_of: t.reissue_of.clone(),
        reissued_as: t.reissued_as.clone(),
        possible_duplicate: t.possible_duplicate.clone(),
        next_step: next_step(t, here),
        updated_at_ms: t.updated_at_ms,
        past_expiry: past_expiry(t.state, &t.expires_on, here.today),
    }
}

pub fn view(
    conn: &Connection,
    ctx: &Ctx<'_>,
    transfer_id: &str,
) -> Result<pb::TransferView, Error> {
    Ok(to_view(&require(conn, transfer_id)?, &Here::of(conn, ctx)?))
}

pub fn list(
    conn: &Connection,
    ctx: &Ctx<'_>,
    req: &pb::TransferListRequest,
) -> Result<Vec<pb::TransferView>, Error> {
    let direction = match (req.incoming, req.outgoing) {
        (true, false) => "incoming",
        (false, true) => "outgoing",
        _ => "",
    };
    let overdue_before = ctx.now_ms - RECEIPT_DUE_DAYS * 86_400_000;
    let rows = conn
        .prepare(&format!(
            "SELECT {COLUMNS} FROM transfers
             WHERE (?1 = '' OR direction = ?1) AND (?2 = '' OR state = ?2)
               AND (NOT ?3 OR (direction = 'outgoing' AND state = 'released' AND released_at_ms < ?4))
             ORDER BY created_at_ms, transfer_id"
        ))?
        .query_map(params![direction, req.state.trim(), req.overdue_receipt, overdue_before], read)?
        .collect::<Result<Vec<_>, _>>()?;
    let here = Here::of(conn, ctx)?;
    Ok(rows.iter().map(|t| to_view(t, &here)).collect())
}

/// Open or unreceipted transfers with `peer`: what `peer remove` must not
/// leave behind.
pub fn open_with(conn: &Connection, peer: &NodeId) -> Result<Vec<String>, Error> {
    Ok(conn
        .prepare(
            "SELECT transfer_id FROM transfers WHERE (sender = ?1 OR receiver = ?1)
               AND state IN ('offered', 'released', 'pending', 'accepted')",
        )?
        .query_map([peer.as_str()], |r| r.get(0))?
        .collect::<Result<Vec<_>, _>>()?)
}
