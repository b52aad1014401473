//! Peers admitted by an operator, and callers awaiting admission.

use rusqlite::{params, Connection, OptionalExtension};

use crate::clock::Millis;
use crate::Error;
use liaison_types::identity::NodeId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerState {
    Active,
    Paused,
}

impl PeerState {
    pub fn as_str(self) -> &'static str {
        match self {
            PeerState::Active => "active",
            PeerState::Paused => "paused",
        }
    }

    fn parse(s: &str) -> PeerState {
        if s == "paused" {
            PeerState::Paused
        } else {
            PeerState::Active
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRecord {
    pub node_id: NodeId,
    pub display_name: String,
    pub endpoint: String,
    pub fingerprint: Option<String>,
    pub state: PeerState,
    pub serves: Vec<String>,
    pub added_at_ms: Millis,
    pub last_contact_ms: Option<Millis>,
    /// Incoming transfers from this peer of members covered by an active
    /// agreement are accepted into this branch; empty: off.
    pub auto_accept_branch: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingPeer {
    pub node_id: String,
    pub remote_addr: String,
    /// What the node said in `Hello` about where it can be reached.
    pub endpoint: String,
    pub fingerprint: String,
    pub first_attempt_ms: Millis,
    pub last_attempt_ms: Millis,
    pub attempts: u64,
    pub ignored: bool,
}

/// Checks an endpoint given by an operator: `https://host:port`.
pub fn validate_endpoint(endpoint: &str) -> Result<(), Error> {
    let bad = || {
        Error::invalid(format!(
            "endpoint `{endpoint}` is not of the form https://HOST:PORT (for example https://10.0.0.2:7401)"
        ))
    };
    let rest = endpoint.strip_prefix("https://").ok_or_else(bad)?;
    let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || host.contains('/') || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(bad());
    }
    Ok(())
}

/// A place code: a province (2 digits), city (4) or county (6) code of the
/// administrative divisions (GB/T 2260), e.g. 62 Gansu, 6201 Lanzhou. A
/// node serving a prefix serves every place under it.
pub fn validate_place(place: &str) -> Result<(), Error> {
    let digits = place.bytes().all(|b| b.is_ascii_digit());
    if !(digits && matches!(place.len(), 2 | 4 | 6)) {
        return Err(Error::invalid(format!(
            "place `{place}` is not a place code: use 2 digits for a province (62), 4 for a city (6201) or 6 for a county (620102)"
        )));
    }
    if liaison_types::places::by_code(place).is_none() {
        return Err(Error::invalid(format!(
            "place code `{place}` is not in the administrative-division table (GB/T 2260): check it, or give the place's name (liaisonctl looks the code up)"
        )));
    }
    Ok(())
}

pub fn add(conn: &Connection, peer: &PeerRecord, now_ms: Millis) -> Result<(), Error> {
    validate_endpoint(&peer.endpoint)?;
    for place in &peer.serves {
        validate_place(place)?;
    }
    if get(conn, &peer.node_id)?.is_some() {
        return Err(Error::conflict(format!(
            "peer {} already exists: use `peer show {0}`, or `peer remove {0}` first",
            peer.node_id
        )));
    }
    conn.execute(
        "INSERT INTO peers (node_id, display_name, endpoint, fingerprint, state, added_at_ms, updated_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        params![
            peer.node_id.as_str(),
            peer.display_name,
            peer.endpoint,
            peer.fingerprint,
            peer.state.as_str(),
            now_ms
        ],
    )?;
    for place in &peer.serves {
        conn.execute(
            "INSERT OR IGNORE INTO peer_places (node_id, place) VALUES (?1, ?2)",
            params![peer.node_id.as_str(), place],
        )?;
    }
    conn.execute(
        "DELETE FROM pending_peers WHERE node_id = ?1",
        [peer.node_id.as_str()],
    )?;
    Ok(())
}

pub fn get(conn: &Connection, node_id: &NodeId) -> Result<Option<PeerRecord>, Error> {
    let row = conn
        .prepare_cached(
            "SELECT node_id, display_name, endpoint, fingerprint, state, added_at_ms, last_contact_ms, auto_accept_branch
             FROM peers WHERE node_id = ?1",
        )?
        .query_row([node_id.as_str()], read_peer)
        .optional()?;
    let Some(mut peer) = row else {
        return Ok(None);
    };
    peer.serves = places(conn, node_id)?;
    Ok(Some(peer))
}

/// Like [`get`], with an error that tells the operator what to do.
pub fn require(conn: &Connection, node_id: &NodeId) -> Result<PeerRecord, Error> {
    get(conn, node_id)?.ok_or_else(|| {
        Error::not_found(format!(
            "no peer {node_id}: `peer list` shows the peers, `peer add` adds one"
        ))
    })
}

pub fn list(conn: &Connection) -> Result<Vec<PeerRecord>, Error> {
    let mut stmt = conn.prepare(
        "SELECT node_id, display_name, endpoint, fingerprint, state, added_at_ms, last_contact_ms, auto_accept_branch
         FROM peers ORDER BY node_id",
    )?;
    let mut peers = stmt
        .query_map([], read_peer)?
        .collect::<Result<Vec<_>, _>>()?;
    for peer in &mut peers {
        peer.serves = places(conn, &peer.node_id)?;
    }
    Ok(peers)
}

fn read_peer(r: &rusqlite::Row<'_>) -> rusqlite::Result<PeerRecord> {
    let node_id: String = r.get(0)?;
    let node_id = NodeId::parse(&node_id).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(PeerRecord {
        node_id,
        display_name: r.get(1)?,
        endpoint: r.get(2)?,
        fingerprint: r.get(3)?,
        state: PeerState::parse(&r.get::<_, String>(4)?),
        serves: Vec::new(),
        added_at_ms: r.get(5)?,
        last_contact_ms: r.get(6)?,
        auto_accept_branch: r.get(7)?,
    })
}

fn places(conn: &Connection, node_id: &NodeId) -> Result<Vec<String>, Error> {
    let mut stmt =
        conn.prepare_cached("SELECT place FROM peer_places WHERE node_id = ?1 ORDER BY place")?;
    let places = stmt
        .query_map([node_id.as_str()], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(places)
}

pub fn set_state(
    conn: &Connection,
    node_id: &NodeId,
    state: PeerState,
    now_ms: Millis,
) -> Result<PeerRecord, Error> {
    require(conn, node_id)?;
    conn.execute(
        "UPDATE peers SET state = ?2, updated_at_ms = ?3 WHERE node_id = ?1",
        params![node_id.as_str(), state.as_str(), now_ms],
    )?;
    require(conn, node_id)
}

/// Sets the auto-accept policy for incoming transfers from `node_id`.
pub fn set_auto_accept(
    conn: &Connection,
    node_id: &NodeId,
    branch: &str,
    now_ms: Millis,
) -> Result<PeerRecord, Error> {
    require(conn, node_id)?;
    let branch = branch.trim();
    if !branch.is_empty() {
        let known: bool = conn
            .query_row("SELECT 1 FROM orgs WHERE org_id = ?1", [branch], |_| Ok(()))
            .optional()?
            .is_some();
        if !known {
            return Err(Error::not_found(format!(
                "branch `{branch}` is not an organization of this node: pick one from `org list`"
            )));
        }
    }
    conn.execute(
        "UPDATE peers SET auto_accept_branch = ?2, updated_at_ms = ?3 WHERE node_id = ?1",
        params![node_id.as_str(), branch, now_ms],
    )?;
    require(conn, node_id)
}

pub fn remove(conn: &Connection, node_id: &NodeId) -> Result<(), Error> {
    require(conn, node_id)?;
    conn.execute("DELETE FROM peers WHERE node_id = ?1", [node_id.as_str()])?;
    Ok(())
}

pub fn touch_contact(conn: &Connection, node_id: &NodeId, now_ms: Millis) -> Result<(), Error> {
    conn.execute(
        "UPDATE peers SET last_contact_ms = ?2 WHERE node_id = ?1",
        params![node_id.as_str(), now_ms],
    )?;
    Ok(())
}

/// Records a call from a node with a valid certificate that is not a peer.
/// Returns whether an operator chose to ignore this node.
pub fn record_pending(
    conn: &Connection,
    node_id: &NodeId,
    remote_addr: &str,
    endpoint: &str,
    fingerprint: &str,
    now_ms: Millis,
) -> Result<bool, Error> {
    conn.execute(
        "INSERT INTO pending_peers (node_id, remote_addr, endpoint, fingerprint, first_attempt_ms, last_attempt_ms, attempts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, 1)
         ON CONFLICT (node_id) DO UPDATE SET remote_addr = excluded.remote_addr,
             endpoint = CASE WHEN excluded.endpoint = '' THEN endpoint ELSE excluded.endpoint END,
             fingerprint = excluded.fingerprint, last_attempt_ms = excluded.last_attempt_ms,
             attempts = attempts + 1",
        params![node_id.as_str(), remote_addr, endpoint, fingerprint, now_ms],
    )?;
    let ignored: bool = conn.query_row(
        "SELECT ignored FROM pending_peers WHERE node_id = ?1",
        [node_id.as_str()],
        |r| r.get(0),
    )?;
    Ok(ignored)
}

pub fn list_pending(conn: &Connection) -> Result<Vec<PendingPeer>, Error> {
    let mut stmt = conn.prepare(
        "SELECT node_id, remote_addr, endpoint, fingerprint, first_attempt_ms, last_attempt_ms, attempts, ignored
         FROM pending_peers ORDER BY last_attempt_ms DESC",
    )?;
    let pending = stmt
        .query_map([], |r| {
            Ok(PendingPeer {
                node_id: r.get(0)?,
                remote_addr: r.get(1)?,
                endpoint: r.get(2)?,
                fingerprint: r.get(3)?,
                first_attempt_ms: r.get(4)?,
                last_attempt_ms: r.get(5)?,
                attempts: r.get(6)?,
                ignored: r.get(7)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(pending)
}

/// Marks a pending caller as ignored: it stays refused, and is no longer listed.
pub fn ignore_pending(conn: &Connection, node_id: &NodeId) -> Result<PendingPeer, Error> {
    let n = conn.execute(
        "UPDATE pending_peers SET ignored = 1 WHERE node_id = ?1",
        [node_id.as_str()],
    )?;
    if n == 0 {
        return Err(Error::not_found(format!(
            "no pending node {node_id}: `peer list --pending` shows the nodes that called"
        )));
    }
    list_pending(conn)?
        .into_iter()
        .find(|p| p.node_id == node_id.as_str())
        .ok_or_else(|| Error::not_found(format!("no pending node {node_id}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn peer(id: &str) -> PeerRecord {
        PeerRecord {
            node_id: NodeId::parse(id).unwrap(),
            display_name: "兰州".into(),
            endpoint: "https://127.0.0.1:7402".into(),
            fingerprint: None,
            state: PeerState::Active,
            serves: vec!["6201".into()],
            added_at_ms: 0,
            last_contact_ms: None,
            auto_accept_branch: String::new(),
        }
    }

    #[test]
    fn add_list_pause_remove() {
        let store = Store::open_in_memory(0).unwrap();
        store
            .with(|conn| {
                add(conn, &peer("lanzhou"), 5)?;
                assert!(add(conn, &peer("lanzhou"), 6).is_err());
                let listed = list(conn)?;
                assert_eq!(listed.len(), 1);
                assert_eq!(listed[0].serves, vec!["6201".to_string()]);
                let lanzhou = NodeId::parse("lanzhou").unwrap();
                assert_eq!(
                    set_state(conn, &lanzhou, PeerState::Paused, 7)?.state,
                    PeerState::Paused
                );
                remove(conn, &lanzhou)?;
                assert!(list(conn)?.is_empty());
                assert!(remove(conn, &lanzhou).is_err());
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn bad_endpoint_and_place_are_refused() {
        assert!(validate_endpoint("https://127.0.0.1:7402").is_ok());
        assert!(validate_endpoint("https://lanzhou.example:7402").is_ok());
        for bad in [
            "127.0.0.1:7402",
            "http://x:1",
            "https://x",
            "https://x:0",
            "https://:1",
        ] {
            assert!(validate_endpoint(bad).is_err(), "{bad}");
        }
        for bad in ["6", "620", "62010a", "6201020", "999999", "6299", "620199"] {
            assert!(validate_place(bad).is_err(), "{bad}");
        }
        for good in ["62", "6201", "620102", "11", "110105"] {
            assert!(validate_place(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn pending_callers_are_counted_then_admitted() {
        let store = Store::open_in_memory(0).unwrap();
        store
            .with(|conn| {
                let xian = NodeId::parse("xian").unwrap();
                assert!(!record_pending(
                    conn,
                    &xian,
                    "127.0.0.1:5000",
                    "https://x:1",
                    "sha256:00",
                    1
                )?);
                assert!(!record_pending(
                    conn,
                    &xian,
                    "127.0.0.1:5001",
                    "",
                    "sha256:00",
                    2
                )?);
                let pending = list_pending(conn)?;
                assert_eq!(pending[0].attempts, 2);
                assert_eq!(pending[0].first_attempt_ms, 1);
                assert_eq!(pending[0].endpoint, "https://x:1");
                ignore_pending(conn, &xian)?;
                assert!(record_pending(
                    conn,
                    &xian,
                    "127.0.0.1:5002",
                    "",
                    "sha256:00",
                    3
                )?);
                add(conn, &peer("xian"), 4)?;
                assert!(list_pending(conn)?.is_empty());
                Ok(())
            })
            .unwrap();
    }
}
