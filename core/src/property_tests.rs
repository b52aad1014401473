//! What a peer or an operator's file may hold, however malformed, never
//! panics the core: property tests over `apply::apply_batch` (arbitrary
//! events and arbitrary bytes, against nodes that hold members, copies, an
//! agreement and a transfer) and over the roster's CSV reader
//! (`import::import_csv`).
//!
//! They run in every `cargo test` with [`CASES`] cases each
//! (`PROPTEST_CASES` changes it), from a random seed that a failure prints
//! (`PROPTEST_RNG_SEED=<seed>` runs the same cases again). A failure also
//! prints the smallest input that still fails, and proptest saves its seed
//! under `core/proptest-regressions/`, whose cases run first from then on.

use liaison_proto::v1 as pb;
use liaison_proto::v1::EventKind;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use prost::Message;

use super::apply::apply_batch;
use super::outcome::BatchError;
use super::tests::{day, federation, TestNode};
use super::{import, log, members, transfers};
use crate::Error;

/// Cases per property unless `PROPTEST_CASES` says otherwise: enough to
/// reach every event kind many times, few enough for every `cargo test`.
const CASES: u32 = 96;

/// The configuration of every property here: [`CASES`] cases, and a seed
/// printed before the cases run (shown with a failure's output) so that
/// `PROPTEST_RNG_SEED` replays them.
fn config() -> Config {
    let defaults = Config::default();
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() {
        defaults.cases
    } else {
        CASES
    };
    let seed = match defaults.rng_seed {
        RngSeed::Fixed(seed) => seed,
        RngSeed::Random => rand::random(),
    };
    eprintln!("proptest seed {seed}: PROPTEST_RNG_SEED={seed} runs these cases again");
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        ..defaults
    }
}

/// The nodes a batch is applied at, and what their fields may name.
struct World {
    pingliang: TestNode,
    lanzhou: TestNode,
    xian: TestNode,
    /// Owned by Pingliang, shared with Lanzhou.
    member: String,
    /// Owned by Pingliang, offered to Lanzhou.
    offered: String,
    agreement: String,
    transfer: String,
    /// Events Pingliang sent Lanzhou and Lanzhou sent Pingliang: honest
    /// payloads to mutate.
    honest: Vec<pb::Event>,
}

fn world() -> World {
    let (pingliang, lanzhou, xian, member) = federation();
    let offered = pingliang.add_away("李四", -40);
    pingliang.deliver(&lanzhou);
    let agreement: String = pingliang
        .store
        .with(|c| Ok(c.query_row("SELECT agreement_id FROM agreements", [], |r| r.get(0))?))
        .unwrap();
    lanzhou
        .tx(|c, ctx| {
            members::contact_record(
                c,
                ctx,
                &pb::ContactRequest {
                    member_id: member.clone(),
                    channel: "phone".into(),
                    at: day(-3),
                    ..Default::default()
                },
            )
        })
        .unwrap();
    let transfer = pingliang
        .tx(|c, ctx| {
            transfers::start(
                c,
                ctx,
                &offered,
                "lanzhou",
                0,
                "定居兰州",
                transfers::LetterRules {
                    valid_days_default: 30,
                    valid_days_max: 90,
                },
            )
        })
        .unwrap()
        .transfer_id;
    let sent = |from: &TestNode, to: &TestNode| {
        from.store
            .with(|c| log::read_batch(c, &to.id, 0, 1_000))
            .unwrap()
    };
    let mut honest = sent(&pingliang, &lanzhou);
    honest.extend(sent(&lanzhou, &pingliang));
    pingliang.deliver(&lanzhou);
    lanzhou.deliver(&pingliang);
    World {
        pingliang,
        lanzhou,
        xian,
        member,
        offered,
        agreement,
        transfer,
        honest,
    }
}

/// A string field of a message that is not coherent: mostly what the
/// world's records name, sometimes anything.
#[derive(Debug, Clone)]
enum Word {
    Member,
    Offered,
    Agreement,
    Transfer,
    Node(usize),
    /// The node the batch comes from, and the one it is applied at.
    Origin,
    Receiver,
    Day(i64),
    Literal(String),
}

