//! The credentials in force and the open connections verified with them.
//!
//! A reload ([`crate::node::Node::reload`]) puts new credentials in force
//! and judges every open connection again by them, both ways: the
//! connections a peer opened to us and the ones our pull tasks opened. A
//! connection whose certificate the new credentials would refuse (revoked
//! by the new list, no longer chaining to the new CA bundle, expired) is
//! cut at once; the others go on untouched, so a rotation drops no
//! stream. A connection whose handshake used the credentials a reload has
//! just replaced is judged by the new ones when it registers, so none
//! slips through between the two.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio_util::sync::CancellationToken;

use crate::tls::{Credentials, PeerCertificate};
use liaison_types::identity::NodeId;

/// Which end opened a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The peer's, to our federation port.
    Inbound,
    /// Our pull task's, to the peer.
    Outbound,
}

/// An open connection, as a reload judges it.
#[derive(Debug)]
pub struct Open {
    pub peer: NodeId,
    pub side: Side,
    pub certificate: Arc<PeerCertificate>,
    /// Cancelled to cut the connection.
    pub cut: CancellationToken,
}

/// A connection a reload cut.
#[derive(Debug, Clone)]
pub struct Cut {
    pub peer: NodeId,
    pub side: Side,
    pub fingerprint: String,
    pub reason: String,
}

#[derive(Debug)]
struct Inner {
    credentials: Arc<Credentials>,
    open: HashMap<u64, Open>,
    next: u64,
}

/// The credentials in force and the open connections.
#[derive(Debug)]
pub struct Trust {
    inner: Mutex<Inner>,
}

