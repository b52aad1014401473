//! Transfer of the organizational relationship (组织关系转接, DESIGN §5).
//!
//! The member is owned by at most one node at every instant. The sender is
//! the coordinator: its `release` and `abort` are decisions; the receiver's
//! `accept` and `reject` are votes. Every message is an event in the change
//! log, applied once; release is applied by the receiver in any state.

use chrono::NaiveDate;
use liaison_proto::v1 as pb;
use liaison_proto::v1::EventKind;
use prost::Message;
use rusqlite::{params, Connection, OptionalExtension};

use super::apply::{Faults, Rejection};
use super::reconcile::LETTER_COUNTER;
use super::{log, members, Ctx};
use crate::Error;
use liaison_types::identity::NodeId;
use liaison_types::validate;

/// Days after `expires_on` at which a receiver reduces an offer the sender
/// never decided to the bare facts, shown as "awaiting sender".
pub const RECEIVER_GRACE_DAYS: i64 = 30;
/// A released transfer with no receipt after this many days is overdue (R8).
pub const RECEIPT_DUE_DAYS: i64 = 30;

/// Letter validity bounds (DOMAIN R7), from the node's configuration.
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

/// A transfer's state at one side (DESIGN §5; `docs/transfers.md` lists the
/// pairs that end a letter on both sides).
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
struct Row {
    transfer_id: String,
    letter_no: String,
    direction: Direction,
    sender: String,
    receiver: String,
    member_id: String,
    member_name: String,
    state: TransferState,
    issued_on: String,
    expires_on: String,
    valid_days: u32,
    reason: String,
    branch: String,
    reject_code: String,
    reject_reason: String,
    abort_why: String,
    offer: Option<Vec<u8>>,
    released_at_ms: Option<i64>,
    receipt_at_ms: Option<i64>,
    reissue_of: String,
    reissued_as: String,
    /// A restored sender issued this letter's number again: the transfer
    /// that has it too (the number stays as printed on both letters).
    number_issued_again_as: String,
    possible_duplicate: String,
    updated_at_ms: i64,
    /// The generation the release gave the member (0: not released).
    released_generation: u64,
}

const COLUMNS: &str = "transfer_id, letter_no, direction, sender, receiver, member_id, member_name, state, issued_on,
    expires_on, valid_days, reason, branch, reject_code, reject_reason, abort_why, offer, released_at_ms,
    receipt_at_ms, reissue_of, reissued_as, possible_duplicate, updated_at_ms, released_generation,
    number_issued_again_as";

fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
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

fn load(conn: &Connection, transfer_id: &str) -> Result<Option<Row>, Error> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM transfers WHERE transfer_id = ?1"
        ))?
        .query_row([transfer_id], read)
        .optional()?)
}

fn require(conn: &Connection, transfer_id: &str) -> Result<Row, Error> {
    load(conn, transfer_id.trim())?.ok_or_else(|| {
        Error::not_found(format!(
            "no transfer {transfer_id}: `transfer list` shows the transfers"
        ))
    })
}