fn word() -> impl Strategy<Value = Word> {
    prop_oneof![
        3 => Just(Word::Member),
        1 => Just(Word::Offered),
        2 => Just(Word::Agreement),
        1 => Just(Word::Transfer),
        2 => (0usize..4).prop_map(Word::Node),
        2 => Just(Word::Origin),
        1 => Just(Word::Receiver),
        1 => (-400i64..400).prop_map(Word::Day),
        3 => prop_oneof![
            Just(String::new()),
            prop::sample::select(ENUMERATIONS).prop_map(str::to_string),
            ".{0,12}",
        ]
        .prop_map(Word::Literal),
    ]
}

/// The values of the fields that name one of a few: votes, states, ends,
/// reasons, channels.
const ENUMERATIONS: &[&str] = &[
    "accept",
    "reject",
    "held",
    "propose",
    "counter",
    "active",
    "expired",
    "terminated",
    "end_applied",
    "copies_dropped",
    "cancelled",
    "rejected",
    "late_accept",
    "destination",
    "members",
    "phone",
    "visit",
    "normal",
    "lost",
];

/// A number field: small ones (versions, generations) mostly, and the
/// extremes.
fn number() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => 0u64..6,
        1 => Just(u64::MAX),
        1 => Just(i64::MAX as u64),
        1 => any::<u64>(),
    ]
}

/// What one generated message is filled from, in order. A coherent one
/// names mostly what its kind's checks want (its sender is the batch's
/// origin, its receiver the node it is applied at, its member and
/// agreement the world's), so that the checks behind the first ones run
/// too; numbers, flags and the rest stay arbitrary.
#[derive(Debug, Clone)]
struct Fields {
    coherent: bool,
    words: Vec<Word>,
    numbers: Vec<u64>,
    flags: Vec<bool>,
}

fn fields() -> impl Strategy<Value = Fields> {
    (
        any::<bool>(),
        prop::collection::vec(word(), 24),
        prop::collection::vec(number(), 8),
        prop::collection::vec(any::<bool>(), 16),
    )
        .prop_map(|(coherent, words, numbers, flags)| Fields {
            coherent,
            words,
            numbers,
            flags,
        })
}

/// Fills a message's fields from a [`Fields`], resolved against a world
/// and the batch's origin and receiver.
struct Filler<'a> {
    world: &'a World,
    origin: &'a str,
    receiver: &'a str,
    fields: &'a Fields,
    word: usize,
    number: usize,
    flag: usize,
}

