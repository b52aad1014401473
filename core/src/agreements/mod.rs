//! Co-management agreements (双向共管协议, docs/agreements.md).
//!
//! Two parties; the outflow party coordinates: only it numbers versions,
//! activates and expires. The inflow party's messages are votes. A
//! termination by either side is the one other decision, and it is final.
//! So crossing messages never leave the parties disagreeing.
//!
//! Signatures bind (agreement id, version, SHA-256 of the canonical terms);
//! a version activates once the coordinator holds both parties' signatures
//! on it and its clock has reached `effective_from`. Sharing of home
//! sections follows the latest activated version only.
//!
//! Layout, bottom to top (each file uses only those before it): `storage`
//! (rows, versions, signatures stored, messages), `signatures` (signing and
//! verifying), `calendar` (the clock's decisions and acting on an end),
//! `views`, `actions` (the operators'), `host` (what a host may hold and
//! send), `events` (applying the other party's).

mod actions;
mod calendar;
mod events;
mod host;
mod signatures;
mod storage;
mod views;

pub(crate) use actions::publish_again;
pub use actions::{accept, counter, end, propose};
pub(crate) use calendar::act_on_end;
pub use calendar::{copies_dropped_on, ended_by_date, tick, GRACE_DAYS};
pub use events::{apply, remind_forgotten};
pub use host::{host_may_hold, host_past_grace, host_record_allowed};
pub use signatures::verify_reported;
pub use storage::{
    active_with, load, parties, stored_version, terms_hash, version_terms, Agreement,
    AgreementState, Parties,
};
pub use views::{covering, list, uncovered, view};
