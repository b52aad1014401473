//! What a test does and reads through a node's admin service: branches,
//! members and their outflows, transfers, quarantine, replication. Each
//! call is bounded ([`timed`]) and names the node in its panic.

use tonic::{Code, Status};

use super::{pb, timed, TestNode, DEFAULT_WAIT};

impl TestNode {
    /// A branch `org_id` named after this node, with a contact person.
    pub async fn org_add(&self, org_id: &str) {
        let mut admin = self.admin().await;
        timed(
            "org add",
            admin.org_add(pb::Org {
                org_id: org_id.into(),
                name: format!("{}第一支部", self.display_name),
                level: "branch".into(),
                contact_person: "王书记".into(),
                phone: "09338000000".into(),
                ..Default::default()
            }),
        )
        .await
        .unwrap_or_else(|s| panic!("org add at {}: {s}", self.node_id));
    }

    /// A member of branch `b1` with the full record a transfer carries,
    /// born on the date its national ID number says; returns its id.
    pub async fn member_add(&self, name: &str, national_id: &str) -> String {
        let mut admin = self.admin().await;
        let birth_date = format!(
            "{}-{}-{}",
            &national_id[6..10],
            &national_id[10..12],
            &national_id[12..14]
        );
        timed(
            "member add",
            admin.member_add(pb::MemberFields {
                name: Some(name.into()),
                gender: Some("男".into()),
                birth_date: Some(birth_date),
                national_id: Some(national_id.into()),
                party_status: Some("正式".into()),
                home_branch: Some("b1".into()),
                phone: Some("13800000000".into()),
                home_address: Some("平凉市崆峒区".into()),
                native_place: Some("甘肃平凉".into()),
                ..Default::default()
            }),
        )
        .await
        .unwrap_or_else(|s| panic!("member add at {}: {s}", self.node_id))
        .into_inner()
        .member_id
    }

    /// Imports a CSV roster held in memory through `MemberImport`, as
    /// `liaisonctl member import` streams a file's rows (new members, all
    /// or none); the node's answer. Not bounded: callers bound it.
    pub async fn import_csv(&self, csv: &str) -> Result<pb::MemberImportResponse, Status> {
        let chunks = liaisonctl::sheet::send::csv_chunks(csv.as_bytes(), Default::default())
            .unwrap_or_else(|e| panic!("the test's roster cannot be read: {e}"));
        let mut admin = self.admin().await;
        admin
            .member_import(tokio_stream::iter(chunks))
            .await
            .map(tonic::Response::into_inner)
    }

    /// The member goes away to `place` (a place code), on `departed_on`.
    pub async fn outflow_register(&self, member_id: &str, place: &str, departed_on: &str) {
        let mut admin = self.admin().await;
        timed(
            "outflow register",
            admin.outflow_register(pb::OutflowRequest {
                member_id: member_id.into(),
                destination_place: place.into(),
                departed_on: departed_on.into(),
                certificate_no: "PL-2026-001".into(),
                ..Default::default()
            }),
        )
        .await
        .unwrap_or_else(|s| panic!("outflow register at {}: {s}", self.node_id));
    }

    /// `member update ID --phone PHONE`, which the node may refuse.
    pub async fn try_set_phone(&self, member_id: &str, phone: &str) -> Result<pb::Member, Status> {
        let mut admin = self.admin().await;
        timed(
            "member update",
            admin.member_update(pb::MemberUpdateRequest {
                member_id: member_id.into(),
                fields: Some(pb::MemberFields {
                    phone: Some(phone.into()),
                    ..Default::default()
                }),
            }),
        )
        .await
        .map(tonic::Response::into_inner)
    }

    /// [`TestNode::try_set_phone`], which must succeed.
    pub async fn set_phone(&self, member_id: &str, phone: &str) -> pb::Member {
        self.try_set_phone(member_id, phone)
            .await
            .unwrap_or_else(|s| panic!("member update at {}: {s}", self.node_id))
    }

    /// The member as this node shows it (owned, a copy or a tombstone), or
    /// `None` if it knows no such member.
    pub async fn show(&self, member_id: &str) -> Option<pb::Member> {
        let mut admin = self.admin().await;
        match timed(
            "member show",
            admin.member_show(pb::MemberRef {
                member_id: member_id.into(),
            }),
        )
        .await
        {
            Ok(member) => Some(member.into_inner()),
            Err(s) if s.code() == Code::NotFound => None,
            Err(s) => panic!("member show at {}: {s}", self.node_id),
        }
    }

    /// The member's disclosure log: what was shared with which peer, on
    /// what basis.
    pub async fn disclosures(&self, member_id: &str) -> Vec<pb::Disclosure> {
        let mut admin = self.admin().await;
        timed(
            "member disclosures",
            admin.member_disclosures(pb::MemberRef {
                member_id: member_id.into(),
            }),
        )
        .await
        .unwrap_or_else(|s| panic!("member disclosures at {}: {s}", self.node_id))
        .into_inner()
        .disclosures
    }

