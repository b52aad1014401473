//! The decisions the clock brings to transfers.

use chrono::NaiveDate;
use liaison_types::validate;
use rusqlite::Connection;

use super::receiver::purge;
use super::sender::abort;
use super::state::{load, save, Direction, TransferState, RECEIVER_GRACE_DAYS};
use crate::{Ctx, Error};

/// The sender expires open offers past their date; the receiver reduces
/// offers the sender never decided, past the date plus grace.
pub fn tick(conn: &Connection, ctx: &Ctx<'_>) -> Result<usize, Error> {
    let today = ctx.today().to_string();
    let ids: Vec<String> = conn
        .prepare("SELECT transfer_id FROM transfers WHERE state IN ('offered', 'pending', 'accepted') AND expires_on < ?1")?
        .query_map([&today], |r| r.get(0))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut changed = 0;
    for id in ids {
        let Some(mut t) = load(conn, &id)? else {
            continue;
        };
        if t.direction == Direction::Outgoing {
            abort(conn, ctx, &mut t, TransferState::Expired, "expired")?;
            changed += 1;
        } else {
            let expires = validate::date("expires on", &t.expires_on, NaiveDate::MAX, true)?;
            if (ctx.today() - expires).num_days() > RECEIVER_GRACE_DAYS {
                t.state = TransferState::AwaitingSender;
                purge(&mut t);
                save(conn, &t, ctx.now_ms)?;
                changed += 1;
            }
        }
    }
    Ok(changed)
}
