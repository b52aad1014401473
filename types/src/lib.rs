//! What `liaisonctl` shares with the node: node ids and the federation CA
//! ([`identity`]), the node's configuration file ([`config`]), the checks of
//! operator input ([`validate`]), the administrative divisions that places
//! are ([`places`]), the report-in form members fill ([`reportin`]), the people's time zone ([`time`]) and the spreadsheets
//! operators import and export ([`sheet`]).
//!
//! Architecture invariant: no SQLite, no tokio, no tonic and no TLS library
//! here, so `liaisonctl` links none of the node's machinery and the protocol
//! core can build on these types (ARCHITECTURE.md).

pub mod config;
pub mod identity;
pub mod places;
pub mod reportin;
pub mod sheet;
pub mod time;
pub mod validate;
