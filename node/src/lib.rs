//! The Liaison node daemon: the federation service and its pull client,
//! the operators' admin service, and the wiring that runs them over the
//! protocol core (`liaison-core`).
//!
//! # Layout
//! - [`tls`]: rustls configurations from a node's certificates.
//! - [`federation`]: the mTLS gRPC service peers call, and the pull client.
//! - [`admin`]: the operators' gRPC service on the admin socket.
//! - [`writer`]: group commit of operators' changes.
//! - [`error`]: the node's own conditions beside the core's errors.
//! - [`metrics`]: the optional Prometheus endpoint.
//! - [`web`]: the optional report-in page members open from a station's QR code.
//! - [`restore`]: `liaison-node restore`, a backup put in place of a stopped node's database.
//! - [`node`]: wires them together; [`node::run`] is what `liaison-node` and the tests call.
//!
//! Dependencies run one way: `federation` and `admin` call `liaison_core`,
//! which knows nothing of tonic, TLS or peers' connections (ARCHITECTURE.md).

pub mod admin;
pub mod error;
pub mod federation;
pub mod metrics;
pub mod node;
pub mod restore;
pub mod tls;
pub mod web;
pub mod writer;

/// The version of this build, reported by `Hello` and `status`.
pub const SOFTWARE_VERSION: &str = env!("CARGO_PKG_VERSION");
