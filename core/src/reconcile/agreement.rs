//! Adopting an agreement as a peer holds it.

use liaison_proto::v1 as pb;
use prost::Message;
use rusqlite::{params, Connection, OptionalExtension};

use crate::{Ctx, Error};

/// What adopting one agreement did.
pub(super) enum AgreementAdoption {
    Unchanged,
    Changed,
    Refused(String),
}

/// Adopts an agreement as the peer holds it, with every version and
/// signature, where the peer's is further along.
pub(super) fn adopt_agreement(
    conn: &Connection,
    ctx: &Ctx<'_>,
    held: &pb::HeldAgreement,
) -> Result<AgreementAdoption, Error> {
    // An agreement decides what this node shares: adopt one the peer says
    // is (or was) active only with this node's own signature on that
    // version, so a peer cannot make it share under terms it never signed.
    // One that ended shares nothing and can never be active again: it is
    // adopted as ended even without (a party that ended it before the
    // version reached it may never have stored its signature there).
    if held.active_version > 0 && ctx.notary.is_some() && state_rank(&held.state) != 2 {
        let mine = held
            .versions
            .iter()
            .filter(|v| v.version == held.active_version)
            .find_map(|v| {
                let terms = v.terms.as_ref()?;
                let signature = v.signatures.iter().find(|s| s.signer == ctx.me.as_str())?;
                Some(crate::agreements::verify_reported(
                    ctx,
                    &held.agreement_id,
                    terms,
                    signature,
                ))
            });
        match mine {
            Some(Ok(())) => {}
            Some(Err(why)) => {
                return Ok(AgreementAdoption::Refused(format!(
                    "agreement {} version {}: this node's signature does not verify: {why}",
                    held.agreement_id, held.active_version
                )))
            }
            None => {
                return Ok(AgreementAdoption::Refused(format!(
                    "agreement {} version {} carries no signature of this node",
                    held.agreement_id, held.active_version
                )))
            }
        }
    }
    let local = crate::agreements::load(conn, &held.agreement_id)?;
    let behind = local.as_ref().is_none_or(|a| {
        (state_rank(&held.state), held.version, held.active_version)
            > (state_rank(a.state.as_str()), a.version, a.active_version)
    });
    // TERMINATED and EXPIRED are final here.
    let is_final = local.as_ref().is_some_and(|a| a.state.is_final());
    let changed = behind && !is_final;
    if changed {
        // The row first: versions and signatures refer to it.
        conn.execute(
            "INSERT INTO agreements (agreement_id, number, outflow_node, inflow_node, state, version, active_version,
                 ended_reason, ended_by, created_at_ms, updated_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)
             ON CONFLICT (agreement_id) DO UPDATE SET state = excluded.state, version = MAX(version, excluded.version),
                 active_version = MAX(active_version, excluded.active_version), ended_reason = excluded.ended_reason,
                 ended_by = excluded.ended_by, updated_at_ms = excluded.updated_at_ms",
            params![
                held.agreement_id,
                held.number,
                held.outflow_node,
                held.inflow_node,
                held.state,
                held.version,
                held.active_version,
                held.ended_reason,
                held.ended_by,
                ctx.now_ms
            ],
        )?;
    }
    if local.is_none() && !changed {
        return Ok(AgreementAdoption::Unchanged);
    }
    // The coordinator alone numbers versions, so its terms under a number
    // stand. A coordinator restored to before it published a version, at
    // a time this node was restored to before it too, numbers other terms
    // the same; this node, restored later to a backup holding the first,
    // takes the coordinator's (signed by it), and its signatures over the
    // forgotten terms go with them.
    let peer_coordinates = held.outflow_node != ctx.me.as_str();
    let publish_again = if peer_coordinates {
        None
    } else {
        take_back_own_numbers(conn, ctx, held, local.as_ref())?
    };
    for version in &held.versions {
        let Some(terms) = &version.terms else {
            continue;
        };
        if peer_coordinates {
            replace_renumbered_version(conn, ctx, held, version, terms)?;
        }
        conn.execute(
            "INSERT OR IGNORE INTO agreement_versions (agreement_id, version, terms, terms_hash, published_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                held.agreement_id,
                version.version,
                terms.encode_to_vec(),
                crate::agreements::terms_hash(terms),
                ctx.now_ms
            ],
        )?;
        // Only signatures over the terms held here under their version
        // number: one over terms the coordinator numbered the same on a
        // forgotten branch would take the signer's place for that version.
        for s in &version.signatures {
            conn.execute(
                "INSERT OR IGNORE INTO agreement_signatures (agreement_id, version, signer, terms_hash, signature, certificate, verified_at_ms)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE EXISTS (
                     SELECT 1 FROM agreement_versions WHERE agreement_id = ?1 AND version = ?2 AND terms_hash = ?4)",
                params![held.agreement_id, s.version, s.signer, s.terms_hash, s.signature, s.certificate, ctx.now_ms],
            )?;
        }
    }
    // Ended here since the restore, the agreement keeps its end; a later
    // version, or a later activation (checked above: signed by this node),
    // that this node made before and forgot is part of its history as the
    // peer holds it. An activation is never undone, only ended.
    let forgot_version = is_final
        && local.as_ref().is_some_and(|a| held.version > a.version)
        && held
            .versions
            .iter()
            .any(|v| v.version == held.version && v.terms.is_some());
    let forgot_activation = is_final
        && local
            .as_ref()
            .is_some_and(|a| held.active_version > a.active_version);
    // Ended on both sides, differently: the end the coordinator holds
    // stands on both, as when the two ends cross in the logs (a restore can
    // make one side forget the coordinator's end it had applied, or keep an
    // end of a coordinator's log that the coordinator lost). From the
    // coordinator (the peer, when this node is the inflow party) its end is
    // taken whatever it is; the coordinator itself takes the peer's end
    // only where that end is its own and the one it holds is not.
    let coordinators_end = is_final
        && state_rank(&held.state) == 2
        && local.as_ref().is_some_and(|a| {
            let coordinator = &a.outflow_node;
            let differs = (
                a.state.as_str(),
                a.ended_by.as_str(),
                a.ended_reason.as_str(),
            ) != (
                held.state.as_str(),
                held.ended_by.as_str(),
                held.ended_reason.as_str(),
            );
            let held_by_coordinator = ctx.me.as_str() != coordinator.as_str();
            held.outflow_node == *coordinator
                && differs
                && (held_by_coordinator
                    || (held.ended_by == *coordinator && a.ended_by != *coordinator))
        });
    if coordinators_end {
        conn.execute(
            "UPDATE agreements SET state = ?2, ended_reason = ?3, ended_by = ?4, updated_at_ms = ?5
             WHERE agreement_id = ?1",
            params![
                held.agreement_id,
                held.state,
                held.ended_reason,
                held.ended_by,
                ctx.now_ms
            ],
        )?;
    }
    if forgot_version || forgot_activation {
        conn.execute(
            "UPDATE agreements SET version = MAX(version, ?2), active_version = MAX(active_version, ?3), updated_at_ms = ?4
             WHERE agreement_id = ?1",
            params![
                held.agreement_id,
                if forgot_version { held.version } else { 0 },
                held.active_version,
                ctx.now_ms
            ],
        )?;
    }
    let published_again = publish_again.is_some();
    if let Some(terms) = publish_again {
        crate::agreements::publish_again(conn, ctx, &held.agreement_id, terms)?;
    }
    if changed && state_rank(&held.state) == 2 {
        // It ended after the backup: act on the end as applying it does
        // (the host drops its copies, the coordinator stops sharing).
        if let Some(mut a) = crate::agreements::load(conn, &held.agreement_id)? {
            crate::agreements::act_on_end(conn, ctx, &mut a)?;
        }
    }
    Ok(if changed || coordinators_end || published_again {
        AgreementAdoption::Changed
    } else {
        AgreementAdoption::Unchanged
    })
}

