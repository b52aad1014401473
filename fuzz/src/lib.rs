//! The node the fuzz targets apply their input at: Pingliang, with Lanzhou
//! and Xi'an as peers, two members away to Lanzhou, an agreement it
//! proposed to Lanzhou and a transfer it offered Lanzhou. Built once per
//! process; every input gets a copy of its database, so an input does the
//! same whatever ran before it.

use std::path::PathBuf;
use std::sync::OnceLock;

use liaison_core::clock::Millis;
use liaison_core::store::peers::{self, PeerRecord, PeerState};
use liaison_core::store::Store;
use liaison_core::{agreements, members, transfers, Ctx, Error};
use liaison_proto::v1 as pb;
use liaison_types::identity::{self, CertNotary, NodeId};

pub struct Template {
    _dir: tempfile::TempDir,
    db: PathBuf,
    pub id: NodeId,
    pub now_ms: Millis,
    notary: CertNotary,
}

/// A copy of the template's database, opened.
pub struct Node {
    _dir: tempfile::TempDir,
    pub store: Store,
}

impl Template {
    pub fn ctx(&self) -> Ctx<'_> {
        Ctx::new(&self.id, self.now_ms).with_notary(&self.notary)
    }

    pub fn node(&self) -> Node {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let db = dir.path().join("node.db");
        std::fs::copy(&self.db, &db).expect("a copy of the template");
        let store = Store::open(&db, self.now_ms).expect("the copy opens");
        Node { _dir: dir, store }
    }
}

pub fn template() -> &'static Template {
    static TEMPLATE: OnceLock<Template> = OnceLock::new();
    TEMPLATE.get_or_init(|| build().expect("the template node"))
}

fn some(s: &str) -> Option<String> {
    Some(s.to_owned())
}

fn build() -> Result<Template, Error> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let id = NodeId::parse("pingliang").expect("a node id");
    let ca = dir.path().join("ca");
    identity::ca_init("gansu", &ca, 3650, false).expect("a CA");
    let certs = dir.path().join("certs");
    identity::ca_issue(&ca, &id, &[], &[], 3650, &certs, false).expect("a certificate");
    let material = identity::load_tls(
        &certs.join("pingliang.crt"),
        &certs.join("pingliang.key"),
        &ca.join("ca.crt"),
        &id,
    )
    .expect("the certificate loads");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis);
    let template = Template {
        db: dir.path().join("template.db"),
        _dir: dir,
        id,
        now_ms,
        notary: CertNotary::new(material),
    };
    {
        let store = Store::open(&template.db, now_ms)?;
        let ctx = template.ctx();
        store.with(|conn| {
            let tx = conn.transaction()?;
            for (peer, serves) in [("lanzhou", "6201"), ("xian", "6101")] {
                peers::add(
                    &tx,
                    &PeerRecord {
                        node_id: NodeId::parse(peer).expect("a node id"),
                        display_name: peer.into(),
                        endpoint: "https://127.0.0.1:1".into(),
                        fingerprint: None,
                        state: PeerState::Active,
                        serves: vec![serves.into()],
                        added_at_ms: now_ms,
                        last_contact_ms: None,
                        auto_accept_branch: String::new(),
                    },
                    now_ms,
                )?;
            }
            members::org_add(
                &tx,
                &ctx,
                &pb::Org {
                    org_id: "b1".into(),
                    name: "崆峒区第一支部".into(),
                    level: "branch".into(),
                    ..Default::default()
                },
            )?;
            let mut away = Vec::new();
            for name in ["张三", "李四"] {
                let member = members::member_add(
                    &tx,
                    &ctx,
                    &pb::MemberFields {
                        name: some(name),
                        gender: some("男"),
                        birth_date: some("1990-05-17"),
                        party_status: some("正式"),
                        joined_on: some("2012-07-01"),
                        home_branch: some("b1"),
                        ..Default::default()
                    },
                )?;
                members::outflow_register(
                    &tx,
                    &ctx,
                    &pb::OutflowRequest {
                        member_id: member.member_id.clone(),
                        destination_place: "620102".into(),
                        departed_on: ctx.today().to_string(),
                        ..Default::default()
                    },
                )?;
                away.push(member.member_id);
            }
            let today = ctx.today();
            agreements::propose(
                &tx,
                &ctx,
                "lanzhou",
                "outflow",
                pb::AgreementTerms {
                    number: "PL-LZ-2026-01".into(),
                    effective_from: today.to_string(),
                    effective_until: (today + chrono::TimeDelta::days(365)).to_string(),
                    scope_kind: "destination".into(),
                    dues_collector: "inflow".into(),
                    ..Default::default()
                },
            )?;
            transfers::start(
                &tx,
                &ctx,
                &away[1],
                "lanzhou",
                0,
                "定居兰州",
                transfers::LetterRules::default(),
            )?;
            tx.commit()?;
            Ok(())
        })?;
    }
    Ok(template)
}
