//! What a core operation fails with, by kind: the database failed
//! ([`StorageError`]), or the domain refused what was asked ([`Refusal`]).
//! The two never mix: an operator is told "refused; nothing was changed"
//! only for a refusal, and a storage failure is reported as the node's
//! condition, with the log line to look for. Conditions of the running
//! node (stopping, a task that failed) are the daemon's, not the core's.

/// A core operation's failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Refused(#[from] Refusal),
}

/// The database failed, or holds what this code never writes. Nothing an
/// operator can fix by changing the input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot migrate the database schema: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    /// The schema is newer than this program knows: a newer version wrote
    /// the file, and this one would misread it.
    #[error("the database has schema version {found}, newer than this liaison-node knows ({known}): it was written by a newer version; run that version (or newer), or restore a backup this version made (`liaison-node restore`)")]
    SchemaTooNew { found: i64, known: i64 },
    /// A durable value that cannot be what the node wrote (edited by hand,
    /// or a damaged file): refused rather than read as a default.
    #[error("the database is damaged: {what} is `{value}`, expected {expected}; restore the database from a backup (README, \"Backup and restore\")")]
    Corrupt {
        what: String,
        value: String,
        expected: String,
    },
}

/// The domain refuses the request; nothing was changed. Each message says
/// what was wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// What the request names does not exist here.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the state of a record (frozen, decided,
    /// already there).
    #[error("{0}")]
    Conflict(String),
    /// The request itself is malformed or out of range.
    #[error("{0}")]
    Invalid(String),
    /// A reference a person typed names several records.
    #[error("`{reference}` names {} {noun}s here; {narrow}:\n  {}", candidates.len(), candidates.join("\n  "))]
    Ambiguous {
        reference: String,
        noun: &'static str,
        candidates: Vec<String>,
        /// How to say which one is meant.
        narrow: String,
    },
    /// The node was restored from a backup and does not act as an owner
    /// until every peer answered (docs/restore.md).
    #[error("this node was restored and is reconciling with its peers (waiting for {}): it acts as an owner again once every peer answered; `liaisonctl reconcile status` shows progress, `liaisonctl reconcile --without-peer PEER` goes on without an unreachable one", waiting.join(", "))]
    Reconciling { waiting: Vec<String> },
}

impl Error {
    pub fn not_found(message: String) -> Error {
        Error::Refused(Refusal::NotFound(message))
    }

    pub fn conflict(message: String) -> Error {
        Error::Refused(Refusal::Conflict(message))
    }

    pub fn invalid(message: String) -> Error {
        Error::Refused(Refusal::Invalid(message))
    }

    /// A durable value that does not parse as what the node writes.
    pub fn corrupt(
        what: impl Into<String>,
        value: impl Into<String>,
        expected: impl Into<String>,
    ) -> Error {
        Error::Storage(StorageError::Corrupt {
            what: what.into(),
            value: value.into(),
            expected: expected.into(),
        })
    }

    /// The refusal, if this is one.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Error::Refused(refusal) => Some(refusal),
            Error::Storage(_) => None,
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Storage(StorageError::Sqlite(e))
    }
}

impl From<rusqlite_migration::Error> for Error {
    fn from(e: rusqlite_migration::Error) -> Self {
        Error::Storage(StorageError::Migration(e))
    }
}

impl From<liaison_types::validate::Invalid> for Error {
    fn from(e: liaison_types::validate::Invalid) -> Self {
        Error::Refused(Refusal::Invalid(e.0))
    }
}

/// A refused edit, and the field it is about where it is one field's:
/// the field's English name, as the roster's columns name it
/// (`liaison_types::sheet::MEMBER_COLUMNS`), so an import can name the
/// spreadsheet's column.
#[derive(Debug)]
pub struct FieldRefusal {
    pub field: Option<&'static str>,
    pub error: Error,
}

impl From<Error> for FieldRefusal {
    fn from(error: Error) -> FieldRefusal {
        FieldRefusal { field: None, error }
    }
}

impl From<rusqlite::Error> for FieldRefusal {
    fn from(error: rusqlite::Error) -> FieldRefusal {
        Error::from(error).into()
    }
}

impl From<liaison_types::validate::Invalid> for FieldRefusal {
    fn from(error: liaison_types::validate::Invalid) -> FieldRefusal {
        Error::from(error).into()
    }
}

impl From<FieldRefusal> for Error {
    fn from(refusal: FieldRefusal) -> Error {
        refusal.error
    }
}

/// Says that an error is about `field`.
pub fn refusal_at<E: Into<Error>>(field: &'static str) -> impl FnOnce(E) -> FieldRefusal {
    move |error| FieldRefusal {
        field: Some(field),
        error: error.into(),
    }
}