impl Filler<'_> {
    /// The next arbitrary word.
    fn s(&mut self) -> String {
        let w = &self.fields.words[self.word % self.fields.words.len()];
        self.word += 1;
        match w {
            Word::Member => self.world.member.clone(),
            Word::Offered => self.world.offered.clone(),
            Word::Agreement => self.world.agreement.clone(),
            Word::Transfer => self.world.transfer.clone(),
            Word::Node(i) => ["pingliang", "lanzhou", "xian", "tianshui"][*i].to_string(),
            Word::Origin => self.origin.to_string(),
            Word::Receiver => self.receiver.to_string(),
            Word::Day(offset) => day(*offset),
            Word::Literal(s) => s.clone(),
        }
    }

    fn n(&mut self) -> u64 {
        let n = self.fields.numbers[self.number % self.fields.numbers.len()];
        self.number += 1;
        n
    }

    fn b(&mut self) -> bool {
        let b = self.fields.flags[self.flag % self.fields.flags.len()];
        self.flag += 1;
        b
    }

    /// `coherent` in a coherent message, three times in four; else the
    /// next arbitrary word.
    fn or_s(&mut self, coherent: impl FnOnce(&mut Self) -> String) -> String {
        if self.fields.coherent && (self.b() || self.b()) {
            coherent(self)
        } else {
            self.s()
        }
    }

    fn member(&mut self) -> String {
        self.or_s(|f| {
            if f.b() {
                f.world.member.clone()
            } else {
                f.world.offered.clone()
            }
        })
    }

    fn agreement(&mut self) -> String {
        self.or_s(|f| f.world.agreement.clone())
    }

    fn transfer(&mut self) -> String {
        self.or_s(|f| f.world.transfer.clone())
    }

    fn origin(&mut self) -> String {
        self.or_s(|f| f.origin.to_string())
    }

    fn receiver(&mut self) -> String {
        self.or_s(|f| f.receiver.to_string())
    }

    fn date(&mut self) -> String {
        self.or_s(|f| {
            let offset = (f.n() % 200) as i64 - 100;
            day(offset)
        })
    }

    fn one_of(&mut self) -> String {
        self.or_s(|f| {
            let at = f.n() as usize % ENUMERATIONS.len();
            ENUMERATIONS[at].to_string()
        })
    }

    fn version(&mut self) -> Option<pb::Version> {
        (self.fields.coherent || self.b()).then(|| pb::Version {
            generation: self.n(),
            counter: self.n(),
        })
    }

    fn outflow(&mut self) -> pb::Outflow {
        pb::Outflow {
            outflow_id: self.s(),
            destination_place: self.s(),
            destination_node: self.receiver(),
            departed_on: self.date(),
            ..Default::default()
        }
    }

    fn home_section(&mut self) -> pb::HomeSection {
        pb::HomeSection {
            member_id: self.member(),
            version: self.version(),
            owner: self.origin(),
            name: self.s(),
            basis: self.agreement(),
            contact_status: self.one_of(),
            outflow: self.b().then(|| self.outflow()),
            ..Default::default()
        }
    }

    fn host_section(&mut self) -> pb::HostSection {
        pb::HostSection {
            member_id: self.member(),
            version: self.version(),
            author: self.origin(),
            host_branch: self.s(),
            reported_on: self.date(),
            basis: self.agreement(),
            ..Default::default()
        }
    }

    fn contact(&mut self) -> pb::ContactEvent {
        pb::ContactEvent {
            contact_id: self.s(),
            member_id: self.member(),
            author: self.origin(),
            at: self.date(),
            channel: self.one_of(),
            basis: self.agreement(),
            ..Default::default()
        }
    }

    fn activity(&mut self) -> pb::ActivityRecord {
        pb::ActivityRecord {
            activity_id: self.s(),
            member_id: self.member(),
            author: self.origin(),
            kind: self.s(),
            date: self.date(),
            hours: self.n() as f64,
            basis: self.agreement(),
            ..Default::default()
        }
    }

    /// Terms between the origin and the receiver, either coordinating.
    fn terms(&mut self) -> pb::AgreementTerms {
        let (outflow_node, inflow_node) = if self.b() {
            (self.origin(), self.receiver())
        } else {
            (self.receiver(), self.origin())
        };
        pb::AgreementTerms {
            number: self.s(),
            outflow_node,
            inflow_node,
            effective_from: self.date(),
            effective_until: self.date(),
            scope_kind: self.one_of(),
            scope_members: vec![self.member()],
            dues_collector: self.s(),
            ..Default::default()
        }
    }

    fn signature(&mut self) -> pb::AgreementSignature {
        pb::AgreementSignature {
            signer: self.origin(),
            version: self.n(),
            terms_hash: self.s().into_bytes(),
            signature: self.s().into_bytes(),
            certificate: self.s().into_bytes(),
        }
    }

    fn agreement_version(&mut self) -> pb::AgreementVersion {
        pb::AgreementVersion {
            agreement_id: self.agreement(),
            version: self.n(),
            terms: (self.fields.coherent || self.b()).then(|| self.terms()),
            signatures: if self.b() {
                vec![self.signature()]
            } else {
                vec![]
            },
        }
    }

    fn record(&mut self) -> pb::MemberRecord {
        pb::MemberRecord {
            member_id: self.member(),
            version: self.version(),
            name: self.s(),
            gender: self.s(),
            birth_date: self.date(),
            national_id: self.s(),
            party_status: self.s(),
            joined_on: self.date(),
            home_branch_name: self.s(),
            outflows: if self.b() {
                vec![self.outflow()]
            } else {
                vec![]
            },
            host_sections: if self.b() {
                vec![self.host_section()]
            } else {
                vec![]
            },
            contacts: if self.b() {
                vec![self.contact()]
            } else {
                vec![]
            },
            activities: if self.b() {
                vec![self.activity()]
            } else {
                vec![]
            },
            ..Default::default()
        }
    }

    /// The payload of an event of `kind`, as its message with generated
    /// fields.
    fn payload(&mut self, kind: EventKind) -> Vec<u8> {
        use EventKind as K;
        match kind {
            K::HomeSection => self.home_section().encode_to_vec(),
            K::HostSection => self.host_section().encode_to_vec(),
            K::Contact => self.contact().encode_to_vec(),
            K::Activity => self.activity().encode_to_vec(),
            K::Unshare => pb::Unshare {
                member_id: self.member(),
                version: self.version(),
                reason: self.s(),
                letter_no: self.s(),
                transfer_id: self.s(),
            }
            .encode_to_vec(),
            K::ShareWanted => pb::ShareWanted {
                member_id: self.member(),
                basis: self.agreement(),
                version: self.version(),
            }
            .encode_to_vec(),
            K::AgreementVersion => self.agreement_version().encode_to_vec(),
            K::AgreementVote => pb::AgreementVote {
                agreement_id: self.agreement(),
                vote: self.one_of(),
                answers_version: self.n(),
                terms: self.b().then(|| self.terms()),
                signature: (self.fields.coherent || self.b()).then(|| self.signature()),
                answered: self.b().then(|| self.agreement_version()),
            }
            .encode_to_vec(),
            K::AgreementActivated
            | K::AgreementEnded
            | K::AgreementEndApplied
            | K::CopiesDropped => pb::AgreementState {
                agreement_id: self.agreement(),
                version: self.n(),
                state: self.one_of(),
                reason: self.s(),
                by: self.origin(),
            }
            .encode_to_vec(),
            K::TransferOffer => pb::TransferOffer {
                transfer_id: self.transfer(),
                letter_no: self.s(),
                sender: self.origin(),
                receiver: self.receiver(),
                issued_on: self.date(),
                expires_on: self.date(),
                valid_days: self.n() as u32,
                reason: self.s(),
                record: (self.fields.coherent || self.b()).then(|| self.record()),
                extension: self.b(),
            }
            .encode_to_vec(),
            K::TransferAccept | K::TransferReject => pb::TransferVote {
                transfer_id: self.transfer(),
                vote: self.one_of(),
                branch: self.s(),
                reason_code: self.s(),
                reason: self.s(),
                already_received: self.b(),
            }
            .encode_to_vec(),
            K::TransferRelease => pb::TransferRelease {
                transfer_id: self.transfer(),
                letter_no: self.s(),
                sender: self.origin(),
                receiver: self.receiver(),
                generation: self.n(),
                record: (self.fields.coherent || self.b()).then(|| self.record()),
                released_on: self.date(),
                earlier_owners: vec![self.s(), self.origin()],
            }
            .encode_to_vec(),
            K::TransferAbort => pb::TransferAbort {
                transfer_id: self.transfer(),
                letter_no: self.s(),
                why: self.one_of(),
            }
            .encode_to_vec(),
            K::TransferReceipt => pb::TransferReceipt {
                transfer_id: self.transfer(),
                letter_no: self.s(),
                received_on: self.date(),
            }
            .encode_to_vec(),
            K::Moved => pb::Moved {
                member_id: self.member(),
                generation: self.n(),
                new_owner: self.s(),
                transfer_id: self.transfer(),
                letter_no: self.s(),
            }
            .encode_to_vec(),
            K::EpochComplete => pb::EpochComplete {
                log_id: self.s(),
                re_sent: self.n(),
                branch: vec![pb::LogCursor {
                    log_id: self.s(),
                    seq: self.n(),
                }],
            }
            .encode_to_vec(),
            K::Unspecified => self.s().into_bytes(),
        }
    }
}

