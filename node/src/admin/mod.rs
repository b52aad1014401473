//! The operators' service, on a Unix socket in the data directory.
//!
//! Every verb of `liaisonctl` that reads or changes the node's records comes
//! through here, so every operator action passes the same checks and lands in
//! the audit log with the OS user the socket's peer credentials name.
//!
//! # Layout
//! - `socket`: binding the socket, serving it, admitting calls while the
//!   node runs, and which operator is calling.
//! - `action`: the one path of every operator's change
//!   (`AdminService::act`: the owner gate, the change in the writer's group
//!   commit, its audit entry, or the refusal's), the audit of the few
//!   actions that cannot take it (`AdminService::audited`), and reads
//!   (`AdminService::read`).
//! - The handlers, by noun: `node` (status, backup, reconcile, the debug
//!   clock, the to-do list, references), `peers`, `registry` (orgs,
//!   members, outflows, host sections, contacts, activities, import and
//!   export, the uncovered members), `reports` (the reports and the import
//!   of earlier years' counts), `agreements`, `transfers`, `quarantine`,
//!   `audit`, `reportin` (service stations and report-in claims).
//!
//! tonic serves one `Admin` service, so the generated trait has one
//! implementation, here: each method hands its request to its noun's
//! handler, which holds the logic. No handler writes an audit entry
//! itself; it goes through `action`. Refusals map to gRPC codes in one
//! place, [`status_of`].

use std::sync::Arc;

use liaison_proto::v1 as pb;
use liaison_rpc::v1::admin_server::Admin;
use tonic::{Request, Response, Status};

use crate::error::NodeError;
use crate::node::{Me, Node};
use liaison_core::{Error as CoreError, Refusal};

mod action;
mod agreements;
mod audit;
mod node;
mod peers;
mod quarantine;
mod registry;
mod reportin;
mod reports;
mod socket;
mod transfers;

pub use reportin::rejected_kept_days;
pub use socket::{bind, serve, ADMIN_GRACE};

/// The admin service: the node's shared state, which every handler reaches
/// through `AdminService::act` to change it and `AdminService::read` to
/// read it (the module `action`).
#[derive(Debug)]
pub struct AdminService {
    node: Arc<Node>,
}

impl AdminService {
    /// What a change or a read runs the core with, to move into its
    /// blocking task.
    fn me(&self) -> Me {
        self.node.me()
    }
}

/// Implements the generated `Admin` trait on [`AdminService`]: each line
/// names a method, its request and response messages, and the handler it
/// is handed to (`handler(&AdminService, Request) -> Result<Response,
/// Status>`).
/// A method whose requests come as a stream (an import's rows) is listed
/// after the others, marked `@stream`.
macro_rules! delegate {
    (
        $($method:ident($request:ident) -> $response:ident => $handler:path;)*
        $(@stream $s_method:ident($s_request:ident) -> $s_response:ident => $s_handler:path;)*
    ) => {
        #[tonic::async_trait]
        impl Admin for AdminService {
            $(
                async fn $method(
                    &self,
                    request: Request<pb::$request>,
                ) -> Result<Response<pb::$response>, Status> {
                    $handler(self, request).await
                }
            )*
            $(
                async fn $s_method(
                    &self,
                    request: Request<tonic::Streaming<pb::$s_request>>,
                ) -> Result<Response<pb::$s_response>, Status> {
                    $s_handler(self, request).await
                }
            )*
        }
    };
}

