//! The protocol core: records, authority, the change log and apply, and
//! the SQLite store they live in.
//!
//! Architecture invariant: plain synchronous code over a SQLite connection
//! (the caller holds the transaction) and an injected time, [`Ctx`]. It
//! knows nothing of tokio, tonic, TLS or connections, so the same code runs
//! in the node and in a deterministic simulator (docs/replication.md). This crate's
//! `Cargo.toml` names none of them, and CI checks that none comes in
//! through another crate (`.ci/run`).
//!
//! # Layers
//!
//! Each module uses only the modules above it in this list, bottom first;
//! `layer_tests` fails on a use that is not below (so on any import cycle),
//! and on a module missing from the list.
//!
//! - `error`, [`clock`]: errors, time;
//! - [`letters`]: letter numbers, ordered by (year, number), and the
//!   per-year counters that issue them (a migration of `store` renumbers);
//! - [`store`]: the SQLite store (knows nothing else of the protocol);
//! - [`outcome`]: what applying an event comes to ([`outcome::Rejection`],
//!   [`outcome::ApplyReport`], the test-only `Faults`);
//! - [`epoch`]: what a restore left: restored or reconciling, log ids, the
//!   letter counters' floor;
//! - [`log`]: the change log, cursors, disclosures;
//! - [`quarantine`]: events that can never be valid, kept with the reason;
//! - [`members`]: the registry's records, what is shared with whom
//!   (including the active agreements' coverage, which it reads from their
//!   rows), and the operators' edits;
//! - [`agreements`]: co-management agreements; an activation or an end
//!   re-evaluates the shares;
//! - [`superseded`]: at a host, the owners whose section a later owner's
//!   copy kept out, asked again if that copy goes with its owner's
//!   restore; at the owner, such a request;
//! - [`hosting`]: home sections at a host and host records at the owner,
//!   applied with their authority checks, and those held until their
//!   member arrives;
//! - [`transfers`]: the handoff;
//! - [`apply`]: a peer's batch: dispatches each event to its concept and
//!   moves the cursor;
//! - [`reconcile`]: backup, restore and reconciliation;
//! - [`peering`]: adding and removing peers;
//! - [`refs`], [`import`]: for operators: references a clerk has in hand
//!   resolved to ids, the roster read from and written to spreadsheets
//!   (which names organizations as clerks do);
//! - [`reportin`]: report-in (一键报到): service stations and the claims
//!   members submit at them, confirmed by a clerk against a hosted member;
//! - [`todo`]: what waits on the operators;
//! - [`stats`]: the figures monitoring reads (counts only).
//! - [`reports`]: the reports and statistics, computed from the records
//!   (reads only, but for the year-end counts it keeps).

pub mod agreements;
pub mod apply;
pub mod clock;
pub mod epoch;
mod error;
pub mod hosting;
pub mod import;
pub mod letters;
pub mod log;
pub mod members;
pub mod outcome;
pub mod peering;
pub mod quarantine;
pub mod reconcile;
pub mod refs;
pub mod reportin;
pub mod reports;
pub mod stats;
pub mod store;
pub mod superseded;
pub mod todo;
pub mod transfers;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod agreement_tests;

#[cfg(test)]
mod transfer_tests;

#[cfg(test)]
mod reconcile_tests;

#[cfg(test)]
mod refusal_tests;

#[cfg(test)]
mod property_tests;

#[cfg(test)]
mod layer_tests;

#[cfg(test)]
mod report_tests;

#[cfg(test)]
mod reportin_tests;

use chrono::{FixedOffset, NaiveDate};
use liaison_types::identity::{NodeId, Notary};
use liaison_types::time::{china_time, Tz, DEFAULT_ZONE};
use rand::RngCore;

use crate::clock::Millis;

pub use error::{refusal_at, Error, FieldRefusal, Refusal, StorageError};

/// Who is acting and when: everything the core needs from outside.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    pub me: &'a NodeId,
    pub now_ms: Millis,
    /// Signs and verifies agreements; `None` where nothing is signed.
    pub notary: Option<&'a dyn Notary>,
    /// Members per transaction of a chunked re-evaluation of the shares
    /// (an agreement's activation or amendment; [`members::request_reshare`]).
    pub reshare_chunk: usize,
    /// The node's zone (`time_zone` in node.toml): calendar days (letter
    /// expiry, agreement end dates, overdue counts) are this node's dates.
    pub zone: Tz,
}

impl<'a> Ctx<'a> {
    pub fn new(me: &'a NodeId, now_ms: Millis) -> Ctx<'a> {
        Ctx {
            me,
            now_ms,
            notary: None,
            reshare_chunk: members::RESHARE_CHUNK,
            zone: DEFAULT_ZONE,
        }
    }

    /// The same context counting calendar days in `zone`.
    pub fn with_zone(self, zone: Tz) -> Ctx<'a> {
        Ctx { zone, ..self }
    }

    /// The same context with chunks of `chunk` members (the simulator uses
    /// small ones, so a re-evaluation under way meets its other steps).
    pub fn with_reshare_chunk(self, chunk: usize) -> Ctx<'a> {
        Ctx {
            reshare_chunk: chunk.max(1),
            ..self
        }
    }

    pub fn with_notary(self, notary: &'a dyn Notary) -> Ctx<'a> {
        Ctx {
            notary: Some(notary),
            ..self
        }
    }

    pub fn notary(&self) -> Result<&'a dyn Notary, crate::Error> {
        self.notary.ok_or_else(|| {
            crate::Error::invalid(
                "this operation signs or verifies an agreement, but no signing key was given"
                    .into(),
            )
        })
    }

    /// Now in the node's zone.
    pub fn local_now(&self) -> chrono::DateTime<Tz> {
        chrono::DateTime::from_timestamp_millis(self.now_ms)
            .unwrap_or_default()
            .with_timezone(&self.zone)
    }

    /// Now in China Standard Time: the zone of the wall-clock times the
    /// records carry between nodes (contact times), whatever zone each
    /// node shows.
    pub fn china_now(&self) -> chrono::DateTime<FixedOffset> {
        chrono::DateTime::from_timestamp_millis(self.now_ms)
            .unwrap_or_default()
            .with_timezone(&china_time())
    }

    pub fn today(&self) -> NaiveDate {
        self.local_now().date_naive()
    }

    /// A new record id: UUIDv7 on this context's clock, so ids sort by
    /// creation time and inserts stay sequential.
    pub fn new_id(&self) -> String {
        let mut random = [0u8; 10];
        rand::rng().fill_bytes(&mut random);
        let millis = self.now_ms.max(0) as u64;
        uuid::Builder::from_unix_timestamp_millis(millis, &random)
            .into_uuid()
            .to_string()
    }
}