/// Every event kind there is.
const KINDS: &[EventKind] = &[
    EventKind::Unspecified,
    EventKind::HomeSection,
    EventKind::HostSection,
    EventKind::Contact,
    EventKind::Activity,
    EventKind::Unshare,
    EventKind::ShareWanted,
    EventKind::AgreementVersion,
    EventKind::AgreementVote,
    EventKind::AgreementActivated,
    EventKind::AgreementEnded,
    EventKind::AgreementEndApplied,
    EventKind::CopiesDropped,
    EventKind::TransferOffer,
    EventKind::TransferAccept,
    EventKind::TransferReject,
    EventKind::TransferRelease,
    EventKind::TransferAbort,
    EventKind::TransferReceipt,
    EventKind::Moved,
    EventKind::EpochComplete,
];

/// One generated event, before it is resolved against a world.
#[derive(Debug, Clone)]
enum Gen {
    /// A message of its kind, its fields generated; its entity the member,
    /// agreement or transfer the payload names first, or another word.
    Message {
        kind: usize,
        entity: Option<Word>,
        fields: Fields,
    },
    /// An honest event of the world's, its payload cut short and one byte
    /// changed.
    Mutated {
        honest: usize,
        cut: usize,
        at: usize,
        byte: u8,
    },
}

fn gen_event() -> impl Strategy<Value = (u64, Gen)> {
    let gen = prop_oneof![
        4 => (0..KINDS.len(), prop::option::weighted(0.3, word()), fields()).prop_map(
            |(kind, entity, fields)| Gen::Message {
                kind,
                entity,
                fields,
            }
        ),
        1 => (any::<usize>(), any::<usize>(), any::<usize>(), any::<u8>()).prop_map(
            |(honest, cut, at, byte)| Gen::Mutated { honest, cut, at, byte }
        ),
    ];
    (seq(), gen)
}

