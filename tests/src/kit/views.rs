//! Records as `liaisonctl -o json` prints them.

use serde::Deserialize;

/// Parses `liaisonctl -o json` output: one `{"type", "data"}` envelope a line.
pub fn parse_json_lines(stdout: &str) -> Vec<(String, serde_json::Value)> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let value: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            let kind = value["type"]
                .as_str()
                .unwrap_or_else(|| panic!("no `type` in {line}"))
                .to_owned();
            let data = value
                .get("data")
                .cloned()
                .unwrap_or_else(|| panic!("no `data` in {line}"));
            (kind, data)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Records as `liaisonctl -o json` prints them
// ---------------------------------------------------------------------------

/// A `peer` record of `liaisonctl peer list -o json`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct PeerView {
    pub node_id: String,
    pub display_name: String,
    pub endpoint: String,
    pub fingerprint: String,
    pub state: String,
    pub serves: Vec<String>,
    pub added_at_ms: i64,
    pub outbound_up: bool,
    pub inbound_up: bool,
    pub last_contact_ms: i64,
    pub last_error: String,
    pub next_attempt_ms: i64,
    pub remote_display_name: String,
    pub remote_protocol_version: u32,
    pub remote_software_version: String,
}

/// A `pending_peer` record of `liaisonctl peer list --pending -o json`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct PendingView {
    pub node_id: String,
    pub remote_addr: String,
    pub endpoint: String,
    pub fingerprint: String,
    pub first_attempt_ms: i64,
    pub last_attempt_ms: i64,
    pub attempts: u64,
    pub ignored: bool,
}

/// An `audit_entry` record of `liaisonctl audit list -o json`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct AuditEntry {
    pub seq: u64,
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub detail: String,
    pub hash: String,
}

impl AuditEntry {
    /// `action` with `outcome` whose detail contains `detail`.
    pub fn is(&self, action: &str, outcome: &str, detail: &str) -> bool {
        self.action == action && self.outcome == outcome && self.detail.contains(detail)
    }
}
