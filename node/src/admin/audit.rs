//! The audit log: listing it, and verifying its hash chain.

use liaison_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::action::Action;
use super::AdminService;
use liaison_core::store::audit::{self, Outcome};

pub(super) async fn list(
    admin: &AdminService,
    request: Request<pb::AuditListRequest>,
) -> Result<Response<pb::AuditListResponse>, Status> {
    let list = request.into_inner();
    let limit = if list.limit == 0 {
        1000
    } else {
        list.limit.min(100_000)
    };
    let entries = admin
        .read(move |conn, _ctx| audit::list(conn, list.since_ms, limit))
        .await?;
    Ok(Response::new(pb::AuditListResponse {
        entries: entries
            .into_iter()
            .map(|e| pb::AuditEntry {
                seq: e.seq,
                at_ms: e.at_ms,
                actor: e.actor,
                action: e.action,
                target: e.target,
                outcome: e.outcome,
                detail: e.detail,
                hash: e.hash,
            })
            .collect(),
    }))
}

/// A read, audited on purpose, with its verdict: an entry appended after
/// the check, so it never hides the break it reports. The chain is
/// checked link by link, then against the heads recorded of it: the
/// node's own record beside the database and its peers' witnesses (under
/// its current log id), so deleting the newest entries is detected too.
pub(super) async fn verify(
    admin: &AdminService,
    request: Request<pb::AuditVerifyRequest>,
) -> Result<Response<pb::AuditVerifyResponse>, Status> {
    let (action, _) = Action::of(request, "audit.verify", |_| String::new());
    let log_id = admin.node.log_id();
    let record = crate::node::read_audit_record(&admin.node.config.data_dir, &log_id);
    let verdict = admin
        .read(move |conn, _ctx| {
            let verdict = audit::verify(conn)?;
            let mut anchors: Vec<audit::Anchor> = record
                .into_iter()
                .map(|(head, recorded_at_ms)| audit::Anchor {
                    source: "record".into(),
                    head,
                    recorded_at_ms,
                })
                .collect();
            anchors.extend(audit::peer_anchors(conn, &log_id)?);
            let checks = anchors
                .into_iter()
                .map(|anchor| Ok((audit::check_anchor(conn, &anchor.head)?, anchor)))
                .collect::<Result<Vec<_>, liaison_core::Error>>()?;
            Ok((verdict, checks, audit::truncations(conn)?))
        })
        .await?;
    let (verdict, checks, truncations) = (verdict.0, verdict.1, verdict.2);
    let missing_entries = checks
        .iter()
        .filter_map(|(check, _)| match check {
            audit::AnchorCheck::Missing { entries } => Some(*entries),
            _ => None,
        })
        .max()
        .unwrap_or(0)
        .max(truncations.iter().map(|(_, n, _)| n).sum());
    let anchors: Vec<pb::AuditAnchorCheck> = checks
        .iter()
        .map(|(check, anchor)| pb::AuditAnchorCheck {
            source: anchor.source.clone(),
            entries: anchor.head.entries,
            verdict: check.as_str().into(),
            recorded_at_ms: anchor.recorded_at_ms,
        })
        .collect();
    let failed: Vec<String> = checks
        .iter()
        .filter(|(check, _)| *check != audit::AnchorCheck::Holds)
        .map(|(check, anchor)| match check {
            audit::AnchorCheck::Missing { entries } => format!(
                "{} recorded {} entries: the newest {entries} are missing",
                anchor.source, anchor.head.entries
            ),
            _ => format!(
                "{} recorded entry {} with another hash: it was rewritten",
                anchor.source, anchor.head.entries
            ),
        })
        .collect();
    let failed: Vec<String> = truncations
        .iter()
        .map(|(seq, _, detail)| format!("entry {seq}: {detail}"))
        .chain(failed)
        .collect();
    let (mut response, outcome, detail) = match verdict {
        audit::Verdict::Intact { entries } if failed.is_empty() => (
            pb::AuditVerifyResponse {
                ok: true,
                entries,
                ..Default::default()
            },
            Outcome::Ok,
            format!("{entries} entries intact, {} anchors hold", anchors.len()),
        ),
        audit::Verdict::Intact { entries } => {
            let problem = failed.join("; ");
            (
                pb::AuditVerifyResponse {
                    ok: false,
                    entries,
                    first_broken_seq: entries + 1,
                    problem: problem.clone(),
                    ..Default::default()
                },
                Outcome::Error,
                problem,
            )
        }
        audit::Verdict::Broken {
            entries,
            first_broken_seq,
            problem,
        } => (
            pb::AuditVerifyResponse {
                ok: false,
                entries,
                first_broken_seq,
                problem: problem.clone(),
                ..Default::default()
            },
            Outcome::Error,
            format!("entry {first_broken_seq}: {problem}"),
        ),
    };
    response.anchors = anchors;
    response.missing_entries = missing_entries;
    admin.record(action, outcome, detail).await;
    Ok(Response::new(response))
}
