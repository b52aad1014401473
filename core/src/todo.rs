//! The clerk's start page (待办): what waits on this node's operators, most
//! urgent first, each item with the command that handles it, naming records
//! as a clerk has them (letter numbers, agreement numbers, names).
//!
//! Urgency: the node's own troubles first (a reconciliation waiting, events
//! held in quarantine), then everything with a deadline by days left, then
//! the rest. Peers unreachable for long are the daemon's to add: link state
//! lives in its memory, not in the database.

use chrono::NaiveDate;
use rusqlite::{params, Connection};

use crate::{Ctx, Error};

/// Days before its expiry from which an open letter is listed.
pub const LETTER_EXPIRY_WARNING_DAYS: i64 = 7;

/// One thing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// What kind: `reconcile`, `quarantine`, `transfer_decide`,
    /// `agreement_sign`, `agreement_publish`, `agreement_ended_by_date`,
    /// `letter_expiring`, `receipt_overdue`, `contact_lost`,
    /// `contact_overdue`, `uncovered`, `reportin_confirm`,
    /// `reportin_no_agreement`, `peer_unreachable`.
    pub kind: &'static str,
    /// Days left before a deadline (negative: past it), if there is one.
    pub days_left: Option<i64>,
    /// What it is about, for people.
    pub subject: String,
    /// Why it waits.
    pub detail: String,
    /// The command that handles it.
    pub command: String,
}

impl Item {
    /// Sort key: lower is more urgent.
    pub fn rank(&self) -> (u8, i64) {
        match (self.kind, self.days_left) {
            ("reconcile" | "quarantine" | "peer_unreachable", _) => (0, 0),
            (_, Some(days)) => (1, days),
            _ => (2, 0),
        }
    }
}

fn days_until(today: NaiveDate, date: &str) -> Option<i64> {
    NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .ok()
        .map(|d| (d - today).num_days())
}

