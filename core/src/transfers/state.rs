//! A transfer as each side stores it: its direction and state, its row,
//! and the letter numbers a sender issues.

use liaison_proto::v1 as pb;
use liaison_types::identity::NodeId;
use prost::Message;
use rusqlite::{params, Connection, OptionalExtension};

use crate::{Ctx, Error};

/// Days after `expires_on` at which a receiver reduces an offer the sender
/// never decided to the bare facts, shown as "awaiting sender".
pub const RECEIVER_GRACE_DAYS: i64 = 30;

/// A released transfer with no receipt after this many days is overdue.
pub const RECEIPT_DUE_DAYS: i64 = 30;

/// Letter validity bounds, from the node's configuration.
#[derive(Debug, Clone, Copy)]
pub struct LetterRules {
    pub valid_days_default: u32,
    pub valid_days_max: u32,
}

impl Default for LetterRules {
    fn default() -> Self {
        LetterRules {
            valid_days_default: 30,
            valid_days_max: 90,
        }
    }
}

/// Reason codes a receiver may give for a rejection.
pub const REJECT_CODES: [&str; 5] = [
    "not_our_member",
    "wrong_receiver",
    "incomplete_record",
    "duplicate",
    "other",
];

/// Which side of a transfer this node is. (The defaults of this type and
/// [`TransferState`] only serve `Row`'s struct update syntax: every row
/// built names both.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// This node is the sender: the member's owner, who decides.
    #[default]
    Outgoing,
    /// This node is the receiver, who votes.
    Incoming,
}

/// A transfer's state at one side (`docs/transfers.md` lists the pairs that
/// end a letter on both sides).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransferState {
    // The sender's.
    #[default]
    Offered,
    Released,
    Expired,
    Cancelled,
    // The receiver's.
    Pending,
    Accepted,
    Aborted,
    /// Past its expiry plus the grace period with no decision of the
    /// sender: reduced to the bare facts.
    AwaitingSender,
    // Both sides'.
    Completed,
    Rejected,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Outgoing => "outgoing",
            Direction::Incoming => "incoming",
        }
    }

    pub fn parse(s: &str) -> Option<Direction> {
        match s {
            "outgoing" => Some(Direction::Outgoing),
            "incoming" => Some(Direction::Incoming),
            _ => None,
        }
    }
}

impl TransferState {
    pub const ALL: [TransferState; 10] = [
        TransferState::Offered,
        TransferState::Released,
        TransferState::Expired,
        TransferState::Cancelled,
        TransferState::Pending,
        TransferState::Accepted,
        TransferState::Aborted,
        TransferState::AwaitingSender,
        TransferState::Completed,
        TransferState::Rejected,
    ];

    /// The name stored, shown and sent to peers.
    pub fn as_str(self) -> &'static str {
        match self {
            TransferState::Offered => "offered",
            TransferState::Released => "released",
            TransferState::Expired => "expired",
            TransferState::Cancelled => "cancelled",
            TransferState::Pending => "pending",
            TransferState::Accepted => "accepted",
            TransferState::Aborted => "aborted",
            TransferState::AwaitingSender => "awaiting_sender",
            TransferState::Completed => "completed",
            TransferState::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<TransferState> {
        TransferState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
    }
}

impl std::fmt::Display for TransferState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl rusqlite::types::ToSql for Direction {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl rusqlite::types::FromSql for Direction {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let text = value.as_str()?;
        Direction::parse(text).ok_or_else(|| {
            rusqlite::types::FromSqlError::Other(
                format!("the database is damaged: a transfer direction is `{text}`").into(),
            )
        })
    }
}

impl rusqlite::types::ToSql for TransferState {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl rusqlite::types::FromSql for TransferState {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let text = value.as_str()?;
        TransferState::parse(text).ok_or_else(|| {
            rusqlite::types::FromSqlError::Other(
                format!("the database is damaged: a transfer state is `{text}`").into(),
            )
        })
    }
}

#[derive(Debug, Clone, Default)]
pub(super) struct Row {
    pub(super) transfer_id: String,
    pub(super) letter_no: String,
    pub(super) direction: Direction,
    pub(super) sender: String,
    pub(super) receiver: String,
    pub(super) member_id: String,
    pub(super) member_name: String,
    pub(super) state: TransferState,
    pub(super) issued_on: String,
    pub(super) expires_on: String,
    pub(super) valid_days: u32,
    pub(super) reason: String,
    pub(super) branch: String,
    pub(super) reject_code: String,
    pub(super) reject_reason: String,
    pub(super) abort_why: String,
    pub(super) offer: Option<Vec<u8>>,
    pub(super) released_at_ms: Option<i64>,
    pub(super) receipt_at_ms: Option<i64>,
    pub(super) reissue_of: String,
    pub(super) reissued_as: String,
    /// A restored sender issued this letter's number again: the transfer
    /// that has it too (the number stays as printed on both letters).
    pub(super) number_issued_again_as: String,
    pub(super) possible_duplicate: String,
    pub(super) updated_at_ms: i64,
    /// The generation the release gave the member (0: not released).
    pub(super) released_generation: u64,
}

pub(super) const COLUMNS: &str = "transfer_id, letter_no, direction, sender, receiver, member_id, member_name, state, issued_on,
    expires_on, valid_days, reason, branch, reject_code, reject_reason, abort_why, offer, released_at_ms,
    receipt_at_ms, reissue_of, reissued_as, possible_duplicate, updated_at_ms, released_generation,
    number_issued_again_as";

pub(super) fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        transfer_id: r.get(0)?,
        letter_no: r.get(1)?,
        direction: r.get(2)?,
        sender: r.get(3)?,
        receiver: r.get(4)?,
        member_id: r.get(5)?,
        member_name: r.get(6)?,
        state: r.get(7)?,
        issued_on: r.get(8)?,
        expires_on: r.get(9)?,
        valid_days: r.get(10)?,
        reason: r.get(11)?,
        branch: r.get(12)?,
        reject_code: r.get(13)?,
        reject_reason: r.get(14)?,
        abort_why: r.get(15)?,
        offer: r.get(16)?,
        released_at_ms: r.get(17)?,
        receipt_at_ms: r.get(18)?,
        reissue_of: r.get(19)?,
        reissued_as: r.get(20)?,
        possible_duplicate: r.get(21)?,
        updated_at_ms: r.get(22)?,
        released_generation: r.get(23)?,
        number_issued_again_as: r.get(24)?,
    })
}

