//! Co-management agreements (双向共管协议, DESIGN §4a).
//!
//! Two parties; the outflow party coordinates: only it numbers versions,
//! activates and expires. The inflow party's messages are votes. A
//! termination by either side is the one other decision, and it is final.
//! So crossing messages never leave the parties disagreeing.
//!
//! Signatures bind (agreement id, version, SHA-256 of the canonical terms);
//! a version activates once the coordinator holds both parties' signatures
//! on it and its clock has reached `effective_from`. Sharing of home
//! sections follows the latest activated version only.

use chrono::NaiveDate;
use liaison_proto::v1 as pb;
use liaison_proto::v1::EventKind;
use prost::Message;
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use super::apply::Rejection;
use super::{log, members, Ctx};
use crate::Error;
use liaison_types::identity::NodeId;
use liaison_types::validate;

/// Days after `effective_until` at which a host drops its copies on its own
/// clock, whether or not it heard of the end.
pub const GRACE_DAYS: i64 = 30;

/// An agreement's state (DOMAIN §6.4); the same at both parties once their
/// messages are through (DESIGN §4a).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgreementState {
    Proposed,
    Active,
    Expired,
    Terminated,
}

impl AgreementState {
    /// The name stored, shown and sent to peers.
    pub fn as_str(self) -> &'static str {
        match self {
            AgreementState::Proposed => "proposed",
            AgreementState::Active => "active",
            AgreementState::Expired => "expired",
            AgreementState::Terminated => "terminated",
        }
    }

    pub fn parse(s: &str) -> Option<AgreementState> {
        [
            AgreementState::Proposed,
            AgreementState::Active,
            AgreementState::Expired,
            AgreementState::Terminated,
        ]
        .into_iter()
        .find(|state| state.as_str() == s)
    }

    /// An ended agreement stays ended: later events for it are ignored.
    pub fn is_final(self) -> bool {
        matches!(self, AgreementState::Expired | AgreementState::Terminated)
    }
}

impl std::fmt::Display for AgreementState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl rusqlite::types::ToSql for AgreementState {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl rusqlite::types::FromSql for AgreementState {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let text = value.as_str()?;
        AgreementState::parse(text).ok_or_else(|| {
            rusqlite::types::FromSqlError::Other(
                format!("the database is damaged: an agreement state is `{text}`").into(),
            )
        })
    }
}

#[derive(Debug, Clone)]
pub struct Agreement {
    pub agreement_id: String,
    pub number: String,
    pub outflow_node: String,
    pub inflow_node: String,
    pub state: AgreementState,
    pub version: u64,
    pub active_version: u64,
    pub pending_terms: Option<pb::AgreementTerms>,
    pub pending_answers: u64,
    pub pending_signature: Option<pb::AgreementSignature>,
    pub ended_reason: String,
    pub ended_by: String,
    /// The host applied the agreement's end (coordinator side), at
    /// `host_end_seq` in its log (0: unknown, every later record refused).
    pub host_end_applied: bool,
    pub host_end_seq: u64,
    pub copies_dropped_for: String,
    pub updated_at_ms: i64,
}

impl Agreement {
    /// A new agreement between the parties `terms` names, before any version.
    fn proposed(agreement_id: String, terms: &pb::AgreementTerms, now_ms: i64) -> Agreement {
        Agreement {
            agreement_id,
            number: terms.number.clone(),
            outflow_node: terms.outflow_node.clone(),
            inflow_node: terms.inflow_node.clone(),
            state: AgreementState::Proposed,
            version: 0,
            active_version: 0,
            pending_terms: None,
            pending_answers: 0,
            pending_signature: None,
            ended_reason: String::new(),
            ended_by: String::new(),
            host_end_applied: false,
            host_end_seq: 0,
            copies_dropped_for: String::new(),
            updated_at_ms: now_ms,
        }
    }

    fn is_final(&self) -> bool {
        self.state.is_final()
    }

    fn other_party(&self, me: &NodeId) -> Result<NodeId, Error> {
        let other = if self.outflow_node == me.as_str() {
            &self.inflow_node
        } else {
            &self.outflow_node
        };
        NodeId::parse(other).map_err(|e| Error::invalid(e.to_string()))
    }
}

