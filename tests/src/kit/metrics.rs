//! The node's Prometheus endpoint, as a test reads it.

use crate::{TestNode, DEFAULT_WAIT};

/// Scrapes `/metrics` over plain HTTP/1.1 and parses it with a Prometheus
/// text-format parser.
pub async fn scrape(node: &TestNode) -> prometheus_parse::Scrape {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = node.status().await.metrics_addr;
    assert!(!addr.is_empty(), "the metrics endpoint is on");
    let mut tcp = tokio::net::TcpStream::connect(&addr)
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("send the request");
    let mut response = Vec::new();
    tokio::time::timeout(DEFAULT_WAIT, tcp.read_to_end(&mut response))
        .await
        .expect("an answer in time")
        .expect("read the answer");
    let text = String::from_utf8(response).expect("UTF-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("headers and a body");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let lines = body.lines().map(|l| Ok(l.to_owned()));
    prometheus_parse::Scrape::parse(lines).expect("the Prometheus text format")
}

/// The value of metric `name` with label `key` = `value`.
pub fn metric(
    scrape: &prometheus_parse::Scrape,
    name: &str,
    labels: &[(&str, &str)],
) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

/// Times the follower's pull task of `peer` reconnected (0 before the
/// first): a stream that was never dropped leaves it unchanged.
pub fn reconnects(scrape: &prometheus_parse::Scrape, peer: &str) -> f64 {
    metric(scrape, "liaison_peer_reconnects_total", &[("peer", peer)])
        .or_else(|| metric(scrape, "liaison_peer_reconnects", &[("peer", peer)]))
        .unwrap_or(0.0)
}
