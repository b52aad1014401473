//! Why an operation of the running node failed: the core's answer (a
//! refusal, or a storage failure), or a condition of the node itself.

use liaison_core::Error as CoreError;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The core refused the request, or the database failed.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The node is stopping: the call or change was not run.
    #[error("the node is stopping: nothing was done; try again once it is back")]
    Stopping,
    /// A fault of the node itself (a panic inside a change, a task that
    /// died): a bug, never the caller's to fix.
    #[error("{0}")]
    Internal(String),
}

impl From<rusqlite::Error> for NodeError {
    fn from(e: rusqlite::Error) -> Self {
        NodeError::Core(e.into())
    }
}