/// SHA-256 of the terms' protobuf encoding (no maps: canonical).
pub fn terms_hash(terms: &pb::AgreementTerms) -> Vec<u8> {
    Sha256::digest(terms.encode_to_vec()).to_vec()
}

/// What a signature covers.
fn signed_message(agreement_id: &str, version: u64, hash: &[u8]) -> Vec<u8> {
    let mut message = b"liaison agreement v1\0".to_vec();
    message.extend_from_slice(agreement_id.as_bytes());
    message.push(0);
    message.extend_from_slice(&version.to_be_bytes());
    message.extend_from_slice(hash);
    message
}

fn sign(
    ctx: &Ctx<'_>,
    agreement_id: &str,
    version: u64,
    terms: &pb::AgreementTerms,
) -> Result<pb::AgreementSignature, Error> {
    let hash = terms_hash(terms);
    let (signature, certificate) = ctx
        .notary()?
        .sign(&signed_message(agreement_id, version, &hash))
        .map_err(Error::invalid)?;
    Ok(pb::AgreementSignature {
        signer: ctx.me.to_string(),
        version,
        terms_hash: hash,
        signature,
        certificate,
    })
}

/// Checks a party's signature on `version` of `terms`; the reason if not.
fn verify(
    ctx: &Ctx<'_>,
    agreement_id: &str,
    signer: &str,
    version: u64,
    terms: &pb::AgreementTerms,
    signature: &pb::AgreementSignature,
) -> Result<(), String> {
    if signature.signer != signer {
        return Err(format!(
            "signed by `{}`, expected `{signer}`",
            signature.signer
        ));
    }
    if signature.version != version {
        return Err(format!(
            "signature for version {}, expected {version}",
            signature.version
        ));
    }
    let hash = terms_hash(terms);
    if signature.terms_hash != hash {
        return Err("the signature is over other terms than these".into());
    }
    let signer_id = NodeId::parse(signer).map_err(|e| e.to_string())?;
    let notary = ctx.notary().map_err(|e| e.to_string())?;
    notary.verify(
        &signer_id,
        &signature.certificate,
        &signed_message(agreement_id, version, &hash),
        &signature.signature,
        ctx.now_ms,
    )
}

/// [`verify`] for a signature a peer reports holding (reconciliation after
/// a restore, `core::reconcile`): by its own signer, on its own version.
pub fn verify_reported(
    ctx: &Ctx<'_>,
    agreement_id: &str,
    terms: &pb::AgreementTerms,
    signature: &pb::AgreementSignature,
) -> Result<(), String> {
    verify(
        ctx,
        agreement_id,
        &signature.signer,
        signature.version,
        terms,
        signature,
    )
}

fn store_signature(
    conn: &Connection,
    ctx: &Ctx<'_>,
    agreement_id: &str,
    s: &pb::AgreementSignature,
) -> Result<(), Error> {
    conn.execute(
        "INSERT OR IGNORE INTO agreement_signatures (agreement_id, version, signer, terms_hash, signature, certificate, verified_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![agreement_id, s.version, s.signer, s.terms_hash, s.signature, s.certificate, ctx.now_ms],
    )?;
    Ok(())
}

fn signature_of(
    conn: &Connection,
    agreement_id: &str,
    version: u64,
    signer: &str,
) -> Result<Option<Vec<u8>>, Error> {
    Ok(conn
        .query_row(
            "SELECT terms_hash FROM agreement_signatures WHERE agreement_id = ?1 AND version = ?2 AND signer = ?3",
            params![agreement_id, version, signer],
            |r| r.get(0),
        )
        .optional()?)
}

