//! The registry: organizations, members (with import and export),
//! outflows, host sections, contacts, activities, and the reports over
//! them.

use std::time::Duration;

use liaison_proto::v1 as pb;
use liaison_types::sheet::MEMBER_COLUMNS;
use rusqlite::TransactionBehavior;
use tonic::{Request, Response, Status, Streaming};

use super::action::Action;
use super::AdminService;
use liaison_core::store::audit::Outcome;
use liaison_core::{import, members, Error as CoreError};

pub(super) async fn org_add(
    admin: &AdminService,
    request: Request<pb::Org>,
) -> Result<Response<pb::Org>, Status> {
    let (action, org) = Action::of(request, "org.add", |r| r.org_id.clone());
    admin
        .act(action, move |conn, ctx| {
            Ok((members::org_add(conn, ctx, &org)?, String::new()))
        })
        .await
        .map(Response::new)
}

pub(super) async fn org_import(
    admin: &AdminService,
    request: Request<pb::OrgImportRequest>,
) -> Result<Response<pb::OrgImportResponse>, Status> {
    let (action, request) = Action::of(request, "org.import", |r| {
        format!("{} organizations", r.orgs.len())
    });
    admin
        .act(action, move |conn, ctx| {
            let outcome = import::org_import(conn, ctx, &request)?;
            let orgs = members::org_list(conn)?
                .into_iter()
                .filter(|o| outcome.added.contains(&o.org_id))
                .collect();
            let mut detail = outcome.added.join(", ");
            if !outcome.problems.is_empty() {
                detail.push_str(&format!("; {} bad rows skipped", outcome.problems.len()));
            }
            let response = pb::OrgImportResponse {
                orgs,
                problems: outcome.problems,
            };
            Ok((response, detail))
        })
        .await
        .map(Response::new)
}

pub(super) async fn org_list(
    admin: &AdminService,
    _request: Request<pb::OrgListRequest>,
) -> Result<Response<pb::OrgListResponse>, Status> {
    let orgs = admin.read(|conn, _ctx| members::org_list(conn)).await?;
    Ok(Response::new(pb::OrgListResponse { orgs }))
}

pub(super) async fn member_add(
    admin: &AdminService,
    request: Request<pb::MemberFields>,
) -> Result<Response<pb::Member>, Status> {
    let (action, fields) = Action::of(request, "member.add", |_| String::new());
    admin
        .act(action, move |conn, ctx| {
            let member = members::member_add(conn, ctx, &fields)?;
            let detail = format!("member {}", member.member_id);
            Ok((member, detail))
        })
        .await
        .map(Response::new)
}

pub(super) async fn member_update(
    admin: &AdminService,
    request: Request<pb::MemberUpdateRequest>,
) -> Result<Response<pb::Member>, Status> {
    let (action, update) = Action::of(request, "member.update", |r| r.member_id.clone());
    let fields = update.fields.unwrap_or_default();
    let changed = changed_fields(&fields);
    admin
        .act(action, move |conn, ctx| {
            let member = members::member_update(conn, ctx, &update.member_id, &fields)?;
            Ok((member, changed))
        })
        .await
        .map(Response::new)
}

pub(super) async fn member_show(
    admin: &AdminService,
    request: Request<pb::MemberRef>,
) -> Result<Response<pb::Member>, Status> {
    let id = request.into_inner().member_id;
    admin
        .read(move |conn, ctx| {
            let id = liaison_types::validate::member_id(&id)?;
            members::member_view(conn, ctx, &id)
        })
        .await
        .map(Response::new)
}

pub(super) async fn member_list(
    admin: &AdminService,
    request: Request<pb::MemberListRequest>,
) -> Result<Response<pb::MemberListResponse>, Status> {
    let list = request.into_inner();
    let (members, total) = admin
        .read(move |conn, ctx| members::member_list(conn, ctx, &list))
        .await?;
    Ok(Response::new(pb::MemberListResponse { members, total }))
}

/// How long an import waits for its next rows while it holds the write
/// connection: a client that stalls (suspended, or its disk hung) is given
/// up and imports nothing, so the node's other writers do not wait on it
/// for longer.
const IMPORT_IDLE: Duration = Duration::from_secs(30);

