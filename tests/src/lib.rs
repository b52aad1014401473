//! Liaison's tests and the kit they share with the benchmarks.
//!
//! - [`kit`]: real `liaison-node` processes on loopback, real SQLite
//!   files, real mutual TLS ([`Federation`], [`TestNode`]); what the
//!   end-to-end tests under `tests/tests/` and `liaison-bench` start nodes
//!   with. Its items are re-exported here.
//! - [`proxy`]: a TCP proxy for partitions; [`ownership`]: the single-owner
//!   checker over every node's database.
//! - [`sim`]: the deterministic simulator that drives the core of several
//!   nodes in one process under seeded fault schedules.

pub mod kit;
pub mod ownership;
pub mod proxy;
pub mod sim;

pub use kit::*;

/// The simulator's invariants (`sim::invariants`; docs/authority.md,
/// docs/replication.md, docs/agreements.md) over real nodes' database
/// files, read-only: every host holds copies only under an agreement it
/// holds active, and every stored record's author is its authority (tombstones only for released transfers). The single-owner
/// promise has its own checker for running nodes ([`ownership`]), which
/// reads the files twice because they cannot be read at one instant.
///
/// Files of running nodes are read one after another, so call it where
/// the federation is quiet, e.g. after waiting for convergence.
pub fn check_invariants(dbs: &[ownership::NodeDb]) -> Result<(), sim::invariants::Violation> {
    let open: Vec<(liaison_types::identity::NodeId, rusqlite::Connection)> = dbs
        .iter()
        .filter(|db| db.path.exists())
        .map(|db| {
            let id = liaison_types::identity::NodeId::parse(&db.node_id).expect("a node id");
            let conn = sim::invariants::open_read_only(&db.path).expect("open a node's database");
            (id, conn)
        })
        .collect();
    let now_ms = chrono::Utc::now().timestamp_millis();
    let nodes: Vec<sim::invariants::NodeDb<'_>> = open
        .iter()
        .map(|(id, conn)| sim::invariants::NodeDb { id, conn, now_ms })
        .collect();
    for (i, node) in nodes.iter().enumerate() {
        sim::invariants::copies_under_active_basis(node)?;
        sim::invariants::authors_are_authorities(&nodes, i, &|_| None)?;
    }
    Ok(())
}
