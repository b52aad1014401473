//! Transfer of the organizational relationship (组织关系转接, docs/transfers.md).
//!
//! The member is owned by at most one node at every instant. The sender is
//! the coordinator: its `release` and `abort` are decisions; the receiver's
//! `accept` and `reject` are votes. Every message is an event in the change
//! log, applied once; release is applied by the receiver in any state.
//! `docs/transfers.md` says the whole course in prose.
//!
//! Layout, bottom to top (each file uses only those before it): `state`
//! (the row, states, letter numbers), `views`, `sender` and `receiver`
//! (each side's actions and the rules of a restored side), `calendar`,
//! `events` (applying the other side's), `restore` (what reconciliation
//! adopts).

mod calendar;
mod events;
mod receiver;
mod restore;
mod sender;
mod state;
mod views;

pub use crate::members::{letter_of_generation, ReleaseRef};
pub use calendar::tick;
pub use events::apply;
#[cfg(feature = "faults")]
pub use receiver::accept_with_faults;
pub use receiver::{accept, reject};
pub use restore::{
    adopt_received, adopt_reported, adopt_sender_decision, answer_stale_offers, Adopted,
};
pub use sender::{
    cancel, extend, out_on_paper, reissue, remember_reported_generation, start,
    yield_to_later_generation, yield_to_reported,
};
pub use state::{
    offered_generation, Direction, LetterRules, TransferState, RECEIPT_DUE_DAYS,
    RECEIVER_GRACE_DAYS, REJECT_CODES,
};
pub use views::{list, open_with, past_expiry, view};