/// Not a change in the writer: an import runs in a transaction of its own
/// on the write connection, taking the rows as the client streams them,
/// and a dry run, a run with bad rows it was not told to skip, or a stream
/// that did not end with its count is answered and rolled back, leaving
/// no entry (the writer commits every change that succeeds). The entry
/// runs in that transaction, as in [`AdminService::act`]; a refusal (a
/// reconciling node's among them: the import passes the core's owner
/// gate, a dry run too, since it runs the same writes) is recorded by
/// [`AdminService::refused`].
pub(super) async fn member_import(
    admin: &AdminService,
    request: Request<Streaming<pb::MemberImportChunk>>,
) -> Result<Response<pb::MemberImportResponse>, Status> {
    let (action, mut inbound) = Action::of(request, "member.import", |_| String::new());
    let first = match tokio::time::timeout(IMPORT_IDLE, inbound.message()).await {
        Ok(Ok(Some(first))) => first,
        Ok(Ok(None)) | Err(_) => {
            return Err(Status::invalid_argument("the import sent nothing"));
        }
        Ok(Err(status)) => return Err(status),
    };
    let Some(start) = first.start.clone() else {
        return Err(Status::invalid_argument(
            "an import's first message says what the rows are (start)",
        ));
    };
    tracing::debug!(
        columns = start.columns.len(),
        update = start.update,
        dry_run = start.dry_run,
        "member import running"
    );
    let (rows_tx, mut rows_rx) =
        tokio::sync::mpsc::channel::<Result<pb::MemberImportChunk, String>>(4);
    let forward = async move {
        let mut next = Ok(first);
        loop {
            let failed = next.is_err();
            let sent = rows_tx.send(next).await.is_ok();
            if failed {
                return;
            }
            if !sent {
                // The import gave up (refused, or the node is stopping):
                // the rest of the roster is read and dropped, so that the
                // caller, done sending, reads the answer. A connection
                // closed with rows unread would reset, and the caller would
                // lose the answer with it.
                while let Ok(Ok(Some(_))) =
                    tokio::time::timeout(IMPORT_IDLE, inbound.message()).await
                {}
                return;
            }
            next = match tokio::time::timeout(IMPORT_IDLE, inbound.message()).await {
                Ok(Ok(Some(chunk))) => Ok(chunk),
                Ok(Ok(None)) => return,
                Ok(Err(status)) => Err(format!(
                    "the rows stopped coming ({}): nothing was imported",
                    status.message()
                )),
                Err(_) => Err(format!(
                    "no rows came for {} s: the import was given up and nothing was imported",
                    IMPORT_IDLE.as_secs()
                )),
            };
        }
    };
    let me = admin.me();
    let now_ms = admin.node.now_ms();
    let entry = action.clone();
    let import = admin.node.db(move |conn| {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let ctx = me.ctx(now_ms);
        let columns: Vec<(String, String)> = start
            .columns
            .iter()
            .map(|c| (c.field.clone(), c.header.clone()))
            .collect();
        let mut importer = import::Importer::new(&tx, &ctx, &columns, start.update)?;
        let mut received = 0u64;
        let mut counted = None;
        while let Some(chunk) = rows_rx.blocking_recv() {
            let chunk = chunk.map_err(CoreError::invalid)?;
            if counted.is_some() {
                return Err(CoreError::invalid(
                    "rows came after the import's last message: nothing was imported".into(),
                ));
            }
            for row in &chunk.rows {
                let problems: Vec<(usize, String)> = row
                    .problems
                    .iter()
                    .map(|p| (p.column as usize, p.message.clone()))
                    .collect();
                importer.row(row.row, &row.cells, &problems)?;
                received += 1;
            }
            counted = chunk.end_rows;
        }
        match counted {
            Some(count) if count == received => {}
            Some(count) => {
                return Err(CoreError::invalid(format!(
                    "the import counted {count} rows but {received} came: nothing was imported"
                )))
            }
            None => {
                return Err(CoreError::invalid(
                    "the rows stopped before the end of the file: nothing was imported".into(),
                ))
            }
        }
        let outcome = importer.finish();
        if !outcome.commit(start.skip_bad, start.dry_run) {
            tx.rollback()?;
            return Ok((outcome, false));
        }
        let detail = format!(
            "{} added, {} updated, {} unchanged, {} bad rows skipped",
            outcome.added, outcome.updated, outcome.unchanged, outcome.skipped
        );
        entry.append(&tx, now_ms, Outcome::Ok, &detail)?;
        tx.commit()?;
        Ok((outcome, true))
    });
    let ((), result) = tokio::join!(forward, import);
    let (outcome, committed) = match result {
        Ok(imported) => imported,
        Err(error) => return Err(admin.refused(action, error).await),
    };
    if committed {
        admin.node.events_appended();
    }
    let listed = |listed: Vec<import::Listed>| -> Vec<pb::MemberChanges> {
        listed
            .into_iter()
            .map(|l| pb::MemberChanges {
                row: l.row,
                member_id: l.member_id,
                name: l.name,
                changes: l
                    .changes
                    .into_iter()
                    .map(|(column, old, new)| pb::FieldChange { column, old, new })
                    .collect(),
            })
            .collect()
    };
    Ok(Response::new(pb::MemberImportResponse {
        imported: outcome.added,
        skipped: outcome.skipped,
        problems: outcome
            .problems
            .into_iter()
            .map(|p| pb::ImportProblem {
                line: p.row,
                message: p.message,
                column: p.column,
            })
            .collect(),
        updated: outcome.updated,
        unchanged: outcome.unchanged,
        committed,
        changed: listed(outcome.changed),
        added: listed(outcome.added_list),
        unlisted: outcome.unlisted,
        notes: outcome.notes,
    }))
}