/// Version `version` of an agreement as stored here, with every signature
/// on it: what a vote answers and what holdings report.
pub fn stored_version(
    conn: &Connection,
    agreement_id: &str,
    version: u64,
) -> Result<Option<pb::AgreementVersion>, Error> {
    let Some(terms) = version_terms(conn, agreement_id, version)? else {
        return Ok(None);
    };
    let signatures = conn
        .prepare_cached(
            "SELECT signer, version, terms_hash, signature, certificate FROM agreement_signatures
             WHERE agreement_id = ?1 AND version = ?2 ORDER BY signer",
        )?
        .query_map(params![agreement_id, version], |r| {
            Ok(pb::AgreementSignature {
                signer: r.get(0)?,
                version: r.get(1)?,
                terms_hash: r.get(2)?,
                signature: r.get(3)?,
                certificate: r.get(4)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(pb::AgreementVersion {
        agreement_id: agreement_id.to_owned(),
        version,
        terms: Some(terms),
        signatures,
    }))
}

// ------------------------------------------------------------- storage

const COLUMNS: &str = "agreement_id, number, outflow_node, inflow_node, state, version, active_version, pending_terms,
    pending_answers, pending_signature, ended_reason, ended_by, host_end_applied, copies_dropped_for, updated_at_ms, host_end_seq";

fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Agreement> {
    let pending_terms: Option<Vec<u8>> = r.get(7)?;
    let pending_signature: Option<Vec<u8>> = r.get(9)?;
    Ok(Agreement {
        agreement_id: r.get(0)?,
        number: r.get(1)?,
        outflow_node: r.get(2)?,
        inflow_node: r.get(3)?,
        state: r.get(4)?,
        version: r.get(5)?,
        active_version: r.get(6)?,
        pending_terms: pending_terms.and_then(|b| pb::AgreementTerms::decode(b.as_slice()).ok()),
        pending_answers: r.get(8)?,
        pending_signature: pending_signature
            .and_then(|b| pb::AgreementSignature::decode(b.as_slice()).ok()),
        ended_reason: r.get(10)?,
        ended_by: r.get(11)?,
        host_end_applied: r.get(12)?,
        copies_dropped_for: r.get(13)?,
        updated_at_ms: r.get(14)?,
        host_end_seq: r.get(15)?,
    })
}

pub fn load(conn: &Connection, agreement_id: &str) -> Result<Option<Agreement>, Error> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM agreements WHERE agreement_id = ?1"
        ))?
        .query_row([agreement_id], read)
        .optional()?)
}

fn require(conn: &Connection, agreement_id: &str) -> Result<Agreement, Error> {
    load(conn, agreement_id.trim())?.ok_or_else(|| {
        Error::not_found(format!(
            "no agreement {agreement_id}: `agreement list` shows the agreements"
        ))
    })
}

fn save(conn: &Connection, a: &Agreement, now_ms: i64) -> Result<(), Error> {
    conn.execute(
        "INSERT INTO agreements (agreement_id, number, outflow_node, inflow_node, state, version, active_version,
             pending_terms, pending_answers, pending_signature, ended_reason, ended_by, host_end_applied,
             copies_dropped_for, created_at_ms, updated_at_ms, host_end_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15, ?16)
         ON CONFLICT (agreement_id) DO UPDATE SET number = excluded.number, state = excluded.state,
             version = excluded.version, active_version = excluded.active_version,
             pending_terms = excluded.pending_terms, pending_answers = excluded.pending_answers,
             pending_signature = excluded.pending_signature, ended_reason = excluded.ended_reason,
             ended_by = excluded.ended_by, host_end_applied = excluded.host_end_applied,
             host_end_seq = excluded.host_end_seq, copies_dropped_for = excluded.copies_dropped_for, updated_at_ms = excluded.updated_at_ms",
        params![
            a.agreement_id,
            a.number,
            a.outflow_node,
            a.inflow_node,
            a.state,
            a.version,
            a.active_version,
            a.pending_terms.as_ref().map(|t| t.encode_to_vec()),
            a.pending_answers,
            a.pending_signature.as_ref().map(|s| s.encode_to_vec()),
            a.ended_reason,
            a.ended_by,
            a.host_end_applied,
            a.copies_dropped_for,
            now_ms,
            a.host_end_seq
        ],
    )?;
    Ok(())
}

