//! Co-management agreements: proposing, countering, accepting, ending,
//! and showing them.

use liaison_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::action::Action;
use super::AdminService;
use liaison_core::agreements;

pub(super) async fn propose(
    admin: &AdminService,
    request: Request<pb::AgreementProposeRequest>,
) -> Result<Response<pb::AgreementView>, Status> {
    let (action, req) = Action::of(request, "agreement.propose", |r| r.peer.clone());
    let role = if req.role.is_empty() {
        "outflow"
    } else {
        &req.role
    };
    let detail = format!("with {} as {role}", req.peer);
    admin
        .act(action, move |conn, ctx| {
            let terms = req.terms.unwrap_or_default();
            let view = agreements::propose(conn, ctx, &req.peer, &req.role, terms)?;
            Ok((view, detail))
        })
        .await
        .map(Response::new)
}

pub(super) async fn counter(
    admin: &AdminService,
    request: Request<pb::AgreementCounterRequest>,
) -> Result<Response<pb::AgreementView>, Status> {
    let (action, req) = Action::of(request, "agreement.counter", |r| r.agreement_id.clone());
    admin
        .act(action, move |conn, ctx| {
            let terms = req.terms.unwrap_or_default();
            let view = agreements::counter(conn, ctx, &req.agreement_id, terms)?;
            let detail = format!("version {}", view.version);
            Ok((view, detail))
        })
        .await
        .map(Response::new)
}

pub(super) async fn accept(
    admin: &AdminService,
    request: Request<pb::AgreementRef>,
) -> Result<Response<pb::AgreementView>, Status> {
    let (action, req) = Action::of(request, "agreement.accept", |r| r.agreement_id.clone());
    admin
        .act(action, move |conn, ctx| {
            let view = agreements::accept(conn, ctx, &req.agreement_id)?;
            let detail = format!("version {}", view.version);
            Ok((view, detail))
        })
        .await
        .map(Response::new)
}

pub(super) async fn reject(
    admin: &AdminService,
    request: Request<pb::AgreementEndRequest>,
) -> Result<Response<pb::AgreementView>, Status> {
    end(admin, request, "agreement.reject", true).await
}

pub(super) async fn terminate(
    admin: &AdminService,
    request: Request<pb::AgreementEndRequest>,
) -> Result<Response<pb::AgreementView>, Status> {
    end(admin, request, "agreement.terminate", false).await
}

/// Ends an agreement: rejects a proposal (`reject`), or terminates an
/// active agreement. The reason is the entry's detail.
async fn end(
    admin: &AdminService,
    request: Request<pb::AgreementEndRequest>,
    name: &'static str,
    reject: bool,
) -> Result<Response<pb::AgreementView>, Status> {
    let (action, req) = Action::of(request, name, |r| r.agreement_id.clone());
    admin
        .act(action, move |conn, ctx| {
            let view = agreements::end(conn, ctx, &req.agreement_id, &req.reason, reject)?;
            Ok((view, req.reason))
        })
        .await
        .map(Response::new)
}

pub(super) async fn list(
    admin: &AdminService,
    request: Request<pb::AgreementListRequest>,
) -> Result<Response<pb::AgreementListResponse>, Status> {
    let req = request.into_inner();
    let list = admin
        .read(move |conn, ctx| agreements::list(conn, ctx, &req))
        .await?;
    Ok(Response::new(pb::AgreementListResponse {
        agreements: list,
    }))
}

pub(super) async fn show(
    admin: &AdminService,
    request: Request<pb::AgreementRef>,
) -> Result<Response<pb::AgreementView>, Status> {
    let id = request.into_inner().agreement_id;
    admin
        .read(move |conn, ctx| agreements::view(conn, ctx, &id))
        .await
        .map(Response::new)
}
