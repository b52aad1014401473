//! Applying the other party's agreement events: versions, votes, and the
//! coordinator's or either party's state changes; and what a restored
//! coordinator forgot, taken back from the other party (docs/restore.md).

use liaison_proto::v1 as pb;
use liaison_proto::v1::EventKind;
use liaison_types::identity::NodeId;
use prost::Message;
use rusqlite::{params, Connection};

use super::calendar::{act_on_end, tick_one};
use super::signatures::{verify, verify_own_hash};
use super::storage::{
    load, save, send, store_signature, store_version, stored_version, version_terms, Agreement,
    AgreementState,
};
use crate::members;
use crate::outcome::Rejection;
use crate::{Ctx, Error};

fn reject(message: String) -> Rejection {
    Rejection::Invalid(message)
}

fn unknown(message: String) -> Rejection {
    Rejection::Unknown(message)
}

fn decode<M: Message + Default>(event: &pb::Event) -> Result<M, Rejection> {
    M::decode(event.payload.as_slice())
        .map_err(|e| reject(format!("malformed agreement payload: {e}")))
}

/// Applies an agreement event from `origin`.
/// `log_id`: the log of `origin` the event came in (the place of an end
/// marker is a seq in one log).
pub fn apply(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    log_id: &str,
    event: &pb::Event,
    kind: EventKind,
) -> Result<(), Rejection> {
    // Without a key this node cannot judge any signature: that is a fault
    // of this node, not of the event, so the batch stops (never quarantine).
    ctx.notary()?;
    match kind {
        EventKind::AgreementVersion => apply_version(conn, ctx, origin, decode(event)?),
        EventKind::AgreementVote => apply_vote(conn, ctx, origin, decode(event)?),
        EventKind::AgreementActivated
        | EventKind::AgreementEnded
        | EventKind::AgreementEndApplied
        | EventKind::CopiesDropped => {
            apply_state(conn, ctx, origin, kind, (log_id, event.seq), decode(event)?)
        }
        _ => Err(reject(format!("not an agreement event: {kind:?}"))),
    }
}

fn apply_version(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    v: pb::AgreementVersion,
) -> Result<(), Rejection> {
    let terms = v
        .terms
        .clone()
        .ok_or_else(|| reject("agreement version without terms".into()))?;
    if terms.outflow_node != origin.as_str() {
        return Err(reject(format!(
            "only the coordinator ({}) publishes versions; {origin} sent version {} of agreement {}",
            terms.outflow_node, v.version, v.agreement_id
        )));
    }
    if terms.inflow_node != ctx.me.as_str() {
        return Err(reject(format!(
            "agreement {} is not between {origin} and this node",
            v.agreement_id
        )));
    }
    let existing = load(conn, &v.agreement_id)?;
    if let Some(a) = &existing {
        if a.outflow_node != terms.outflow_node || a.inflow_node != terms.inflow_node {
            return Err(reject(format!(
                "version {} of agreement {} changes its parties",
                v.version, v.agreement_id
            )));
        }
        if v.version <= a.version {
            return Ok(());
        }
    }
    let coordinator_signature = v
        .signatures
        .iter()
        .find(|s| s.signer == origin.as_str())
        .ok_or_else(|| {
            reject(format!(
                "version {} of agreement {} is not signed by {origin}",
                v.version, v.agreement_id
            ))
        })?;
    verify(
        ctx,
        &v.agreement_id,
        origin.as_str(),
        v.version,
        &terms,
        coordinator_signature,
    )
    .map_err(|why| {
        reject(format!(
            "forged or mismatched signature of {origin} on agreement {} version {}: {why}",
            v.agreement_id, v.version
        ))
    })?;
    if let Some(mut ended) = existing.clone().filter(Agreement::is_final) {
        // Ended here already: record the version (both sides keep the same
        // history), act on nothing.
        ended.version = v.version;
        ended.number = terms.number.clone();
        save(conn, &ended, ctx.now_ms)?;
        store_version(conn, ctx, &ended.agreement_id, v.version, &terms)?;
        store_signature(conn, ctx, &ended.agreement_id, coordinator_signature)?;
        return Ok(());
    }
    let mut a = existing.unwrap_or(Agreement::proposed(
        v.agreement_id.clone(),
        &terms,
        ctx.now_ms,
    ));
    // A new version answers (or supersedes) any counter we had sent.
    a.version = v.version;
    a.number = terms.number.clone();
    a.pending_terms = None;
    a.pending_answers = 0;
    a.pending_signature = None;
    save(conn, &a, ctx.now_ms)?;
    store_version(conn, ctx, &a.agreement_id, v.version, &terms)?;
    store_signature(conn, ctx, &a.agreement_id, coordinator_signature)?;
    // Our own signature travels back when the version publishes our counter.
    if let Some(own) = v.signatures.iter().find(|s| s.signer == ctx.me.as_str()) {
        if verify(
            ctx,
            &a.agreement_id,
            ctx.me.as_str(),
            v.version,
            &terms,
            own,
        )
        .is_ok()
        {
            store_signature(conn, ctx, &a.agreement_id, own)?;
        }
    }
    Ok(())
}