impl Trust {
    pub fn new(credentials: Credentials) -> Arc<Trust> {
        Arc::new(Trust {
            inner: Mutex::new(Inner {
                credentials: Arc::new(credentials),
                open: HashMap::new(),
                next: 0,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The credentials in force: a new handshake uses these.
    pub fn credentials(&self) -> Arc<Credentials> {
        self.lock().credentials.clone()
    }

    /// Records an open connection whose handshake used `verified_with`,
    /// until the returned [`Registration`] is dropped. If a reload has
    /// replaced those credentials meanwhile, the connection is judged by
    /// the ones in force, and refused with the reason if they refuse it.
    pub fn register(
        self: &Arc<Self>,
        open: Open,
        verified_with: &Arc<Credentials>,
    ) -> Result<Registration, String> {
        let mut inner = self.lock();
        if !Arc::ptr_eq(&inner.credentials, verified_with) {
            inner.credentials.judge(&open.certificate)?;
        }
        let id = inner.next;
        inner.next += 1;
        inner.open.insert(id, open);
        Ok(Registration {
            trust: self.clone(),
            id,
        })
    }

    /// Puts `credentials` in force and cuts every open connection they
    /// refuse; returns those, for the audit log.
    pub fn replace(&self, credentials: Credentials) -> Vec<Cut> {
        let mut inner = self.lock();
        inner.credentials = Arc::new(credentials);
        let credentials = inner.credentials.clone();
        let mut cut = Vec::new();
        inner
            .open
            .retain(|_, open| match credentials.judge(&open.certificate) {
                Ok(()) => true,
                Err(reason) => {
                    open.cut.cancel();
                    cut.push(Cut {
                        peer: open.peer.clone(),
                        side: open.side,
                        fingerprint: liaison_types::identity::fingerprint(
                            &open.certificate.end_entity,
                        ),
                        reason,
                    });
                    false
                }
            });
        cut
    }
}

/// An open connection's place in [`Trust`], freed when dropped (the
/// connection closed).
#[derive(Debug)]
pub struct Registration {
    trust: Arc<Trust>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.trust.lock().open.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::TlsFiles;
    use liaison_types::identity::{ca_init, ca_issue, ca_revoke, read_certs, CA_CERT_FILE};
    use std::path::{Path, PathBuf};

    fn id(s: &str) -> NodeId {
        NodeId::parse(s).unwrap()
    }

    /// Issues `node`'s certificate from `ca` into `dir`; returns its path.
    fn issue(ca: &Path, dir: &Path, node: &str) -> PathBuf {
        let ip = "127.0.0.1".parse().unwrap();
        ca_issue(ca, &id(node), &["localhost".into()], &[ip], 10, dir, false)
            .unwrap()
            .cert_path
    }

    /// An inbound connection of `peer` presenting the certificate in `cert`.
    fn inbound(peer: &str, cert: &Path) -> Open {
        Open {
            peer: id(peer),
            side: Side::Inbound,
            certificate: Arc::new(
                PeerCertificate::of(Some(&read_certs(cert).unwrap()), None).unwrap(),
            ),
            cut: CancellationToken::new(),
        }
    }

    #[test]
    fn a_reload_cuts_only_the_connections_its_list_revokes() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca");
        ca_init("gansu", &ca, 30, false).unwrap();
        let certs = dir.path().join("certs");
        let own = issue(&ca, &certs, "pingliang");
        let lanzhou = issue(&ca, &certs, "lanzhou");
        let tianshui = issue(&ca, &certs, "tianshui");
        let mut files = TlsFiles {
            key: own.with_extension("key"),
            cert: own,
            ca: ca.join(CA_CERT_FILE),
            crl: None,
        };
        let trust = Trust::new(Credentials::load(&files, &id("pingliang")).unwrap());
        let first = trust.credentials();
        let revoked = inbound("lanzhou", &lanzhou);
        let kept = inbound("tianshui", &tianshui);
        let (revoked_cut, kept_cut) = (revoked.cut.clone(), kept.cut.clone());
        let _revoked = trust.register(revoked, &first).unwrap();
        let _kept = trust.register(kept, &first).unwrap();

        // The same files again: nothing is cut.
        let again = Credentials::load(&files, &id("pingliang")).unwrap();
        assert!(trust.replace(again).is_empty());

        // A list revoking lanzhou: its connection alone is cut.
        files.crl = Some(ca_revoke(&ca, &lanzhou).unwrap().1);
        let cut = trust.replace(Credentials::load(&files, &id("pingliang")).unwrap());
        assert_eq!(cut.len(), 1, "{cut:?}");
        assert_eq!(cut[0].peer, id("lanzhou"));
        assert_eq!(cut[0].reason, "certificate revoked");
        assert!(revoked_cut.is_cancelled());
        assert!(!kept_cut.is_cancelled());

        // A handshake verified with the replaced credentials is judged by
        // the ones in force when it registers.
        let late = trust.register(inbound("lanzhou", &lanzhou), &first);
        assert_eq!(late.unwrap_err(), "certificate revoked");
        assert!(trust
            .register(inbound("tianshui", &tianshui), &first)
            .is_ok());
    }

    #[test]
    fn a_new_ca_bundle_cuts_the_peers_it_no_longer_trusts() {
        let dir = tempfile::tempdir().unwrap();
        let (old_ca, new_ca) = (dir.path().join("old"), dir.path().join("new"));
        ca_init("gansu", &old_ca, 30, false).unwrap();
        ca_init("gansu", &new_ca, 30, false).unwrap();
        let files = |ca: &Path| {
            let cert = issue(ca, &ca.join("certs"), "pingliang");
            TlsFiles {
                key: cert.with_extension("key"),
                cert,
                ca: ca.join(CA_CERT_FILE),
                crl: None,
            }
        };
        let old = Credentials::load(&files(&old_ca), &id("pingliang")).unwrap();
        let trust = Trust::new(old);
        let open = inbound("lanzhou", &issue(&old_ca, &old_ca.join("certs"), "lanzhou"));
        let cut = open.cut.clone();
        let _open = trust.register(open, &trust.credentials()).unwrap();
        let rotated = trust.replace(Credentials::load(&files(&new_ca), &id("pingliang")).unwrap());
        assert_eq!(rotated.len(), 1);
        assert!(
            rotated[0]
                .reason
                .contains("not issued by this federation's CA"),
            "{rotated:?}"
        );
        assert!(cut.is_cancelled());
    }
}