fn save(conn: &Connection, t: &Row, now_ms: i64) -> Result<(), Error> {
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

fn node(id: &str) -> Result<NodeId, Error> {
    NodeId::parse(id).map_err(|e| Error::invalid(e.to_string()))
}

fn void(conn: &Connection, letter_no: &str, transfer_id: &str) -> Result<(), Error> {
    conn.execute(
        "INSERT OR IGNORE INTO void_letters (letter_no, transfer_id) VALUES (?1, ?2)",
        params![letter_no, transfer_id],
    )?;
    Ok(())
}

/// Whether the letter of transfer `transfer_id` was voided (a restored
/// sender may have issued its number again for another transfer).
fn is_void(conn: &Connection, letter_no: &str, transfer_id: &str) -> Result<bool, Error> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM void_letters WHERE letter_no = ?1 AND transfer_id = ?2")?
        .query_row([letter_no, transfer_id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// The open outgoing transfer that freezes `member_id`, if any.
pub fn frozen_by(
    conn: &Connection,
    member_id: &str,
) -> Result<Option<(String, String, String)>, Error> {
    Ok(conn
        .prepare_cached(
            "SELECT transfer_id, letter_no, receiver FROM transfers
             WHERE member_id = ?1 AND direction = 'outgoing' AND state = 'offered'",
        )?
        .query_row([member_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?)
}

/// A new letter number: `<NODE>-<YEAR>-<NNNNNN>`, never reused.
fn next_letter_no(conn: &Connection, ctx: &Ctx<'_>) -> Result<String, Error> {
    let n = crate::store::counter(conn, LETTER_COUNTER)? + 1;
    crate::store::set_counter(conn, LETTER_COUNTER, n)?;
    Ok(format!(
        "{}-{}-{n:06}",
        ctx.me.as_str().to_uppercase(),
        ctx.today().format("%Y")
    ))
}

/// The member's complete record as this node holds it now.
fn record(conn: &Connection, member_id: &str) -> Result<pb::MemberRecord, Error> {
    let m = members::load_home(conn, member_id)?
        .ok_or_else(|| Error::not_found(format!("no member {member_id}")))?;
    let branch: String = conn
        .query_row(
            "SELECT name FROM orgs WHERE org_id = ?1",
            [&m.home_branch],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or_default();
    let outflows = conn
        .prepare(
            "SELECT outflow_id, destination_place, destination_node, direction, departed_on, expected_return, reason,
                    fixed_location, certificate_no, certificate_issuer, certificate_issued_on, card_no
             FROM outflows WHERE member_id = ?1 ORDER BY departed_on, outflow_id",
        )?
        .query_map([member_id], |r| {
            Ok(pb::Outflow {
                outflow_id: r.get(0)?,
                destination_place: r.get(1)?,
                destination_node: r.get(2)?,
                direction: r.get(3)?,
                departed_on: r.get(4)?,
                expected_return: r.get(5)?,
                reason: r.get(6)?,
                fixed_location: r.get(7)?,
                certificate_no: r.get(8)?,
                certificate_issuer: r.get(9)?,
                certificate_issued_on: r.get(10)?,
                card_no: r.get(11)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let host_sections = members::host_sections(conn, member_id)?
        .into_iter()
        .map(|h| pb::HostSection {
            member_id: member_id.to_owned(),
            version: Some(pb::Version {
                generation: h.generation,
                counter: h.counter,
            }),
            author: h.author,
            host_branch: h.host_branch,
            reported_on: h.reported_on,
            address: h.address,
            employer: h.employer,
            industry: h.industry,
            job: h.job,
            contact_person: h.contact_person,
            contact_phone: h.contact_phone,
            last_seen_at_host: h.last_seen_at_host,
            basis: h.basis,
        })
        .collect();
    let contacts = conn
        .prepare("SELECT contact_id, author, at, channel, by_whom, outcome, basis FROM contacts WHERE member_id = ?1 ORDER BY at, contact_id")?
        .query_map([member_id], |r| {
            Ok(pb::ContactEvent {
                contact_id: r.get(0)?,
                member_id: member_id.to_owned(),
                author: r.get(1)?,
                at: r.get(2)?,
                channel: r.get(3)?,
                by: r.get(4)?,
                outcome: r.get(5)?,
                basis: r.get(6)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let activities = conn
        .prepare("SELECT activity_id, author, kind, date, branch, hours, note, basis FROM activities WHERE member_id = ?1 ORDER BY date, activity_id")?
        .query_map([member_id], |r| {
            Ok(pb::ActivityRecord {
                activity_id: r.get(0)?,
                member_id: member_id.to_owned(),
                author: r.get(1)?,
                kind: r.get(2)?,
                date: r.get(3)?,
                branch: r.get(4)?,
                hours: r.get(5)?,
                note: r.get(6)?,
                basis: r.get(7)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(pb::MemberRecord {
        member_id: m.member_id.clone(),
        version: Some(pb::Version {
            generation: m.generation,
            counter: m.counter,
        }),
        name: m.name,
        gender: m.gender,
        birth_date: m.birth_date,
        ethnicity: m.ethnicity,
        native_place: m.native_place,
        national_id: m.national_id,
        education: m.education,
        occupation: m.occupation,
        origin: m.origin,
        party_status: m.party_status,
        joined_on: m.joined_on,
        full_member_on: m.full_member_on,
        home_branch_name: branch,
        phone: m.phone,
        home_address: m.home_address,
        membership_state: m.membership_state,
        contact_status: m.contact_status,
        outflows,
        host_sections,
        contacts,
        activities,
    })
}

fn disclose_record(
    conn: &Connection,
    ctx: &Ctx<'_>,
    to: &NodeId,
    r: &pb::MemberRecord,
    transfer_id: &str,
) -> Result<(), Error> {
    let v = r.version.unwrap_or_default();
    log::disclose(
        conn,
        to,
        "member_record",
        &r.member_id,
        "complete record incl. national_id, birth_date, home_address, native_place, outflows, host sections, contacts, activities",
        v.generation,
        v.counter,
        transfer_id,
        ctx.now_ms,
    )
}

// ---------------------------------------------------------------- sender

pub fn start(
    conn: &Connection,
    ctx: &Ctx<'_>,
    member_id: &str,
    to: &str,
    valid_days: u32,
    reason: &str,
    rules: LetterRules,
) -> Result<pb::TransferView, Error> {
    let member_id = validate::member_id(member_id)?;
    let receiver = node(to.trim())?;
    if receiver == *ctx.me {
        return Err(Error::invalid(
            "a member cannot be transferred to this node itself".into(),
        ));
    }
    crate::store::peers::require(conn, &receiver)?;
    let m = members::load_owned(conn, ctx, &member_id)?;
    let valid_days = if valid_days == 0 {
        rules.valid_days_default
    } else {
        valid_days
    };
    if valid_days > rules.valid_days_max {
        return Err(Error::invalid(format!(
            "a letter is valid at most {} days (transfers.valid_days_max); asked for {valid_days}",
            rules.valid_days_max
        )));
    }
    let today = ctx.today();
    let t = Row {
        transfer_id: ctx.new_id(),
        letter_no: next_letter_no(conn, ctx)?,
        direction: Direction::Outgoing,
        sender: ctx.me.to_string(),
        receiver: receiver.to_string(),
        member_id: member_id.clone(),
        member_name: m.name.clone(),
        state: TransferState::Offered,
        issued_on: today.to_string(),
        expires_on: (today + chrono::Duration::days(i64::from(valid_days))).to_string(),
        valid_days,
        reason: validate::text("reason", reason, 200)?,
        updated_at_ms: ctx.now_ms,
        ..Row::default()
    };
    save(conn, &t, ctx.now_ms)?;
    send_offer(conn, ctx, &t, false)?;
    view(conn, ctx, &t.transfer_id)
}

fn send_offer(conn: &Connection, ctx: &Ctx<'_>, t: &Row, extension: bool) -> Result<(), Error> {
    let record = record(conn, &t.member_id)?;
    let receiver = node(&t.receiver)?;
    disclose_record(conn, ctx, &receiver, &record, &t.transfer_id)?;
    let offer = pb::TransferOffer {
        transfer_id: t.transfer_id.clone(),
        letter_no: t.letter_no.clone(),
        sender: t.sender.clone(),
        receiver: t.receiver.clone(),
        issued_on: t.issued_on.clone(),
        expires_on: t.expires_on.clone(),
        valid_days: t.valid_days,
        reason: t.reason.clone(),
        record: Some(record),
        extension,
    };
    log::append(
        conn,
        &receiver,
        EventKind::TransferOffer,
        &t.transfer_id,
        &offer.encode_to_vec(),
        ctx.now_ms,
    )?;
    Ok(())
}

fn require_outgoing(conn: &Connection, transfer_id: &str) -> Result<Row, Error> {
    let t = require(conn, transfer_id)?;
    if t.direction != Direction::Outgoing {
        return Err(Error::conflict(format!(
            "transfer {} comes from {}: only the sender may do this",
            t.transfer_id, t.sender
        )));
    }
    Ok(t)
}

fn abort(
    conn: &Connection,
    ctx: &Ctx<'_>,
    t: &mut Row,
    state: TransferState,
    why: &str,
) -> Result<(), Error> {
    t.state = state;
    t.abort_why = why.into();
    save(conn, t, ctx.now_ms)?;
    void(conn, &t.letter_no, &t.transfer_id)?;
    let message = pb::TransferAbort {
        transfer_id: t.transfer_id.clone(),
        letter_no: t.letter_no.clone(),
        why: why.into(),
    };
    log::append(
        conn,
        &node(&t.receiver)?,
        EventKind::TransferAbort,
        &t.transfer_id,
        &message.encode_to_vec(),
        ctx.now_ms,
    )?;
    Ok(())
}

pub fn cancel(
    conn: &Connection,
    ctx: &Ctx<'_>,
    transfer_id: &str,
) -> Result<pb::TransferView, Error> {
    let mut t = require_outgoing(conn, transfer_id)?;
    if t.state != TransferState::Offered {
        return Err(Error::conflict(format!(
            "transfer {} is {}: only an open offer can be cancelled",
            t.transfer_id, t.state
        )));
    }
    abort(conn, ctx, &mut t, TransferState::Cancelled, "cancelled")?;
    view(conn, ctx, &t.transfer_id)
}

pub fn extend(
    conn: &Connection,
    ctx: &Ctx<'_>,
    transfer_id: &str,
    days: u32,
    rules: LetterRules,
) -> Result<pb::TransferView, Error> {
    let mut t = require_outgoing(conn, transfer_id)?;
    if t.state != TransferState::Offered {
        return Err(Error::conflict(format!(
            "transfer {} is {}: only an open offer can be extended",
            t.transfer_id, t.state
        )));
    }
    if days == 0 {
        return Err(Error::invalid(
            "extend by at least one day (--days N)".into(),
        ));
    }
    let issued = validate::date("issued on", &t.issued_on, NaiveDate::MAX, true)?;
    let expires = validate::date("expires on", &t.expires_on, NaiveDate::MAX, true)?;
    let new_expires = expires + chrono::Duration::days(i64::from(days));
    let total = (new_expires - issued).num_days();
    if total > i64::from(rules.valid_days_max) {
        return Err(Error::invalid(format!(
            "the letter would be valid {total} days from its issue on {issued}; the maximum is {} (re-issue it instead: `transfer reissue {}`)",
            rules.valid_days_max, t.transfer_id
        )));
    }
    t.expires_on = new_expires.to_string();
    t.valid_days = total as u32;
    save(conn, &t, ctx.now_ms)?;
    send_offer(conn, ctx, &t, true)?;
    view(conn, ctx, &t.transfer_id)
}

/// Cancels `transfer_id` (its letter becomes void) and opens a new transfer
/// of the same member to the same receiver with a new letter number.
pub fn reissue(
    conn: &Connection,
    ctx: &Ctx<'_>,
    transfer_id: &str,
    rules: LetterRules,
) -> Result<pb::TransferView, Error> {
    let mut old = require_outgoing(conn, transfer_id)?;
    if !matches!(old.state, TransferState::Offered | TransferState::Expired) {
        return Err(Error::conflict(format!(
            "transfer {} is {}: nothing to re-issue",
            old.transfer_id, old.state
        )));
    }
    if old.state == TransferState::Offered {
        abort(conn, ctx, &mut old, TransferState::Cancelled, "cancelled")?;
    }
    let new = start(
        conn,
        ctx,
        &old.member_id,
        &old.receiver,
        old.valid_days.min(rules.valid_days_max),
        &old.reason,
        rules,
    )?;
    old.reissued_as = new.transfer_id.clone();
    save(conn, &old, ctx.now_ms)?;
    conn.execute(
        "UPDATE transfers SET reissue_of = ?2 WHERE transfer_id = ?1",
        params![new.transfer_id, old.transfer_id],
    )?;
    view(conn, ctx, &new.transfer_id)
}

/// The sender releases: the receiver owns the member from now on; here a
/// tombstone with a forward pointer stays.
fn release(conn: &Connection, ctx: &Ctx<'_>, t: &mut Row) -> Result<(), Error> {
    let receiver = node(&t.receiver)?;
    let mut record = record(conn, &t.member_id)?;
    let version = record.version.unwrap_or_default();
    let generation = version.generation + 1;
    record.version = Some(pb::Version {
        generation,
        counter: version.counter + 1,
    });
    disclose_record(conn, ctx, &receiver, &record, &t.transfer_id)?;
    let message = pb::TransferRelease {
        transfer_id: t.transfer_id.clone(),
        letter_no: t.letter_no.clone(),
        sender: t.sender.clone(),
        receiver: t.receiver.clone(),
        generation,
        record: Some(record),
        released_on: ctx.today().to_string(),
    };
    log::append(
        conn,
        &receiver,
        EventKind::TransferRelease,
        &t.transfer_id,
        &message.encode_to_vec(),
        ctx.now_ms,
    )?;
    moved_here(conn, ctx, t, generation)?;
    t.state = TransferState::Released;
    t.released_at_ms = Some(ctx.now_ms);
    t.released_generation = generation;
    save(conn, t, ctx.now_ms)
}

/// The member went to `t`'s receiver at `generation`: other hosts are
/// told, and here a tombstone with a forward pointer stays.
fn moved_here(conn: &Connection, ctx: &Ctx<'_>, t: &Row, generation: u64) -> Result<(), Error> {
    tell_holders_moved(conn, ctx, t, generation)?;
    tombstone(
        conn,
        &t.member_id,
        generation,
        &t.receiver,
        "",
        &t.transfer_id,
        &t.letter_no,
        &ctx.today().to_string(),
    )
}

/// The transfer rule of a restore (DESIGN §7) found `t` completed at its
/// receiver: this node, which believed it still owned the member, may have
/// taken records other hosts made about it meanwhile. They go on to the
/// receiver with `t` as their basis, as records reaching a tombstone do
/// (§5); the receiver keeps what it already had (a record seen twice
/// changes nothing). Records this node or the receiver made are not
/// relayed. Returns how many were.
fn relay_held_records(conn: &Connection, ctx: &Ctx<'_>, t: &Row) -> Result<usize, Error> {
    let held = members::HostRecords::read(
        conn,
        "r.member_id = ?1 AND r.author NOT IN (?2, ?3)",
        params![t.member_id, ctx.me.as_str(), t.receiver],
    )?;
    let to = node(&t.receiver)?;
    let basis = || t.transfer_id.clone();
    let mut relayed = 0;
    for section in held.sections {
        let section = pb::HostSection {
            basis: basis(),
            ..section
        };
        // Not `append`: sections of several hosts of one member would
        // supersede each other (see `core::apply`).
        log::append_unqueued(
            conn,
            &to,
            EventKind::HostSection,
            &t.member_id,
            &section.encode_to_vec(),
            ctx.now_ms,
        )?;
        relayed += 1;
    }
    for contact in held.contacts {
        let contact = pb::ContactEvent {
            basis: basis(),
            ..contact
        };
        log::append(
            conn,
            &to,
            EventKind::Contact,
            &t.member_id,
            &contact.encode_to_vec(),
            ctx.now_ms,
        )?;
        relayed += 1;
    }
    for activity in held.activities {
        let activity = pb::ActivityRecord {
            basis: basis(),
            ..activity
        };
        log::append(
            conn,
            &to,
            EventKind::Activity,
            &t.member_id,
            &activity.encode_to_vec(),
            ctx.now_ms,
        )?;
        relayed += 1;
    }
    if relayed > 0 {
        tracing::info!(transfer = %t.transfer_id, member = %t.member_id, relayed, "restored: records other hosts made meanwhile relayed to the member's new owner");
    }
    Ok(relayed)
}

/// In the release's transaction: every other host holding a copy learns
/// the member moved (never the receiver), share events still queued go,
/// and this node shares the member no more.
fn tell_holders_moved(
    conn: &Connection,
    ctx: &Ctx<'_>,
    t: &Row,
    generation: u64,
) -> Result<(), Error> {
    let holders: Vec<String> = conn
        .prepare("SELECT peer FROM shares WHERE member_id = ?1 AND peer <> ?2")?
        .query_map(params![t.member_id, t.receiver], |r| r.get(0))?
        .collect::<Result<Vec<_>, _>>()?;
    for holder in holders {
        let moved = pb::Moved {
            member_id: t.member_id.clone(),
            generation,
            new_owner: t.receiver.clone(),
            transfer_id: t.transfer_id.clone(),
        };
        let holder = node(&holder)?;
        log::drop_queued_home_sections(conn, &holder, &t.member_id)?;
        log::append(
            conn,
            &holder,
            EventKind::Moved,
            &t.member_id,
            &moved.encode_to_vec(),
            ctx.now_ms,
        )?;
    }
    log::drop_queued_home_sections(conn, &node(&t.receiver)?, &t.member_id)?;
    conn.execute("DELETE FROM shares WHERE member_id = ?1", [&t.member_id])?;
    Ok(())
}

/// Reduces a member row to a tombstone: id, generation and where it went.
#[allow(clippy::too_many_arguments)]
fn tombstone(
    conn: &Connection,
    member_id: &str,
    generation: u64,
    to_node: &str,
    to_place: &str,
    transfer_id: &str,
    letter_no: &str,
    moved_on: &str,
) -> Result<(), Error> {
    conn.execute(
        "UPDATE members SET owner = ?2, generation = ?3, name = '', gender = '', birth_date = '', ethnicity = '',
             native_place = '', national_id = '', education = '', occupation = '', origin = '', party_status = '',
             joined_on = '', full_member_on = '', phone = '', home_address = '', contact_manual = '',
             contact_manual_at = '', moved_to_node = ?4, moved_to_place = ?5, moved_transfer_id = ?6,
             moved_letter_no = ?7, moved_on = ?8
         WHERE member_id = ?1",
        params![member_id, if to_node.is_empty() { to_place } else { to_node }, generation, to_node, to_place, transfer_id, letter_no, moved_on],
    )?;
    for table in ["outflows", "host_sections", "contacts", "activities"] {
        conn.execute(
            &format!("DELETE FROM {table} WHERE member_id = ?1"),
            [member_id],
        )?;
    }
    // A copy this node held as host of an owner before: stale now (a
    // restored node may hold one from its backup of a member that came here
    // and moved on since, DESIGN §7).
    conn.execute(
        "DELETE FROM home_copies WHERE member_id = ?1 AND generation < ?2",
        params![member_id, generation],
    )?;
    Ok(())
}

/// A transfer to a place with no node, recorded on paper: no message is
/// sent; the member becomes a tombstone pointing to the place.
pub fn out_on_paper(
    conn: &Connection,
    ctx: &Ctx<'_>,
    member_id: &str,
    place: &str,
    letter_no: &str,
    reason: &str,
) -> Result<pb::Member, Error> {
    let member_id = validate::member_id(member_id)?;
    let m = members::load_owned(conn, ctx, &member_id)?;
    crate::store::peers::validate_place(place.trim())?;
    let letter_no = validate::text("letter number", letter_no, 60)?;
    if letter_no.is_empty() {
        return Err(Error::invalid(
            "the paper letter's number is required (--letter NO)".into(),
        ));
    }
    // Hosts holding a copy are told to drop it: the member is gone.
    members::unshare_everywhere(conn, ctx, &m)?;
    let transfer_id = ctx.new_id();
    let today = ctx.today().to_string();
    let t = Row {
        transfer_id: transfer_id.clone(),
        letter_no: letter_no.clone(),
        direction: Direction::Outgoing,
        sender: ctx.me.to_string(),
        receiver: format!("place:{}", place.trim()),
        member_id: member_id.clone(),
        member_name: m.name.clone(),
        state: TransferState::Completed,
        issued_on: today.clone(),
        expires_on: today.clone(),
        reason: validate::text("reason", reason, 200)?,
        released_at_ms: Some(ctx.now_ms),
        updated_at_ms: ctx.now_ms,
        ..Row::default()
    };
    save(conn, &t, ctx.now_ms)?;
    tombstone(
        conn,
        &member_id,
        m.generation + 1,
        "",
        place.trim(),
        &transfer_id,
        &letter_no,
        &today,
    )?;
    members::member_view(conn, ctx, &member_id)
}

// -------------------------------------------------------------- receiver

fn require_incoming(conn: &Connection, transfer_id: &str) -> Result<Row, Error> {
    let t = require(conn, transfer_id)?;
    if t.direction != Direction::Incoming {
        return Err(Error::conflict(format!(
            "transfer {} goes to {}: only the receiver may do this",
            t.transfer_id, t.receiver
        )));
    }
    Ok(t)
}

pub fn accept(
    conn: &Connection,
    ctx: &Ctx<'_>,
    transfer_id: &str,
    branch: &str,
) -> Result<pb::TransferView, Error> {
    accept_with_faults(conn, ctx, transfer_id, branch, Faults::default())
}

/// [`accept`], with the test-only switch `receiver_owns_on_accept`.
pub fn accept_with_faults(
    conn: &Connection,
    ctx: &Ctx<'_>,
    transfer_id: &str,
    branch: &str,
    faults: Faults,
) -> Result<pb::TransferView, Error> {
    let mut t = require_incoming(conn, transfer_id)?;
    if t.state != TransferState::Pending {
        return Err(Error::conflict(format!(
            "transfer {} is {}: only a pending offer can be accepted",
            t.transfer_id, t.state
        )));
    }
    let branch = branch.trim();
    let known: bool = conn
        .query_row("SELECT 1 FROM orgs WHERE org_id = ?1", [branch], |_| Ok(()))
        .optional()?
        .is_some();
    if !known {
        return Err(Error::not_found(format!(
            "branch `{branch}` is not an organization of this node: pick one from `org list` (--branch ORG)"
        )));
    }
    t.branch = branch.to_owned();
    t.state = TransferState::Accepted;
    save(conn, &t, ctx.now_ms)?;
    let vote = pb::TransferVote {
        transfer_id: t.transfer_id.clone(),
        vote: "accept".into(),
        branch: branch.to_owned(),
        ..Default::default()
    };
    log::append(
        conn,
        &node(&t.sender)?,
        EventKind::TransferAccept,
        &t.transfer_id,
        &vote.encode_to_vec(),
        ctx.now_ms,
    )?;
    if faults.receiver_owns_on_accept {
        // Broken on purpose: the member is enrolled before `release`.
        if let Some(offer) = t.offer.as_deref() {
            let record = pb::MemberRecord::decode(offer)
                .map_err(|e| Error::invalid(format!("stored offer: {e}")))?;
            let generation = record.version.unwrap_or_default().generation + 1;
            install(conn, ctx, &record, generation, branch)?;
        }
    }
    view(conn, ctx, &t.transfer_id)
}

pub fn reject(
    conn: &Connection,
    ctx: &Ctx<'_>,
    transfer_id: &str,
    code: &str,
    reason: &str,
) -> Result<pb::TransferView, Error> {
    let mut t = require_incoming(conn, transfer_id)?;
    match t.state {
        TransferState::Pending => {}
        TransferState::Accepted => {
            return Err(Error::conflict(format!(
                "transfer {} was accepted: a receiver cannot reject after accepting; the sender decides",
                t.transfer_id
            )))
        }
        other => return Err(Error::conflict(format!("transfer {} is {other}", t.transfer_id))),
    }
    let code = code.trim();
    if !REJECT_CODES.contains(&code) {
        return Err(Error::invalid(format!(
            "reason code `{code}` is not one of {}: an organization may not refuse without cause",
            REJECT_CODES.join(", ")
        )));
    }
    t.reject_code = code.to_owned();
    t.reject_reason = validate::text("reason", reason, 500)?;
    t.state = TransferState::Rejected;
    purge(&mut t);
    save(conn, &t, ctx.now_ms)?;
    let vote = pb::TransferVote {
        transfer_id: t.transfer_id.clone(),
        vote: "reject".into(),
        reason_code: t.reject_code.clone(),
        reason: t.reject_reason.clone(),
        ..Default::default()
    };
    log::append(
        conn,
        &node(&t.sender)?,
        EventKind::TransferReject,
        &t.transfer_id,
        &vote.encode_to_vec(),
        ctx.now_ms,
    )?;
    view(conn, ctx, &t.transfer_id)
}

/// Drops everything the offer added beyond what the receiver holds as a
/// host: the record (with the ID number) and the name.
fn purge(t: &mut Row) {
    t.offer = None;
    t.member_name.clear();
    t.possible_duplicate.clear();
}

// ----------------------------------------------------------------- clock

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

// ------------------------------------------------------- incoming events

fn decode<M: Message + Default>(event: &pb::Event) -> Result<M, Rejection> {
    M::decode(event.payload.as_slice())
        .map_err(|e| Rejection::Invalid(format!("malformed transfer payload: {e}")))
}

/// A decision of the sender that cannot be applied stops the peer's stream
/// at that event (DESIGN §4): never quarantined.
fn cannot_apply(message: String) -> Rejection {
    Rejection::Stop(format!("transfer decision cannot be applied: {message}"))
}

pub fn apply(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    event: &pb::Event,
    kind: EventKind,
) -> Result<(), Rejection> {
    match kind {
        EventKind::TransferOffer => apply_offer(conn, ctx, origin, decode(event)?),
        EventKind::TransferAccept | EventKind::TransferReject => {
            apply_vote(conn, ctx, origin, decode(event)?)
        }
        EventKind::TransferRelease => {
            let release: pb::TransferRelease =
                pb::TransferRelease::decode(event.payload.as_slice())
                    .map_err(|e| cannot_apply(format!("malformed release: {e}")))?;
            apply_release(conn, ctx, origin, release)
        }
        EventKind::TransferAbort => {
            let abort: pb::TransferAbort = pb::TransferAbort::decode(event.payload.as_slice())
                .map_err(|e| cannot_apply(format!("malformed abort: {e}")))?;
            apply_abort(conn, ctx, origin, abort)
        }
        EventKind::TransferReceipt => apply_receipt(conn, ctx, origin, decode(event)?),
        EventKind::Moved => apply_moved(conn, origin, decode(event)?),
        _ => Err(Rejection::Invalid(format!(
            "not a transfer event: {kind:?}"
        ))),
    }
}

fn apply_offer(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    offer: pb::TransferOffer,
) -> Result<(), Rejection> {
    if offer.sender != origin.as_str() || offer.receiver != ctx.me.as_str() {
        return Err(Rejection::Invalid(format!(
            "offer {} names sender {} and receiver {}, but came from {origin} to this node",
            offer.transfer_id, offer.sender, offer.receiver
        )));
    }
    let record = offer
        .record
        .clone()
        .ok_or_else(|| Rejection::Invalid("offer without a record".into()))?;
    if is_void(conn, &offer.letter_no, &offer.transfer_id)? {
        return Ok(());
    }
    if let Some(mut t) = load(conn, &offer.transfer_id)? {
        if offer.extension && matches!(t.state, TransferState::Pending | TransferState::Accepted) {
            t.expires_on = offer.expires_on.clone();
            t.valid_days = offer.valid_days;
            t.offer = Some(record.encode_to_vec());
            save(conn, &t, ctx.now_ms)?;
        }
        return Ok(());
    }
    let duplicate: Option<String> = if record.national_id.is_empty() {
        None
    } else {
        conn.query_row(
            "SELECT member_id FROM members WHERE national_id = ?1 AND owner = ?2 AND member_id <> ?3 LIMIT 1",
            params![record.national_id, ctx.me.as_str(), record.member_id],
            |r| r.get(0),
        )
        .optional()?
    };
    let mut t = Row {
        transfer_id: offer.transfer_id.clone(),
        letter_no: offer.letter_no.clone(),
        direction: Direction::Incoming,
        sender: offer.sender.clone(),
        receiver: offer.receiver.clone(),
        member_id: record.member_id.clone(),
        member_name: record.name.clone(),
        state: TransferState::Pending,
        issued_on: offer.issued_on.clone(),
        expires_on: offer.expires_on.clone(),
        valid_days: offer.valid_days,
        reason: offer.reason.clone(),
        offer: Some(record.encode_to_vec()),
        possible_duplicate: duplicate.unwrap_or_default(),
        updated_at_ms: ctx.now_ms,
        ..Row::default()
    };
    // A sender restored from a backup that went on without this node
    // (`reconcile --without-peer`) may issue a letter number again; it
    // marks the forgotten transfer's number when it learns of it, and so
    // does this node, so that both are kept.
    let clash: Option<String> = conn
        .query_row(
            "SELECT transfer_id FROM transfers WHERE letter_no = ?1 AND direction = 'incoming' AND transfer_id <> ?2",
            params![t.letter_no, t.transfer_id],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(other) = clash {
        tracing::warn!(
            transfer = %t.transfer_id,
            other = %other,
            letter = %t.letter_no,
            sender = %origin,
            "a letter number was issued twice by a restored sender"
        );
        conn.execute(
            "UPDATE transfers SET number_issued_again_as = ?2 WHERE transfer_id = ?1",
            params![other, t.transfer_id],
        )?;
    }
    save(conn, &t, ctx.now_ms)?;
    if offer_is_stale(conn, ctx, &t)? {
        answer_stale(conn, ctx, &mut t)?;
        return Ok(());
    }
    // Auto-accept, by the operator's policy for this sender, members this
    // node co-manages under an active agreement.
    let policy: String = conn
        .query_row(
            "SELECT auto_accept_branch FROM peers WHERE node_id = ?1",
            [origin.as_str()],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or_default();
    if !policy.is_empty() && t.possible_duplicate.is_empty() {
        let covered = match members::load_copy(conn, &t.member_id)? {
            Some(copy) => {
                super::agreements::host_may_hold(conn, ctx, origin, &copy.basis)? == Some(true)
            }
            None => false,
        };
        if covered {
            accept(conn, ctx, &t.transfer_id, &policy)?;
            t = load(conn, &t.transfer_id)?.unwrap_or(t);
            tracing::info!(transfer = %t.transfer_id, "transfer accepted by policy");
        }
    }
    Ok(())
}

fn apply_vote(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    vote: pb::TransferVote,
) -> Result<(), Rejection> {
    let Some(mut t) = load(conn, &vote.transfer_id)? else {
        return Err(Rejection::Invalid(format!(
            "vote on unknown transfer {}",
            vote.transfer_id
        )));
    };
    if t.direction != Direction::Outgoing || t.receiver != origin.as_str() {
        return Err(Rejection::Invalid(format!(
            "{origin} is not the receiver of transfer {}",
            t.transfer_id
        )));
    }
    match (vote.vote.as_str(), t.state) {
        ("accept", TransferState::Expired | TransferState::Cancelled)
            if vote.already_received && may_release_again(conn, ctx, &t)? =>
        {
            tracing::warn!(transfer = %t.transfer_id, member = %t.member_id, state = %t.state, "restored: the receiver already received this member; released again");
            t.branch = vote.branch.clone();
            release(conn, ctx, &mut t)?;
        }
        ("accept", TransferState::Offered) => {
            let expires = validate::date("expires on", &t.expires_on, NaiveDate::MAX, true)
                .map_err(Error::from)?;
            let owned_here =
                members::load_home(conn, &t.member_id)?.is_some_and(|m| m.owner == ctx.me.as_str());
            if ctx.today() > expires && !vote.already_received {
                // Expiry is decided by the sender alone: too late.
                abort(conn, ctx, &mut t, TransferState::Expired, "late_accept")?;
            } else if !owned_here {
                // Another transfer took the member since this offer: this
                // node, restored to before the offer, went on without the
                // receiver (`reconcile --without-peer`), offered and
                // released the member again, and took this offer back from
                // the receiver's holdings. Releasing now would give the
                // member a second owner.
                tracing::warn!(transfer = %t.transfer_id, member = %t.member_id, "an accepted offer of a member another transfer took is cancelled");
                abort(
                    conn,
                    ctx,
                    &mut t,
                    TransferState::Cancelled,
                    "sender_restored",
                )?;
            } else {
                t.branch = vote.branch.clone();
                release(conn, ctx, &mut t)?;
            }
        }
        // An accept after the sender decided otherwise: tell it again.
        ("accept", TransferState::Expired | TransferState::Cancelled | TransferState::Rejected) => {
            let state = t.state;
            let why = if state == TransferState::Expired {
                "late_accept"
            } else {
                state.as_str()
            };
            abort(conn, ctx, &mut t, state, why)?;
        }
        ("reject", TransferState::Offered) => {
            t.reject_code = vote.reason_code.clone();
            t.reject_reason = vote.reason.clone();
            abort(conn, ctx, &mut t, TransferState::Rejected, "rejected")?;
        }
        ("accept" | "reject", _) => {}
        (other, _) => {
            return Err(Rejection::Invalid(format!(
                "unknown transfer vote `{other}`"
            )))
        }
    }
    Ok(())
}

fn apply_release(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    release: pb::TransferRelease,
) -> Result<(), Rejection> {
    if release.sender != origin.as_str() || release.receiver != ctx.me.as_str() {
        return Err(cannot_apply(format!(
            "release {} names sender {} and receiver {}, but came from {origin} to this node",
            release.transfer_id, release.sender, release.receiver
        )));
    }
    let record = release
        .record
        .clone()
        .ok_or_else(|| cannot_apply("release without a record".into()))?;
    let mut t = load(conn, &release.transfer_id)?.unwrap_or(Row {
        transfer_id: release.transfer_id.clone(),
        letter_no: release.letter_no.clone(),
        direction: Direction::Incoming,
        sender: release.sender.clone(),
        receiver: release.receiver.clone(),
        member_id: record.member_id.clone(),
        issued_on: release.released_on.clone(),
        expires_on: release.released_on.clone(),
        state: TransferState::Pending,
        updated_at_ms: ctx.now_ms,
        ..Row::default()
    });
    if t.state == TransferState::Completed {
        return Ok(());
    }
    // A release older than what this node knows of the member (it passed
    // the member on since, and was restored from a backup taken before this
    // release arrived): completed and receipted, but not installed.
    let stale = members::load_home(conn, &record.member_id)?
        .is_some_and(|m| m.owner != ctx.me.as_str() && m.generation > release.generation);
    let branch = if t.branch.is_empty() {
        intake_branch(conn, ctx)?
    } else {
        t.branch.clone()
    };
    if !stale {
        install(conn, ctx, &record, release.generation, &branch).map_err(Rejection::Store)?;
        super::apply::retry_held_about(conn, ctx, &record.member_id)?;
    }
    let duplicate: Option<String> = if record.national_id.is_empty() {
        None
    } else {
        conn.query_row(
            "SELECT member_id FROM members WHERE national_id = ?1 AND owner = ?2 AND member_id <> ?3 LIMIT 1",
            params![record.national_id, ctx.me.as_str(), record.member_id],
            |r| r.get(0),
        )
        .optional()?
    };
    t.state = TransferState::Completed;
    t.member_name = record.name.clone();
    t.branch = branch;
    t.offer = None;
    t.possible_duplicate = duplicate.unwrap_or_default();
    t.released_at_ms = Some(ctx.now_ms);
    t.receipt_at_ms = Some(ctx.now_ms);
    t.released_generation = release.generation;
    save(conn, &t, ctx.now_ms)?;
    send_receipt(conn, ctx, origin, &t.transfer_id, &t.letter_no)?;
    // The new owner shares under its own agreements from now on.
    if !stale {
        members::reshare_member(conn, ctx, &record.member_id)?;
    }
    Ok(())
}

/// Tells the sender that this node received the member by `transfer_id`.
fn send_receipt(
    conn: &Connection,
    ctx: &Ctx<'_>,
    sender: &NodeId,
    transfer_id: &str,
    letter_no: &str,
) -> Result<(), Error> {
    let receipt = pb::TransferReceipt {
        transfer_id: transfer_id.to_owned(),
        letter_no: letter_no.to_owned(),
        received_on: ctx.today().to_string(),
    };
    log::append(
        conn,
        sender,
        EventKind::TransferReceipt,
        transfer_id,
        &receipt.encode_to_vec(),
        ctx.now_ms,
    )?;
    Ok(())
}

/// Where members released without an accepted branch land until an
/// operator assigns them.
fn intake_branch(conn: &Connection, ctx: &Ctx<'_>) -> Result<String, Error> {
    conn.execute(
        "INSERT OR IGNORE INTO orgs (org_id, name, level, created_at_ms) VALUES ('transfer-intake', '转入待分配', '党支部', ?1)",
        [ctx.now_ms],
    )?;
    Ok("transfer-intake".into())
}

/// Makes the released record this node's own, every part with its author.
fn install(
    conn: &Connection,
    ctx: &Ctx<'_>,
    r: &pb::MemberRecord,
    generation: u64,
    branch: &str,
) -> Result<(), Error> {
    let version = r.version.unwrap_or_default();
    let m = members::HomeRecord {
        member_id: r.member_id.clone(),
        owner: ctx.me.to_string(),
        generation,
        counter: version.counter,
        name: r.name.clone(),
        gender: r.gender.clone(),
        birth_date: r.birth_date.clone(),
        ethnicity: r.ethnicity.clone(),
        native_place: r.native_place.clone(),
        national_id: r.national_id.clone(),
        education: r.education.clone(),
        occupation: r.occupation.clone(),
        origin: r.origin.clone(),
        party_status: r.party_status.clone(),
        joined_on: r.joined_on.clone(),
        full_member_on: r.full_member_on.clone(),
        home_branch: branch.to_owned(),
        phone: r.phone.clone(),
        home_address: r.home_address.clone(),
        membership_state: if r.membership_state.is_empty() {
            "normal".into()
        } else {
            r.membership_state.clone()
        },
        contact_status: "in_contact".into(),
        contact_manual: String::new(),
        contact_manual_at: String::new(),
        created_at_ms: ctx.now_ms,
        updated_at_ms: ctx.now_ms,
    };
    members::save_home_record(conn, &m)?;
    // The receiver was perhaps the member's host: the copy merges into the owned record.
    members::delete_copy(conn, &r.member_id)?;
    let released_on = ctx.today().to_string();
    for o in &r.outflows {
        conn.execute(
            "INSERT OR IGNORE INTO outflows (outflow_id, member_id, destination_place, destination_node, direction, departed_on,
                 expected_return, reason, fixed_location, certificate_no, certificate_issuer, certificate_issued_on, card_no,
                 state, returned_on, created_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 'returned', ?14, ?15)",
            params![
                o.outflow_id, r.member_id, o.destination_place, o.destination_node, o.direction, o.departed_on,
                o.expected_return, o.reason, o.fixed_location, o.certificate_no, o.certificate_issuer,
                o.certificate_issued_on, o.card_no, released_on, ctx.now_ms
            ],
        )?;
    }
    for h in &r.host_sections {
        let current = members::host_section(conn, &r.member_id, &h.author)?;
        let incoming = h.version.unwrap_or_default();
        if current
            .is_none_or(|c| (incoming.generation, incoming.counter) > (c.generation, c.counter))
        {
            members::save_host_section(conn, h, ctx.now_ms)?;
        }
    }
    for c in &r.contacts {
        members::save_contact(conn, c, ctx.now_ms)?;
    }
    for a in &r.activities {
        members::save_activity(conn, a, ctx.now_ms)?;
    }
    members::refresh_contact_status(conn, ctx, &r.member_id)?;
    Ok(())
}

fn apply_abort(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    abort: pb::TransferAbort,
) -> Result<(), Rejection> {
    void(conn, &abort.letter_no, &abort.transfer_id)?;
    let Some(mut t) = load(conn, &abort.transfer_id)? else {
        return Ok(());
    };
    if t.direction != Direction::Incoming || t.sender != origin.as_str() {
        return Err(cannot_apply(format!(
            "{origin} is not the sender of transfer {}",
            t.transfer_id
        )));
    }
    if t.state == TransferState::Completed {
        return Ok(());
    }
    // Aborted (expired, say) before this node answered an offer it finds
    // stale: the answer still goes, so the restored sender releases.
    if t.state == TransferState::Pending && offer_is_stale(conn, ctx, &t)? {
        answer_stale(conn, ctx, &mut t)?;
        return Ok(());
    }
    if t.state != TransferState::Rejected {
        t.state = TransferState::Aborted;
    }
    t.abort_why = abort.why.clone();
    purge(&mut t);
    save(conn, &t, ctx.now_ms)?;
    Ok(())
}

/// Whether this node received `t`'s member under this very offer, forgot it
/// and passed the member on since: the sender, restored from a backup older
/// than its release (and this node from one older than its receipt),
/// offers again what it released (DESIGN §7). Only then is the offer
/// answered as received; an offer that merely arrives late (cancelled
/// meanwhile, the member come here by other letters) waits for the
/// sender's decision like any other, so both sides record one outcome.
///
/// The evidence, all of which must hold:
/// - this node was restored from a backup: a node that never was keeps
///   every transfer it received, so an offer it has no row for is one it
///   never received the member under;
/// - the member is held elsewhere now, at a later generation;
/// - this node released the member from the generation this offer's
///   release gives (`offered + 1`). Generations rise by one with every
///   release and only the owner at the offer's generation (the sender) can
///   release it, so the member came here from the sender, under this
///   letter or a re-issue of it;
/// - not a re-issue: a re-issue offers the member at the same generation
///   under another letter, and if that one's release brought the member,
///   this offer is only an older letter, voided by the sender.
fn offer_is_stale(conn: &Connection, ctx: &Ctx<'_>, t: &Row) -> Result<bool, Error> {
    let Some(offer) = t.offer.as_deref() else {
        return Ok(false);
    };
    if !super::reconcile::was_restored(conn)? {
        return Ok(false);
    }
    let record = pb::MemberRecord::decode(offer)
        .map_err(|e| Error::invalid(format!("stored offer: {e}")))?;
    let offered = record.version.unwrap_or_default().generation;
    if !members::load_home(conn, &t.member_id)?
        .is_some_and(|m| m.owner != ctx.me.as_str() && m.generation > offered + 1)
    {
        return Ok(false);
    }
    let passed_on_from_offered: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM transfers
                 WHERE direction = 'outgoing' AND member_id = ?1 AND released_generation = ?2)",
        params![t.member_id, offered + 2],
        |r| r.get(0),
    )?;
    if !passed_on_from_offered {
        return Ok(false);
    }
    let received_by_another: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM transfers
                 WHERE direction = 'incoming' AND member_id = ?1 AND sender = ?2
                   AND transfer_id <> ?3 AND state = 'completed' AND released_generation = ?4)",
        params![t.member_id, t.sender, t.transfer_id, offered + 1],
        |r| r.get(0),
    )?;
    Ok(!received_by_another)
}

/// Answers a stale offer: this node received the member by it, so the
/// transfer is completed here, and the sender gets an accept saying so
/// (it releases what it forgot it released, and the release is not
/// installed here: it is older than what this node knows of the member)
/// and the receipt (a sender that still knows it released completes on
/// it: the accept alone would be refused as late there).
fn answer_stale(conn: &Connection, ctx: &Ctx<'_>, t: &mut Row) -> Result<(), Error> {
    tracing::warn!(transfer = %t.transfer_id, member = %t.member_id, sender = %t.sender, "restored: an offer of a member this node already received and passed on; answered as received");
    let offered = t
        .offer
        .as_deref()
        .and_then(|o| pb::MemberRecord::decode(o).ok())
        .and_then(|r| r.version)
        .map_or(0, |v| v.generation);
    t.state = TransferState::Completed;
    t.offer = None;
    t.released_at_ms = t.released_at_ms.or(Some(ctx.now_ms));
    t.receipt_at_ms = Some(ctx.now_ms);
    t.released_generation = offered + 1;
    save(conn, t, ctx.now_ms)?;
    let sender = node(&t.sender)?;
    let vote = pb::TransferVote {
        transfer_id: t.transfer_id.clone(),
        vote: "accept".into(),
        already_received: true,
        ..Default::default()
    };
    log::append(
        conn,
        &sender,
        EventKind::TransferAccept,
        &t.transfer_id,
        &vote.encode_to_vec(),
        ctx.now_ms,
    )?;
    send_receipt(conn, ctx, &sender, &t.transfer_id, &t.letter_no)?;
    Ok(())
}

/// After a restore's adoption: the offers this node holds pending, from
/// senders `of_sender` admits, that it now finds stale (`offer_is_stale`)
/// are answered. Returns how many.
pub fn answer_stale_offers(
    conn: &Connection,
    ctx: &Ctx<'_>,
    mut of_sender: impl FnMut(&str) -> Result<bool, Error>,
) -> Result<usize, Error> {
    let pending: Vec<(String, String)> = conn
        .prepare(
            "SELECT transfer_id, sender FROM transfers WHERE direction = 'incoming' AND state = 'pending'
             ORDER BY transfer_id",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut answered = 0;
    for (transfer_id, sender) in pending {
        if !of_sender(&sender)? {
            continue;
        }
        let Some(mut t) = load(conn, &transfer_id)? else {
            continue;
        };
        if offer_is_stale(conn, ctx, &t)? {
            answer_stale(conn, ctx, &mut t)?;
            answered += 1;
        }
    }
    Ok(answered)
}

/// Whether a sender may release `t` again although it let it expire or
/// cancelled it, on its receiver's word that it already received the
/// member: only a node restored from a backup can have forgotten a
/// release, and only a member still owned here and offered to nobody else
/// can be released.
fn may_release_again(conn: &Connection, ctx: &Ctx<'_>, t: &Row) -> Result<bool, Error> {
    if !super::reconcile::was_restored(conn)? {
        return Ok(false);
    }
    let owned = members::load_home(conn, &t.member_id)?.is_some_and(|m| m.owner == ctx.me.as_str());
    let offered_elsewhere = conn
        .prepare_cached(
            "SELECT 1 FROM transfers WHERE member_id = ?1 AND direction = 'outgoing' AND state = 'offered'
               AND transfer_id <> ?2",
        )?
        .query_row(params![t.member_id, t.transfer_id], |_| Ok(()))
        .optional()?
        .is_some();
    Ok(owned && !offered_elsewhere)
}

/// A restored receiver learns from the sender's holdings the sender's
/// decision on an offer it still holds open: the abort it applied before
/// and forgot, which the sender no longer holds in its log (it dropped the
/// events this node had applied when it was restored itself). Returns
/// whether it changed anything.
pub fn adopt_sender_decision(
    conn: &Connection,
    ctx: &Ctx<'_>,
    peer: &NodeId,
    held: &pb::HeldTransfer,
) -> Result<bool, Error> {
    if held.sender != peer.as_str() || held.receiver != ctx.me.as_str() {
        return Ok(false);
    }
    if !matches!(held.state.as_str(), "cancelled" | "expired" | "rejected") {
        return Ok(false);
    }
    let open = load(conn, &held.transfer_id)?.is_some_and(|t| {
        t.direction == Direction::Incoming
            && matches!(
                t.state,
                TransferState::Pending | TransferState::Accepted | TransferState::AwaitingSender
            )
    });
    if !open {
        return Ok(false);
    }
    let abort = pb::TransferAbort {
        transfer_id: held.transfer_id.clone(),
        letter_no: held.letter_no.clone(),
        why: held.state.clone(),
    };
    match apply_abort(conn, ctx, peer, abort) {
        Ok(()) => Ok(true),
        Err(Rejection::Store(e)) => Err(e),
        Err(Rejection::Invalid(why) | Rejection::Stop(why)) => Err(Error::invalid(why)),
    }
}

/// A restored receiver learns from the sender's holdings a transfer to it
/// that the sender released or completed (it holds this node's receipt)
/// and that this node forgot, of a member it holds at the release's
/// generation or later (its own backup, or the transfer rule of a later
/// transfer, says the member came here and maybe moved on): recorded as
/// completed, for the history, and receipted again where the sender still
/// waits for the receipt (this node's restore lost it). Known before this
/// node applies the sender's log, it keeps an older letter of the member,
/// voided by this re-issue, from being taken for the one that brought the
/// member (`offer_is_stale`).
///
/// Of a member not here yet, nothing is recorded while the release is
/// still in the sender's log for this node (its cursor went back with the
/// restore): applying it installs the member, and a transfer recorded
/// completed first would not. If the sender says the release is gone from
/// its log (`release_dropped`: the sender's own restore dropped it as
/// applied), it is recorded all the same: another peer's holdings may
/// bring the member back as passed on since, or both sides' restores lost
/// it (DESIGN §7); waiting for the member would leave the transfer open
/// for good. Returns whether it recorded anything.
pub fn adopt_received(
    conn: &Connection,
    ctx: &Ctx<'_>,
    peer: &NodeId,
    held: &pb::HeldTransfer,
) -> Result<bool, Error> {
    let to_me = held.sender == peer.as_str() && held.receiver == ctx.me.as_str();
    let receipted = match held.state.as_str() {
        "completed" => true,
        "released" => false,
        _ => return Ok(false),
    };
    if !to_me || load(conn, &held.transfer_id)?.is_some() {
        return Ok(false);
    }
    let released = if held.released_generation > 0 {
        held.released_generation
    } else {
        held.generation
    };
    let arrived = members::load_home(conn, &held.member_id)?
        .is_some_and(|m| released > 0 && m.generation >= released);
    let never_installed = receipted && held.release_dropped;
    if !arrived && !never_installed {
        return Ok(false);
    }
    let mut t = Row {
        transfer_id: held.transfer_id.clone(),
        letter_no: held.letter_no.clone(),
        direction: Direction::Incoming,
        sender: held.sender.clone(),
        receiver: held.receiver.clone(),
        member_id: held.member_id.clone(),
        member_name: held.member_name.clone(),
        state: TransferState::Completed,
        issued_on: held.issued_on.clone(),
        expires_on: held.expires_on.clone(),
        valid_days: held.valid_days,
        reason: held.reason.clone(),
        branch: held.branch.clone(),
        released_at_ms: Some(ctx.now_ms),
        receipt_at_ms: Some(ctx.now_ms),
        updated_at_ms: ctx.now_ms,
        released_generation: released,
        ..Row::default()
    };
    let clash: Option<String> = conn
        .query_row(
            "SELECT transfer_id FROM transfers WHERE letter_no = ?1 AND direction = 'incoming'",
            [&t.letter_no],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(other) = clash {
        t.number_issued_again_as = other;
    }
    save(conn, &t, ctx.now_ms)?;
    if !receipted {
        send_receipt(conn, ctx, peer, &t.transfer_id, &held.letter_no)?;
    }
    Ok(true)
}

fn apply_receipt(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    receipt: pb::TransferReceipt,
) -> Result<(), Rejection> {
    let Some(mut t) = load(conn, &receipt.transfer_id)? else {
        return Err(Rejection::Invalid(format!(
            "receipt for unknown transfer {}",
            receipt.transfer_id
        )));
    };
    if t.direction != Direction::Outgoing || t.receiver != origin.as_str() {
        return Err(Rejection::Invalid(format!(
            "{origin} is not the receiver of transfer {}",
            t.transfer_id
        )));
    }
    // The receiver installed the member, but this node holds the transfer
    // unreleased: it was restored from a backup older than its release and
    // learned from the receiver's holdings nothing of it (the receiver was
    // itself restored to before the offer when this node reconciled), and
    // the receiver's accept, sent again, came past the letter's expiry.
    // The receipt proves the release: released again, so that the member
    // has one owner and the letter one outcome.
    if matches!(
        t.state,
        TransferState::Offered | TransferState::Expired | TransferState::Cancelled
    ) && may_release_again(conn, ctx, &t)?
    {
        tracing::warn!(transfer = %t.transfer_id, member = %t.member_id, state = %t.state, "restored: a receipt for a member this node forgot it released; released again");
        release(conn, ctx, &mut t)?;
    }
    if t.state == TransferState::Released {
        t.state = TransferState::Completed;
        t.receipt_at_ms = Some(ctx.now_ms);
        save(conn, &t, ctx.now_ms)?;
    }
    Ok(())
}

fn apply_moved(conn: &Connection, origin: &NodeId, moved: pb::Moved) -> Result<(), Rejection> {
    let Some(copy) = members::load_copy(conn, &moved.member_id)? else {
        return Ok(());
    };
    if copy.owner != origin.as_str() && copy.owner != moved.new_owner {
        return Err(Rejection::Invalid(format!(
            "{origin} may not move member {}: its copy here is owned by {}",
            moved.member_id, copy.owner
        )));
    }
    if copy.version.unwrap_or_default().generation < moved.generation {
        members::delete_copy(conn, &moved.member_id)?;
    }
    Ok(())
}

/// Whether `origin` may relay a host record about `member_id` with `basis`
/// here: it released the member to this node by transfer `basis`.
pub fn relay_allowed(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    member_id: &str,
    basis: &str,
) -> Result<bool, Error> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM transfers WHERE transfer_id = ?1 AND direction = 'incoming' AND sender = ?2
               AND receiver = ?3 AND member_id = ?4 AND state = 'completed'",
        )?
        .query_row(params![basis, origin.as_str(), ctx.me.as_str(), member_id], |_| Ok(()))
        .optional()?
        .is_some())
}

// ----------------------------------------------------------------- views

fn next_step(t: &Row, today: &str) -> String {
    match (t.direction, t.state) {
        (Direction::Outgoing, TransferState::Offered) => format!(
            "waiting for {} to accept by {}; `transfer extend` or `transfer cancel` meanwhile (the member is frozen here)",
            t.receiver, t.expires_on
        ),
        (Direction::Outgoing, TransferState::Released) => {
            if t.released_at_ms.is_some() && t.issued_on.as_str() < today {
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

fn to_view(t: &Row, today: &str) -> pb::TransferView {
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
        next_step: next_step(t, today),
        updated_at_ms: t.updated_at_ms,
    }
}

pub fn view(
    conn: &Connection,
    ctx: &Ctx<'_>,
    transfer_id: &str,
) -> Result<pb::TransferView, Error> {
    Ok(to_view(
        &require(conn, transfer_id)?,
        &ctx.today().to_string(),
    ))
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
    let today = ctx.today().to_string();
    Ok(rows.iter().map(|t| to_view(t, &today)).collect())
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

// ------------------------------------------------------------- restore (DESIGN §7)

/// What reconciliation did with one transfer a peer reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adopted {
    /// Nothing to change here.
    Kept,
    /// Recorded here as the peer holds it (a final state, or an open offer).
    Recorded,
    /// The newest transfer of the member, accepted at the peer: released now.
    Released,
    /// Completed at the peer: the member is a tombstone here now. `edited`
    /// says the member was edited here after the restore (a conflict for
    /// the operator: the peer's record wins).
    Completed { edited: bool },
    /// An older transfer still open at the peer: aborted.
    Aborted,
    /// Not believed or not applicable; the reason, for the operator. The
    /// rest of the adoption goes on (one bad report never blocks it).
    Refused(String),
}

/// Checks at start that the letter counter is past every letter number
/// this node issued (`<NODE>-<YEAR>-<NNNNNN>`, paper letters excluded: an
/// operator types those). A counter behind them (edited by hand, or a
/// damaged file) would issue a number again: refused as a damaged
/// database, never repaired silently.
pub fn check_letter_counter(conn: &Connection, me: &NodeId) -> Result<(), Error> {
    let counter = crate::store::counter(conn, LETTER_COUNTER)?;
    let prefix = format!("{}-", me.as_str().to_uppercase());
    let mut highest: Option<(u64, String)> = None;
    let mut rows = conn.prepare(
        "SELECT letter_no FROM transfers WHERE direction = 'outgoing' AND receiver NOT LIKE 'place:%'",
    )?;
    for letter_no in rows.query_map([], |r| r.get::<_, String>(0))? {
        let letter_no = letter_no?;
        if !letter_no.starts_with(&prefix) {
            continue;
        }
        let seq = letter_seq(&letter_no);
        if highest.as_ref().is_none_or(|(h, _)| seq > *h) {
            highest = Some((seq, letter_no));
        }
    }
    match highest {
        Some((seq, letter_no)) if seq > counter => Err(Error::corrupt(
            "the letter counter (`counters` row `letter`)",
            counter.to_string(),
            format!("at least {seq}: this node issued letter {letter_no}, and a lower counter would issue its number again"),
        )),
        _ => Ok(()),
    }
}

/// The sequence part of a letter number (`<NODE>-<YEAR>-<NNNNNN>`).
pub fn letter_seq(letter_no: &str) -> u64 {
    letter_no
        .rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Reconciliation after a restore: adopts one outgoing transfer that the
/// receiver `peer` reports (`held`, in the receiver's state), by §7's rule.
/// `newest` says it has the highest letter number among the transfers of
/// its member that peers reported; `restored_at_ms` dates the restore.
/// Before a restored node finishes `t` (the newest of its member): its
/// other open offers of the member go. Only a reissued letter number (the
/// same number, another transfer, from an earlier branch of this node's
/// backups) leaves one open.
fn abort_other_offers(conn: &Connection, ctx: &Ctx<'_>, t: &Row) -> Result<(), Error> {
    let open: Vec<String> = conn
        .prepare(
            "SELECT transfer_id FROM transfers WHERE member_id = ?1 AND direction = 'outgoing' AND state = 'offered' AND transfer_id <> ?2",
        )?
        .query_map(params![t.member_id, t.transfer_id], |r| r.get(0))?
        .collect::<Result<Vec<_>, _>>()?;
    for id in open {
        if let Some(mut other) = load(conn, &id)? {
            tracing::warn!(transfer = %id, newer = %t.transfer_id, member = %t.member_id, "restored: an open offer of a member another transfer took is aborted");
            abort(
                conn,
                ctx,
                &mut other,
                TransferState::Cancelled,
                "sender_restored",
            )?;
        }
    }
    Ok(())
}

pub fn adopt_reported(
    conn: &Connection,
    ctx: &Ctx<'_>,
    held: &pb::HeldTransfer,
    newest: bool,
    restored_at_ms: i64,
    other_branch: bool,
) -> Result<Adopted, Error> {
    let seq = letter_seq(&held.letter_no);
    let current = crate::store::counter(conn, LETTER_COUNTER)?;
    let local = load(conn, &held.transfer_id)?;
    // A transfer this node does not know must have been issued after the
    // backup, so its letter is one of ours numbered past the backup's (not
    // past what an earlier peer's report made the counter jump to): a peer
    // cannot make this node adopt a letter it never could have issued.
    let floor = super::reconcile::letter_floor(conn)?;
    let ours = format!("{}-", ctx.me.as_str().to_uppercase());
    // A number up to the floor is believed only when the peer pulled a log
    // of another branch of this node's backups (`other_branch`: restored
    // before from an older backup, it issued numbers again there) and this
    // node holds another transfer under that number.
    let reissued = other_branch
        && conn
        .prepare_cached(
            "SELECT 1 FROM transfers WHERE letter_no = ?1 AND direction = 'outgoing' AND transfer_id <> ?2",
        )?
        .query_row(params![held.letter_no, held.transfer_id], |_| Ok(()))
        .optional()?
        .is_some();
    // Nor is a number up to the floor that no transfer here holds: the
    // counter passed it without issuing it (it jumped past a peer's report
    // in an earlier restore, and this copy was taken since), so a branch
    // this node forgot issued it. Issuing numbers never leaves one out.
    let passed_over = || -> Result<bool, Error> {
        let number = format!("%-{seq:06}");
        Ok(conn
            .prepare_cached(
                "SELECT 1 FROM transfers WHERE direction = 'outgoing' AND letter_no LIKE ?1",
            )?
            .query_row(params![number], |_| Ok(()))
            .optional()?
            .is_none())
    };
    if local.is_none()
        && !(held.letter_no.starts_with(&ours) && (seq > floor || reissued || passed_over()?))
    {
        return Ok(Adopted::Refused(format!(
            "transfer {} with letter {} is unknown here and not a letter this node issued after its backup (letters up to {floor})",
            held.transfer_id, held.letter_no
        )));
    }
    // Letter numbers jump past every one the peers hold.
    if seq > current {
        crate::store::set_counter(conn, LETTER_COUNTER, seq)?;
    }
    let mut t = local.unwrap_or(Row {
        transfer_id: held.transfer_id.clone(),
        letter_no: held.letter_no.clone(),
        direction: Direction::Outgoing,
        sender: ctx.me.to_string(),
        receiver: held.receiver.clone(),
        member_id: held.member_id.clone(),
        member_name: held.member_name.clone(),
        state: TransferState::Offered,
        issued_on: held.issued_on.clone(),
        expires_on: held.expires_on.clone(),
        valid_days: held.valid_days,
        reason: held.reason.clone(),
        branch: held.branch.clone(),
        updated_at_ms: ctx.now_ms,
        ..Row::default()
    });
    if t.direction != Direction::Outgoing || t.receiver != held.receiver {
        return Ok(Adopted::Refused(format!(
            "{} reports transfer {} as sent by this node to it, but this node holds it otherwise",
            held.receiver, held.transfer_id
        )));
    }
    // Gone on without this peer (`reconcile --without-peer`), this node may
    // have issued the same letter number again for another transfer: the
    // forgotten one is kept under a marked number, for the operator.
    let clash: Option<String> = conn
        .query_row(
            "SELECT transfer_id FROM transfers WHERE letter_no = ?1 AND direction = 'outgoing' AND transfer_id <> ?2",
            params![t.letter_no, t.transfer_id],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(other) = clash {
        tracing::warn!(
            transfer = %t.transfer_id,
            other = %other,
            letter = %t.letter_no,
            "restored: a letter number was issued twice while a peer was skipped"
        );
        t.number_issued_again_as = other;
    }
    let finished_here = matches!(t.state, TransferState::Released | TransferState::Completed);
    if !held.expires_on.is_empty() {
        t.expires_on = held.expires_on.clone();
    }
    match held.state.as_str() {
        "completed" => {
            if t.state == TransferState::Completed {
                return Ok(Adopted::Kept);
            }
            let home = members::load_home(conn, &t.member_id)?;
            let edited = home
                .as_ref()
                .is_some_and(|m| m.owner == ctx.me.as_str() && m.updated_at_ms > restored_at_ms);
            let owned_here = home.as_ref().is_some_and(|m| m.owner == ctx.me.as_str());
            // The generation the release gave the member, as the receiver
            // recorded it; where it did not (released before it recorded
            // that), at least one past this node's and no less than the
            // receiver holds now (which is higher if it moved on since).
            let released = if held.released_generation > 0 {
                held.released_generation
            } else {
                home.as_ref()
                    .map_or(0, |m| m.generation + 1)
                    .max(held.generation)
            };
            if newest && owned_here {
                // The receiver owns the member: here it is a tombstone, and
                // other hosts learn it moved.
                abort_other_offers(conn, ctx, &t)?;
                relay_held_records(conn, ctx, &t)?;
                moved_here(conn, ctx, &t, released)?;
                t.released_generation = released;
                // Home sections its owners since sent this node as their
                // host, held while it believed it owned the member.
                super::apply::retry_held_about(conn, ctx, &t.member_id)?;
            } else if newest
                && home
                    .as_ref()
                    .is_none_or(|m| m.owner != ctx.me.as_str() && m.generation < released)
            {
                // This node got the member after its backup and passed it
                // on (no row here), or got it back after its backup and
                // passed it on again (a tombstone of an earlier transfer):
                // a tombstone at this release says so, so that a late
                // release of the member to this node in between is seen as
                // stale, not installed over the later owner's record.
                if home.is_none() {
                    members::save_home_record(
                        conn,
                        &members::HomeRecord {
                            member_id: t.member_id.clone(),
                            owner: t.receiver.clone(),
                            generation: released,
                            home_branch: intake_branch(conn, ctx)?,
                            created_at_ms: ctx.now_ms,
                            updated_at_ms: ctx.now_ms,
                            ..members::HomeRecord::default()
                        },
                    )?;
                }
                tombstone(
                    conn,
                    &t.member_id,
                    released,
                    &t.receiver,
                    "",
                    &t.transfer_id,
                    &t.letter_no,
                    &ctx.today().to_string(),
                )?;
                t.released_generation = released;
            }
            if t.released_generation == 0 {
                // An older transfer, adopted as it is: the generation its
                // release gave is what shows later which letter brought
                // the member here (`offer_is_stale`).
                t.released_generation = held.released_generation;
            }
            t.state = TransferState::Completed;
            t.offer = None;
            t.released_at_ms = t.released_at_ms.or(Some(ctx.now_ms));
            t.receipt_at_ms = t.receipt_at_ms.or(Some(ctx.now_ms));
            save(conn, &t, ctx.now_ms)?;
            Ok(Adopted::Completed { edited })
        }
        "accepted" if newest => {
            if finished_here {
                return Ok(Adopted::Kept);
            }
            let owned_here =
                members::load_home(conn, &t.member_id)?.is_some_and(|m| m.owner == ctx.me.as_str());
            if !owned_here {
                // The member was written after the backup (or released
                // since, by a transfer the receiver reported completed):
                // this node holds no record to release. The offer ends;
                // the receiver purges it.
                tracing::warn!(
                    transfer = %t.transfer_id,
                    member = %t.member_id,
                    "restored: an accepted transfer of a member this node does not hold is aborted"
                );
                abort(
                    conn,
                    ctx,
                    &mut t,
                    TransferState::Cancelled,
                    "sender_restored",
                )?;
                return Ok(Adopted::Aborted);
            }
            abort_other_offers(conn, ctx, &t)?;
            // The receiver accepted into this branch; the release saves
            // the transfer as released.
            t.branch = held.branch.clone();
            release(conn, ctx, &mut t)?;
            Ok(Adopted::Released)
        }
        "pending" | "accepted" | "awaiting_sender" if !newest => {
            if finished_here
                || t.state != TransferState::Offered && load(conn, &t.transfer_id)?.is_some()
            {
                return Ok(Adopted::Kept);
            }
            abort(conn, ctx, &mut t, TransferState::Cancelled, "cancelled")?;
            Ok(Adopted::Aborted)
        }
        // The newest, still open at the receiver (`awaiting_sender`: past
        // its date there, the receiver waits for this node's decision, which
        // its calendar makes): the offer stands and freezes the member here,
        // if this node still holds the member.
        "pending" | "awaiting_sender" => {
            if load(conn, &t.transfer_id)?.is_some() {
                return Ok(Adopted::Kept);
            }
            let owned_here =
                members::load_home(conn, &t.member_id)?.is_some_and(|m| m.owner == ctx.me.as_str());
            if !owned_here {
                // Written after the backup: nothing to release if accepted.
                abort(
                    conn,
                    ctx,
                    &mut t,
                    TransferState::Cancelled,
                    "sender_restored",
                )?;
                return Ok(Adopted::Aborted);
            }
            save(conn, &t, ctx.now_ms)?;
            Ok(Adopted::Recorded)
        }
        "rejected" | "aborted" => {
            if finished_here
                || matches!(
                    t.state,
                    TransferState::Rejected | TransferState::Cancelled | TransferState::Expired
                )
            {
                return Ok(Adopted::Kept);
            }
            if held.state == "rejected" {
                abort(conn, ctx, &mut t, TransferState::Rejected, "rejected")?;
            } else {
                abort(conn, ctx, &mut t, TransferState::Cancelled, "cancelled")?;
            }
            Ok(Adopted::Recorded)
        }
        _ => Ok(Adopted::Kept),
    }
}