/// A seq: small ones mostly, in any order, repeated, and the extremes.
fn seq() -> impl Strategy<Value = u64> {
    prop_oneof![
        8 => 0u64..40,
        1 => Just(i64::MAX as u64),
        1 => any::<u64>(),
    ]
}

/// The entity an honest node appends a message under: the member, the
/// agreement or the transfer it is about.
fn entity_of(kind: EventKind, payload: &[u8]) -> String {
    use EventKind as K;
    let decoded = match kind {
        K::HomeSection => pb::HomeSection::decode(payload).map(|m| m.member_id),
        K::HostSection => pb::HostSection::decode(payload).map(|m| m.member_id),
        K::Contact => pb::ContactEvent::decode(payload).map(|m| m.member_id),
        K::Activity => pb::ActivityRecord::decode(payload).map(|m| m.member_id),
        K::Unshare => pb::Unshare::decode(payload).map(|m| m.member_id),
        K::Moved => pb::Moved::decode(payload).map(|m| m.member_id),
        K::ShareWanted => pb::ShareWanted::decode(payload).map(|m| m.member_id),
        K::AgreementVersion => pb::AgreementVersion::decode(payload).map(|m| m.agreement_id),
        K::AgreementVote => pb::AgreementVote::decode(payload).map(|m| m.agreement_id),
        K::AgreementActivated | K::AgreementEnded | K::AgreementEndApplied | K::CopiesDropped => {
            pb::AgreementState::decode(payload).map(|m| m.agreement_id)
        }
        K::TransferOffer => pb::TransferOffer::decode(payload).map(|m| m.transfer_id),
        K::TransferAccept | K::TransferReject => {
            pb::TransferVote::decode(payload).map(|m| m.transfer_id)
        }
        K::TransferRelease => pb::TransferRelease::decode(payload).map(|m| m.transfer_id),
        K::TransferAbort => pb::TransferAbort::decode(payload).map(|m| m.transfer_id),
        K::TransferReceipt => pb::TransferReceipt::decode(payload).map(|m| m.transfer_id),
        K::EpochComplete => pb::EpochComplete::decode(payload).map(|m| m.log_id),
        K::Unspecified => Ok(String::new()),
    };
    decoded.unwrap_or_default()
}

/// The event `gen` describes, at `seq`, from `origin` to `receiver`.
fn resolve(world: &World, (origin, receiver): (&str, &str), seq: u64, gen: &Gen) -> pb::Event {
    match gen {
        Gen::Message {
            kind,
            entity,
            fields,
        } => {
            let mut filler = Filler {
                world,
                origin,
                receiver,
                fields,
                word: 0,
                number: 0,
                flag: 0,
            };
            let kind = KINDS[*kind];
            let payload = filler.payload(kind);
            let entity = match entity {
                Some(entity) => Filler {
                    world,
                    origin,
                    receiver,
                    fields: &Fields {
                        coherent: false,
                        words: vec![entity.clone()],
                        numbers: vec![0],
                        flags: vec![false],
                    },
                    word: 0,
                    number: 0,
                    flag: 0,
                }
                .s(),
                None => entity_of(kind, &payload),
            };
            pb::Event {
                seq,
                kind: kind as i32,
                entity,
                payload,
                created_at_ms: 0,
            }
        }
        Gen::Mutated {
            honest,
            cut,
            at,
            byte,
        } => {
            let mut event = world.honest[honest % world.honest.len()].clone();
            let len = event.payload.len();
            event.payload.truncate(len - cut % (len / 4 + 1));
            if !event.payload.is_empty() {
                let at = at % event.payload.len();
                event.payload[at] ^= byte;
            }
            event.seq = seq;
            event
        }
    }
}