pub fn version_terms(
    conn: &Connection,
    agreement_id: &str,
    version: u64,
) -> Result<Option<pb::AgreementTerms>, Error> {
    let bytes: Option<Vec<u8>> = conn
        .prepare_cached(
            "SELECT terms FROM agreement_versions WHERE agreement_id = ?1 AND version = ?2",
        )?
        .query_row(params![agreement_id, version], |r| r.get(0))
        .optional()?;
    Ok(bytes.and_then(|b| pb::AgreementTerms::decode(b.as_slice()).ok()))
}

fn store_version(
    conn: &Connection,
    ctx: &Ctx<'_>,
    agreement_id: &str,
    version: u64,
    terms: &pb::AgreementTerms,
) -> Result<(), Error> {
    conn.execute(
        "INSERT OR IGNORE INTO agreement_versions (agreement_id, version, terms, terms_hash, published_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![agreement_id, version, terms.encode_to_vec(), terms_hash(terms), ctx.now_ms],
    )?;
    Ok(())
}

fn send(
    conn: &Connection,
    ctx: &Ctx<'_>,
    to: &NodeId,
    kind: EventKind,
    agreement_id: &str,
    payload: Vec<u8>,
) -> Result<(), Error> {
    log::append(conn, to, kind, agreement_id, &payload, ctx.now_ms)?;
    Ok(())
}

fn state_message(a: &Agreement, state: &str, by: &str) -> Vec<u8> {
    pb::AgreementState {
        agreement_id: a.agreement_id.clone(),
        version: a.active_version.max(a.version),
        state: state.to_owned(),
        reason: a.ended_reason.clone(),
        by: by.to_owned(),
    }
    .encode_to_vec()
}

// ---------------------------------------------------------- validation

fn date(value: &str, field: &str) -> Result<NaiveDate, Error> {
    Ok(validate::date(field, value, NaiveDate::MAX, true)?)
}

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

// ----------------------------------------------------- operator actions

