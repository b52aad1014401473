//! Quarantine: the peers' events that could not be applied, and retrying
//! one.

use liaison_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::action::Action;
use super::AdminService;

pub(super) async fn list(
    admin: &AdminService,
    request: Request<pb::QuarantineListRequest>,
) -> Result<Response<pb::QuarantineListResponse>, Status> {
    let all = request.into_inner().include_resolved;
    let entries = admin
        .read(move |conn, _ctx| liaison_core::quarantine::list(conn, all))
        .await?;
    Ok(Response::new(pb::QuarantineListResponse { entries }))
}

pub(super) async fn retry(
    admin: &AdminService,
    request: Request<pb::QuarantineRetryRequest>,
) -> Result<Response<pb::QuarantineEntry>, Status> {
    let (action, req) = Action::of(request, "quarantine.retry", |r| r.id.to_string());
    admin
        .act(action, move |conn, ctx| {
            let entry = liaison_core::apply::quarantine_retry(conn, ctx, req.id)?;
            let detail = format!("now {}", entry.state);
            Ok((entry, detail))
        })
        .await
        .map(Response::new)
}
