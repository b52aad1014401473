//! A flood of TCP connections that never finish a TLS handshake, as anyone
//! without a certificate can open them: from chosen loopback source
//! addresses (on Linux all of 127.0.0.0/8 is local, so a test binds
//! 127.0.0.2, 127.0.0.3, ... as distinct sources), silent or trickling
//! bytes, each reopened when the node drops it.
//!
//! The flood runs on its own thread and runtime, so a test that blocks on
//! `liaisonctl` never slows it, and it stops when dropped.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

/// What each connection of a flood sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sending {
    /// Nothing: the connection is opened and held.
    Silent,
    /// The header of a TLS handshake record, then one byte every
    /// interval, so the record is never complete and the connection never
    /// idle.
    Trickle(Duration),
}

/// A flood: who connects, how many, and how.
#[derive(Debug, Clone)]
pub struct FloodPlan {
    /// The source addresses, each bound before connecting.
    pub sources: Vec<IpAddr>,
    /// Connections held from each source at once.
    pub per_source: usize,
    pub sending: Sending,
    /// How long a connection the node dropped waits before it is opened
    /// again: the flood's pace once the node drops as fast as it admits.
    /// `None`: never opened again.
    pub reopen_after: Option<Duration>,
}

impl FloodPlan {
    /// `per_source` silent connections from each of `sources`, reopened
    /// after `reopen_after`.
    pub fn silent(sources: Vec<IpAddr>, per_source: usize, reopen_after: Duration) -> FloodPlan {
        FloodPlan {
            sources,
            per_source,
            sending: Sending::Silent,
            reopen_after: Some(reopen_after),
        }
    }

    /// The same, each connection trickling a byte every `every`.
    pub fn trickling(self, every: Duration) -> FloodPlan {
        FloodPlan {
            sending: Sending::Trickle(every),
            ..self
        }
    }

    /// Each connection opened once, not again once dropped.
    pub fn once(self) -> FloodPlan {
        FloodPlan {
            reopen_after: None,
            ..self
        }
    }
}

/// `n` loopback addresses from 127.0.0.`first` on.
pub fn loopback_sources(first: u8, n: u8) -> Vec<IpAddr> {
    (0..n)
        .map(|i| IpAddr::from([127, 0, 0, first.saturating_add(i)]))
        .collect()
}

/// What a flood has seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FloodStats {
    /// Connections established.
    pub opened: u64,
    /// Connections the node closed (or reset).
    pub dropped: u64,
    /// Connections open now.
    pub open: u64,
    /// Connection attempts that failed (refused, timed out).
    pub failed: u64,
    /// The longest a dropped connection was held, in milliseconds.
    pub longest_held_ms: u64,
    /// Bytes the connections sent, in all.
    pub bytes_sent: u64,
}

#[derive(Debug, Default)]
struct Counters {
    opened: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    longest_held_ms: AtomicU64,
    bytes_sent: AtomicU64,
}

/// A running flood; stops when dropped.
#[derive(Debug)]
pub struct Flood {
    stop: CancellationToken,
    counters: Arc<Counters>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Flood {
    /// Starts `plan` against `target`.
    pub fn start(target: SocketAddr, plan: FloodPlan) -> Flood {
        let stop = CancellationToken::new();
        let counters = Arc::new(Counters::default());
        let thread = {
            let stop = stop.clone();
            let counters = counters.clone();
            std::thread::Builder::new()
                .name("flood".into())
                .spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a runtime for the flood");
                    runtime.block_on(async move {
                        let mut holders = tokio::task::JoinSet::new();
                        for source in &plan.sources {
                            for _ in 0..plan.per_source {
                                holders.spawn(hold(
                                    target,
                                    *source,
                                    plan.clone(),
                                    counters.clone(),
                                    stop.clone(),
                                ));
                            }
                        }
                        while holders.join_next().await.is_some() {}
                    });
                })
                .expect("spawn the flood thread")
        };
        Flood {
            stop,
            counters,
            thread: Some(thread),
        }
    }

    pub fn stats(&self) -> FloodStats {
        let c = &self.counters;
        let opened = c.opened.load(Ordering::SeqCst);
        let dropped = c.dropped.load(Ordering::SeqCst);
        FloodStats {
            opened,
            dropped,
            open: opened.saturating_sub(dropped),
            failed: c.failed.load(Ordering::SeqCst),
            longest_held_ms: c.longest_held_ms.load(Ordering::SeqCst),
            bytes_sent: c.bytes_sent.load(Ordering::SeqCst),
        }
    }

    /// Stops the flood and closes its connections.
    pub fn stop(mut self) -> FloodStats {
        self.halt();
        self.stats()
    }

    fn halt(&mut self) {
        self.stop.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.halt();
    }
}

/// One connection of the flood, opened again each time the node drops it
/// (after the plan's pause), until the flood stops.
async fn hold(
    target: SocketAddr,
    source: IpAddr,
    plan: FloodPlan,
    counters: Arc<Counters>,
    stop: CancellationToken,
) {
    loop {
        let connect = async {
            let socket = match source {
                IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
                IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
            };
            socket.bind(SocketAddr::new(source, 0))?;
            tokio::time::timeout(Duration::from_secs(5), socket.connect(target))
                .await
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
        };
        let stream = tokio::select! {
            _ = stop.cancelled() => return,
            stream = connect => stream,
        };
        match stream {
            Ok(mut stream) => {
                counters.opened.fetch_add(1, Ordering::SeqCst);
                let opened = Instant::now();
                let dropped = tokio::select! {
                    _ = stop.cancelled() => false,
                    () = until_dropped(&mut stream, plan.sending, &counters) => true,
                };
                if !dropped {
                    return;
                }
                let held_ms = opened.elapsed().as_millis() as u64;
                counters
                    .longest_held_ms
                    .fetch_max(held_ms, Ordering::SeqCst);
                counters.dropped.fetch_add(1, Ordering::SeqCst);
            }
            Err(_) => {
                counters.failed.fetch_add(1, Ordering::SeqCst);
            }
        }
        let Some(pause) = plan.reopen_after else {
            return;
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// Holds `stream` as `sending` says until the node closes or resets it.
async fn until_dropped(stream: &mut tokio::net::TcpStream, sending: Sending, counters: &Counters) {
    let mut buf = [0u8; 256];
    match sending {
        Sending::Silent => loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        },
        Sending::Trickle(every) => {
            // A TLS handshake record announcing 512 bytes: the server
            // waits for all of them.
            const HEADER: [u8; 5] = [0x16, 0x03, 0x01, 0x02, 0x00];
            if stream.write_all(&HEADER).await.is_err() {
                return;
            }
            counters
                .bytes_sent
                .fetch_add(HEADER.len() as u64, Ordering::SeqCst);
            let mut ticks = tokio::time::interval(every);
            ticks.tick().await;
            loop {
                tokio::select! {
                    read = stream.read(&mut buf) => match read {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    },
                    _ = ticks.tick() => {
                        if stream.write_all(&[0]).await.is_err() {
                            return;
                        }
                        counters.bytes_sent.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        }
    }
}