/// A read, audited on purpose: exporting the roster discloses personal
/// data.
pub(super) async fn member_export(
    admin: &AdminService,
    request: Request<pb::MemberExportRequest>,
) -> Result<Response<pb::MemberExportResponse>, Status> {
    let (action, _) = Action::of(request, "member.export", |_| String::new());
    let rows = admin.read(import::export).await?;
    let count = rows.len() as u64;
    admin
        .record(action, Outcome::Ok, format!("{count} members"))
        .await;
    Ok(Response::new(pb::MemberExportResponse {
        members: count,
        columns: MEMBER_COLUMNS.iter().map(|c| c.key.to_owned()).collect(),
        rows: rows
            .into_iter()
            .map(|cells| pb::ExportRow { cells })
            .collect(),
    }))
}

pub(super) async fn member_disclosures(
    admin: &AdminService,
    request: Request<pb::MemberRef>,
) -> Result<Response<pb::DisclosureList>, Status> {
    let id = request.into_inner().member_id;
    let disclosures = admin
        .read(move |conn, _ctx| members::disclosures(conn, &id))
        .await?;
    Ok(Response::new(pb::DisclosureList { disclosures }))
}

pub(super) async fn host_section_set(
    admin: &AdminService,
    request: Request<pb::HostSectionRequest>,
) -> Result<Response<pb::Member>, Status> {
    let (action, req) = Action::of(request, "member.host_set", |r| r.member_id.clone());
    admin
        .act(action, move |conn, ctx| {
            Ok((members::host_section_set(conn, ctx, &req)?, String::new()))
        })
        .await
        .map(Response::new)
}

pub(super) async fn outflow_register(
    admin: &AdminService,
    request: Request<pb::OutflowRequest>,
) -> Result<Response<pb::Member>, Status> {
    let (action, req) = Action::of(request, "outflow.register", |r| r.member_id.clone());
    let detail = format!("to {} {}", req.destination_place, req.destination_node);
    admin
        .act(action, move |conn, ctx| {
            Ok((members::outflow_register(conn, ctx, &req)?, detail))
        })
        .await
        .map(Response::new)
}

pub(super) async fn outflow_update(
    admin: &AdminService,
    request: Request<pb::OutflowUpdateRequest>,
) -> Result<Response<pb::Member>, Status> {
    let (action, req) = Action::of(request, "outflow.update", |r| r.member_id.clone());
    // Which fields change (the new destination by its code).
    let fields: Vec<String> = [
        req.destination_place.as_ref().map(|p| format!("to {p}")),
        req.destination_node.as_ref().map(|n| format!("node {n}")),
        req.direction.as_ref().map(|_| "direction".to_owned()),
        req.departed_on.as_ref().map(|_| "departed on".to_owned()),
        req.expected_return
            .as_ref()
            .map(|_| "expected return".to_owned()),
        req.reason.as_ref().map(|_| "reason".to_owned()),
        req.fixed_location.map(|_| "fixed location".to_owned()),
        req.certificate_no
            .as_ref()
            .map(|_| "certificate".to_owned()),
        req.certificate_issuer
            .as_ref()
            .map(|_| "certificate issuer".to_owned()),
        req.certificate_issued_on
            .as_ref()
            .map(|_| "certificate issued on".to_owned()),
        req.card_no.as_ref().map(|_| "card".to_owned()),
    ]
    .into_iter()
    .flatten()
    .collect();
    let detail = fields.join(", ");
    admin
        .act(action, move |conn, ctx| {
            Ok((members::outflow_update(conn, ctx, &req)?, detail))
        })
        .await
        .map(Response::new)
}

