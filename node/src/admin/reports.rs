//! Reports (docs/reports.md): computed by the core on a read-only
//! connection, so a report never waits for the writer nor holds it; the
//! import of earlier years' counts is a change like any other.

use liaison_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::action::Action;
use super::AdminService;
use liaison_core::reports;

pub(super) async fn report(
    admin: &AdminService,
    request: Request<pb::ReportRequest>,
) -> Result<Response<pb::ReportResponse>, Status> {
    let req = request.into_inner();
    let node_name = admin.node.config.display_name.clone();
    let mut report = admin
        .read(move |conn, ctx| reports::report(conn, ctx, &req))
        .await?;
    report.node_name = node_name;
    Ok(Response::new(report))
}

/// Year-end counts of the years before the node kept its own.
pub(super) async fn trend_import(
    admin: &AdminService,
    request: Request<pb::ReportTrendImportRequest>,
) -> Result<Response<pb::ReportTrendImportResponse>, Status> {
    let (action, req) = Action::of(request, "report.trend_import", |r| {
        let years: Vec<String> = r.years.iter().map(|y| y.year.to_string()).collect();
        format!("years {}", years.join(","))
    });
    admin
        .act(action, move |conn, ctx| {
            let (imported, replaced) = reports::import_years(conn, ctx, &req)?;
            Ok((
                pb::ReportTrendImportResponse { imported, replaced },
                format!("{imported} years imported, {replaced} replaced"),
            ))
        })
        .await
        .map(Response::new)
}
