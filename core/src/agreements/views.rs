//! What operators see of agreements, and which members they cover.

use chrono::NaiveDate;
use liaison_proto::v1 as pb;
use prost::Message;
use rusqlite::{params, Connection, OptionalExtension};

use super::calendar::{copies_dropped_on, ended_by_date, GRACE_DAYS};
use super::storage::{require, signature_of, version_terms, Agreement, AgreementState};
use crate::members;
use crate::{Ctx, Error};

/// The active agreements of this node (as outflow party) that cover an
/// owned member now: (agreement id, inflow node).
pub fn covering(
    conn: &Connection,
    ctx: &Ctx<'_>,
    member_id: &str,
) -> Result<Vec<(String, String)>, Error> {
    let scope = members::Scope::load(conn, ctx)?;
    let outflow = if scope.needs_outflow() {
        members::open_outflow(conn, member_id)?
    } else {
        None
    };
    scope.covering(conn, member_id, outflow.as_ref())
}

/// Members a proposal's view names of those it would cover.
const WOULD_COVER_SHOWN: usize = 20;

pub fn view(
    conn: &Connection,
    ctx: &Ctx<'_>,
    agreement_id: &str,
) -> Result<pb::AgreementView, Error> {
    let a = require(conn, agreement_id)?;
    let coordinator = a.outflow_node == ctx.me.as_str();
    let mut history = Vec::new();
    let versions: Vec<(u64, Vec<u8>, Vec<u8>, i64)> = conn
        .prepare("SELECT version, terms, terms_hash, published_at_ms FROM agreement_versions WHERE agreement_id = ?1 ORDER BY version")?
        .query_map([&a.agreement_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    for (version, terms, hash, published_at_ms) in versions {
        let signatures = conn
            .prepare("SELECT signer, terms_hash, certificate, verified_at_ms FROM agreement_signatures WHERE agreement_id = ?1 AND version = ?2 ORDER BY signer")?
            .query_map(params![a.agreement_id, version], |r| {
                let signed_hash: Vec<u8> = r.get(1)?;
                let certificate: Vec<u8> = r.get(2)?;
                Ok(pb::SignatureView {
                    signer: r.get(0)?,
                    version,
                    status: if signed_hash == hash { "valid".into() } else { "over other terms".into() },
                    certificate_fingerprint: liaison_types::identity::fingerprint(&certificate),
                    verified_at_ms: r.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        history.push(pb::AgreementVersionView {
            version,
            terms: pb::AgreementTerms::decode(terms.as_slice()).ok(),
            terms_hash: hex::encode(&hash),
            signatures,
            published_at_ms,
        });
    }
    let terms = history
        .last()
        .and_then(|h| h.terms.clone())
        .or_else(|| a.pending_terms.clone());
    // A proposal shows the coordinator whom it would cover, before anyone
    // signs: the members listed, or those away to a place the inflow node
    // serves (the first `WOULD_COVER_SHOWN` by name, and how many). Read by
    // ranges of the destination index, one per place the node serves, so
    // the cost follows the members covered, not all members: the view is
    // built in the writer's transaction of every agreement change.
    let mut covered: Option<u64> = None;
    let would_cover: Vec<String> =
        match (&terms, coordinator && a.state == AgreementState::Proposed) {
            (Some(terms), true) if terms.scope_kind == "members" => {
                let mut names = Vec::new();
                for id in &terms.scope_members {
                    let name: Option<String> = conn
                        .query_row(
                            "SELECT name FROM members WHERE member_id = ?1 AND owner = ?2",
                            params![id, ctx.me.as_str()],
                            |r| r.get(0),
                        )
                        .optional()?;
                    names.extend(name);
                }
                names
            }
            (Some(_), true) => {
                // Place codes are digits: every code starting with `p` sorts
                // from `p` up to `p:` (':' follows '9'). CROSS JOIN keeps
                // this order (the places, the outflows in their ranges, their
                // members), which SQLite would not choose by itself: it would
                // walk every member of this node.
                const AWAY_TO_SERVED: &str = "FROM peer_places p
                 CROSS JOIN outflows o
                 CROSS JOIN members m
                 WHERE p.node_id = ?2 AND o.state = 'open' AND o.destination_place >= p.place
                   AND o.destination_place < p.place || ':'
                   AND m.member_id = o.member_id AND m.owner = ?1";
                covered = Some(conn.query_row(
                    &format!("SELECT COUNT(DISTINCT o.member_id) {AWAY_TO_SERVED}"),
                    params![ctx.me.as_str(), a.inflow_node],
                    |r| r.get(0),
                )?);
                conn.prepare(&format!(
                    "SELECT DISTINCT m.name, m.member_id {AWAY_TO_SERVED}
                 ORDER BY m.name, m.member_id LIMIT {WOULD_COVER_SHOWN}"
                ))?
                .query_map(params![ctx.me.as_str(), a.inflow_node], |r| r.get(0))?
                .collect::<Result<_, _>>()?
            }
            _ => Vec::new(),
        };
    let members_in_scope: u64 = if let Some(covered) = covered {
        covered
    } else if !would_cover.is_empty() {
        would_cover.len() as u64
    } else if coordinator {
        conn.query_row(
            "SELECT COUNT(*) FROM shares WHERE basis = ?1",
            [&a.agreement_id],
            |r| r.get(0),
        )?
    } else {
        conn.query_row(
            "SELECT COUNT(*) FROM home_copies WHERE basis = ?1",
            [&a.agreement_id],
            |r| r.get(0),
        )?
    };
    let signed_by_me = signature_of(conn, &a.agreement_id, a.version, ctx.me.as_str())?.is_some();
    let active_until = match version_terms(conn, &a.agreement_id, a.active_version)? {
        Some(active) if a.active_version > 0 => active.effective_until,
        _ => String::new(),
    };
    let ended = ended_by_date(conn, ctx, &a)?;
    let (shown_state, past_end_step) = match ended {
        Some(until) => {
            let shown = past_end(conn, ctx, &a, until)?;
            (shown.state, Some(shown.next_step))
        }
        None => (a.state.as_str().to_owned(), None),
    };
    let next_step = match (a.state, coordinator) {
        (AgreementState::Proposed, true) if a.pending_terms.is_some() => format!(
            "{} sent a counter-proposal: `agreement accept {}` publishes it, or `agreement counter` with your terms",
            a.inflow_node, a.agreement_id
        ),
        (AgreementState::Proposed, true) if a.version == 0 => "waiting".into(),
        (AgreementState::Proposed, true) => format!(
            "waiting for {} to accept version {}; it activates on {} once both have signed",
            a.inflow_node,
            a.version,
            terms.as_ref().map(|t| t.effective_from.as_str()).unwrap_or("?")
        ),
        (AgreementState::Proposed, false) if a.version == 0 => format!("your proposal is with {}, which publishes it as version 1", a.outflow_node),
        (AgreementState::Proposed, false) if a.pending_terms.is_some() => format!("your counter-proposal is with {}", a.outflow_node),
        (AgreementState::Proposed, false) if signed_by_me => format!(
            "signed; {} activates it on its clock from {}",
            a.outflow_node,
            terms.as_ref().map(|t| t.effective_from.as_str()).unwrap_or("?")
        ),
        (AgreementState::Proposed, false) => format!(
            "`agreement accept {}` signs version {}, `agreement counter` proposes changes, `agreement reject` declines",
            a.agreement_id, a.version
        ),
        (AgreementState::Active, _) => "active: members in scope are shared; `agreement counter` amends, `agreement terminate` ends it".into(),
        _ => "ended: propose a new agreement to co-manage again".into(),
    };
    let next_step = past_end_step.unwrap_or(next_step);
    Ok(pb::AgreementView {
        agreement_id: a.agreement_id.clone(),
        number: a.number.clone(),
        outflow_node: a.outflow_node.clone(),
        inflow_node: a.inflow_node.clone(),
        role: if coordinator { "outflow" } else { "inflow" }.into(),
        state: a.state.as_str().into(),
        version: a.version,
        active_version: a.active_version,
        terms,
        history,
        pending_counter: a.pending_terms.clone(),
        ended_reason: a.ended_reason.clone(),
        ended_by: a.ended_by.clone(),
        members_in_scope,
        would_cover: would_cover.into_iter().take(20).collect(),
        next_step,
        updated_at_ms: a.updated_at_ms,
        active_until,
        ended_by_date: ended.is_some(),
        shown_state,
    })
}

/// How an agreement still active past its end date (`until`, on this
/// node's clock) reads: its state and the next step.
struct PastEnd {
    state: String,
    next_step: String,
}

/// The coordinator ends an agreement, also by date; until it has, the
/// agreement stays active on both sides. So a node past the end date shows
/// what it waits for: the host the coordinator's end (its copies go after
/// the grace period whatever it hears), the coordinator its own calendar.
fn past_end(
    conn: &Connection,
    ctx: &Ctx<'_>,
    a: &Agreement,
    until: NaiveDate,
) -> Result<PastEnd, Error> {
    if a.outflow_node == ctx.me.as_str() {
        let when = if crate::epoch::is_reconciling(conn)? {
            "once the reconciliation has ended (`reconcile status`)"
        } else {
            "at its next run (within a minute)"
        };
        return Ok(PastEnd {
            state: format!(
                "active — ended by date {until} (到期), this node's calendar expires it {when}"
            ),
            next_step: format!(
                "its end date {until} has passed: this node's calendar expires it {when}"
            ),
        });
    }
    let coordinator = node_label(conn, &a.outflow_node)?;
    let dropped_on = copies_dropped_on(until);
    let copies = if ctx.today() >= dropped_on {
        format!(
            "this node dropped its copies under it on {dropped_on}, after {GRACE_DAYS} days' grace"
        )
    } else {
        format!(
            "this node keeps its copies until {dropped_on}, when it drops them after {GRACE_DAYS} days' grace whatever it hears"
        )
    };
    Ok(PastEnd {
        state: format!(
            "active — ended by date {until} (到期待确认), awaiting the coordinator {coordinator} to confirm"
        ),
        next_step: format!(
            "its end date {until} has passed on this node's clock, but the coordinator {coordinator} ends agreements and has not confirmed: until it does, the agreement stays active; {copies}. `peer show {}` tells whether it is reachable",
            a.outflow_node
        ),
    })
}

/// A peer for people: its node id, and its name if it has another.
fn node_label(conn: &Connection, node_id: &str) -> Result<String, Error> {
    let name: Option<String> = conn
        .query_row(
            "SELECT display_name FROM peers WHERE node_id = ?1",
            [node_id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(match name.as_deref().map(str::trim) {
        Some(name) if !name.is_empty() && name != node_id => format!("{node_id} ({name})"),
        _ => node_id.to_owned(),
    })
}

pub fn list(
    conn: &Connection,
    ctx: &Ctx<'_>,
    req: &pb::AgreementListRequest,
) -> Result<Vec<pb::AgreementView>, Error> {
    let ids: Vec<String> = conn
        .prepare(
            "SELECT agreement_id FROM agreements WHERE (?1 = '' OR state = ?1)
               AND (?2 = '' OR outflow_node = ?2 OR inflow_node = ?2) ORDER BY created_at_ms, agreement_id",
        )?
        .query_map(params![req.state.trim(), req.peer.trim()], |r| r.get(0))?
        .collect::<Result<Vec<_>, _>>()?;
    ids.iter().map(|id| view(conn, ctx, id)).collect()
}

/// Members away in a region with which no active agreement exists, grouped
/// by destination.
pub fn uncovered(conn: &Connection, ctx: &Ctx<'_>) -> Result<pb::ReportUncoveredResponse, Error> {
    let away: Vec<(String, String, String)> = conn
        .prepare(
            "SELECT o.member_id, o.destination_place, o.destination_node FROM outflows o
             JOIN members m ON m.member_id = o.member_id
             WHERE o.state = 'open' AND m.owner = ?1 ORDER BY o.destination_place, o.member_id",
        )?
        .query_map([ctx.me.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    let scope = members::Scope::load(conn, ctx)?;
    let mut groups: Vec<pb::UncoveredGroup> = Vec::new();
    let mut total = 0;
    for (member_id, place, node) in away {
        let outflow = pb::OutflowView {
            destination_place: place.clone(),
            ..Default::default()
        };
        if !scope.covering(conn, &member_id, Some(&outflow))?.is_empty() {
            continue;
        }
        total += 1;
        match groups.last_mut() {
            Some(g) if g.destination_place == place && g.destination_node == node => {
                g.members += 1;
                g.member_ids.push(member_id);
            }
            _ => groups.push(pb::UncoveredGroup {
                destination_place: place,
                destination_node: node,
                members: 1,
                member_ids: vec![member_id],
            }),
        }
    }
    Ok(pb::ReportUncoveredResponse { groups, total })
}
