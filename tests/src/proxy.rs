//! A TCP proxy between two nodes, for partitions in end-to-end tests.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A TCP proxy that can cut every connection and refuse new ones, then heal.
pub struct Proxy {
    addr: SocketAddr,
    cut: Arc<Mutex<bool>>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let cut = Arc::new(Mutex::new(false));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (cut2, links2) = (cut.clone(), links.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if *cut2.lock().unwrap() {
                    drop(inbound);
                    continue;
                }
                let link = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                let mut links = links2.lock().unwrap();
                links.retain(|l| !l.is_finished());
                links.push(link);
            }
        });
        Proxy {
            addr,
            cut,
            links,
            accept,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Drops every open connection and refuses new ones.
    pub fn partition(&self) {
        *self.cut.lock().unwrap() = true;
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    pub fn heal(&self) {
        *self.cut.lock().unwrap() = false;
    }

    pub fn is_cut(&self) -> bool {
        *self.cut.lock().unwrap()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.partition();
    }
}