    /// Every quarantined event, resolved ones included.
    pub async fn quarantined(&self) -> Vec<pb::QuarantineEntry> {
        let mut admin = self.admin().await;
        timed(
            "quarantine list",
            admin.quarantine_list(pb::QuarantineListRequest {
                include_resolved: true,
            }),
        )
        .await
        .unwrap_or_else(|s| panic!("quarantine list at {}: {s}", self.node_id))
        .into_inner()
        .entries
    }

    /// This node's replication state with `peer` (`peer status PEER`).
    pub async fn replication(&self, peer: &str) -> pb::PeerReplication {
        let mut admin = self.admin().await;
        timed(
            "peer status",
            admin.peer_status(pb::PeerStatusRequest {
                node_id: peer.into(),
            }),
        )
        .await
        .unwrap_or_else(|s| panic!("peer status {peer} at {}: {s}", self.node_id))
        .into_inner()
        .peers
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("{} has no peer {peer}", self.node_id))
    }

    // -----------------------------------------------------------------------
    // Transfers
    // -----------------------------------------------------------------------

    /// This node (the owner) offers the member to `to`, valid 30 days;
    /// the node may refuse.
    pub async fn try_transfer_start(
        &self,
        member_id: &str,
        to: &str,
    ) -> Result<pb::TransferView, Status> {
        let mut admin = self.admin().await;
        timed(
            "transfer start",
            admin.transfer_start(pb::TransferStartRequest {
                member_id: member_id.into(),
                to: to.into(),
                valid_days: 30,
                reason: "定居".into(),
            }),
        )
        .await
        .map(tonic::Response::into_inner)
    }

    /// [`TestNode::try_transfer_start`] to `to`, which must leave an
    /// outgoing offer.
    pub async fn transfer_start(&self, member_id: &str, to: &TestNode) -> pb::TransferView {
        let view = self
            .try_transfer_start(member_id, &to.node_id)
            .await
            .unwrap_or_else(|s| panic!("transfer start at {}: {s}", self.node_id));
        assert_eq!(view.state, "offered");
        assert_eq!(view.direction, "outgoing");
        view
    }

    /// The transfer as this node shows it, or `None` if it knows none.
    pub async fn transfer(&self, transfer_id: &str) -> Option<pb::TransferView> {
        let mut admin = self.admin().await;
        match timed(
            "transfer show",
            admin.transfer_show(pb::TransferRef {
                transfer_id: transfer_id.into(),
            }),
        )
        .await
        {
            Ok(view) => Some(view.into_inner()),
            Err(s) if s.code() == Code::NotFound => None,
            Err(s) => panic!("transfer show at {}: {s}", self.node_id),
        }
    }

    /// `transfer list` as `request` filters it.
    pub async fn transfers(&self, request: pb::TransferListRequest) -> Vec<pb::TransferView> {
        let mut admin = self.admin().await;
        timed("transfer list", admin.transfer_list(request))
            .await
            .unwrap_or_else(|s| panic!("transfer list at {}: {s}", self.node_id))
            .into_inner()
            .transfers
    }

    /// Waits until the transfer is in `state` at this node; returns it.
    pub async fn wait_transfer(&self, transfer_id: &str, state: &str) -> pb::TransferView {
        self.wait_for(
            DEFAULT_WAIT,
            &format!("transfer {transfer_id} {state} at {}", self.node_id),
            async || {
                self.transfer(transfer_id)
                    .await
                    .filter(|t| t.state == state)
            },
        )
        .await
    }

    /// The receiver accepts into `branch`; the node may refuse.
    pub async fn try_transfer_accept(
        &self,
        transfer_id: &str,
        branch: &str,
    ) -> Result<pb::TransferView, Status> {
        let mut admin = self.admin().await;
        timed(
            "transfer accept",
            admin.transfer_accept(pb::TransferAcceptRequest {
                transfer_id: transfer_id.into(),
                branch: branch.into(),
            }),
        )
        .await
        .map(tonic::Response::into_inner)
    }

    /// The receiver accepts into branch `b1`, which must succeed.
    pub async fn transfer_accept(&self, transfer_id: &str) -> pb::TransferView {
        let view = self
            .try_transfer_accept(transfer_id, "b1")
            .await
            .unwrap_or_else(|s| panic!("transfer accept at {}: {s}", self.node_id));
        assert_eq!(view.state, "accepted");
        view
    }

    /// The receiver rejects with a reason code; the node may refuse.
    pub async fn try_transfer_reject(
        &self,
        transfer_id: &str,
        code: &str,
        reason: &str,
    ) -> Result<pb::TransferView, Status> {
        let mut admin = self.admin().await;
        timed(
            "transfer reject",
            admin.transfer_reject(pb::TransferRejectRequest {
                transfer_id: transfer_id.into(),
                reason_code: code.into(),
                reason: reason.into(),
            }),
        )
        .await
        .map(tonic::Response::into_inner)
    }

    /// The sender cancels its offer; the node may refuse.
    pub async fn try_transfer_cancel(&self, transfer_id: &str) -> Result<pb::TransferView, Status> {
        let mut admin = self.admin().await;
        timed(
            "transfer cancel",
            admin.transfer_cancel(pb::TransferRef {
                transfer_id: transfer_id.into(),
            }),
        )
        .await
        .map(tonic::Response::into_inner)
    }
}
