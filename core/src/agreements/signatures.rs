//! Signatures over (agreement id, version, SHA-256 of the canonical terms),
//! made and checked through the injected `Notary` (docs/agreements.md).

use liaison_proto::v1 as pb;
use liaison_types::identity::NodeId;

use super::storage::terms_hash;
use crate::{Ctx, Error};

/// What a signature covers.
fn signed_message(agreement_id: &str, version: u64, hash: &[u8]) -> Vec<u8> {
    let mut message = b"liaison agreement v1\0".to_vec();
    message.extend_from_slice(agreement_id.as_bytes());
    message.push(0);
    message.extend_from_slice(&version.to_be_bytes());
    message.extend_from_slice(hash);
    message
}

pub(super) fn sign(
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
pub(super) fn verify(
    ctx: &Ctx<'_>,
    agreement_id: &str,
    signer: &str,
    version: u64,
    terms: &pb::AgreementTerms,
    signature: &pb::AgreementSignature,
) -> Result<(), String> {
    check_signer(signer, signature)?;
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
    verify_own_hash(ctx, agreement_id, signer, signature)
}

fn check_signer(signer: &str, signature: &pb::AgreementSignature) -> Result<(), String> {
    if signature.signer != signer {
        return Err(format!(
            "signed by `{}`, expected `{signer}`",
            signature.signer
        ));
    }
    Ok(())
}

/// Checks that `signature` is `signer`'s own over the version and terms
/// hash it names, whatever terms this node holds under that version.
pub(super) fn verify_own_hash(
    ctx: &Ctx<'_>,
    agreement_id: &str,
    signer: &str,
    signature: &pb::AgreementSignature,
) -> Result<(), String> {
    check_signer(signer, signature)?;
    let signer_id = NodeId::parse(signer).map_err(|e| e.to_string())?;
    let notary = ctx.notary().map_err(|e| e.to_string())?;
    notary.verify(
        &signer_id,
        &signature.certificate,
        &signed_message(agreement_id, signature.version, &signature.terms_hash),
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
