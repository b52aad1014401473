//! The Liaison node: a federated registry of mobile Party members (流动党员).
//!
//! # Layout
//! - [`config`]: the node's TOML configuration and its checks.
//! - [`identity`]: node ids, the federation CA, certificates and TLS configs.
//! - [`store`]: the SQLite database: schema, migrations, peers, audit log.
//! - [`clock`]: the injected clock the protocol core reads time from.
//! - [`federation`]: the mTLS gRPC service peers call, and the pull client.
//! - [`admin`]: the operators' gRPC service on the admin socket.
//! - [`writer`]: group commit of operators' changes.
//! - [`node`]: wires them together; [`node::run`] is what `liaison-node` and the tests call.
//!
//! Dependencies run one way: `federation` and `admin` call `store`; `store`
//! knows nothing of tonic, TLS or peers' connections (ARCHITECTURE.md).

pub mod admin;
pub mod clock;
pub mod config;
pub mod core;
pub mod federation;
pub mod identity;
pub mod node;
pub mod store;
pub mod writer;

/// The version of this build, reported by `Hello` and `status`.
pub const SOFTWARE_VERSION: &str = env!("CARGO_PKG_VERSION");