/// Applies `events` from `origin` at `receiver` under `log_id` and checks
/// what any batch comes to: every event applied, skipped or quarantined and
/// the cursor past them, or nothing of the batch committed; and the same
/// batch again changes nothing.
fn check_batch(
    receiver: &TestNode,
    origin: &TestNode,
    log_id: &str,
    events: &[pb::Event],
) -> Result<(), TestCaseError> {
    let cursor = |node: &TestNode| {
        node.store
            .with(|c| log::cursor(c, &origin.id, log_id))
            .unwrap()
    };
    let quarantined = |node: &TestNode| {
        node.tx(|c, _| crate::quarantine::list(c, true))
            .unwrap()
            .len() as u64
    };
    let before = cursor(receiver);
    let held_before = quarantined(receiver);
    let apply = || {
        receiver
            .store
            .with(|c| Ok(apply_batch(c, &receiver.ctx(), &origin.id, log_id, events)))
            .unwrap()
    };
    match apply() {
        Ok(report) => {
            prop_assert_eq!(
                report.applied + report.skipped + report.quarantined,
                events.len() as u64,
                "{:?}",
                report
            );
            prop_assert_eq!(cursor(receiver), report.cursor);
            prop_assert!(report.cursor >= before);
            prop_assert!(events.iter().all(|e| e.seq <= report.cursor));
            prop_assert_eq!(quarantined(receiver), held_before + report.quarantined);
            let again = apply().map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(
                (again.applied, again.quarantined, again.skipped),
                (0, 0, events.len() as u64)
            );
        }
        // A decision that cannot be applied, an origin not adopted yet, or
        // a fault of the core's:
        // nothing of the batch is committed.
        Err(
            BatchError::Stopped { .. }
            | BatchError::NotAdopted { .. }
            | BatchError::NotRetaken { .. }
            | BatchError::Core(_),
        ) => {
            prop_assert_eq!(cursor(receiver), before);
            prop_assert_eq!(quarantined(receiver), held_before);
        }
    }
    Ok(())
}

/// (receiver, origin, log id of the origin's real log or another).
fn parties() -> impl Strategy<Value = (usize, usize, bool)> {
    (0usize..2, 0usize..2, any::<bool>())
}

/// The receiver (Pingliang or Lanzhou), an origin other than it, and the
/// log id the batch comes under.
fn pick(
    world: &World,
    (receiver, origin, real_log): (usize, usize, bool),
) -> (&TestNode, &TestNode, String) {
    let receiver = [&world.pingliang, &world.lanzhou][receiver];
    let others: Vec<&TestNode> = [&world.pingliang, &world.lanzhou, &world.xian]
        .into_iter()
        .filter(|n| n.id != receiver.id)
        .collect();
    let origin = others[origin];
    let log_id = if real_log {
        origin.store.log_id().unwrap()
    } else {
        "another-log".to_string()
    };
    (receiver, origin, log_id)
}

