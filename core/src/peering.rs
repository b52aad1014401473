//! Adding and removing a peer: what comes with a new peer, and what must
//! not be left behind (docs/transfers.md, "Removing a peer"; docs/agreements.md).

use rusqlite::Connection;

use super::{agreements, members, reconcile, transfers, Ctx};
use crate::store::peers::{self, PeerRecord};
use crate::{Error, Refusal};
use liaison_types::identity::NodeId;

/// Adds `peer` (or adds it again after a removal). Members away to the
/// places it serves are shared with it where an agreement covers them, and
/// a node restored from a backup reconciles with it before it acts as an
/// owner again. Returns how many members away to its places it now serves.
pub fn add(conn: &Connection, ctx: &Ctx<'_>, peer: &PeerRecord) -> Result<usize, Error> {
    peers::add(conn, peer, ctx.now_ms)?;
    reconcile::peer_added(conn, &peer.node_id, ctx.now_ms)?;
    let adopted = members::adopt_destinations(conn, ctx, &peer.node_id)?;
    // Added again after a removal: what active agreements with it came to
    // cover meanwhile is shared now.
    if !agreements::active_with(conn, &peer.node_id)?.is_empty() {
        members::reshare_all(conn, ctx)?;
    }
    Ok(adopted)
}

/// Removes `peer` from the peer table. Refused while it has an open or
/// unreceipted transfer or an active agreement with this node, unless
/// `force`: then the offers are cancelled and the agreements terminated
/// (reason: peer removed) first. Events queued for the peer stay, so a
/// re-add resumes from the cursors. Returns what `force` did, for the audit
/// entry.
pub fn remove(
    conn: &Connection,
    ctx: &Ctx<'_>,
    peer: &NodeId,
    force: bool,
) -> Result<String, Error> {
    peers::require(conn, peer)?;
    let open = transfers::open_with(conn, peer)?;
    let active = agreements::active_with(conn, peer)?;
    let nothing_open = open.is_empty() && active.is_empty();
    if !force && !nothing_open {
        return Err(Error::conflict(format!(
            "peer {peer} still has {} open or unreceipted transfers [{}] and {} active agreements [{}]: finish them, or `peer remove {peer} --force` cancels the offers and terminates the agreements (reason: peer removed)",
            open.len(),
            open.join(" "),
            active.len(),
            active.join(" ")
        )));
    }
    let mut detail = String::new();
    if force {
        for transfer_id in &open {
            match transfers::cancel(conn, ctx, transfer_id) {
                Ok(_) => detail.push_str(&format!("cancelled transfer {transfer_id}; ")),
                // Not ours to cancel: an offer the peer made to us, or a
                // transfer released and awaiting its receipt.
                Err(Error::Refused(Refusal::NotFound(_) | Refusal::Conflict(_))) => {}
                // Anything else (a failed write) fails the removal: the
                // cancel may have changed the transfer without appending its
                // abort for the peer, and committing that would leave the
                // receiver waiting for ever.
                Err(e) => return Err(e),
            }
        }
        for agreement_id in &active {
            agreements::end(conn, ctx, agreement_id, "peer removed", false)?;
            detail.push_str(&format!("terminated agreement {agreement_id}; "));
        }
    }
    peers::remove(conn, peer)?;
    Ok(detail)
}