/// Everything waiting on this node's operators, most urgent first.
pub fn list(conn: &Connection, ctx: &Ctx<'_>) -> Result<Vec<Item>, Error> {
    let mut items = Vec::new();
    let today = ctx.today();
    let me = ctx.me.as_str();

    // A reconciliation waiting on peers: owner actions are refused meanwhile.
    if crate::epoch::is_reconciling(conn)? {
        let waiting: Vec<String> = conn
            .prepare("SELECT peer FROM reconcile_peers WHERE state = 'waiting' ORDER BY peer")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        items.push(Item {
            kind: "reconcile",
            days_left: None,
            subject: format!(
                "reconciliation after a restore, waiting for {}",
                waiting.join(", ")
            ),
            detail: "owner actions are refused until every peer answered".into(),
            command: match waiting.first() {
                Some(peer) => format!(
                    "liaisonctl reconcile status (or: liaisonctl reconcile --without-peer {peer})"
                ),
                None => "liaisonctl reconcile status".into(),
            },
        });
    }

    // Events from peers held in quarantine.
    let held: Vec<(String, i64)> = conn
        .prepare("SELECT origin, COUNT(*) FROM quarantine WHERE state = 'held' GROUP BY origin ORDER BY origin")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (origin, n) in held {
        items.push(Item {
            kind: "quarantine",
            days_left: None,
            subject: format!("{n} event(s) from {origin} held in quarantine"),
            detail: "they could not be applied; check them, then retry or leave them".into(),
            command: "liaisonctl quarantine list".into(),
        });
    }

    // Incoming transfers to decide, by days left on the letter.
    let pending: Vec<(String, String, String, String)> = conn
        .prepare(
            "SELECT letter_no, sender, member_name, expires_on FROM transfers
             WHERE direction = 'incoming' AND state = 'pending' ORDER BY expires_on, letter_no",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    for (letter, sender, name, expires_on) in pending {
        let past = crate::transfers::past_expiry(
            crate::transfers::TransferState::Pending,
            &expires_on,
            today,
        );
        items.push(Item {
            kind: "transfer_decide",
            days_left: days_until(today, &expires_on),
            subject: format!("letter {letter} from {sender}: {name}"),
            detail: if past {
                format!("an incoming transfer to accept or reject; its printed expiry {expires_on} has passed on this node's clock, and {sender}'s calendar decides whether it still holds: ask {sender} to extend it, or accept with --yes")
            } else {
                format!("an incoming transfer to accept or reject; the letter is valid until {expires_on}")
            },
            command: format!("liaisonctl transfer accept {letter} --branch ORG (or: transfer reject {letter} --reason-code CODE)"),
        });
    }

    // Open letters of ours expiring soon.
    let expiring: Vec<(String, String, String, String)> = conn
        .prepare(
            "SELECT letter_no, receiver, member_name, expires_on FROM transfers
             WHERE direction = 'outgoing' AND state = 'offered' ORDER BY expires_on, letter_no",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    for (letter, receiver, name, expires_on) in expiring {
        let days = days_until(today, &expires_on);
        if days.is_some_and(|d| d > LETTER_EXPIRY_WARNING_DAYS) {
            continue;
        }
        items.push(Item {
            kind: "letter_expiring",
            days_left: days,
            subject: format!("letter {letter} to {receiver}: {name}"),
            detail: format!("not yet accepted; it expires on {expires_on}"),
            command: format!(
                "liaisonctl transfer extend {letter} --days N (or: transfer cancel {letter})"
            ),
        });
    }

    // Receipts (回执) overdue: released a month ago or more, none back.
    let due_ms = ctx.now_ms - crate::transfers::RECEIPT_DUE_DAYS * 86_400_000;
    let overdue: Vec<(String, String, String, i64)> = conn
        .prepare(
            "SELECT letter_no, receiver, member_name, released_at_ms FROM transfers
             WHERE direction = 'outgoing' AND state = 'released' AND receipt_at_ms IS NULL
               AND released_at_ms IS NOT NULL AND released_at_ms <= ?1
             ORDER BY released_at_ms, letter_no",
        )?
        .query_map([due_ms], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<Result<_, _>>()?;
    for (letter, receiver, name, released_at_ms) in overdue {
        let days_since = (ctx.now_ms - released_at_ms) / 86_400_000;
        items.push(Item {
            kind: "receipt_overdue",
            days_left: Some(crate::transfers::RECEIPT_DUE_DAYS - days_since),
            subject: format!("letter {letter} to {receiver}: {name}"),
            detail: format!("released {days_since} days ago and no receipt yet; ask {receiver} (its node may be down)"),
            command: format!("liaisonctl transfer show {letter}"),
        });
    }

    // Agreements waiting on this node's signature or publication.
    let proposed: Vec<(String, String, String, String, u64, bool)> = conn
        .prepare(
            "SELECT a.agreement_id, a.number, a.outflow_node, a.inflow_node, a.version, a.pending_terms IS NOT NULL
             FROM agreements a WHERE a.state = 'proposed' ORDER BY a.number, a.agreement_id",
        )?
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
        })?
        .collect::<Result<_, _>>()?;
    for (agreement_id, number, outflow, inflow, version, pending) in proposed {
        let coordinator = outflow == me;
        if coordinator && pending {
            items.push(Item {
                kind: "agreement_publish",
                days_left: None,
                subject: format!("agreement {number} with {inflow}"),
                detail: format!(
                    "{inflow} sent a counter-proposal: publish it, or answer with your terms"
                ),
                command: format!(
                    "liaisonctl agreement accept {number} (or: agreement counter {number} ...)"
                ),
            });
            continue;
        }
        if coordinator || version == 0 {
            continue;
        }
        let signed: bool = conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM agreement_signatures WHERE agreement_id = ?1 AND version = ?2 AND signer = ?3)",
            )?
            .query_row(params![agreement_id, version, me], |r| r.get(0))?;
        if !signed {
            items.push(Item {
                kind: "agreement_sign",
                days_left: None,
                subject: format!("agreement {number} from {outflow}, version {version}"),
                detail: "waiting for this node's signature".into(),
                command: format!("liaisonctl agreement show {number}, then agreement accept {number} (or: agreement reject {number} --reason TEXT)"),
            });
        }
    }

    // Agreements this node hosts, past their end date on its clock, that
    // the coordinator has not ended yet: its end decides, so nothing
    // changes here until it does, except that the copies go after the grace
    // period. By days left until then.
    let hosted: Vec<String> = conn
        .prepare(
            "SELECT agreement_id FROM agreements WHERE state = 'active' AND inflow_node = ?1
             ORDER BY number, agreement_id",
        )?
        .query_map([me], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for agreement_id in hosted {
        let Some(a) = crate::agreements::load(conn, &agreement_id)? else {
            continue;
        };
        let Some(until) = crate::agreements::ended_by_date(conn, ctx, &a)? else {
            continue;
        };
        let dropped_on = crate::agreements::copies_dropped_on(until);
        let coordinator = &a.outflow_node;
        let copies = if today >= dropped_on {
            format!("this node dropped the copies under it on {dropped_on}")
        } else {
            format!("this node keeps the copies under it until {dropped_on}")
        };
        items.push(Item {
            kind: "agreement_ended_by_date",
            days_left: Some((dropped_on - today).num_days()),
            subject: format!("agreement {} with {coordinator}", a.number),
            detail: format!(
                "it passed its end date {until}; the coordinator {coordinator} has not confirmed the end (it may be unreachable): {copies}"
            ),
            command: format!("liaisonctl peer show {coordinator} (and: agreement show {})", a.number),
        });
    }

    // Members lost (失联) or overdue that no one is searching for yet.
    for (status, kind, detail) in [
        (
            "lost",
            "contact_lost",
            "lost contact (失联) for six months or more: start a search",
        ),
        (
            "overdue",
            "contact_overdue",
            "no contact for a while: get in touch before they count as lost",
        ),
    ] {
        let n: i64 = conn
            .prepare_cached(
                "SELECT COUNT(*) FROM members WHERE owner = ?1 AND contact_status = ?2",
            )?
            .query_row(params![me, status], |r| r.get(0))?;
        if n > 0 {
            items.push(Item {
                kind,
                days_left: None,
                subject: format!("{n} member(s) {status}"),
                detail: detail.into(),
                command: format!("liaisonctl member list --owned --status {status}"),
            });
        }
    }

    // Members away where no agreement covers them.
    let uncovered = crate::agreements::uncovered(conn, ctx)?;
    if uncovered.total > 0 {
        items.push(Item {
            kind: "uncovered",
            days_left: None,
            subject: format!(
                "{} member(s) away with no co-management agreement",
                uncovered.total
            ),
            detail: "no host organizes them: propose an agreement to the region's node".into(),
            command: "liaisonctl report uncovered".into(),
        });
    }

    // Report-in claims waiting for a clerk, and those that cannot be
    // confirmed for want of an agreement with the member's home region.
    let (mut to_confirm, mut no_agreement) = (0, 0);
    let places: Vec<(String, i64)> = conn
        .prepare_cached(
            "SELECT home_place, COUNT(*) FROM reportin_claims WHERE state = 'pending' GROUP BY home_place",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (place, n) in places {
        if crate::reportin::home_node(conn, ctx, &place)?.is_some() {
            to_confirm += n;
        } else {
            no_agreement += n;
        }
    }
    if to_confirm > 0 {
        items.push(Item {
            kind: "reportin_confirm",
            days_left: None,
            subject: format!("{to_confirm} report-in claim(s) to confirm"),
            detail: "members reported in at a service station: confirm each against the member it is (the report-in goes home), or reject it".into(),
            command: "liaisonctl reportin list".into(),
        });
    }
    if no_agreement > 0 {
        items.push(Item {
            kind: "reportin_no_agreement",
            days_left: None,
            subject: format!("{no_agreement} report-in claim(s) from regions without agreement"),
            detail: "held here and never sent: agree with the region's node, or reject them".into(),
            command: "liaisonctl report uncovered".into(),
        });
    }

    items.sort_by_key(Item::rank);
    Ok(items)
}
