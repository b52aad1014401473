//! Group commit of operators' changes.
//!
//! Every operator's change is one transaction with its audit entry, and a
//! commit is an fsync (`synchronous = FULL`, docs/replication.md): one change per
//! transaction caps a node at one change per commit time, however small
//! the change. So changes that arrive while the database is busy wait in a
//! queue, and the next transaction runs all of them, up to [`GROUP_MAX`],
//! each in its own savepoint, and commits once. Each change keeps its own
//! outcome: one that fails is rolled back to its savepoint (nothing of it
//! stays but the refusal it records) and the others go on; each caller is
//! answered only after the commit that holds its change, and gets the
//! commit's error if that commit fails. A change that arrives at an idle
//! writer runs at once, alone: grouping adds no wait.
//!
//! The queue is bounded ([`QUEUE_MAX`]): callers beyond it wait for room.
//!
//! On shutdown the queue closes ([`Writer::close`]): every change queued
//! by then is still committed and answered (the task stops only once the
//! queue is closed and empty), and a change that comes later is answered
//! [`NodeError::Stopping`], never run.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use liaison_core::store::Store;
use liaison_core::Error as CoreError;

use crate::error::NodeError;

/// Changes one transaction runs at most: a group holds the write
/// connection for the sum of its changes, so a bound keeps the wait of
/// readers and of the node's own tasks (apply, reshare) short.
pub const GROUP_MAX: usize = 64;

/// Changes that may wait for the writer before callers wait for room.
const QUEUE_MAX: usize = 1024;

/// One queued change, whatever its result type.
trait Pending: Send {
    /// Runs the change inside its savepoint; false if it failed.
    fn run(&mut self, conn: &Connection) -> bool;
    /// After its savepoint was rolled back: records the refusal (an audit
    /// entry), in the group's transaction.
    fn record_refusal(&mut self, conn: &Connection);
    /// Answers the caller: the change's own outcome if the group committed
    /// (`None`), else the commit's error.
    fn finish(self: Box<Self>, commit_error: Option<&CoreError>);
}

struct Change<R, F, G> {
    change: Option<F>,
    refused: Option<G>,
    outcome: Option<Result<R, NodeError>>,
    reply: oneshot::Sender<Result<R, NodeError>>,
}

impl<R, F, G> Pending for Change<R, F, G>
where
    R: Send,
    F: FnOnce(&Connection) -> Result<R, CoreError> + Send,
    G: FnOnce(&Connection, &NodeError) + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(change) = self.change.take() else {
            return false;
        };
        // A panic (a bug) fails this change only, as it failed only its
        // own transaction before changes were grouped.
        let outcome = match catch_unwind(AssertUnwindSafe(|| change(conn))) {
            Ok(outcome) => outcome.map_err(NodeError::Core),
            Err(_) => Err(NodeError::Internal(
                "the change failed inside the node (a bug: the node's log has the panic)".into(),
            )),
        };
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn record_refusal(&mut self, conn: &Connection) {
        if let (Some(refused), Some(Err(error))) = (self.refused.take(), &self.outcome) {
            // A panic here must not undo the group's other changes.
            let _ = catch_unwind(AssertUnwindSafe(|| refused(conn, error)));
        }
    }

    fn finish(self: Box<Self>, commit_error: Option<&CoreError>) {
        let answer = match (commit_error, self.outcome) {
            // Its own failure is its answer, committed or not.
            (_, Some(Err(own))) => Err(own),
            (None, Some(outcome)) => outcome,
            (Some(error), _) => Err(NodeError::Internal(format!(
                "the change was not committed: {error}"
            ))),
            (None, None) => Err(NodeError::Internal("the change did not run".into())),
        };
        let _ = self.reply.send(answer);
    }
}

/// The queue of operators' changes and the task that commits them in groups.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Box<dyn Pending>>,
    /// Closes the queue ([`Writer::close`]).
    closing: CancellationToken,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("queued", &self.queued())
            .finish()
    }
}

