//! Operators' actions on agreements: propose, counter, accept, and reject
//! or terminate. The coordinator publishes versions; the inflow party's
//! actions are votes.

use liaison_proto::v1 as pb;
use liaison_proto::v1::EventKind;
use liaison_types::identity::NodeId;
use liaison_types::validate;
use prost::Message;
use rusqlite::{Connection, OptionalExtension};

use super::calendar::{act_on_end, tick_one};
use super::signatures::sign;
use super::storage::{
    date, require, save, send, signature_of, state_message, store_signature, store_version,
    stored_version, version_terms, Agreement, AgreementState,
};
use super::views::view;
use crate::members;
use crate::{Ctx, Error};

/// Checks and normalizes terms; the parties are set by the caller.
fn check_terms(
    conn: &Connection,
    ctx: &Ctx<'_>,
    terms: &mut pb::AgreementTerms,
) -> Result<(), Error> {
    terms.number = validate::text("agreement number", &terms.number, 60)?;
    if terms.number.is_empty() {
        return Err(Error::invalid(
            "the agreement number is missing (--number)".into(),
        ));
    }
    let from = date(&terms.effective_from, "effective from")?;
    let until = date(&terms.effective_until, "effective until")?;
    if until < from {
        return Err(Error::invalid(format!(
            "effective until {until} is before effective from {from}"
        )));
    }
    terms.effective_from = from.to_string();
    terms.effective_until = until.to_string();
    terms.scope_kind = match terms.scope_kind.trim() {
        "" | "destination" => "destination".into(),
        "members" => "members".into(),
        other => {
            return Err(Error::invalid(format!(
                "scope `{other}` is not destination or members"
            )))
        }
    };
    if terms.scope_kind == "members" {
        if terms.scope_members.is_empty() {
            return Err(Error::invalid(
                "a members scope needs at least one member (--member ID)".into(),
            ));
        }
        let mut ids = Vec::new();
        for id in &terms.scope_members {
            let id = validate::member_id(id)?;
            if terms.outflow_node == ctx.me.as_str() {
                let owned =
                    members::load_home(conn, &id)?.is_some_and(|m| m.owner == ctx.me.as_str());
                if !owned {
                    return Err(Error::not_found(format!(
                        "member {id} is not a member of this node: a members scope lists the outflow party's own members"
                    )));
                }
            }
            ids.push(id);
        }
        ids.sort();
        ids.dedup();
        terms.scope_members = ids;
    } else {
        terms.scope_members.clear();
    }
    terms.dues_collector = match terms.dues_collector.trim() {
        "" => String::new(),
        "inflow" | "host" | "流入地" => "inflow".into(),
        "outflow" | "home" | "流出地" => "outflow".into(),
        other => {
            return Err(Error::invalid(format!(
            "dues collector `{other}` is not inflow (the host collects) or outflow (home collects)"
        )))
        }
    };
    for (field, value, max) in [
        ("education", &mut terms.education, 500),
        ("org life", &mut terms.org_life, 500),
        ("evaluation input", &mut terms.evaluation_input, 500),
        ("contact report", &mut terms.contact_report, 100),
        ("services", &mut terms.services, 500),
        ("notes", &mut terms.notes, 2000),
    ] {
        *value = validate::text(field, value, max)?;
    }
    for person in terms
        .outflow_liaisons
        .iter_mut()
        .chain(terms.inflow_liaisons.iter_mut())
    {
        person.name = validate::name(&person.name)?;
        person.phone = validate::phone(&person.phone)?;
        person.role = validate::text("liaison role", &person.role, 50)?;
    }
    Ok(())
}

