//! The one path of an operator's action, from the request to its audit
//! entry.
//!
//! A change to the records takes [`AdminService::act`]: in the writer's
//! next group commit (`crate::writer`) it runs the change and appends the
//! action's audit entry, both in the change's transaction. An owner action
//! refuses itself in the core while the node reconciles after a restore
//! (`liaison_core::epoch::act_as_owner`), in that transaction, since a
//! restore can begin while the node runs (a peer's `Hello` reveals a new
//! database under a known node id). A refused change
//! leaves nothing but its refusal's entry, whose detail is the message the
//! operator is answered. The few actions that cannot run as a change in the
//! writer (each handler says why) record their outcome through
//! [`AdminService::audited`] or [`AdminService::refused`], with the same
//! entries. Reads take [`AdminService::read`] and are not audited, but for
//! the two that are on purpose ([`AdminService::record`]).

use std::sync::{Arc, Mutex};

use liaison_core::clock::Millis;
use liaison_core::store::audit::{self, Actor, NewEntry, Outcome};
use liaison_core::{Ctx, Error as CoreError};
use rusqlite::Connection;
use tonic::{Request, Status};

use super::socket::operator;
use super::{status_of, status_of_ref, AdminService};
use crate::error::NodeError;

/// An operator's action as its audit entry names it: who did what, to
/// which record.
#[derive(Debug, Clone)]
pub(super) struct Action {
    pub(super) actor: Actor,
    pub(super) name: &'static str,
    pub(super) target: String,
}

impl Action {
    /// The action `name` that `request` asks for, on the record `target`
    /// names, by the operator on the other end of the socket; and the
    /// request's message.
    pub(super) fn of<T>(
        request: Request<T>,
        name: &'static str,
        target: impl FnOnce(&T) -> String,
    ) -> (Action, T) {
        let action = Action {
            actor: operator(&request),
            name,
            target: target(request.get_ref()),
        };
        (action, request.into_inner())
    }

    /// Appends this action's entry in `conn`'s transaction.
    pub(super) fn append(
        &self,
        conn: &Connection,
        now_ms: Millis,
        outcome: Outcome,
        detail: &str,
    ) -> Result<(), CoreError> {
        let entry = NewEntry {
            actor: &self.actor,
            action: self.name,
            target: &self.target,
            outcome,
            detail,
        };
        audit::append(conn, now_ms, &entry).map(drop)
    }
}

impl AdminService {
    /// The one path of an operator's change: in the writer's next group
    /// commit, `change` (with this node's identity,
    /// clock and notary), then the action's entry with the detail `change`
    /// returns, in one transaction. If any of them fails, nothing of the
    /// change stays: the refusal's entry is written in its place (its
    /// detail is the answer's message) and the refusal is the answer
    /// ([`status_of`]).
    pub(super) async fn act<R, F>(&self, action: Action, change: F) -> Result<R, Status>
    where
        R: Send + 'static,
        F: FnOnce(&Connection, &Ctx<'_>) -> Result<(R, String), CoreError> + Send + 'static,
    {
        let me = self.me();
        let now_ms = self.node.now_ms();
        let refused = action.clone();
        // The answer to a refusal is made once, where its entry is written:
        // both carry the same message, and an internal error is logged once,
        // under the id both name.
        let answer = Arc::new(Mutex::new(None::<Status>));
        let refusal_answer = answer.clone();
        let result = self
            .node
            .writer
            .run(
                move |conn| {
                    let (value, detail) = change(conn, &me.ctx(now_ms))?;
                    action.append(conn, now_ms, Outcome::Ok, &detail)?;
                    Ok(value)
                },
                move |conn, error| {
                    let status = status_of_ref(error);
                    if let Err(error) =
                        refused.append(conn, now_ms, Outcome::Refused, status.message())
                    {
                        tracing::error!(%error, action = refused.name, "cannot write audit entry");
                    }
                    if let Ok(mut answer) = refusal_answer.lock() {
                        *answer = Some(status);
                    }
                },
            )
            .await;
        result.map_err(|error| {
            let made = answer.lock().ok().and_then(|mut answer| answer.take());
            made.unwrap_or_else(|| status_of(error))
        })
    }

    /// The audit of an action that is not a change in the writer (each
    /// caller says why): its outcome, in a transaction of its own, after
    /// it ran. `Ok` carries the entry's detail; an error is recorded as
    /// [`AdminService::refused`] does, and answered.
    pub(super) async fn audited<R>(
        &self,
        action: Action,
        outcome: Result<(R, String), NodeError>,
    ) -> Result<R, Status> {
        match outcome {
            Ok((value, detail)) => {
                self.record(action, Outcome::Ok, detail).await;
                Ok(value)
            }
            Err(error) => Err(self.refused(action, error).await),
        }
    }

    /// Records that `action` failed with `error`, in a transaction of its
    /// own, and returns the answer, whose message is the entry's detail.
    /// For the actions that write their own entry with their change, in a
    /// transaction of their own, when they succeed.
    pub(super) async fn refused(&self, action: Action, error: NodeError) -> Status {
        let status = status_of(error);
        self.record(action, Outcome::Refused, status.message().to_owned())
            .await;
        status
    }

    /// Appends `action`'s entry in a transaction of its own. Beside
    /// [`AdminService::audited`], for the reads audited on purpose.
    pub(super) async fn record(&self, action: Action, outcome: Outcome, detail: String) {
        self.node
            .audit(action.actor, action.name, action.target, outcome, detail)
            .await;
    }

    /// A read of the records, on a read-only connection (it does not wait
    /// for the writer), with this node's identity, clock and notary.
    pub(super) async fn read<R, F>(&self, f: F) -> Result<R, Status>
    where
        R: Send + 'static,
        F: FnOnce(&Connection, &Ctx<'_>) -> Result<R, CoreError> + Send + 'static,
    {
        let me = self.me();
        let now_ms = self.node.now_ms();
        self.node
            .read(move |conn| f(conn, &me.ctx(now_ms)))
            .await
            .map_err(status_of)
    }
}