impl Writer {
    /// Starts the writer's task on `store`, tracked by `tasks`. The task
    /// ends once [`Writer::close`] closed the queue and every change queued
    /// by then is committed and answered. `committed` runs after every
    /// commit that holds at least one change (the node wakes the follow
    /// streams there).
    pub fn start(
        store: Arc<Store>,
        tasks: &TaskTracker,
        committed: impl Fn() + Send + 'static,
    ) -> (Writer, tokio::task::JoinHandle<()>) {
        let (queue, mut rx) = mpsc::channel::<Box<dyn Pending>>(QUEUE_MAX);
        let closing = CancellationToken::new();
        let close = closing.clone();
        let blocking = tasks.clone();
        let task = tasks.spawn(async move {
            let mut open = true;
            loop {
                let first = tokio::select! {
                    // The close first, so a steady stream of changes cannot
                    // keep the queue open.
                    biased;
                    _ = close.cancelled(), if open => {
                        // Later `send`s fail; what is queued is still received.
                        rx.close();
                        open = false;
                        continue;
                    }
                    first = rx.recv() => match first {
                        Some(first) => first,
                        // Closed and drained.
                        None => break,
                    },
                };
                let mut group = vec![first];
                while group.len() < GROUP_MAX {
                    match rx.try_recv() {
                        Ok(next) => group.push(next),
                        Err(_) => break,
                    }
                }
                let store = store.clone();
                let done = blocking
                    .spawn_blocking(move || {
                        store.with(|conn| {
                            commit_group(conn, group);
                            Ok(())
                        })
                    })
                    .await;
                if let Err(error) = done {
                    tracing::error!(%error, "a group of operators' changes failed");
                }
                committed();
            }
        });
        (Writer { queue, closing }, task)
    }

    /// Closes the queue: changes queued so far are still committed and
    /// answered; later ones are answered [`NodeError::Stopping`].
    pub fn close(&self) {
        self.closing.cancel();
    }

    /// Changes waiting in the queue (not yet taken into a group).
    fn queued(&self) -> usize {
        QUEUE_MAX - self.queue.capacity()
    }

    /// Runs `change` in the next group's transaction, in its own savepoint,
    /// and returns its result once that transaction committed. If `change`
    /// fails, everything it wrote is rolled back and `refused` records the
    /// refusal (its audit entry) in the same transaction. A change that
    /// finds the queue closed is not run: [`NodeError::Stopping`].
    pub async fn run<R, F, G>(&self, change: F, refused: G) -> Result<R, NodeError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, CoreError> + Send + 'static,
        G: FnOnce(&Connection, &NodeError) + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let pending: Box<dyn Pending> = Box::new(Change {
            change: Some(change),
            refused: Some(refused),
            outcome: None,
            reply,
        });
        if self.queue.send(pending).await.is_err() {
            return Err(NodeError::Stopping);
        }
        // The task answers every change it received before it ends; only a
        // task that died (a panic outside the changes) drops the reply.
        match answer.await {
            Ok(result) => result,
            Err(_) => Err(NodeError::Internal(
                "the writer ended without answering (a bug: the node's log has the panic)".into(),
            )),
        }
    }
}

/// Runs `group` in one IMMEDIATE transaction, each change in its own
/// savepoint, commits, and answers every caller. A change alone in its
/// group runs without a savepoint ([`commit_alone`]).
fn commit_group(conn: &mut Connection, mut group: Vec<Box<dyn Pending>>) {
    if group.len() == 1 {
        if let Some(pending) = group.pop() {
            commit_alone(conn, pending);
        }
        return;
    }
    let mut done: Vec<Box<dyn Pending>> = Vec::with_capacity(group.len());
    let result = (|| -> Result<(), CoreError> {
        let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for mut pending in group {
            let mut sp = tx.savepoint()?;
            if pending.run(&sp) {
                sp.commit()?;
            } else {
                // Nothing of the failed change stays. If the database rolled
                // back the whole transaction (a full disk, an I/O error),
                // there is no savepoint left: the group fails.
                let rolled_back = sp.rollback().and_then(|()| sp.commit());
                done.push(pending);
                rolled_back?;
                let pending = done.last_mut().expect("just pushed");
                pending.record_refusal(&tx);
                continue;
            }
            done.push(pending);
        }
        tx.commit()?;
        Ok(())
    })();
    match result {
        Ok(()) => {
            for pending in done {
                pending.finish(None);
            }
        }
        Err(error) => {
            tracing::error!(%error, changes = done.len(), "a group of operators' changes was not committed");
            for pending in done {
                pending.finish(Some(&error));
            }
        }
    }
}