/// At the inflow party, adopting the holdings of `coordinator` after a
/// restore (docs/restore.md): the agreements it coordinates with this node that
/// this node holds open and it did not report. It forgot them in a restore
/// of its own, at a time this node did not hold them either (restored
/// itself, from an earlier backup); this node reminds it with a `held`
/// message carrying the version it holds (terms and signatures), which the
/// coordinator takes back if its own signature verifies. Returns how many.
pub fn remind_forgotten(
    conn: &Connection,
    ctx: &Ctx<'_>,
    coordinator: &NodeId,
    reported: &std::collections::BTreeSet<&str>,
) -> Result<usize, Error> {
    let open: Vec<(String, u64)> = conn
        .prepare(
            "SELECT agreement_id, version FROM agreements
             WHERE outflow_node = ?1 AND inflow_node = ?2 AND version > 0
               AND state NOT IN ('expired', 'terminated') ORDER BY agreement_id",
        )?
        .query_map(params![coordinator.as_str(), ctx.me.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut reminded = 0;
    for (agreement_id, version) in open {
        if reported.contains(agreement_id.as_str()) {
            continue;
        }
        let held = pb::AgreementVote {
            agreement_id: agreement_id.clone(),
            vote: "held".into(),
            answers_version: version,
            terms: None,
            signature: None,
            answered: stored_version(conn, &agreement_id, version)?,
        };
        send(
            conn,
            ctx,
            coordinator,
            EventKind::AgreementVote,
            &agreement_id,
            held.encode_to_vec(),
        )?;
        reminded += 1;
    }
    Ok(reminded)
}

/// A vote on an agreement unknown here that this node coordinates: a
/// restore from a backup older than its own proposal (docs/restore.md) made it
/// forget what the voter still holds. Taken back as the voter holds it, at
/// the version answered, only if this node's own signature on that version
/// verifies (it did publish those terms); else why not, and the vote is
/// judged as one on an agreement unknown here.
fn adopt_forgotten(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    vote: &pb::AgreementVote,
) -> Result<Result<Agreement, String>, Error> {
    let Some(answered) = &vote.answered else {
        return Ok(Err("it carries no version it answers".into()));
    };
    let Some(terms) = &answered.terms else {
        return Ok(Err("the version it answers has no terms".into()));
    };
    let parties = terms.outflow_node == ctx.me.as_str() && terms.inflow_node == origin.as_str();
    if !parties {
        return Ok(Err(format!(
            "the version it answers names parties {} and {}, not this node and {origin}",
            terms.outflow_node, terms.inflow_node
        )));
    }
    let same = answered.agreement_id == vote.agreement_id
        && answered.version == vote.answers_version
        && answered.version > 0;
    if !same {
        return Ok(Err(
            "the version it carries is not the one it answers".into()
        ));
    }
    let Some(own) = answered
        .signatures
        .iter()
        .find(|s| s.signer == ctx.me.as_str())
    else {
        return Ok(Err(
            "the version it answers is not signed by this node".into()
        ));
    };
    if let Err(why) = verify(
        ctx,
        &vote.agreement_id,
        ctx.me.as_str(),
        answered.version,
        terms,
        own,
    ) {
        tracing::warn!(agreement = %vote.agreement_id, %origin, why = %why, "a vote on an unknown agreement carries no valid signature of this node");
        return Ok(Err(format!(
            "forged or mismatched signature of this node on it: {why}"
        )));
    }
    let mut a = Agreement::proposed(vote.agreement_id.clone(), terms, ctx.now_ms);
    a.version = answered.version;
    save(conn, &a, ctx.now_ms)?;
    store_version(conn, ctx, &a.agreement_id, a.version, terms)?;
    for signature in &answered.signatures {
        if verify(
            ctx,
            &a.agreement_id,
            &signature.signer,
            answered.version,
            terms,
            signature,
        )
        .is_ok()
        {
            store_signature(conn, ctx, &a.agreement_id, signature)?;
        }
    }
    tracing::info!(agreement = %a.agreement_id, version = a.version, %origin, "agreement this node forgot in a restore taken back from the other party's vote");
    Ok(Ok(a))
}

fn apply_vote(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    vote: pb::AgreementVote,
) -> Result<(), Rejection> {
    if vote.vote == "held" {
        // Not a vote: the other party reminds a coordinator that forgot an
        // agreement in a restore of what it holds (`remind_forgotten`).
        // Only the inflow party of an agreement this node coordinates
        // sends one; a coordinator that holds the agreement needs no
        // reminder.
        match load(conn, &vote.agreement_id)? {
            Some(a) if a.inflow_node != origin.as_str() || a.outflow_node != ctx.me.as_str() => {
                return Err(reject(format!(
                    "{origin} is not the inflow party of agreement {} (coordinated here)",
                    vote.agreement_id
                )));
            }
            Some(_) => {}
            None => match adopt_forgotten(conn, ctx, origin, &vote)? {
                Ok(mut a) => tick_one(conn, ctx, &mut a)?,
                Err(why) => {
                    return Err(reject(format!(
                        "{origin} reminds this node of agreement {}, which it does not hold and cannot take back: {why}",
                        vote.agreement_id
                    )))
                }
            },
        }
        return Ok(());
    }
    let signature = vote
        .signature
        .clone()
        .ok_or_else(|| reject("vote without a signature".into()))?;
    let existing = match load(conn, &vote.agreement_id)? {
        None => adopt_forgotten(conn, ctx, origin, &vote)?.ok(),
        found => found,
    };
    if let Some(a) = &existing {
        if a.inflow_node != origin.as_str() || a.outflow_node != ctx.me.as_str() {
            return Err(reject(format!(
                "{origin} is not the inflow party of agreement {} (coordinated here)",
                vote.agreement_id
            )));
        }
        if a.is_final() {
            // Ended here: an acceptance that crossed the end is still
            // recorded (both sides keep the same signatures), nothing more.
            if vote.vote == "accept" && vote.answers_version == a.version {
                if let Some(terms) = version_terms(conn, &a.agreement_id, a.version)? {
                    if verify(
                        ctx,
                        &a.agreement_id,
                        origin.as_str(),
                        a.version,
                        &terms,
                        &signature,
                    )
                    .is_ok()
                    {
                        store_signature(conn, ctx, &a.agreement_id, &signature)?;
                    }
                }
            }
            return Ok(());
        }
    }
    match vote.vote.as_str() {
        "propose" | "counter" => {
            let terms = vote
                .terms
                .clone()
                .ok_or_else(|| reject("proposal without terms".into()))?;
            if terms.outflow_node != ctx.me.as_str() || terms.inflow_node != origin.as_str() {
                return Err(reject(format!(
                    "proposal of agreement {} names parties {} and {}, but came from {origin} to this node",
                    vote.agreement_id, terms.outflow_node, terms.inflow_node
                )));
            }
            // The terms are signed as the version after the one answered.
            let proposed = vote.answers_version.checked_add(1).ok_or_else(|| {
                reject(format!(
                    "proposal of agreement {} answers version {}, which has no next version",
                    vote.agreement_id, vote.answers_version
                ))
            })?;
            verify(
                ctx,
                &vote.agreement_id,
                origin.as_str(),
                proposed,
                &terms,
                &signature,
            )
            .map_err(|why| {
                reject(format!(
                    "forged or mismatched signature of {origin} on agreement {}: {why}",
                    vote.agreement_id
                ))
            })?;
            let mut a = match existing {
                Some(a) => a,
                None if vote.vote == "propose" => {
                    Agreement::proposed(vote.agreement_id.clone(), &terms, ctx.now_ms)
                }
                None => {
                    return Err(unknown(format!(
                        "counter-proposal for unknown agreement {}",
                        vote.agreement_id
                    )))
                }
            };
            if vote.answers_version != a.version {
                // Crossed a newer version: the coordinator's current version stands.
                return Ok(());
            }
            a.pending_terms = Some(terms);
            a.pending_answers = vote.answers_version;
            a.pending_signature = Some(signature);
            save(conn, &a, ctx.now_ms)?;
            Ok(())
        }
        "accept" => {
            let Some(a) = existing else {
                return Err(unknown(format!(
                    "acceptance of unknown agreement {}",
                    vote.agreement_id
                )));
            };
            if vote.answers_version != a.version {
                return Ok(());
            }
            let terms = version_terms(conn, &a.agreement_id, a.version)?
                .ok_or_else(|| reject("accepted version has no terms here".into()))?;
            if signature.terms_hash != super::storage::terms_hash(&terms)
                && signature.version == a.version
                && verify_own_hash(ctx, &a.agreement_id, origin.as_str(), &signature).is_ok()
            {
                // The voter's own signature on other terms under this
                // version number: this node published them as that version
                // on a branch of its history a restore made it forget, and
                // numbered other terms so since. Not a forgery, and no
                // acceptance of the version held here: the coordinator's
                // current version stands, as for a vote that crossed it.
                tracing::warn!(agreement = %a.agreement_id, version = a.version, voter = %origin, "an acceptance of other terms under this version number (published on a branch this node forgot) is ignored");
                return Ok(());
            }
            verify(
                ctx,
                &a.agreement_id,
                origin.as_str(),
                a.version,
                &terms,
                &signature,
            )
            .map_err(|why| {
                reject(format!(
                    "forged or mismatched signature of {origin} on agreement {} version {}: {why}",
                    a.agreement_id, a.version
                ))
            })?;
            store_signature(conn, ctx, &a.agreement_id, &signature)?;
            let mut a = a;
            tick_one(conn, ctx, &mut a)?;
            Ok(())
        }
        other => Err(reject(format!("unknown vote `{other}`"))),
    }
}

/// `(log_id, seq)`: the event's place in `origin`'s log.
fn apply_state(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    kind: EventKind,
    (log_id, seq): (&str, u64),
    s: pb::AgreementState,
) -> Result<(), Rejection> {
    let Some(mut a) = load(conn, &s.agreement_id)? else {
        return Err(unknown(format!(
            "{kind:?} for unknown agreement {}",
            s.agreement_id
        )));
    };
    let from_coordinator = a.outflow_node == origin.as_str() && a.inflow_node == ctx.me.as_str();
    let from_inflow = a.inflow_node == origin.as_str() && a.outflow_node == ctx.me.as_str();
    if !(from_coordinator || from_inflow) {
        return Err(reject(format!(
            "{origin} is not the other party of agreement {}",
            a.agreement_id
        )));
    }
    match kind {
        EventKind::AgreementActivated => {
            if !from_coordinator {
                return Err(reject(format!(
                    "only the coordinator activates agreement {}",
                    a.agreement_id
                )));
            }
            // Recorded even after the end, so both sides agree on the
            // active version; an ended agreement stays ended.
            if !a.is_final() {
                a.state = AgreementState::Active;
            }
            a.active_version = a.active_version.max(s.version);
            save(conn, &a, ctx.now_ms)?;
        }
        EventKind::AgreementEnded => {
            if s.state == "expired" && !from_coordinator {
                return Err(reject(format!(
                    "only the coordinator expires agreement {}",
                    a.agreement_id
                )));
            }
            let Some(end) = AgreementState::parse(&s.state).filter(|e| e.is_final()) else {
                return Err(reject(format!("unknown end `{}`", s.state)));
            };
            if a.is_final() {
                // Both ended it, crossing: the coordinator's end stands on
                // both sides (it decides; the inflow party adopts it).
                if from_coordinator {
                    a.state = end;
                    a.ended_reason = s.reason.clone();
                    a.ended_by = origin.to_string();
                    save(conn, &a, ctx.now_ms)?;
                }
                return Ok(());
            }
            a.state = end;
            a.ended_reason = s.reason.clone();
            a.ended_by = origin.to_string();
            save(conn, &a, ctx.now_ms)?;
            act_on_end(conn, ctx, &mut a)?;
        }
        EventKind::AgreementEndApplied => {
            if !from_inflow {
                return Err(reject("only the host sends end_applied".into()));
            }
            // The first marker of each of the host's logs stands: a host
            // record is judged by whether the host appended it before its
            // end in the log it came in (`host_record_allowed`).
            conn.prepare_cached(
                "INSERT INTO host_end_markers (agreement_id, log_id, seq) VALUES (?1, ?2, ?3)
                 ON CONFLICT (agreement_id, log_id) DO NOTHING",
            )?
            .execute(params![a.agreement_id, log_id, seq])?;
            if !a.host_end_applied {
                a.host_end_applied = true;
                a.host_end_seq = seq;
                save(conn, &a, ctx.now_ms)?;
            }
        }
        EventKind::CopiesDropped => {
            if !from_inflow {
                return Err(reject("only the host drops copies".into()));
            }
            // The host's clock passed the end of the version it knew. If a
            // later version was activated here since (the agreement was
            // renewed), share again; if not, the host holds nothing now.
            if let Some(terms) = version_terms(conn, &a.agreement_id, s.version)? {
                // Dates as YYYY-MM-DD compare as text; a late report about
                // an earlier version does not undo a later one.
                if terms.effective_until > a.copies_dropped_for {
                    a.copies_dropped_for = terms.effective_until;
                    save(conn, &a, ctx.now_ms)?;
                }
            }
            let shared: Vec<String> = conn
                .prepare("SELECT member_id FROM shares WHERE basis = ?1")?
                .query_map([&a.agreement_id], |r| r.get(0))?
                .collect::<Result<Vec<_>, _>>()?;
            conn.execute("DELETE FROM shares WHERE basis = ?1", [&a.agreement_id])?;
            let renewed = a.state == AgreementState::Active && a.active_version > s.version;
            let except = if renewed {
                None
            } else {
                Some(a.agreement_id.as_str())
            };
            members::reshare_after_basis_ended(conn, ctx, &shared, except)?;
        }
        _ => {}
    }
    Ok(())
}
