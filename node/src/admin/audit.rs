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
/// the check, so it never hides the break it reports.
pub(super) async fn verify(
    admin: &AdminService,
    request: Request<pb::AuditVerifyRequest>,
) -> Result<Response<pb::AuditVerifyResponse>, Status> {
    let (action, _) = Action::of(request, "audit.verify", |_| String::new());
    let verdict = admin.read(|conn, _ctx| audit::verify(conn)).await?;
    let (response, outcome, detail) = match verdict {
        audit::Verdict::Intact { entries } => (
            pb::AuditVerifyResponse {
                ok: true,
                entries,
                first_broken_seq: 0,
                problem: String::new(),
            },
            Outcome::Ok,
            format!("{entries} entries intact"),
        ),
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
            },
            Outcome::Error,
            format!("entry {first_broken_seq}: {problem}"),
        ),
    };
    admin.record(action, outcome, detail).await;
    Ok(Response::new(response))
}