delegate! {
    status(StatusRequest) -> StatusResponse => node::status;
    resolve(ResolveRequest) -> ResolveResponse => node::resolve;
    todo(TodoRequest) -> TodoResponse => node::todo;
    backup(BackupRequest) -> BackupResponse => node::backup;
    reconcile_status(ReconcileStatusRequest) -> ReconcileStatus => node::reconcile_status;
    reconcile_without_peer(PeerRef) -> ReconcileStatus => node::reconcile_without_peer;
    debug_clock(DebugClockRequest) -> DebugClockResponse => node::debug_clock;

    peer_add(PeerAddRequest) -> Peer => peers::add;
    peer_list(PeerListRequest) -> PeerListResponse => peers::list;
    peer_show(PeerRef) -> Peer => peers::show;
    peer_pause(PeerRef) -> Peer => peers::pause;
    peer_resume(PeerRef) -> Peer => peers::resume;
    peer_retry(PeerRef) -> Peer => peers::retry;
    peer_remove(PeerRemoveRequest) -> PeerRemoveResponse => peers::remove;
    peer_ignore(PeerRef) -> PendingPeer => peers::ignore;
    peer_status(PeerStatusRequest) -> PeerStatusResponse => peers::status;
    peer_policy(PeerPolicyRequest) -> Peer => peers::policy;

    org_add(Org) -> Org => registry::org_add;
    org_list(OrgListRequest) -> OrgListResponse => registry::org_list;
    org_import(OrgImportRequest) -> OrgImportResponse => registry::org_import;
    member_add(MemberFields) -> Member => registry::member_add;
    member_update(MemberUpdateRequest) -> Member => registry::member_update;
    member_show(MemberRef) -> Member => registry::member_show;
    member_list(MemberListRequest) -> MemberListResponse => registry::member_list;
    member_export(MemberExportRequest) -> MemberExportResponse => registry::member_export;
    member_disclosures(MemberRef) -> DisclosureList => registry::member_disclosures;
    host_section_set(HostSectionRequest) -> Member => registry::host_section_set;
    outflow_register(OutflowRequest) -> Member => registry::outflow_register;
    outflow_return(OutflowReturnRequest) -> Member => registry::outflow_return;
    outflow_update(OutflowUpdateRequest) -> Member => registry::outflow_update;
    outflow_list(OutflowListRequest) -> OutflowListResponse => registry::outflow_list;
    contact_record(ContactRequest) -> ContactView => registry::contact_record;
    contact_status(ContactStatusRequest) -> ContactStatusView => registry::contact_status;
    activity_record(ActivityRequest) -> ActivityView => registry::activity_record;
    activity_list(ActivityListRequest) -> ActivityListResponse => registry::activity_list;
    report_uncovered(ReportUncoveredRequest) -> ReportUncoveredResponse => registry::report_uncovered;
    report(ReportRequest) -> ReportResponse => reports::report;
    report_trend_import(ReportTrendImportRequest) -> ReportTrendImportResponse => reports::trend_import;

    agreement_propose(AgreementProposeRequest) -> AgreementView => agreements::propose;
    agreement_counter(AgreementCounterRequest) -> AgreementView => agreements::counter;
    agreement_accept(AgreementRef) -> AgreementView => agreements::accept;
    agreement_reject(AgreementEndRequest) -> AgreementView => agreements::reject;
    agreement_terminate(AgreementEndRequest) -> AgreementView => agreements::terminate;
    agreement_list(AgreementListRequest) -> AgreementListResponse => agreements::list;
    agreement_show(AgreementRef) -> AgreementView => agreements::show;

    transfer_start(TransferStartRequest) -> TransferView => transfers::start;
    transfer_list(TransferListRequest) -> TransferListResponse => transfers::list;
    transfer_show(TransferRef) -> TransferView => transfers::show;
    transfer_accept(TransferAcceptRequest) -> TransferView => transfers::accept;
    transfer_reject(TransferRejectRequest) -> TransferView => transfers::reject;
    transfer_cancel(TransferRef) -> TransferView => transfers::cancel;
    transfer_extend(TransferExtendRequest) -> TransferView => transfers::extend;
    transfer_reissue(TransferRef) -> TransferView => transfers::reissue;
    transfer_out_paper(TransferPaperRequest) -> Member => transfers::out_paper;

    quarantine_list(QuarantineListRequest) -> QuarantineListResponse => quarantine::list;
    quarantine_retry(QuarantineRetryRequest) -> QuarantineEntry => quarantine::retry;
    reload(ReloadRequest) -> ReloadResponse => node::reload;

    audit_list(AuditListRequest) -> AuditListResponse => audit::list;
    audit_verify(AuditVerifyRequest) -> AuditVerifyResponse => audit::verify;

    station_add(StationAddRequest) -> StationView => reportin::station_add;
    station_list(StationListRequest) -> StationListResponse => reportin::station_list;
    station_show(StationRef) -> StationView => reportin::station_show;
    reportin_list(ReportinListRequest) -> ReportinListResponse => reportin::claim_list;
    reportin_show(ReportinRef) -> ReportinView => reportin::claim_show;
    reportin_confirm(ReportinConfirmRequest) -> ReportinView => reportin::claim_confirm;
    reportin_reject(ReportinRejectRequest) -> ReportinView => reportin::claim_reject;
    reportin_add(ReportinAddRequest) -> ReportinView => reportin::claim_add;

    @stream member_import(MemberImportChunk) -> MemberImportResponse => registry::member_import;
}

/// The answer to a call that failed: a refusal, the operator's to fix; a
/// stopping node; or a fault of the node (`status_of_ref` says which code).
pub fn status_of(error: impl Into<NodeError>) -> Status {
    status_of_ref(&error.into())
}

/// The answer to a call that was not run, or a change that was not made,
/// because the node is stopping.
fn stopping() -> Status {
    Status::unavailable("the node is stopping: nothing was done; try again once it is back")
}

/// [`status_of`] without consuming the error. By kind: a refusal is the
/// operator's to fix (`NOT_FOUND`, `FAILED_PRECONDITION`,
/// `INVALID_ARGUMENT`; `liaisonctl` exits 1, "refused"); a node that is
/// stopping is `UNAVAILABLE` (exit 2, try again); a storage failure or a
/// fault of the node is not the caller's (`INTERNAL`, logged here with an
/// id the message names).
fn status_of_ref(error: &NodeError) -> Status {
    match error {
        NodeError::Core(CoreError::Refused(refusal)) => match refusal {
            Refusal::NotFound(m) => Status::not_found(m.clone()),
            Refusal::Invalid(m) => Status::invalid_argument(m.clone()),
            Refusal::Conflict(_) | Refusal::Reconciling { .. } => {
                Status::failed_precondition(refusal.to_string())
            }
            Refusal::Ambiguous { .. } => Status::invalid_argument(refusal.to_string()),
            other => Status::failed_precondition(other.to_string()),
        },
        NodeError::Core(CoreError::Storage(storage)) => internal(storage),
        NodeError::Stopping => stopping(),
        NodeError::Internal(message) => internal(message),
    }
}

/// An internal error: logged with an id, and answered with the id so an
/// operator can find the log line.
pub fn internal(error: &dyn std::fmt::Display) -> Status {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let error_id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tracing::error!(error_id, %error, "internal error answering an operator's call");
    Status::internal(format!(
        "{error} (not a refusal of the request: a fault of the node or its database; its log has the details under `error_id={error_id}`)"
    ))
}
