//! Identity and trust on the federation port (docs/authority.md): the `Hello`
//! handshake between two nodes, and every refusal, each with the caller's
//! error and the refusing side's audit entry.

use liaison_proto::{PROTOCOL_VERSION, PROTOCOL_VERSION_MIN};
use liaison_tests::*;
use tonic::Code;

/// An endpoint where nothing listens: a peer entry needs one, and a test
/// that only calls in does not care that the node's own pulls fail.
const NOWHERE: &str = "https://127.0.0.1:1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_peered_nodes_complete_hello_and_learn_each_others_name_and_version() {
    let fed = Federation::new("handshake");
    let a = fed.node("pingliang").await;
    let b = fed.node("lanzhou").await;
    let before_ms = now_ms();

    let added = a.peer(&b);
    assert_eq!(added.node_id, "lanzhou");
    assert_eq!(added.display_name, "兰州");
    assert_eq!(added.endpoint, b.endpoint());
    assert_eq!(added.state, "active");
    b.peer(&a);
    fed.wait_linked(&a, &b).await;

    for (node, other) in [(&a, &b), (&b, &a)] {
        let peer = node.peer_info(&other.node_id).expect("listed");
        let context = format!("{}'s view of {}: {peer:?}", node.node_id, other.node_id);
        assert!(peer.outbound_up && peer.inbound_up, "{context}");
        assert_eq!(peer.remote_display_name, other.display_name, "{context}");
        assert_eq!(peer.remote_protocol_version, PROTOCOL_VERSION, "{context}");
        assert_eq!(
            peer.remote_software_version,
            liaison_node::SOFTWARE_VERSION,
            "{context}"
        );
        assert!(
            peer.last_contact_ms >= before_ms && peer.last_contact_ms <= now_ms(),
            "{context}"
        );
        assert_eq!(peer.last_error, "", "{context}");
        assert_eq!(peer.next_attempt_ms, 0, "{context}");
        let status = node.status().await;
        assert_eq!(
            (status.peers_up, status.peers_total),
            (1, 1),
            "{}: {status:?}",
            node.node_id
        );
    }

    // The server's side of Hello, as a peer's client sees it: the node id
    // comes from the server, and matches the certificate the client checked.
    let hello = call_hello(
        &a.endpoint(),
        fed.client_tls(&b.certs(), "pingliang"),
        hello_request("兰州"),
    )
    .await
    .unwrap_or_else(|e| panic!("Hello from a peer: {e}"));
    let status = a.status().await;
    assert_eq!(hello.node_id, "pingliang");
    assert_eq!(hello.display_name, "平凉");
    assert_eq!(hello.protocol_version, PROTOCOL_VERSION);
    assert_eq!(hello.software_version, liaison_node::SOFTWARE_VERSION);
    assert_eq!(hello.log_id, status.log_id);
    assert!(!hello.log_id.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_without_a_certificate_is_refused_at_the_tls_handshake_and_audited() {
    let fed = Federation::new("no-cert");
    let a = fed.node("pingliang").await;

    let seen = tls_refusal(&a.endpoint(), fed.anonymous_tls()).await;
    assert!(seen.contains("CertificateRequired"), "client saw: {seen}");
    let entry = a
        .wait_audit("refused connection without a certificate", |e| {
            e.action == "federation.connect" && e.outcome == "refused"
        })
        .await;
    assert_eq!(
        entry.detail, "no client certificate presented (1 address refused this minute)",
        "{entry:?}"
    );
    assert!(entry.actor.starts_with("remote:127.0.0.1:"), "{entry:?}");
    assert_eq!(entry.actor, format!("remote:{}", entry.target), "{entry:?}");

    // Over gRPC the call never reaches a service.
    let error = call_hello(
        &a.endpoint(),
        fed.anonymous_tls(),
        hello_request("anonymous"),
    )
    .await
    .expect_err("a client without a certificate must be refused");
    assert!(failed_below_grpc(&error), "{error}");
    assert!(
        a.pending().is_empty(),
        "an anonymous caller has no node id to list"
    );
    assert!(
        !a.audit().iter().any(|e| e.action == "federation.call"),
        "no call reached the service"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_from_another_ca_is_refused_at_the_tls_handshake_and_audited() {
    let fed = Federation::new("other-ca");
    let a = fed.node("pingliang").await;
    // The certificates below claim the id of a real peer of pingliang.
    a.ctl_ok(&["peer", "add", "lanzhou", "--endpoint", NOWHERE]);

    // An impostor CA that calls itself "gansu" too, and a CA of another federation.
    let impostor = Federation::new("impostor-ca");
    let other = Federation::named("other-federation", "shaanxi");
    for (label, rogue, alert) in [
        ("impostor CA of the same name", &impostor, "DecryptError"),
        ("CA of another federation", &other, "UnknownCA"),
    ] {
        let audited_before = a.audit().len();
        let tls = fed.client_tls(&rogue.issue("lanzhou"), "pingliang");
        let seen = tls_refusal(&a.endpoint(), tls.clone()).await;
        assert!(seen.contains(alert), "{label}: client saw: {seen}");
        let entry = a
            .wait_audit(
                &format!("refused connection with a certificate from an {label}"),
                |e| e.seq as usize > audited_before && e.action == "federation.connect",
            )
            .await;
        assert_eq!(entry.outcome, "refused", "{label}: {entry:?}");
        assert!(
            entry.detail.contains("not issued by this federation's CA"),
            "{label}: {entry:?}"
        );
        assert!(
            entry.actor.starts_with("remote:127.0.0.1:"),
            "{label}: {entry:?}"
        );

        let error = call_hello(&a.endpoint(), tls, hello_request("兰州"))
            .await
            .expect_err("a certificate from another CA must be refused");
        assert!(failed_below_grpc(&error), "{label}: {error}");
    }
    assert!(
        a.pending().is_empty(),
        "a refused certificate names no node"
    );
    assert!(
        !a.audit().iter().any(|e| e.action == "federation.call"),
        "no call reached the service"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_with_a_valid_certificate_that_is_not_a_peer_is_permission_denied_listed_pending_and_audited(
) {
    let fed = Federation::new("not-a-peer");
    let a = fed.node("pingliang").await;
    let c = fed.node("tianshui").await;
    let tls = fed.client_tls(&c.certs(), "pingliang");

    let error = call_hello(&a.endpoint(), tls.clone(), hello_request("天水"))
        .await
        .expect_err("a node that is not a peer must be refused");
    assert_eq!(error.code, Some(Code::PermissionDenied), "{error}");
    assert!(
        error
            .message
            .contains("tianshui is not a peer of pingliang"),
        "{error}"
    );
    assert!(
        error.message.contains("liaisonctl peer add tianshui"),
        "says what to do: {error}"
    );
    let error = call_pull(&a.endpoint(), tls.clone())
        .await
        .expect_err("Pull from a node that is not a peer must be refused");
    assert_eq!(error.code, Some(Code::PermissionDenied), "{error}");

    let entry = a
        .wait_audit("refused call of tianshui", |e| e.actor == "peer:tianshui")
        .await;
    assert_eq!(entry.action, "federation.call", "{entry:?}");
    assert_eq!(entry.outcome, "refused", "{entry:?}");
    assert_eq!(entry.target, "tianshui", "{entry:?}");
    assert!(entry.detail.contains("not a peer"), "{entry:?}");

    // The real node calls too, and shows its operator why it is refused.
    c.peer(&a);
    let seen = c
        .wait_peer("pingliang", "refused as not a peer", |p| {
            p.last_error.contains("PermissionDenied")
                && p.last_error.contains("not a peer of pingliang")
        })
        .await;
    assert!(!seen.outbound_up, "{seen:?}");
    c.wait_audit("the refused pull", |e| {
        e.is("federation.pull", "error", "not a peer of pingliang") && e.actor == "node"
    })
    .await;

    // pingliang's operator sees who knocked, and where it says it listens.
    let pending = a
        .wait_for(
            DEFAULT_WAIT,
            "tianshui pending with its endpoint",
            async || {
                a.pending()
                    .into_iter()
                    .find(|p| p.node_id == "tianshui" && p.endpoint == c.endpoint())
            },
        )
        .await;
    assert_eq!(pending.fingerprint, c.certs().fingerprint(), "{pending:?}");
    assert!(pending.remote_addr.starts_with("127.0.0.1:"), "{pending:?}");
    assert!(
        pending.attempts >= 3,
        "two raw calls and the node's: {pending:?}"
    );
    assert!(
        pending.first_attempt_ms <= pending.last_attempt_ms,
        "{pending:?}"
    );
    assert!(!pending.ignored);
    // The table form names the columns an operator needs.
    let table = a.ctl_ok(&["peer", "list", "--pending"]);
    for column in [
        "NODE",
        "ENDPOINT",
        "FIRST ATTEMPT",
        "LAST ATTEMPT",
        "tianshui",
    ] {
        assert!(table.contains(column), "{column} missing:\n{table}");
    }

    // Admitting it ends the refusals: the entry leaves the pending list and the link comes up.
    a.peer(&c);
    assert!(
        a.pending().is_empty(),
        "admitted node still pending: {:?}",
        a.pending()
    );
    fed.wait_linked(&a, &c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_pending_node_stays_refused_and_unlisted() {
    let fed = Federation::new("ignore");
    let a = fed.node("pingliang").await;
    let tls = fed.client_tls(&fed.issue("tianshui"), "pingliang");
    let error = call_hello(&a.endpoint(), tls.clone(), hello_request("天水"))
        .await
        .expect_err("refused");
    assert_eq!(error.code, Some(Code::PermissionDenied), "{error}");
    assert_eq!(a.pending().len(), 1);

    let ignored: Vec<PendingView> = a.ctl_records("pending_peer", &["peer", "ignore", "tianshui"]);
    assert!(ignored[0].ignored, "{ignored:?}");
    assert!(
        a.pending().is_empty(),
        "ignored node still listed: {:?}",
        a.pending()
    );
    let error = call_hello(&a.endpoint(), tls, hello_request("天水"))
        .await
        .expect_err("still refused");
    assert_eq!(error.code, Some(Code::PermissionDenied), "{error}");
    assert!(
        a.pending().is_empty(),
        "ignored node listed again: {:?}",
        a.pending()
    );
    let user = current_user();
    assert!(
        a.audit().iter().any(|e| e.action == "peer.ignore"
            && e.actor == format!("operator:{user}")
            && e.outcome == "ok"),
        "peer ignore is audited"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_and_removed_peers_are_permission_denied_and_audited() {
    let fed = Federation::new("paused-removed");
    let a = fed.node("pingliang").await;
    a.ctl_ok(&["peer", "add", "lanzhou", "--endpoint", NOWHERE]);
    let tls = fed.client_tls(&fed.issue("lanzhou"), "pingliang");

    // Active: admitted.
    let hello = call_hello(&a.endpoint(), tls.clone(), hello_request("兰州"))
        .await
        .unwrap_or_else(|e| panic!("an active peer is admitted: {e}"));
    assert_eq!(hello.node_id, "pingliang");
    call_pull(&a.endpoint(), tls.clone())
        .await
        .unwrap_or_else(|e| panic!("an active peer may pull: {e}"));

    // Paused: refused, with the way out named.
    a.ctl_ok(&["peer", "pause", "lanzhou"]);
    let error = call_hello(&a.endpoint(), tls.clone(), hello_request("兰州"))
        .await
        .expect_err("a paused peer must be refused");
    assert_eq!(error.code, Some(Code::PermissionDenied), "{error}");
    assert!(
        error.message.contains("lanzhou is paused at pingliang"),
        "{error}"
    );
    assert!(error.message.contains("peer resume lanzhou"), "{error}");
    let error = call_pull(&a.endpoint(), tls.clone())
        .await
        .expect_err("a paused peer may not pull");
    assert_eq!(error.code, Some(Code::PermissionDenied), "{error}");
    let entry = a
        .wait_audit("refused call of the paused peer", |e| {
            e.actor == "peer:lanzhou" && e.is("federation.call", "refused", "paused")
        })
        .await;
    assert_eq!(entry.target, "lanzhou");
    assert!(
        a.pending().is_empty(),
        "a paused peer is still a peer, not pending"
    );

    // Resumed: admitted again.
    a.ctl_ok(&["peer", "resume", "lanzhou"]);
    call_hello(&a.endpoint(), tls.clone(), hello_request("兰州"))
        .await
        .unwrap_or_else(|e| panic!("a resumed peer is admitted: {e}"));

    // Removed: a stranger again.
    a.ctl_ok(&["peer", "remove", "lanzhou"]);
    let error = call_hello(&a.endpoint(), tls.clone(), hello_request("兰州"))
        .await
        .expect_err("a removed peer must be refused");
    assert_eq!(error.code, Some(Code::PermissionDenied), "{error}");
    assert!(
        error.message.contains("lanzhou is not a peer of pingliang"),
        "{error}"
    );
    a.wait_audit("refused call of the removed peer", |e| {
        e.actor == "peer:lanzhou" && e.is("federation.call", "refused", "not a peer")
    })
    .await;
    assert_eq!(
        a.pending()
            .iter()
            .map(|p| p.node_id.as_str())
            .collect::<Vec<_>>(),
        ["lanzhou"],
        "a removed peer that calls is pending again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_whose_certificate_names_another_node_is_refused_by_the_caller_and_audited() {
    let fed = Federation::new("wrong-server");
    let a = fed.node("pingliang").await;
    let x = fed.node("xian").await;

    // pingliang's operator means lanzhou, but the endpoint reaches xian.
    a.ctl_ok(&["peer", "add", "lanzhou", "--endpoint", &x.endpoint()]);
    let seen = a
        .wait_peer("lanzhou", "server identity mismatch reported", |p| {
            p.last_error
                .contains("server certificate names node `xian`, expected `lanzhou`")
        })
        .await;
    assert!(!seen.outbound_up, "{seen:?}");
    let entry = a
        .wait_audit("the refused server", |e| {
            e.action == "federation.pull" && e.target == "lanzhou"
        })
        .await;
    assert_eq!(entry.actor, "node", "{entry:?}");
    assert_eq!(entry.outcome, "error", "{entry:?}");
    assert!(entry.detail.contains("names node `xian`"), "{entry:?}");

    // The client gave up inside the TLS handshake: xian never heard a call.
    let xian_audit = x.audit();
    assert!(
        !xian_audit.iter().any(|e| e.action == "federation.call"),
        "{xian_audit:?}"
    );
    assert!(
        x.pending().is_empty(),
        "pingliang never got to Hello: {:?}",
        x.pending()
    );

    // The same check in a bare client.
    let error = call_hello(
        &x.endpoint(),
        fed.client_tls(&a.certs(), "lanzhou"),
        hello_request("平凉"),
    )
    .await
    .expect_err("a server with another node's certificate must be refused");
    assert_eq!(error.code, None, "refused before any call: {error}");
    assert!(
        error
            .message
            .contains("server certificate names node `xian`, expected `lanzhou`"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_with_a_protocol_version_older_than_the_minimum_is_failed_precondition_naming_both_versions(
) {
    let fed = Federation::new("old-protocol");
    let a = fed.node("pingliang").await;
    a.ctl_ok(&["peer", "add", "lanzhou", "--endpoint", NOWHERE]);
    let tls = fed.client_tls(&fed.issue("lanzhou"), "pingliang");

    let too_old = PROTOCOL_VERSION_MIN - 1;
    let error = call_hello(
        &a.endpoint(),
        tls.clone(),
        pb::HelloRequest {
            protocol_version: too_old,
            ..hello_request("兰州")
        },
    )
    .await
    .expect_err("a protocol version older than the minimum must be refused");
    assert_eq!(error.code, Some(Code::FailedPrecondition), "{error}");
    assert!(
        error
            .message
            .contains(&format!("protocol version {too_old} ")),
        "names the caller's version: {error}"
    );
    assert!(
        error
            .message
            .contains(&format!("speaks version {PROTOCOL_VERSION}")),
        "names the server's version: {error}"
    );
    assert!(
        error
            .message
            .contains(&format!("accepts {PROTOCOL_VERSION_MIN} or newer")),
        "names the oldest accepted: {error}"
    );
    a.wait_audit("refused old protocol", |e| {
        e.actor == "peer:lanzhou" && e.is("federation.call", "refused", "too old")
    })
    .await;

    // Adjacent versions interoperate: the oldest accepted and one ahead of ours.
    for version in [PROTOCOL_VERSION_MIN, PROTOCOL_VERSION, PROTOCOL_VERSION + 1] {
        let hello = call_hello(
            &a.endpoint(),
            tls.clone(),
            pb::HelloRequest {
                protocol_version: version,
                ..hello_request("兰州")
            },
        )
        .await
        .unwrap_or_else(|e| panic!("protocol version {version} must be accepted: {e}"));
        assert_eq!(hello.protocol_version, PROTOCOL_VERSION);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_are_served_on_the_federation_port_over_mutual_tls() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let fed = Federation::new("health");
    let a = fed.node("pingliang").await;
    a.ctl_ok(&["peer", "add", "lanzhou", "--endpoint", NOWHERE]);
    let tls = fed.client_tls(&fed.issue("lanzhou"), "pingliang");
    let channel = channel(&a.endpoint(), tls)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));

    let mut health = HealthClient::new(channel.clone());
    for service in ["", "liaison.v1.Federation"] {
        let response = timed(
            "health check",
            health.check(HealthCheckRequest {
                service: service.to_owned(),
            }),
        )
        .await
        .unwrap_or_else(|s| panic!("health check of `{service}`: {s}"))
        .into_inner();
        assert_eq!(
            response.status,
            ServingStatus::Serving as i32,
            "service `{service}`"
        );
    }

    let mut reflection = ServerReflectionClient::new(channel.clone());
    let ask = |message: MessageRequest| {
        tokio_stream::iter([ServerReflectionRequest {
            host: String::new(),
            message_request: Some(message),
        }])
    };
    let mut answers = timed(
        "reflection",
        reflection.server_reflection_info(ask(MessageRequest::ListServices(String::new()))),
    )
    .await
    .unwrap_or_else(|s| panic!("reflection: {s}"))
    .into_inner();
    let answer = timed("reflection answer", answers.message())
        .await
        .unwrap_or_else(|s| panic!("reflection answer: {s}"))
        .expect("one answer");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("not a list of services: {answer:?}");
    };
    let mut services: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    services.sort();
    // Exactly what this port serves: the operators' service is not here.
    let served = [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        "liaison.v1.Federation",
    ];
    assert_eq!(services, served);

    // Older clients ask the v1alpha service, and get the same list.
    {
        use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
        use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
        let mut reflection = ServerReflectionClient::new(channel.clone());
        let request = tokio_stream::iter([ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        }]);
        let mut answers = timed(
            "v1alpha reflection",
            reflection.server_reflection_info(request),
        )
        .await
        .unwrap_or_else(|s| panic!("v1alpha reflection: {s}"))
        .into_inner();
        let answer = timed("v1alpha reflection answer", answers.message())
            .await
            .unwrap_or_else(|s| panic!("v1alpha reflection answer: {s}"))
            .expect("one answer");
        let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
            panic!("not a list of services: {answer:?}");
        };
        let mut services: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        services.sort();
        assert_eq!(services, served);
    }

    let mut answers = timed(
        "reflection",
        reflection.server_reflection_info(ask(MessageRequest::FileContainingSymbol(
            "liaison.v1.Federation".to_owned(),
        ))),
    )
    .await
    .unwrap_or_else(|s| panic!("reflection: {s}"))
    .into_inner();
    let answer = timed("reflection answer", answers.message())
        .await
        .unwrap_or_else(|s| panic!("reflection answer: {s}"))
        .expect("one answer");
    let Some(MessageResponse::FileDescriptorResponse(files)) = answer.message_response else {
        panic!("no file descriptor for liaison.v1.Federation: {answer:?}");
    };
    assert!(!files.file_descriptor_proto.is_empty());

    // The operators' service is not on the federation port.
    let mut admin = liaison_rpc::v1::admin_client::AdminClient::new(channel);
    let status = timed(
        "Admin/Status on the federation port",
        admin.status(pb::StatusRequest {}),
    )
    .await
    .expect_err("the admin service must not be served on the federation port");
    assert_eq!(status.code(), Code::Unimplemented, "{status}");

    // Health and reflection need mutual TLS like everything on this port.
    let seen = tls_refusal(&a.endpoint(), fed.anonymous_tls()).await;
    assert!(seen.contains("CertificateRequired"), "{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_fingerprint_that_does_not_match_is_refused_by_both_sides() {
    let fed = Federation::new("pinning");
    // A certificate lanzhou no longer uses: starting the node issues a new one.
    let stale = fed.issue("lanzhou").fingerprint();
    let a = fed.node("pingliang").await;
    let b = fed.node("lanzhou").await;
    let current = b.certs().fingerprint();
    assert_ne!(stale, current);

    a.ctl_ok(&[
        "peer",
        "add",
        "lanzhou",
        "--endpoint",
        &b.endpoint(),
        "--fingerprint",
        &stale,
    ]);
    b.peer(&a);
    // As a client, pingliang refuses lanzhou's server certificate ...
    a.wait_peer("lanzhou", "pin mismatch reported", |p| {
        p.last_error
            .contains(&format!("does not match the pinned {stale}"))
    })
    .await;
    a.wait_audit("the refused server", |e| {
        e.target == "lanzhou" && e.is("federation.pull", "error", "does not match the pinned")
    })
    .await;
    // ... and as a server it refuses lanzhou's calls.
    b.wait_peer("pingliang", "refused for its fingerprint", |p| {
        p.last_error.contains("PermissionDenied")
            && p.last_error.contains(&format!("pingliang pinned {stale}"))
    })
    .await;
    a.wait_audit("the refused call", |e| {
        e.actor == "peer:lanzhou" && e.is("federation.call", "refused", "pinned")
    })
    .await;

    // Pinned to the right certificate (any usual spelling), the link comes up.
    let spelled = current
        .trim_start_matches("sha256:")
        .to_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|pair| std::str::from_utf8(pair).unwrap())
        .collect::<Vec<_>>()
        .join(":");
    a.ctl_ok(&["peer", "remove", "lanzhou"]);
    a.ctl_ok(&[
        "peer",
        "add",
        "lanzhou",
        "--endpoint",
        &b.endpoint(),
        "--fingerprint",
        &spelled,
    ]);
    assert_eq!(
        a.peer_info("lanzhou").unwrap().fingerprint,
        current,
        "stored in canonical form"
    );
    fed.wait_linked(&a, &b).await;
}

/// A peer whose request body is not one well-formed message of the
/// method's type is answered `INVALID_ARGUMENT`, one over
/// `message_bytes_max` `OUT_OF_RANGE`, each naming the method and what was
/// wrong; every such refusal is logged, and audited as a refused call of
/// that peer at most `refusals_logged_per_minute` times per address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_or_oversized_request_bodies_are_invalid_argument_or_out_of_range_and_audited() {
    const PER_MINUTE: u64 = 4;
    const BYTES_MAX: u64 = 64 * 1024;
    let fed = Federation::new("bad-bodies");
    let a = fed
        .start(
            fed.config("pingliang")
                .limit("refusals_logged_per_minute", PER_MINUTE)
                .limit("message_bytes_max", BYTES_MAX),
        )
        .await;
    a.ctl_ok(&["peer", "add", "lanzhou", "--endpoint", NOWHERE]);
    let tls = fed.client_tls(&fed.issue("lanzhou"), "pingliang");
    let refused = |method: &'static str, body: Vec<Vec<u8>>| {
        let tls = tls.clone();
        let endpoint = a.endpoint();
        async move {
            call_raw(&endpoint, tls, method, body)
                .await
                .expect_err("a malformed body must be refused")
        }
    };

    // Not protobuf: a field tag cut short.
    let error = refused("Hello", vec![vec![0xff; 3]]).await;
    assert_eq!(error.code, Some(Code::InvalidArgument), "{error}");
    assert!(error.message.contains("malformed Hello request"), "{error}");
    // No message at all.
    let error = refused("Pull", vec![]).await;
    assert_eq!(error.code, Some(Code::InvalidArgument), "{error}");
    assert!(error.message.contains("malformed Pull request"), "{error}");
    // Two messages where one is due: the first is well-formed, the second
    // is no protobuf.
    let hello = prost::Message::encode_to_vec(&hello_request("兰州"));
    let error = refused("Hello", vec![hello.clone(), vec![0xff; 3]]).await;
    assert_eq!(error.code, Some(Code::InvalidArgument), "{error}");
    // Larger than the limit.
    let error = refused("Holdings", vec![vec![0; BYTES_MAX as usize + 1]]).await;
    assert_eq!(error.code, Some(Code::OutOfRange), "{error}");
    assert!(error.message.contains("too large"), "{error}");

    for (method, code, what) in [
        ("Hello", "InvalidArgument", "malformed Hello request"),
        ("Pull", "InvalidArgument", "malformed Pull request"),
        ("Holdings", "OutOfRange", "too large"),
    ] {
        a.wait_audit(&format!("the refused {method} body"), |e| {
            e.actor == "peer:lanzhou"
                && e.target == "lanzhou"
                && e.is("federation.call", "refused", &format!("{method}: {code}: "))
                && e.detail.contains(what)
        })
        .await;
    }

    // The same body, well-formed and alone, is answered.
    let answer = call_raw(&a.endpoint(), tls.clone(), "Hello", vec![hello])
        .await
        .unwrap_or_else(|e| panic!("a well-formed Hello: {e}"));
    let answer: pb::HelloResponse =
        prost::Message::decode(answer.as_slice()).expect("a HelloResponse");
    assert_eq!(answer.node_id, "pingliang");

    // A flood: every refusal is logged by the process, only the first few
    // per address and minute reach the audit log.
    const FLOOD: usize = 6;
    for _ in 0..FLOOD {
        let error = refused("Hello", vec![vec![0xff; 3]]).await;
        assert_eq!(error.code, Some(Code::InvalidArgument), "{error}");
    }
    a.wait_until(DEFAULT_WAIT, "every refusal handled", async || {
        a.log().matches("federation call refused").count() >= FLOOD + 4
    })
    .await;
    let audited = a
        .audit()
        .into_iter()
        .filter(|e| e.action == "federation.call" && e.actor == "peer:lanzhou")
        .count() as u64;
    assert_eq!(audited, PER_MINUTE, "{:#?}", a.audit());
}

/// The messages of protocol version 1, as a node of that version encodes
/// and decodes them: without the audit heads version 2 added.
mod v1 {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct HelloRequest {
        #[prost(string, tag = "1")]
        pub display_name: String,
        #[prost(uint32, tag = "2")]
        pub protocol_version: u32,
        #[prost(string, tag = "3")]
        pub log_id: String,
        #[prost(string, tag = "4")]
        pub software_version: String,
        #[prost(string, tag = "5")]
        pub endpoint: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PullBatch {
        #[prost(string, tag = "1")]
        pub log_id: String,
        #[prost(bytes = "vec", repeated, tag = "2")]
        pub events: Vec<Vec<u8>>,
        #[prost(uint64, tag = "3")]
        pub head_seq: u64,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_current_node_serves_a_peer_of_the_previous_protocol_version() {
    use prost::Message;
    assert_eq!(PROTOCOL_VERSION_MIN, PROTOCOL_VERSION - 1);
    let fed = Federation::new("protocol-v1");
    let a = fed.node("pingliang").await;
    a.ctl_ok(&["peer", "add", "lanzhou", "--endpoint", NOWHERE]);
    let tls = fed.client_tls(&fed.issue("lanzhou"), "pingliang");

    // A version 1 Hello, bytes as that version writes them, decodes here
    // (no audit head) and is answered.
    let v1_hello = v1::HelloRequest {
        display_name: "兰州".into(),
        protocol_version: PROTOCOL_VERSION_MIN,
        log_id: String::new(),
        software_version: "liaison 0.0 (protocol 1)".into(),
        endpoint: String::new(),
    }
    .encode_to_vec();
    let request = pb::HelloRequest::decode(v1_hello.as_slice()).expect("v1 bytes decode");
    assert!(request.audit_head.is_none());
    let hello = call_hello(&a.endpoint(), tls.clone(), request)
        .await
        .unwrap_or_else(|e| panic!("a version 1 Hello must be answered: {e}"));
    assert_eq!(hello.protocol_version, PROTOCOL_VERSION);
    // Its first batch, re-encoded, reads as version 1 reads it: the audit
    // head is a field it skips.
    let batch = call_pull(&a.endpoint(), tls)
        .await
        .unwrap_or_else(|e| panic!("a version 1 Pull must be served: {e}"));
    assert!(batch.audit_head.is_some(), "version 2 sends its audit head");
    let old = v1::PullBatch::decode(batch.encode_to_vec().as_slice())
        .expect("a version 1 node decodes the batch");
    assert_eq!(old.log_id, batch.log_id);
    assert_eq!(old.head_seq, batch.head_seq);
    assert_eq!(old.events.len(), batch.events.len());
    a.wait_audit("lanzhou's head witnessed, nothing refused", |e| {
        e.action == "node.start"
    })
    .await;
    assert!(
        a.audit()
            .iter()
            .all(|e| !(e.actor == "peer:lanzhou" && e.outcome == "refused")),
        "{:?}",
        a.audit()
    );
}