/// At the coordinator: where the peer holds, under one of the numbers this
/// node published since its last active version, terms this node signed
/// and forgot (a restore to before it published them) while it numbered
/// other terms the same since, the peer's history stands: this node's
/// versions from that number on are deleted, so that the peer's are stored
/// in their place, and its latest terms are returned to be published again
/// past every number the peer holds. An operator's later proposal is not
/// lost, and both parties hold the same terms under every number. Ended
/// here (by date, say, before this node adopted the peer it went on
/// without), the agreement gets no new version: its terms never active
/// past the peer's go, and both still hold the same terms under every
/// number.
fn take_back_own_numbers(
    conn: &Connection,
    ctx: &Ctx<'_>,
    held: &pb::HeldAgreement,
    local: Option<&crate::agreements::Agreement>,
) -> Result<Option<pb::AgreementTerms>, Error> {
    let Some(local) = local else {
        return Ok(None);
    };
    if ctx.notary.is_none() {
        return Ok(None);
    }
    let mut first_differing = None;
    for version in &held.versions {
        let Some(terms) = &version.terms else {
            continue;
        };
        if version.version <= local.active_version || version.version > local.version {
            continue;
        }
        let differs = holds_other_terms(conn, &held.agreement_id, version.version, terms)?;
        let signed_here = version.signatures.iter().any(|s| {
            s.signer == ctx.me.as_str()
                && s.version == version.version
                && crate::agreements::verify_reported(ctx, &held.agreement_id, terms, s).is_ok()
        });
        if differs && signed_here {
            first_differing =
                Some(first_differing.map_or(version.version, |v: u64| v.min(version.version)));
        }
    }
    let Some(from) = first_differing else {
        return Ok(None);
    };
    let latest = crate::agreements::version_terms(conn, &held.agreement_id, local.version)?;
    conn.execute(
        "DELETE FROM agreement_signatures WHERE agreement_id = ?1 AND version >= ?2",
        params![held.agreement_id, from],
    )?;
    conn.execute(
        "DELETE FROM agreement_versions WHERE agreement_id = ?1 AND version >= ?2",
        params![held.agreement_id, from],
    )?;
    // The peer's versions are stored in the place of this node's; it holds
    // `from` at least.
    conn.execute(
        "UPDATE agreements SET version = ?2 WHERE agreement_id = ?1",
        params![held.agreement_id, held.version.max(from)],
    )?;
    if local.state.is_final() {
        tracing::warn!(agreement = %held.agreement_id, version = from, state = %local.state.as_str(), "restored: the peer holds other terms this node signed under its version number; the agreement has ended, so its own later terms go");
        return Ok(None);
    }
    tracing::warn!(agreement = %held.agreement_id, version = from, "restored: the peer holds other terms this node signed under its version number; its own are published again past the peer's");
    // Terms the peer holds already need no other number.
    let held_already = latest.as_ref().is_some_and(|terms| {
        let hash = crate::agreements::terms_hash(terms);
        held.versions
            .iter()
            .filter_map(|v| v.terms.as_ref())
            .any(|t| crate::agreements::terms_hash(t) == hash)
    });
    Ok(latest.filter(|_| !held_already))
}