pub(super) async fn outflow_return(
    admin: &AdminService,
    request: Request<pb::OutflowReturnRequest>,
) -> Result<Response<pb::Member>, Status> {
    let (action, req) = Action::of(request, "outflow.return", |r| r.member_id.clone());
    admin
        .act(action, move |conn, ctx| {
            Ok((members::outflow_return(conn, ctx, &req)?, String::new()))
        })
        .await
        .map(Response::new)
}

pub(super) async fn outflow_list(
    admin: &AdminService,
    request: Request<pb::OutflowListRequest>,
) -> Result<Response<pb::OutflowListResponse>, Status> {
    let req = request.into_inner();
    let outflows = admin
        .read(move |conn, _ctx| members::outflow_list(conn, &req))
        .await?;
    Ok(Response::new(pb::OutflowListResponse { outflows }))
}

pub(super) async fn contact_record(
    admin: &AdminService,
    request: Request<pb::ContactRequest>,
) -> Result<Response<pb::ContactView>, Status> {
    let (action, req) = Action::of(request, "contact.record", |r| r.member_id.clone());
    let detail = format!("channel {}", req.channel);
    admin
        .act(action, move |conn, ctx| {
            Ok((members::contact_record(conn, ctx, &req)?, detail))
        })
        .await
        .map(Response::new)
}

/// Shows a member's contact status, or sets it (a change) when the request
/// says what to set.
pub(super) async fn contact_status(
    admin: &AdminService,
    request: Request<pb::ContactStatusRequest>,
) -> Result<Response<pb::ContactStatusView>, Status> {
    let (action, req) = Action::of(request, "contact.status", |r| r.member_id.clone());
    if req.set.trim().is_empty() {
        return admin
            .read(move |conn, ctx| members::contact_status(conn, ctx, &req))
            .await
            .map(Response::new);
    }
    let detail = format!("set {} {}", req.set, req.reason);
    admin
        .act(action, move |conn, ctx| {
            Ok((members::contact_status(conn, ctx, &req)?, detail))
        })
        .await
        .map(Response::new)
}

pub(super) async fn activity_record(
    admin: &AdminService,
    request: Request<pb::ActivityRequest>,
) -> Result<Response<pb::ActivityView>, Status> {
    let (action, req) = Action::of(request, "activity.record", |r| r.member_id.clone());
    let detail = format!("kind {}", req.kind);
    admin
        .act(action, move |conn, ctx| {
            Ok((members::activity_record(conn, ctx, &req)?, detail))
        })
        .await
        .map(Response::new)
}

pub(super) async fn activity_list(
    admin: &AdminService,
    request: Request<pb::ActivityListRequest>,
) -> Result<Response<pb::ActivityListResponse>, Status> {
    let req = request.into_inner();
    let activities = admin
        .read(move |conn, _ctx| members::activity_list(conn, &req))
        .await?;
    Ok(Response::new(pb::ActivityListResponse { activities }))
}

/// Members away whom no active agreement covers.
pub(super) async fn report_uncovered(
    admin: &AdminService,
    _request: Request<pb::ReportUncoveredRequest>,
) -> Result<Response<pb::ReportUncoveredResponse>, Status> {
    admin
        .read(liaison_core::agreements::uncovered)
        .await
        .map(Response::new)
}

/// The names of the fields an update sets (never their values: the audit
/// log holds no personal data).
fn changed_fields(f: &pb::MemberFields) -> String {
    let fields = [
        ("name", f.name.is_some()),
        ("gender", f.gender.is_some()),
        ("birth_date", f.birth_date.is_some()),
        ("ethnicity", f.ethnicity.is_some()),
        ("native_place", f.native_place.is_some()),
        ("national_id", f.national_id.is_some()),
        ("education", f.education.is_some()),
        ("occupation", f.occupation.is_some()),
        ("origin", f.origin.is_some()),
        ("party_status", f.party_status.is_some()),
        ("joined_on", f.joined_on.is_some()),
        ("full_member_on", f.full_member_on.is_some()),
        ("home_branch", f.home_branch.is_some()),
        ("phone", f.phone.is_some()),
        ("home_address", f.home_address.is_some()),
        ("membership_state", f.membership_state.is_some()),
    ];
    let set: Vec<&str> = fields
        .iter()
        .filter(|(_, set)| *set)
        .map(|(name, _)| *name)
        .collect();
    format!("fields: {}", set.join(","))
}