/// Proposes a new agreement with `peer`; `role` is this node's.
pub fn propose(
    conn: &Connection,
    ctx: &Ctx<'_>,
    peer: &str,
    role: &str,
    mut terms: pb::AgreementTerms,
) -> Result<pb::AgreementView, Error> {
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

pub fn counter(
    conn: &Connection,
    ctx: &Ctx<'_>,
    agreement_id: &str,
    mut terms: pb::AgreementTerms,
) -> Result<pb::AgreementView, Error> {
    let mut a = require(conn, agreement_id)?;
    if a.is_final() {
        return Err(Error::conflict(format!(
            "agreement {} is {}: propose a new one",
            a.agreement_id, a.state
        )));
    }
    terms.outflow_node = a.outflow_node.clone();
    terms.inflow_node = a.inflow_node.clone();
    check_terms(conn, ctx, &mut terms)?;
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

/// Both parties act on the end itself: the owner stops sharing, the host
/// deletes its copies and tells the owner it sends nothing more under it.
pub(crate) fn act_on_end(conn: &Connection, ctx: &Ctx<'_>, a: &mut Agreement) -> Result<(), Error> {
    if a.outflow_node == ctx.me.as_str() {
        let inflow = a.other_party(ctx.me)?;
        let shared: Vec<String> = conn
            .prepare("SELECT member_id FROM shares WHERE basis = ?1")?
            .query_map([&a.agreement_id], |r| r.get(0))?
            .collect::<Result<Vec<_>, _>>()?;
        for member_id in &shared {
            log::drop_queued_home_sections(conn, &inflow, member_id)?;
        }
        conn.execute("DELETE FROM shares WHERE basis = ?1", [&a.agreement_id])?;
        // Another agreement with the same host may still cover some of them.
        members::reshare_after_basis_ended(conn, ctx, &shared, None)?;
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

// ------------------------------------------------------------ the clock

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

fn tick_one(conn: &Connection, ctx: &Ctx<'_>, a: &mut Agreement) -> Result<(), Error> {
    let today = ctx.today();
    if a.outflow_node == ctx.me.as_str() {
        // A reconciling node makes no agreement decisions (DESIGN §7), also
        // not on applying a vote: the calendar's first tick after the
        // reconciliation does. Until then this node may still believe it
        // owns a member it released and forgot, and an activation would
        // share it.
        if a.is_final() || a.version == 0 || super::reconcile::is_reconciling(conn)? {
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
            // this transaction, the rest in their own (DESIGN §5).
            members::request_reshare(conn, ctx)?;
        }
        let active_until = match version_terms(conn, &a.agreement_id, a.active_version)? {
            Some(active) if a.state == AgreementState::Active => {
                date(&active.effective_until, "effective until")?
            }
            _ => return Ok(()),
        };
        if today > active_until {
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

/// The version whose end a host keeps copies until: the active one (a
/// version only proposed extends nothing), else the latest.
fn host_version(a: &Agreement) -> u64 {
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
fn host_grace(
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

// ---------------------------------------------------------------- scope

/// The active agreements of this node (as outflow party) that cover an
/// owned member now: (agreement id, inflow node).
pub fn covering(
    conn: &Connection,
    ctx: &Ctx<'_>,
    member_id: &str,
) -> Result<Vec<(String, String)>, Error> {
    let scope = Scope::load(conn, ctx)?;
    let outflow = if scope.needs_outflow() {
        members::open_outflow(conn, member_id)?
    } else {
        None
    };
    scope.covering(conn, member_id, outflow.as_ref())
}

/// One active agreement this node coordinates, its terms decoded.
#[derive(Debug)]
struct ScopeEntry {
    agreement_id: String,
    inflow: String,
    /// `Some` for a scope of listed members, `None` for a scope of places
    /// (the places the inflow node serves).
    members: Option<std::collections::HashSet<String>>,
}

/// The active agreements this node coordinates, read and decoded once, to
/// decide [`covering`] for many members in one transaction. Valid while the
/// agreements, their versions and the peers' places do not change: build a
/// new one after any of those changes.
#[derive(Debug)]
pub struct Scope {
    entries: Vec<ScopeEntry>,
    /// Whether `inflow` serves `destination place` (memoized `LIKE` match).
    served: std::cell::RefCell<std::collections::HashMap<(String, String), bool>>,
}

impl Scope {
    pub fn load(conn: &Connection, ctx: &Ctx<'_>) -> Result<Scope, Error> {
        let rows: Vec<(String, String, Option<Vec<u8>>)> = conn
            .prepare_cached(
                "SELECT a.agreement_id, a.inflow_node, v.terms FROM agreements a
                 LEFT JOIN agreement_versions v ON v.agreement_id = a.agreement_id AND v.version = a.active_version
                 WHERE a.outflow_node = ?1 AND a.state = 'active' ORDER BY a.agreement_id",
            )?
            .query_map([ctx.me.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        let entries = rows
            .into_iter()
            .filter_map(|(agreement_id, inflow, bytes)| {
                let terms = pb::AgreementTerms::decode(bytes?.as_slice()).ok()?;
                let members = (terms.scope_kind == "members")
                    .then(|| terms.scope_members.into_iter().collect());
                Some(ScopeEntry {
                    agreement_id,
                    inflow,
                    members,
                })
            })
            .collect();
        Ok(Scope {
            entries,
            served: Default::default(),
        })
    }

    /// No active agreement: nothing covers anyone.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether some agreement's scope is a set of places (so coverage
    /// depends on the member's open outflow).
    pub fn needs_outflow(&self) -> bool {
        self.entries.iter().any(|e| e.members.is_none())
    }

    /// The members listed by name in some agreement's scope.
    pub fn listed_members(&self) -> impl Iterator<Item = &String> {
        self.entries
            .iter()
            .filter_map(|e| e.members.as_ref())
            .flatten()
    }

    /// [`covering`] for a member whose open outflow is `outflow`.
    pub fn covering(
        &self,
        conn: &Connection,
        member_id: &str,
        outflow: Option<&pb::OutflowView>,
    ) -> Result<Vec<(String, String)>, Error> {
        let mut out = Vec::new();
        for entry in &self.entries {
            let covered = match (&entry.members, outflow) {
                (Some(listed), _) => listed.contains(member_id),
                (None, Some(outflow)) => {
                    self.serves(conn, &entry.inflow, &outflow.destination_place)?
                }
                (None, None) => false,
            };
            if covered {
                out.push((entry.agreement_id.clone(), entry.inflow.clone()));
            }
        }
        Ok(out)
    }

    fn serves(&self, conn: &Connection, inflow: &str, place: &str) -> Result<bool, Error> {
        let key = (inflow.to_owned(), place.to_owned());
        if let Some(served) = self.served.borrow().get(&key) {
            return Ok(*served);
        }
        let served = conn
            .prepare_cached(
                "SELECT place FROM peer_places WHERE node_id = ?1 AND ?2 LIKE place || '%' LIMIT 1",
            )?
            .query_row(params![inflow, place], |r| r.get::<_, String>(0))
            .optional()?
            .is_some();
        self.served.borrow_mut().insert(key, served);
        Ok(served)
    }
}

// -------------------------------------------------------- incoming events

fn reject(message: String) -> Rejection {
    Rejection::Invalid(message)
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
/// restore (DESIGN §7): the agreements it coordinates with this node that
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
/// restore from a backup older than its own proposal (DESIGN §7) made it
/// forget what the voter still holds. Taken back as the voter holds it, at
/// the version answered, only if this node's own signature on that version
/// verifies (it did publish those terms); else `None` and the vote is
/// refused as before.
fn adopt_forgotten(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    vote: &pb::AgreementVote,
) -> Result<Option<Agreement>, Error> {
    let Some(answered) = &vote.answered else {
        return Ok(None);
    };
    let Some(terms) = &answered.terms else {
        return Ok(None);
    };
    let parties = terms.outflow_node == ctx.me.as_str() && terms.inflow_node == origin.as_str();
    let same = answered.agreement_id == vote.agreement_id
        && answered.version == vote.answers_version
        && answered.version > 0;
    if !(parties && same) {
        return Ok(None);
    }
    let Some(own) = answered
        .signatures
        .iter()
        .find(|s| s.signer == ctx.me.as_str())
    else {
        return Ok(None);
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
        return Ok(None);
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
    Ok(Some(a))
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
        if load(conn, &vote.agreement_id)?.is_none() {
            if let Some(mut a) = adopt_forgotten(conn, ctx, origin, &vote)? {
                tick_one(conn, ctx, &mut a)?;
            }
        }
        return Ok(());
    }
    let signature = vote
        .signature
        .clone()
        .ok_or_else(|| reject("vote without a signature".into()))?;
    let existing = match load(conn, &vote.agreement_id)? {
        None => adopt_forgotten(conn, ctx, origin, &vote)?,
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
            verify(
                ctx,
                &vote.agreement_id,
                origin.as_str(),
                vote.answers_version + 1,
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
                    return Err(reject(format!(
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
                return Err(reject(format!(
                    "acceptance of unknown agreement {}",
                    vote.agreement_id
                )));
            };
            if vote.answers_version != a.version {
                return Ok(());
            }
            let terms = version_terms(conn, &a.agreement_id, a.version)?
                .ok_or_else(|| reject("accepted version has no terms here".into()))?;
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
        return Err(reject(format!(
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

/// At a host, on refusing a home section under `basis` because its own
/// clock is past the agreement's end plus the grace period: what its
/// calendar does then, at once, and the owner is told even if nothing was
/// held (`host_grace`). Else a copy held from before would stay behind the
/// refused update, or the owner would believe the host holds what it
/// refused, for good.
pub fn host_past_grace(conn: &Connection, ctx: &Ctx<'_>, basis: &str) -> Result<(), Error> {
    if let Some(mut a) = load(conn, basis)? {
        if a.inflow_node == ctx.me.as_str() && a.state == AgreementState::Active {
            host_grace(conn, ctx, &mut a, true)?;
        }
    }
    Ok(())
}

/// At a host: may it hold a home section shared under `basis` now? `None`
/// if no such agreement is known; `Some(false)` if it is not active here or
/// this node's clock is past its end plus the grace period.
pub fn host_may_hold(
    conn: &Connection,
    ctx: &Ctx<'_>,
    owner: &NodeId,
    basis: &str,
) -> Result<Option<bool>, Error> {
    let Some(a) = load(conn, basis)? else {
        return Ok(None);
    };
    if a.outflow_node != owner.as_str() {
        return Ok(None);
    }
    if a.inflow_node != ctx.me.as_str() || a.state != AgreementState::Active {
        return Ok(Some(false));
    }
    let Some(terms) = version_terms(conn, basis, host_version(&a))? else {
        return Ok(Some(false));
    };
    let until = date(&terms.effective_until, "effective until")?;
    Ok(Some((ctx.today() - until).num_days() <= GRACE_DAYS))
}

/// Whether a host record from `origin` with `basis` is legitimate here: the
/// basis is an agreement this node coordinates with `origin`, it was active,
/// the host appended the record before it applied the end in that log
/// (`(log_id, seq)`: the record's place in `origin`'s log; seq 0 for a
/// record the host reported in its holdings, which it made under the
/// agreement while it was open), and the member was shared under it.
pub fn host_record_allowed(
    conn: &Connection,
    ctx: &Ctx<'_>,
    origin: &NodeId,
    member_id: &str,
    basis: &str,
    (log_id, seq): (&str, u64),
) -> Result<Result<(), String>, Error> {
    let Some(a) = load(conn, basis)? else {
        return Ok(Err(format!(
            "basis `{basis}` is not an agreement known here"
        )));
    };
    if a.outflow_node != ctx.me.as_str() || a.inflow_node != origin.as_str() {
        return Ok(Err(format!(
            "agreement {basis} is not between this node and {origin}"
        )));
    }
    if a.active_version == 0 {
        return Ok(Err(format!("agreement {basis} was never active")));
    }
    if a.host_end_applied && seq >= host_end_in(conn, &a, log_id)? {
        return Ok(Err(format!(
            "{origin} sent it after it applied the end of agreement {basis}"
        )));
    }
    let shared: bool = conn
        .prepare_cached(
            "SELECT 1 FROM disclosures WHERE peer = ?1 AND record_id = ?2 AND basis = ?3 LIMIT 1",
        )?
        .query_row(params![origin.as_str(), member_id, basis], |_| Ok(()))
        .optional()?
        .is_some();
    if !shared {
        return Ok(Err(format!(
            "member {member_id} was never shared with {origin} under agreement {basis}"
        )));
    }
    Ok(Ok(()))
}

/// Where the host applied the end of `a` (which it did) in its log
/// `log_id`: `u64::MAX` if not in that log. A host restored from a backup
/// older than its end starts a new log in which it forgot the end, so its
/// records there come before the end until it applies the end again there
/// (DESIGN §4, §7). An end recorded before markers were kept per log
/// (migration 0009) holds for every log.
fn host_end_in(conn: &Connection, a: &Agreement, log_id: &str) -> Result<u64, Error> {
    let mut markers =
        conn.prepare_cached("SELECT log_id, seq FROM host_end_markers WHERE agreement_id = ?1")?;
    let markers: Vec<(String, u64)> = markers
        .query_map([&a.agreement_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    if markers.is_empty() {
        return Ok(a.host_end_seq);
    }
    Ok(markers
        .into_iter()
        .find(|(log, _)| log == log_id)
        .map_or(u64::MAX, |(_, seq)| seq))
}

/// Active agreements with `peer` (either role).
pub fn active_with(conn: &Connection, peer: &NodeId) -> Result<Vec<String>, Error> {
    Ok(conn
        .prepare(
            "SELECT agreement_id FROM agreements WHERE state = 'active' AND (outflow_node = ?1 OR inflow_node = ?1)
             ORDER BY agreement_id",
        )?
        .query_map([peer.as_str()], |r| r.get(0))?
        .collect::<Result<Vec<_>, _>>()?)
}

// ----------------------------------------------------------------- views

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
    let members_in_scope: u64 = if coordinator {
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
        next_step,
        updated_at_ms: a.updated_at_ms,
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
    let scope = Scope::load(conn, ctx)?;
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