/// At the inflow party: where it holds other terms than the coordinator's
/// under the number of `version`, and the coordinator's own signature on
/// its terms verifies, the version held here and the signatures over it
/// are deleted, so that the coordinator's are stored in their place.
fn replace_renumbered_version(
    conn: &Connection,
    ctx: &Ctx<'_>,
    held: &pb::HeldAgreement,
    version: &pb::AgreementVersion,
    terms: &pb::AgreementTerms,
) -> Result<(), Error> {
    let hash = crate::agreements::terms_hash(terms);
    let differs = holds_other_terms(conn, &held.agreement_id, version.version, terms)?;
    if !differs || ctx.notary.is_none() {
        return Ok(());
    }
    let signed_by_coordinator = version.signatures.iter().any(|s| {
        s.signer == held.outflow_node
            && s.version == version.version
            && crate::agreements::verify_reported(ctx, &held.agreement_id, terms, s).is_ok()
    });
    if !signed_by_coordinator {
        return Ok(());
    }
    conn.execute(
        "DELETE FROM agreement_signatures WHERE agreement_id = ?1 AND version = ?2 AND terms_hash <> ?3",
        params![held.agreement_id, version.version, hash],
    )?;
    conn.execute(
        "DELETE FROM agreement_versions WHERE agreement_id = ?1 AND version = ?2",
        params![held.agreement_id, version.version],
    )?;
    tracing::warn!(agreement = %held.agreement_id, version = version.version, coordinator = %held.outflow_node, "restored: other terms held under the coordinator's version number are replaced by its own");
    Ok(())
}

/// Whether this node holds other terms than `terms` under `version`.
fn holds_other_terms(
    conn: &Connection,
    agreement_id: &str,
    version: u64,
    terms: &pb::AgreementTerms,
) -> Result<bool, Error> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM agreement_versions WHERE agreement_id = ?1 AND version = ?2 AND terms_hash <> ?3",
            params![agreement_id, version, crate::agreements::terms_hash(terms)],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

fn state_rank(state: &str) -> u8 {
    match state {
        "proposed" => 0,
        "active" => 1,
        _ => 2,
    }
}
