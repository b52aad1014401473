//! What applying a peer's event or batch comes to (docs/replication.md): the
//! outcomes every event handler returns, the report of a batch, and the
//! test-only [`Faults`]. Below every protocol module: handlers of every
//! concept return a [`Rejection`], and only `apply` turns it into a
//! quarantine entry, a stopped stream or an aborted batch.

use crate::Error;

/// The end of a quarantine reason at a node restored from a backup, for an
/// event about something it does not know: it cannot tell a forgery from
/// a record of what it forgot (docs/restore.md, What is lost).
pub const FORGOTTEN_AT_RESTORE: &str =
    "this node was restored from a backup since and may have forgotten it";

impl Rejection {
    /// The same rejection, its reason preceded by `prefix`.
    pub fn prefixed(self, prefix: &str) -> Rejection {
        match self {
            Rejection::Invalid(why) => Rejection::Invalid(format!("{prefix}{why}")),
            Rejection::Unknown(why) => Rejection::Unknown(format!("{prefix}{why}")),
            Rejection::Stop(why) => Rejection::Stop(format!("{prefix}{why}")),
            Rejection::Store(error) => Rejection::Store(error),
        }
    }
}

/// What became of a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    pub applied: u64,
    pub skipped: u64,
    pub quarantined: u64,
    /// The cursor after the batch.
    pub cursor: u64,
}

/// Why one event was not applied: the outcomes of applying an event other
/// than "applied".
#[derive(Debug)]
pub enum Rejection {
    /// It can never be valid: quarantine it and move on.
    Invalid(String),
    /// It names a member, agreement, transfer or share this node does not
    /// know: quarantined as [`Rejection::Invalid`] is. At a node restored
    /// from a backup, which forgot what happened after it, such an event may
    /// be honest; its reason says so ([`FORGOTTEN_AT_RESTORE`]).
    Unknown(String),
    /// A transfer decision (`release`, `abort`) that cannot be applied now.
    /// Decisions are never quarantined (docs/replication.md): the peer's stream
    /// stops at this event, cursor unmoved, until a restart or an upgrade
    /// applies it.
    Stop(String),
    /// The core failed (storage, or a refusal of a step it took): abort
    /// the batch, cursor unmoved.
    Store(Error),
}

/// Why a batch was not applied. Nothing of it was: the cursor did not move.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// A decision that cannot be applied ([`Rejection::Stop`]).
    #[error("{kind} event {seq} cannot be applied: {reason}; the stream from this peer stops here until a restart or an upgrade applies it")]
    Stopped {
        seq: u64,
        kind: String,
        reason: String,
    },
    /// This node, restored from a backup, has not adopted the origin's
    /// holdings yet ([`crate::epoch::awaits_adoption`]); nothing was applied.
    #[error("{origin}'s log is applied only after its holdings are adopted (this node was restored from a backup and reconciles); nothing was applied")]
    NotAdopted { origin: String },
    /// This node, restored from a backup once, adopted the origin under
    /// another log and has not taken its holdings under this one yet
    /// ([`crate::epoch::awaits_retake`]); nothing was applied.
    #[error("{origin} writes under a new log since this node adopted its holdings (it was restored): they are taken again before its log is applied; nothing was applied")]
    NotRetaken { origin: String },
    #[error(transparent)]
    Core(#[from] Error),
}

impl From<rusqlite::Error> for BatchError {
    fn from(e: rusqlite::Error) -> Self {
        BatchError::Core(e.into())
    }
}

impl From<Error> for Rejection {
    fn from(e: Error) -> Self {
        Rejection::Store(e)
    }
}

impl From<rusqlite::Error> for Rejection {
    fn from(e: rusqlite::Error) -> Self {
        Rejection::Store(e.into())
    }
}

/// Test-only switches that break the protocol on purpose, so the tests and
/// the simulator can show that their checks catch each break. Only with
/// the `faults` feature (the simulator's crate turns it on): without it,
/// `Faults` is an empty stand-in whose switches are all off, so a node's
/// build holds none of the broken variants.
#[cfg(feature = "faults")]
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Skip the authority checks: apply whatever a peer sends.
    pub skip_authority: bool,
    /// Commit the applied events (and their count) in one transaction and
    /// advance the cursor in a second one, so a crash between the two
    /// applies the same events again after the restart.
    pub cursor_in_separate_tx: bool,
    /// The receiver of a transfer enrols the member as its own when its
    /// operator accepts the offer, before the sender's `release` arrives
    /// (`transfers::accept_with_faults`): two owners until then.
    pub receiver_owns_on_accept: bool,
}

#[cfg(feature = "faults")]
impl Faults {
    pub(crate) fn skip_authority(self) -> bool {
        self.skip_authority
    }

    pub(crate) fn cursor_in_separate_tx(self) -> bool {
        self.cursor_in_separate_tx
    }

    pub(crate) fn receiver_owns_on_accept(self) -> bool {
        self.receiver_owns_on_accept
    }
}

/// Without the `faults` feature: no switch, every check is off.
#[cfg(not(feature = "faults"))]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Faults {}

#[cfg(not(feature = "faults"))]
impl Faults {
    pub(crate) fn skip_authority(self) -> bool {
        false
    }

    pub(crate) fn cursor_in_separate_tx(self) -> bool {
        false
    }

    pub(crate) fn receiver_owns_on_accept(self) -> bool {
        false
    }
}