/// Proposes a new agreement with `peer`; `role` is this node's.
pub fn propose(
    conn: &Connection,
    ctx: &Ctx<'_>,
    peer: &str,
    role: &str,
    mut terms: pb::AgreementTerms,
) -> Result<pb::AgreementView, Error> {
    crate::epoch::act_as_owner(conn)?;
    let peer = NodeId::parse(peer.trim()).map_err(|e| Error::invalid(e.to_string()))?;
    crate::store::peers::require(conn, &peer)?;
    let coordinator = match role.trim() {
        "" | "outflow" => true,
        "inflow" => false,
        other => {
            return Err(Error::invalid(format!(
                "role `{other}` is not outflow (this node's members go to the peer) or inflow (the peer's members come here)"
            )))
        }
    };
    (terms.outflow_node, terms.inflow_node) = if coordinator {
        (ctx.me.to_string(), peer.to_string())
    } else {
        (peer.to_string(), ctx.me.to_string())
    };
    check_terms(conn, ctx, &mut terms)?;
    // The number names the agreement in every verb, version after version:
    // one already used here would make that ambiguous.
    let taken: Option<String> = conn
        .query_row(
            "SELECT agreement_id FROM agreements WHERE number = ?1 LIMIT 1",
            [&terms.number],
            |r| r.get(0),
        )
        .optional()?;
    if taken.is_some() {
        return Err(Error::conflict(format!(
            "agreement number {} is taken by another agreement here (`agreement show {0}`): give a new one, e.g. with the next sequence number",
            terms.number
        )));
    }
    let mut a = Agreement::proposed(ctx.new_id(), &terms, ctx.now_ms);
    if coordinator {
        publish(conn, ctx, &mut a, terms, None)?;
    } else {
        let signature = sign(ctx, &a.agreement_id, 1, &terms)?;
        let vote = pb::AgreementVote {
            agreement_id: a.agreement_id.clone(),
            vote: "propose".into(),
            answers_version: 0,
            terms: Some(terms.clone()),
            signature: Some(signature.clone()),
            answered: None,
        };
        a.pending_terms = Some(terms);
        a.pending_signature = Some(signature);
        save(conn, &a, ctx.now_ms)?;
        send(
            conn,
            ctx,
            &peer,
            EventKind::AgreementVote,
            &a.agreement_id,
            vote.encode_to_vec(),
        )?;
    }
    view(conn, ctx, &a.agreement_id)
}

/// The coordinator publishes `terms` as its next version, signed; with the
/// inflow party's signature when they are its own counter-proposal.
fn publish(
    conn: &Connection,
    ctx: &Ctx<'_>,
    a: &mut Agreement,
    terms: pb::AgreementTerms,
    inflow_signature: Option<pb::AgreementSignature>,
) -> Result<(), Error> {
    let version = a.version + 1;
    let own = sign(ctx, &a.agreement_id, version, &terms)?;
    a.version = version;
    a.number = terms.number.clone();
    a.pending_terms = None;
    a.pending_answers = 0;
    a.pending_signature = None;
    save(conn, a, ctx.now_ms)?;
    store_version(conn, ctx, &a.agreement_id, version, &terms)?;
    store_signature(conn, ctx, &a.agreement_id, &own)?;
    let mut signatures = vec![own];
    if let Some(theirs) = inflow_signature {
        store_signature(conn, ctx, &a.agreement_id, &theirs)?;
        signatures.push(theirs);
    }
    let message = pb::AgreementVersion {
        agreement_id: a.agreement_id.clone(),
        version,
        terms: Some(terms),
        signatures,
    };
    let inflow = a.other_party(ctx.me)?;
    send(
        conn,
        ctx,
        &inflow,
        EventKind::AgreementVersion,
        &a.agreement_id,
        message.encode_to_vec(),
    )?;
    tick_one(conn, ctx, a)
}

/// Publishes `terms` again as the coordinator's next version: a restored
/// coordinator that numbered them the same as other terms the inflow party
/// holds (docs/agreements.md, "After a restore").
pub(crate) fn publish_again(
    conn: &Connection,
    ctx: &Ctx<'_>,
    agreement_id: &str,
    terms: pb::AgreementTerms,
) -> Result<(), Error> {
    let mut a = require(conn, agreement_id)?;
    publish(conn, ctx, &mut a, terms, None)
}

pub fn counter(
    conn: &Connection,
    ctx: &Ctx<'_>,
    agreement_id: &str,
    mut terms: pb::AgreementTerms,
) -> Result<pb::AgreementView, Error> {
    crate::epoch::act_as_owner(conn)?;
    let mut a = require(conn, agreement_id)?;
    if a.is_final() {
        return Err(Error::conflict(format!(
            "agreement {} is {}: propose a new one",
            a.agreement_id, a.state
        )));
    }
    terms.outflow_node = a.outflow_node.clone();
    terms.inflow_node = a.inflow_node.clone();
    // An agreement keeps the number it was proposed with.
    if terms.number.trim().is_empty() {
        terms.number = a.number.clone();
    }
    check_terms(conn, ctx, &mut terms)?;
    if !a.number.is_empty() && terms.number != a.number {
        return Err(Error::invalid(format!(
            "an agreement keeps its number ({}) for every version: counter the other terms",
            a.number
        )));
    }
    if a.outflow_node == ctx.me.as_str() {
        publish(conn, ctx, &mut a, terms, None)?;
    } else {
        let signature = sign(ctx, &a.agreement_id, a.version + 1, &terms)?;
        let vote = pb::AgreementVote {
            agreement_id: a.agreement_id.clone(),
            vote: "counter".into(),
            answers_version: a.version,
            terms: Some(terms.clone()),
            signature: Some(signature.clone()),
            answered: stored_version(conn, &a.agreement_id, a.version)?,
        };
        a.pending_terms = Some(terms);
        a.pending_answers = a.version;
        a.pending_signature = Some(signature);
        save(conn, &a, ctx.now_ms)?;
        let coordinator = a.other_party(ctx.me)?;
        send(
            conn,
            ctx,
            &coordinator,
            EventKind::AgreementVote,
            &a.agreement_id,
            vote.encode_to_vec(),
        )?;
    }
    view(conn, ctx, &a.agreement_id)
}

