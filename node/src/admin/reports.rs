//! Reports (docs/reports.md): computed by the core on a read-only
//! connection, so a report never waits for the writer nor holds it; the
//! import of earlier years' counts is a change like any other.

use liaison_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::action::Action;
use super::AdminService;
use liaison_core::reports;
use liaison_core::store::audit::Outcome;

/// A report; one that lists members by name (a register, a roster) is
/// audited, as `member export` is: it takes personal data out of the node.
pub(super) async fn report(
    admin: &AdminService,
    request: Request<pb::ReportRequest>,
) -> Result<Response<pb::ReportResponse>, Status> {
    let (action, req) = Action::of(request, "report", |r| {
        format!(
            "{} as of {}{}{}",
            r.report,
            if r.as_of.is_empty() {
                "today"
            } else {
                &r.as_of
            },
            if r.branch.is_empty() {
                String::new()
            } else {
                format!(", branch {}", r.branch)
            },
            if r.destination.is_empty() {
                String::new()
            } else {
                format!(", destination {}", r.destination)
            },
        )
    });
    let node_name = admin.node.config.display_name.clone();
    let mut report = admin
        .read(move |conn, ctx| reports::report(conn, ctx, &req))
        .await?;
    report.node_name = node_name;
    let named: usize = report
        .tables
        .iter()
        .filter(|t| t.columns.iter().any(|c| c.key == "name"))
        .map(|t| t.rows.len())
        .sum();
    if named > 0 {
        admin
            .record(
                action,
                Outcome::Ok,
                format!("{named} members listed by name"),
            )
            .await;
    }
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