pub(super) fn load(conn: &Connection, transfer_id: &str) -> Result<Option<Row>, Error> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM transfers WHERE transfer_id = ?1"
        ))?
        .query_row([transfer_id], read)
        .optional()?)
}

pub(super) fn require(conn: &Connection, transfer_id: &str) -> Result<Row, Error> {
    load(conn, transfer_id.trim())?.ok_or_else(|| {
        Error::not_found(format!(
            "no transfer {transfer_id}: `transfer list` shows the transfers"
        ))
    })
}

pub(super) fn save(conn: &Connection, t: &Row, now_ms: i64) -> Result<(), Error> {
    conn.execute(
        &format!(
            "INSERT INTO transfers ({COLUMNS}, created_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?23)
             ON CONFLICT (transfer_id) DO UPDATE SET member_name = excluded.member_name, state = excluded.state,
                 expires_on = excluded.expires_on, branch = excluded.branch, reject_code = excluded.reject_code,
                 reject_reason = excluded.reject_reason, abort_why = excluded.abort_why, offer = excluded.offer,
                 released_at_ms = excluded.released_at_ms, receipt_at_ms = excluded.receipt_at_ms,
                 reissued_as = excluded.reissued_as, possible_duplicate = excluded.possible_duplicate,
                 updated_at_ms = excluded.updated_at_ms, released_generation = excluded.released_generation,
                 number_issued_again_as = excluded.number_issued_again_as"
        ),
        params![
            t.transfer_id,
            t.letter_no,
            t.direction,
            t.sender,
            t.receiver,
            t.member_id,
            t.member_name,
            t.state,
            t.issued_on,
            t.expires_on,
            t.valid_days,
            t.reason,
            t.branch,
            t.reject_code,
            t.reject_reason,
            t.abort_why,
            t.offer,
            t.released_at_ms,
            t.receipt_at_ms,
            t.reissue_of,
            t.reissued_as,
            t.possible_duplicate,
            now_ms,
            t.released_generation,
            t.number_issued_again_as
        ],
    )?;
    Ok(())
}

/// The generation the member had in an offer as the receiver stores it
/// (`Row::offer`, the offered record): 0 where no offer is held (purged or
/// never stored) or it does not decode.
pub fn offered_generation(offer: Option<&[u8]>) -> u64 {
    offer
        .and_then(|o| pb::MemberRecord::decode(o).ok())
        .and_then(|r| r.version)
        .map_or(0, |v| v.generation)
}

/// A release this node made, as its transfer row records it.
pub(super) struct Release {
    pub(super) transfer_id: String,
    pub(super) letter_no: String,
    pub(super) receiver: String,
}

/// This node's releases of `member_id` (released or completed) that gave
/// it `generation`, by transfer id: more than one only where a restore made
/// this node release one generation twice (docs/transfers.md, Two releases
/// of one generation).
pub(super) fn releases_at(
    conn: &Connection,
    member_id: &str,
    generation: u64,
) -> Result<Vec<Release>, Error> {
    Ok(conn
        .prepare_cached(
            "SELECT transfer_id, letter_no, receiver FROM transfers
             WHERE member_id = ?1 AND direction = 'outgoing' AND released_generation = ?2
               AND state IN ('released', 'completed')
             ORDER BY transfer_id",
        )?
        .query_map(params![member_id, generation], |r| {
            Ok(Release {
                transfer_id: r.get(0)?,
                letter_no: r.get(1)?,
                receiver: r.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?)
}

pub(super) fn node(id: &str) -> Result<NodeId, Error> {
    NodeId::parse(id).map_err(|e| Error::invalid(e.to_string()))
}

pub(super) fn void(conn: &Connection, letter_no: &str, transfer_id: &str) -> Result<(), Error> {
    conn.execute(
        "INSERT OR IGNORE INTO void_letters (letter_no, transfer_id) VALUES (?1, ?2)",
        params![letter_no, transfer_id],
    )?;
    Ok(())
}

/// Whether the letter of transfer `transfer_id` was voided (a restored
/// sender may have issued its number again for another transfer).
pub(super) fn is_void(
    conn: &Connection,
    letter_no: &str,
    transfer_id: &str,
) -> Result<bool, Error> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM void_letters WHERE letter_no = ?1 AND transfer_id = ?2")?
        .query_row([letter_no, transfer_id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// A new letter number (docs/transfers.md), never reused.
pub(super) fn next_letter_no(conn: &Connection, ctx: &Ctx<'_>) -> Result<String, Error> {
    Ok(crate::letters::issue(conn, ctx.me.as_str(), ctx.today())?.to_string())
}
