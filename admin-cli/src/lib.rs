//! `liaisonctl`, the operators' command line.
//!
//! Every verb that reads or changes a node's records talks to that node's
//! admin service over its Unix socket ([`client`]); `ca` and `init` work on
//! local files and never open a node's database.

pub mod ca;
pub mod client;
pub mod output;
pub mod sheet;
