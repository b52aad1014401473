//! Report-in (docs/reportin.md): the stations this node runs as a host and
//! the claims members submit at them. Claims are read on a read-only
//! connection; adding a station and deciding a claim are changes through
//! the one path (`AdminService::act`), audited without personal data.

use liaison_core::reportin::{self, ClaimState};
use liaison_core::store::audit::Actor;
use liaison_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::action::Action;
use super::AdminService;

impl AdminService {
    /// The report-in page's address (`report_in.public_url`), empty when
    /// the node has no `[report_in]` section: stations then show no URL.
    fn public_url(&self) -> String {
        self.node
            .config
            .report_in
            .as_ref()
            .map(|r| r.public_url.clone())
            .unwrap_or_default()
    }

    /// Days a rejected claim is kept (`report_in.rejected_kept_days`).
    fn rejected_kept_days(&self) -> u32 {
        rejected_kept_days(&self.node.config)
    }
}

/// Days a rejected claim is kept: `report_in.rejected_kept_days`, or the
/// configuration's default without a `[report_in]` section (claims can
/// still be there from when it had one).
pub fn rejected_kept_days(config: &liaison_types::config::Config) -> u32 {
    config
        .report_in
        .as_ref()
        .map_or(liaison_types::config::REJECTED_KEPT_DAYS_DEFAULT, |r| {
            r.rejected_kept_days
        })
}

/// The operator's name for a decision's `decided_by`.
fn operator_name(actor: &Actor) -> String {
    match actor {
        Actor::Operator(user) => user.clone(),
        other => other.to_string(),
    }
}

pub(super) async fn station_add(
    admin: &AdminService,
    request: Request<pb::StationAddRequest>,
) -> Result<Response<pb::StationView>, Status> {
    let (action, req) = Action::of(request, "station.add", |r| r.name.trim().to_owned());
    let public_url = admin.public_url();
    admin
        .act(action, move |conn, ctx| {
            let station = reportin::station_add(conn, ctx, &req, &public_url)?;
            let detail = format!("code {}", station.code);
            Ok((station, detail))
        })
        .await
        .map(Response::new)
}

pub(super) async fn station_list(
    admin: &AdminService,
    _request: Request<pb::StationListRequest>,
) -> Result<Response<pb::StationListResponse>, Status> {
    let public_url = admin.public_url();
    let stations = admin
        .read(move |conn, _| reportin::station_list(conn, &public_url))
        .await?;
    Ok(Response::new(pb::StationListResponse { stations }))
}

pub(super) async fn station_show(
    admin: &AdminService,
    request: Request<pb::StationRef>,
) -> Result<Response<pb::StationView>, Status> {
    let public_url = admin.public_url();
    let reference = request.into_inner().station;
    admin
        .read(move |conn, _| reportin::station_show(conn, &reference, &public_url))
        .await
        .map(Response::new)
}

pub(super) async fn claim_list(
    admin: &AdminService,
    request: Request<pb::ReportinListRequest>,
) -> Result<Response<pb::ReportinListResponse>, Status> {
    let kept_days = admin.rejected_kept_days();
    let state = request.into_inner().state;
    let claims = admin
        .read(move |conn, ctx| {
            reportin::claim_list(conn, ctx, ClaimState::parse(&state)?, kept_days)
        })
        .await?;
    Ok(Response::new(pb::ReportinListResponse { claims }))
}

pub(super) async fn claim_show(
    admin: &AdminService,
    request: Request<pb::ReportinRef>,
) -> Result<Response<pb::ReportinView>, Status> {
    let kept_days = admin.rejected_kept_days();
    let reference = request.into_inner().claim_id;
    admin
        .read(move |conn, ctx| reportin::claim_show(conn, ctx, &reference, kept_days))
        .await
        .map(Response::new)
}

pub(super) async fn claim_confirm(
    admin: &AdminService,
    request: Request<pb::ReportinConfirmRequest>,
) -> Result<Response<pb::ReportinView>, Status> {
    let kept_days = admin.rejected_kept_days();
    let (action, req) = Action::of(request, "reportin.confirm", |r| r.claim_id.clone());
    let by = operator_name(&action.actor);
    admin
        .act(action, move |conn, ctx| {
            let claim = reportin::confirm(conn, ctx, &req, &by, kept_days)?;
            let detail = format!("member {}", claim.member_id);
            Ok((claim, detail))
        })
        .await
        .map(Response::new)
}

pub(super) async fn claim_reject(
    admin: &AdminService,
    request: Request<pb::ReportinRejectRequest>,
) -> Result<Response<pb::ReportinView>, Status> {
    let kept_days = admin.rejected_kept_days();
    let (action, req) = Action::of(request, "reportin.reject", |r| r.claim_id.clone());
    let by = operator_name(&action.actor);
    admin
        .act(action, move |conn, ctx| {
            Ok((
                reportin::reject(conn, ctx, &req, &by, kept_days)?,
                String::new(),
            ))
        })
        .await
        .map(Response::new)
}

pub(super) async fn claim_add(
    admin: &AdminService,
    request: Request<pb::ReportinAddRequest>,
) -> Result<Response<pb::ReportinView>, Status> {
    let kept_days = admin.rejected_kept_days();
    let (action, req) = Action::of(request, "reportin.add", |r| r.station.trim().to_owned());
    admin
        .act(action, move |conn, ctx| {
            let claim = reportin::add(conn, ctx, &req, kept_days)?;
            let detail = format!("claim {}", claim.claim_id);
            Ok((claim, detail))
        })
        .await
        .map(Response::new)
}