pub fn accept(
    conn: &Connection,
    ctx: &Ctx<'_>,
    agreement_id: &str,
) -> Result<pb::AgreementView, Error> {
    crate::epoch::act_as_owner(conn)?;
    let mut a = require(conn, agreement_id)?;
    if a.is_final() {
        return Err(Error::conflict(format!(
            "agreement {} is {}",
            a.agreement_id, a.state
        )));
    }
    if a.outflow_node == ctx.me.as_str() {
        // The coordinator signs every version it publishes; what it may
        // accept is the inflow party's counter-proposal.
        let (Some(terms), Some(signature)) = (a.pending_terms.clone(), a.pending_signature.clone())
        else {
            return Err(Error::conflict(format!(
                "nothing to accept: this node coordinates agreement {} and signed version {} when it published it; {} has not answered with a counter-proposal",
                a.agreement_id, a.version, a.inflow_node
            )));
        };
        if a.pending_answers != a.version {
            return Err(Error::conflict(
                "the counter-proposal answers an older version".into(),
            ));
        }
        publish(conn, ctx, &mut a, terms, Some(signature))?;
        return view(conn, ctx, &a.agreement_id);
    }
    if a.version == 0 {
        return Err(Error::conflict(format!(
            "{} has not published a version yet: wait for it (your proposal is with them)",
            a.outflow_node
        )));
    }
    if signature_of(conn, &a.agreement_id, a.version, ctx.me.as_str())?.is_some() {
        return Err(Error::conflict(format!(
            "this node already signed version {} of agreement {}",
            a.version, a.agreement_id
        )));
    }
    let terms = version_terms(conn, &a.agreement_id, a.version)?
        .ok_or_else(|| Error::not_found("the latest version's terms are missing".into()))?;
    let signature = sign(ctx, &a.agreement_id, a.version, &terms)?;
    store_signature(conn, ctx, &a.agreement_id, &signature)?;
    a.pending_terms = None;
    a.pending_signature = None;
    save(conn, &a, ctx.now_ms)?;
    let vote = pb::AgreementVote {
        agreement_id: a.agreement_id.clone(),
        vote: "accept".into(),
        answers_version: a.version,
        terms: None,
        signature: Some(signature),
        answered: stored_version(conn, &a.agreement_id, a.version)?,
    };
    let coordinator = a.other_party(ctx.me)?;
    send(
        conn,
        ctx,
        &coordinator,
        EventKind::AgreementVote,
        &a.agreement_id,
        vote.encode_to_vec(),
    )?;
    view(conn, ctx, &a.agreement_id)
}

/// `reject` (not yet active) or `terminate` (active): final, with a reason.
pub fn end(
    conn: &Connection,
    ctx: &Ctx<'_>,
    agreement_id: &str,
    reason: &str,
    reject: bool,
) -> Result<pb::AgreementView, Error> {
    crate::epoch::act_as_owner(conn)?;
    let mut a = require(conn, agreement_id)?;
    let reason = validate::text("reason", reason, 500)?;
    if reason.is_empty() {
        return Err(Error::invalid("a reason is required (--reason)".into()));
    }
    match (reject, a.state) {
        (_, AgreementState::Expired | AgreementState::Terminated) => {
            return Err(Error::conflict(format!(
                "agreement {} is already {}",
                a.agreement_id, a.state
            )))
        }
        (true, AgreementState::Active) => {
            return Err(Error::conflict(format!(
                "agreement {} is active: end it with `agreement terminate`",
                a.agreement_id
            )))
        }
        (false, AgreementState::Proposed) => {
            return Err(Error::conflict(format!(
                "agreement {} is not active yet: decline it with `agreement reject`",
                a.agreement_id
            )))
        }
        _ => {}
    }
    a.state = AgreementState::Terminated;
    a.ended_reason = reason;
    a.ended_by = ctx.me.to_string();
    save(conn, &a, ctx.now_ms)?;
    let other = a.other_party(ctx.me)?;
    send(
        conn,
        ctx,
        &other,
        EventKind::AgreementEnded,
        &a.agreement_id,
        state_message(&a, "terminated", ctx.me.as_str()),
    )?;
    act_on_end(conn, ctx, &mut a)?;
    view(conn, ctx, &a.agreement_id)
}