proptest! {
    #![proptest_config(config())]

    /// Messages of every kind with fields that name the world's members,
    /// agreement, transfer and nodes (or anything), and honest events
    /// mutated, in batches with any seqs.
    #[test]
    fn apply_batch_survives_arbitrary_events(
        parties in parties(),
        batch in prop::collection::vec(gen_event(), 1..12),
    ) {
        let world = world();
        let (receiver, origin, log_id) = pick(&world, parties);
        let events: Vec<pb::Event> = batch
            .iter()
            .map(|(seq, gen)| resolve(&world, (origin.id.as_str(), receiver.id.as_str()), *seq, gen))
            .collect();
        check_batch(receiver, origin, &log_id, &events)?;
    }

    /// Any kind number, entity and payload bytes.
    #[test]
    fn apply_batch_survives_arbitrary_bytes(
        parties in parties(),
        batch in prop::collection::vec(
            (seq(), prop_oneof![0i32..30, any::<i32>()], ".{0,40}", prop::collection::vec(any::<u8>(), 0..200)),
            1..12,
        ),
    ) {
        let world = world();
        let (receiver, origin, log_id) = pick(&world, parties);
        let events: Vec<pb::Event> = batch
            .into_iter()
            .map(|(seq, kind, entity, payload)| pb::Event {
                seq,
                kind,
                entity,
                payload,
                created_at_ms: 0,
            })
            .collect();
        check_batch(receiver, origin, &log_id, &events)?;
    }

    /// Any bytes as the roster file.
    #[test]
    fn import_survives_arbitrary_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..400),
        update in any::<bool>(),
    ) {
        check_import(&bytes, update)?;
    }

    /// CSV text, in UTF-8 or GBK, with a title or not, known headers
    /// (English and Chinese, repeated or missing) and cells of every
    /// shape: quoted, with separators and line breaks inside, dates, yes
    /// and no, BOMs, nothing; imported as new members or as an update.
    #[test]
    fn import_survives_arbitrary_rows(
        bom in any::<bool>(),
        gbk in any::<bool>(),
        title in any::<bool>(),
        update in any::<bool>(),
        headers in prop::collection::vec(header(), 0..10),
        rows in prop::collection::vec(prop::collection::vec(cell(), 0..12), 0..6),
        separator in prop_oneof![Just("\n"), Just("\r\n"), Just("\r")],
    ) {
        let mut text = String::new();
        if bom && !gbk {
            text.push('\u{feff}');
        }
        if title {
            text.push_str("平凉市流动党员花名册");
            text.push_str(separator);
        }
        text.push_str(&headers.join(","));
        for row in &rows {
            text.push_str(separator);
            text.push_str(&row.join(","));
        }
        let bytes = if gbk {
            encoding_rs::GBK.encode(&text).0.into_owned()
        } else {
            text.into_bytes()
        };
        check_import(&bytes, update)?;
    }
}

fn header() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "member_id", "name", "gender", "birth_date", "national_id", "party_status",
            "joined_on", "home_branch", "phone", "membership_state", "destination_place",
            "destination_node", "departed_on", "expected_return", "fixed_location",
            "姓名", "性别", "出生日期", "所在支部", "党员类别", "去向地代码", "固定地点",
            "身份证号", "序号", "备注", "姓　名", "去向地", "外出日期",
            "\u{feff}name", " 姓名 ", "NAME",
        ])
        .prop_map(str::to_string),
        1 => ".{0,8}",
    ]
}

fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        prop::sample::select(vec![
            "张三",
            "男",
            "女",
            "1990-05-17",
            "2012-07-01",
            "b1",
            "正式",
            "预备",
            "620102",
            "620801199005170014",
            "13800000000",
            "yes",
            "否",
            "是",
            "lanzhou",
            "normal",
            "0190a000-0000-7000-8000-000000000001",
            "\"",
            "\"\"",
            "\"a,b\"",
            "\"a\nb\"",
            "2026-02-30",
            "2026年3月1日",
            "1990/5/17",
            "6.20801E+17",
            "崆峒区第一支部",
            "兰州市城关区",
            "兰州 (6201)",
            "99999-01-01",
            "\u{feff}",
        ])
        .prop_map(str::to_string),
        ".{0,10}",
    ]
}

/// Imports `bytes` at a node with a branch `b1` and checks the outcome:
/// a file refused whole changes nothing; otherwise every row counted is
/// imported or skipped with a problem named, and a bad row leaves nothing.
fn check_import(bytes: &[u8], update: bool) -> Result<(), TestCaseError> {
    let node = TestNode::new("pingliang");
    node.tx(|c, ctx| {
        members::org_add(
            c,
            ctx,
            &pb::Org {
                org_id: "b1".into(),
                name: "崆峒区第一支部".into(),
                level: "branch".into(),
                ..Default::default()
            },
        )
    })
    .unwrap();
    let owned = |node: &TestNode| -> u64 {
        node.store
            .with(|c| Ok(c.query_row("SELECT COUNT(*) FROM members", [], |r| r.get(0))?))
            .unwrap()
    };
    match node.tx(|c, ctx| import::import_csv(c, ctx, bytes, update)) {
        Ok(outcome) => {
            let bad_rows: std::collections::BTreeSet<u64> =
                outcome.problems.iter().map(|p| p.row).collect();
            prop_assert_eq!(bad_rows.len() as u64, outcome.skipped);
            prop_assert!(outcome.problems.iter().all(|p| !p.message.is_empty()));
            prop_assert!(owned(&node) <= outcome.added);
        }
        Err(Error::Refused(_)) => prop_assert_eq!(owned(&node), 0),
        Err(e) => prop_assert!(false, "not a refusal: {e}"),
    }
    Ok(())
}
