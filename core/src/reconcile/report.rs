//! What adopting one peer's holdings did, for the operator.

/// What adopting one peer's holdings did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdoptReport {
    pub host_sections: u64,
    pub contacts: u64,
    pub activities: u64,
    pub agreements: u64,
    pub transfers_released: u64,
    pub transfers_completed: u64,
    pub transfers_aborted: u64,
    /// Records the peer made as host of this node's members, applied
    /// again (the copies here may predate the backup).
    pub peer_records: u64,
    /// Home sections sent to the peer again under the new log id.
    pub re_sent: u64,
    /// Copies the peer holds of members this node no longer has: dropped
    /// by the peer at `EpochComplete`.
    pub forgotten: u64,
    /// Members the peer's completed transfer took that were edited here
    /// after the restore (the peer's record wins).
    pub conflicts: Vec<String>,
    /// Old-epoch events the peer had applied, deleted from the log.
    pub events_dropped: u64,
    /// Agreement and transfer reports not believed or not applicable, with
    /// the reason.
    pub refused: Vec<String>,
    /// True when this adoption ended reconciliation.
    pub finished: bool,
}

impl AdoptReport {
    pub fn summary(&self) -> String {
        let mut text = format!(
            "adopted {} host sections, {} contacts, {} activities, {} agreements; {} records the peer made as host applied again; transfers: {} released, {} completed, {} aborted; {} home sections sent again, {} copies of forgotten members to be dropped",
            self.host_sections,
            self.contacts,
            self.activities,
            self.agreements,
            self.peer_records,
            self.transfers_released,
            self.transfers_completed,
            self.transfers_aborted,
            self.re_sent,
            self.forgotten
        );
        if !self.refused.is_empty() {
            text.push_str(&format!("; not adopted: {}", self.refused.join("; ")));
        }
        if !self.conflicts.is_empty() {
            text.push_str(&format!(
                "; conflict: members edited here after the restore now owned by the peer: {}",
                self.conflicts.join(", ")
            ));
        }
        text
    }
}
