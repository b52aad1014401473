//! Transfers (the handoff of a member to another node): starting, answering,
//! cancelling, extending and re-issuing a letter, and a transfer out on
//! paper.

use liaison_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::action::Action;
use super::AdminService;
use liaison_core::transfers;

impl AdminService {
    /// A letter's validity bounds, from the node's configuration.
    fn letter_rules(&self) -> transfers::LetterRules {
        transfers::LetterRules {
            valid_days_default: self.node.config.transfers.valid_days_default,
            valid_days_max: self.node.config.transfers.valid_days_max,
        }
    }
}

pub(super) async fn start(
    admin: &AdminService,
    request: Request<pb::TransferStartRequest>,
) -> Result<Response<pb::TransferView>, Status> {
    let (action, req) = Action::of(request, "transfer.start", |r| r.member_id.clone());
    let rules = admin.letter_rules();
    admin
        .act(action, move |conn, ctx| {
            let view = transfers::start(
                conn,
                ctx,
                &req.member_id,
                &req.to,
                req.valid_days,
                &req.reason,
                rules,
            )?;
            let detail = format!(
                "transfer {} letter {} to {}",
                view.transfer_id, view.letter_no, view.receiver
            );
            Ok((view, detail))
        })
        .await
        .map(Response::new)
}

pub(super) async fn list(
    admin: &AdminService,
    request: Request<pb::TransferListRequest>,
) -> Result<Response<pb::TransferListResponse>, Status> {
    let req = request.into_inner();
    let list = admin
        .read(move |conn, ctx| transfers::list(conn, ctx, &req))
        .await?;
    Ok(Response::new(pb::TransferListResponse { transfers: list }))
}

pub(super) async fn show(
    admin: &AdminService,
    request: Request<pb::TransferRef>,
) -> Result<Response<pb::TransferView>, Status> {
    let id = request.into_inner().transfer_id;
    admin
        .read(move |conn, ctx| transfers::view(conn, ctx, &id))
        .await
        .map(Response::new)
}

pub(super) async fn accept(
    admin: &AdminService,
    request: Request<pb::TransferAcceptRequest>,
) -> Result<Response<pb::TransferView>, Status> {
    let (action, req) = Action::of(request, "transfer.accept", |r| r.transfer_id.clone());
    let detail = format!("into branch {}", req.branch);
    admin
        .act(action, move |conn, ctx| {
            let view = transfers::accept(conn, ctx, &req.transfer_id, &req.branch)?;
            Ok((view, detail))
        })
        .await
        .map(Response::new)
}

pub(super) async fn reject(
    admin: &AdminService,
    request: Request<pb::TransferRejectRequest>,
) -> Result<Response<pb::TransferView>, Status> {
    let (action, req) = Action::of(request, "transfer.reject", |r| r.transfer_id.clone());
    let detail = format!("{}: {}", req.reason_code, req.reason);
    admin
        .act(action, move |conn, ctx| {
            let (id, code, reason) = (&req.transfer_id, &req.reason_code, &req.reason);
            Ok((transfers::reject(conn, ctx, id, code, reason)?, detail))
        })
        .await
        .map(Response::new)
}

pub(super) async fn cancel(
    admin: &AdminService,
    request: Request<pb::TransferRef>,
) -> Result<Response<pb::TransferView>, Status> {
    let (action, req) = Action::of(request, "transfer.cancel", |r| r.transfer_id.clone());
    admin
        .act(action, move |conn, ctx| {
            Ok((
                transfers::cancel(conn, ctx, &req.transfer_id)?,
                String::new(),
            ))
        })
        .await
        .map(Response::new)
}

pub(super) async fn extend(
    admin: &AdminService,
    request: Request<pb::TransferExtendRequest>,
) -> Result<Response<pb::TransferView>, Status> {
    let (action, req) = Action::of(request, "transfer.extend", |r| r.transfer_id.clone());
    let rules = admin.letter_rules();
    let detail = format!("{} days", req.days);
    admin
        .act(action, move |conn, ctx| {
            let view = transfers::extend(conn, ctx, &req.transfer_id, req.days, rules)?;
            Ok((view, detail))
        })
        .await
        .map(Response::new)
}

pub(super) async fn reissue(
    admin: &AdminService,
    request: Request<pb::TransferRef>,
) -> Result<Response<pb::TransferView>, Status> {
    let (action, req) = Action::of(request, "transfer.reissue", |r| r.transfer_id.clone());
    let rules = admin.letter_rules();
    admin
        .act(action, move |conn, ctx| {
            let view = transfers::reissue(conn, ctx, &req.transfer_id, rules)?;
            let detail = format!(
                "re-issued as {} letter {}",
                view.transfer_id, view.letter_no
            );
            Ok((view, detail))
        })
        .await
        .map(Response::new)
}

/// A transfer to a place with no node, recorded on paper.
pub(super) async fn out_paper(
    admin: &AdminService,
    request: Request<pb::TransferPaperRequest>,
) -> Result<Response<pb::Member>, Status> {
    let (action, req) = Action::of(request, "transfer.paper", |r| r.member_id.clone());
    let detail = format!("to place {} letter {}", req.to_place, req.letter_no);
    admin
        .act(action, move |conn, ctx| {
            let member = transfers::out_on_paper(
                conn,
                ctx,
                &req.member_id,
                &req.to_place,
                &req.letter_no,
                &req.reason,
            )?;
            Ok((member, detail))
        })
        .await
        .map(Response::new)
}
