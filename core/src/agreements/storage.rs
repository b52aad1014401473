//! Agreements as stored: the row of each, its versions' terms and the
//! parties' signatures, and the messages the parties send each other.

use chrono::NaiveDate;
use liaison_proto::v1 as pb;
use liaison_proto::v1::EventKind;
use liaison_types::identity::NodeId;
use liaison_types::validate;
use prost::Message;
use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};

use crate::log;
use crate::{Ctx, Error};

/// An agreement's state (docs/agreements.md); the same at both parties once their
/// messages are through (docs/agreements.md).
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
    /// The end date (`effective_until`) of the version whose copies the
    /// host dropped on its own clock: at the host, it dropped them; at the
    /// coordinator, the host said so (`CopiesDropped`). Nothing is shared
    /// under the agreement again until a version with another end is
    /// active: the host would refuse it and say so again, without end.
    pub copies_dropped_for: String,
    pub updated_at_ms: i64,
}

impl Agreement {
    /// A new agreement between the parties `terms` names, before any version.
    pub(super) fn proposed(
        agreement_id: String,
        terms: &pb::AgreementTerms,
        now_ms: i64,
    ) -> Agreement {
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

    pub(super) fn is_final(&self) -> bool {
        self.state.is_final()
    }

    pub(super) fn other_party(&self, me: &NodeId) -> Result<NodeId, Error> {
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

pub(super) fn store_signature(
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

pub(super) fn signature_of(
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

/// The two parties of an agreement as this node holds it: what a check of
/// who may send what under it reads, without decoding the whole row. The
/// outflow party is the member's owner, which coordinates the agreement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parties {
    pub outflow: String,
    pub inflow: String,
}

pub fn parties(conn: &Connection, agreement_id: &str) -> Result<Option<Parties>, Error> {
    Ok(conn
        .prepare_cached("SELECT outflow_node, inflow_node FROM agreements WHERE agreement_id = ?1")?
        .query_row([agreement_id], |r| {
            Ok(Parties {
                outflow: r.get(0)?,
                inflow: r.get(1)?,
            })
        })
        .optional()?)
}

pub(super) fn require(conn: &Connection, agreement_id: &str) -> Result<Agreement, Error> {
    load(conn, agreement_id.trim())?.ok_or_else(|| {
        Error::not_found(format!(
            "no agreement {agreement_id}: `agreement list` shows the agreements"
        ))
    })
}

pub(super) fn save(conn: &Connection, a: &Agreement, now_ms: i64) -> Result<(), Error> {
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

pub(super) fn store_version(
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

pub(super) fn send(
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

pub(super) fn state_message(a: &Agreement, state: &str, by: &str) -> Vec<u8> {
    pb::AgreementState {
        agreement_id: a.agreement_id.clone(),
        version: a.active_version.max(a.version),
        state: state.to_owned(),
        reason: a.ended_reason.clone(),
        by: by.to_owned(),
    }
    .encode_to_vec()
}

pub(super) fn date(value: &str, field: &str) -> Result<NaiveDate, Error> {
    Ok(validate::date(field, value, NaiveDate::MAX, true)?)
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