/// Runs one change in its own IMMEDIATE transaction and answers it. If
/// it fails, the transaction is rolled back and its refusal is recorded
/// in a transaction of its own: the outcome of a group of one, without
/// the savepoint. A savepoint keeps a copy of every page its change
/// writes, in memory (`temp_store = MEMORY`, P14 in docs/BENCHMARKS.md),
/// to roll back to; a large change (an import, an agreement's end
/// unsharing thousands of members) usually comes alone, and needs none.
fn commit_alone(conn: &mut Connection, mut pending: Box<dyn Pending>) {
    let result = (|| -> Result<(), CoreError> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if pending.run(&tx) {
            return Ok(tx.commit()?);
        }
        tx.rollback()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        pending.record_refusal(&tx);
        Ok(tx.commit()?)
    })();
    if let Err(error) = &result {
        tracing::error!(%error, changes = 1, "an operator's change was not committed");
    }
    pending.finish(result.as_ref().err());
}

#[cfg(test)]
mod tests {
    use super::*;
    use liaison_core::Refusal;

    fn counted(conn: &Connection) -> i64 {
        conn.query_row(
            "SELECT COUNT(*) FROM meta WHERE key LIKE 'probe-%'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    }

    fn change(
        key: &'static str,
        fail: bool,
        refusals: Arc<std::sync::Mutex<Vec<String>>>,
    ) -> (Box<dyn Pending>, oneshot::Receiver<Result<i64, NodeError>>) {
        let (reply, answer) = oneshot::channel();
        let pending: Box<dyn Pending> = Box::new(Change {
            change: Some(move |conn: &Connection| {
                liaison_core::store::set_meta(conn, key, "1")?;
                if fail {
                    return Err(CoreError::conflict(format!("{key} refused")));
                }
                Ok(counted(conn))
            }),
            refused: Some(move |_: &Connection, error: &NodeError| {
                refusals.lock().unwrap().push(error.to_string());
            }),
            outcome: None,
            reply,
        });
        (pending, answer)
    }

    /// A change that writes `probe-boom`, then panics.
    fn panicking() -> (Box<dyn Pending>, oneshot::Receiver<Result<(), NodeError>>) {
        let (reply, answer) = oneshot::channel();
        let pending: Box<dyn Pending> = Box::new(Change {
            change: Some(|conn: &Connection| -> Result<(), CoreError> {
                liaison_core::store::set_meta(conn, "probe-boom", "1")?;
                panic!("a bug");
            }),
            refused: Some(|_: &Connection, _: &NodeError| {}),
            outcome: None,
            reply,
        });
        (pending, answer)
    }

    fn commit(store: &Store, group: Vec<Box<dyn Pending>>) {
        store
            .with(|conn| {
                commit_group(conn, group);
                Ok(())
            })
            .unwrap();
    }

    fn meta(store: &Store, key: &str) -> Option<String> {
        store
            .read(|conn| liaison_core::store::get_meta(conn, key))
            .unwrap()
    }

    #[test]
    fn a_group_commits_each_change_alone_and_a_failed_one_leaves_nothing() {
        let store = Store::open_in_memory(1).unwrap();
        let refusals = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (a, a_answer) = change("probe-a", false, refusals.clone());
        let (b, b_answer) = change("probe-b", true, refusals.clone());
        let (c, c_answer) = change("probe-c", false, refusals.clone());
        commit(&store, vec![a, b, c]);
        // Each change sees the ones before it in the group, never a failed one.
        assert_eq!(a_answer.blocking_recv().unwrap().unwrap(), 1);
        assert!(matches!(
            b_answer.blocking_recv().unwrap(),
            Err(NodeError::Core(CoreError::Refused(Refusal::Conflict(m)))) if m == "probe-b refused"
        ));
        assert_eq!(c_answer.blocking_recv().unwrap().unwrap(), 2);
        assert_eq!(*refusals.lock().unwrap(), vec!["probe-b refused"]);
        store
            .read(|conn| {
                assert_eq!(counted(conn), 2);
                assert!(liaison_core::store::get_meta(conn, "probe-b")?.is_none());
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn a_panicking_change_fails_alone() {
        let store = Store::open_in_memory(1).unwrap();
        let refusals = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (a, a_answer) = change("probe-a", false, refusals.clone());
        let (boom, panicked) = panicking();
        let (c, c_answer) = change("probe-c", false, refusals);
        commit(&store, vec![a, boom, c]);
        assert!(a_answer.blocking_recv().unwrap().is_ok());
        assert!(panicked.blocking_recv().unwrap().is_err());
        assert_eq!(c_answer.blocking_recv().unwrap().unwrap(), 2);
        assert!(meta(&store, "probe-boom").is_none());
    }

    #[test]
    fn a_change_alone_commits_or_leaves_only_its_refusal() {
        let store = Store::open_in_memory(1).unwrap();
        let refusals = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (a, a_answer) = change("probe-a", false, refusals.clone());
        let (b, b_answer) = change("probe-b", true, refusals.clone());
        for pending in [a, b] {
            commit(&store, vec![pending]);
        }
        assert_eq!(a_answer.blocking_recv().unwrap().unwrap(), 1);
        assert!(matches!(
            b_answer.blocking_recv().unwrap(),
            Err(NodeError::Core(CoreError::Refused(Refusal::Conflict(m)))) if m == "probe-b refused"
        ));
        assert_eq!(*refusals.lock().unwrap(), vec!["probe-b refused"]);
        store
            .read(|conn| {
                assert_eq!(counted(conn), 1);
                assert!(liaison_core::store::get_meta(conn, "probe-b")?.is_none());
                Ok(())
            })
            .unwrap();
        // A panic alone is a failure like any other, and leaves nothing.
        let (boom, panicked) = panicking();
        commit(&store, vec![boom]);
        assert!(
            store.with(|conn| Ok(conn.is_autocommit())).unwrap(),
            "no transaction is left open"
        );
        assert!(panicked.blocking_recv().unwrap().is_err());
        assert!(meta(&store, "probe-boom").is_none());
    }

    #[tokio::test]
    async fn changes_queued_together_are_answered_after_their_commit() {
        let store = Arc::new(Store::open_in_memory(1).unwrap());
        let tasks = TaskTracker::new();
        let commits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = commits.clone();
        let (writer, task) = Writer::start(store.clone(), &tasks, move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        });
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..20 {
            let writer = writer.clone();
            calls.spawn(async move {
                let key = format!("probe-{i}");
                writer
                    .run(
                        move |conn| {
                            liaison_core::store::set_meta(conn, &key, "1")?;
                            if i % 7 == 3 {
                                return Err(CoreError::invalid("refused".into()));
                            }
                            Ok(())
                        },
                        |_, _| {},
                    )
                    .await
                    .is_ok()
            });
        }
        let mut ok = 0;
        while let Some(joined) = calls.join_next().await {
            ok += usize::from(joined.unwrap());
        }
        // 3, 10 and 17 were refused.
        assert_eq!(ok, 17);
        let stored = store.read(|conn| Ok(counted(conn))).unwrap();
        assert_eq!(stored, 17);
        // Callers are answered before `committed` runs: count the commits
        // once the task has stopped, so the last group's is in.
        writer.close();
        task.await.unwrap();
        let n_commits = commits.load(std::sync::atomic::Ordering::SeqCst);
        assert!((1..=20).contains(&n_commits), "{n_commits} commits");
    }

    #[tokio::test]
    async fn closing_commits_every_queued_change_and_refuses_later_ones_as_stopping() {
        let store = Arc::new(Store::open_in_memory(1).unwrap());
        let tasks = TaskTracker::new();
        let (writer, task) = Writer::start(store.clone(), &tasks, || {});
        // The first change holds the writer inside its group until released,
        // so the next ones wait in the queue.
        let (running_tx, running) = oneshot::channel::<()>();
        let (release, release_rx) = std::sync::mpsc::channel::<()>();
        let first = {
            let writer = writer.clone();
            tokio::spawn(async move {
                writer
                    .run(
                        move |conn| {
                            let _ = running_tx.send(());
                            let _ = release_rx.recv();
                            liaison_core::store::set_meta(conn, "probe-first", "1")
                        },
                        |_, _| {},
                    )
                    .await
            })
        };
        running.await.unwrap();
        let mut queued = tokio::task::JoinSet::new();
        for i in 0..10 {
            let writer = writer.clone();
            queued.spawn(async move {
                let key = format!("probe-{i}");
                writer
                    .run(
                        move |conn| liaison_core::store::set_meta(conn, &key, "1"),
                        |_, _| {},
                    )
                    .await
            });
        }
        while writer.queued() < 10 {
            tokio::task::yield_now().await;
        }
        writer.close();
        release.send(()).unwrap();
        assert!(first.await.unwrap().is_ok());
        while let Some(joined) = queued.join_next().await {
            assert!(
                joined.unwrap().is_ok(),
                "a change queued before the close commits"
            );
        }
        assert_eq!(store.read(|conn| Ok(counted(conn))).unwrap(), 11);
        let late = writer.run(|_| Ok(()), |_, _| {}).await;
        assert!(matches!(late, Err(NodeError::Stopping)), "{late:?}");
        task.await.unwrap();
        tasks.close();
        tasks.wait().await;
    }
}
