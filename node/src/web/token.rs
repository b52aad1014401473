//! The form's token against cross-site request forgery, without server
//! state and without JavaScript (a signed double submit).
//!
//! Showing the form sets a cookie holding a random nonce and puts in a
//! hidden field the time it was shown and an HMAC over the station, the
//! nonce and that time, under this node's secret. A submission is taken
//! only with the cookie and a field that verifies against it, for the same
//! station, within [`VALID_MS`]. Another site can make a browser post the
//! form, but can neither read the cookie nor make a field that matches it.
//! The cookie is `SameSite=Strict` as a second line.

use std::io::Write;
use std::path::{Path, PathBuf};

use liaison_core::clock::Millis;
use rand::RngCore;
use ring::hmac;

/// How long a shown form may be submitted: long enough to fill it in on a
/// phone, short enough that a copied token soon stops working.
pub const VALID_MS: Millis = 2 * 60 * 60 * 1000;

/// The cookie that carries the nonce.
pub const COOKIE: &str = "baodao_form";

/// The file in the data directory that holds the secret.
pub const SECRET_FILE: &str = "report-in.secret";

/// Bytes of the secret and of a nonce.
const SECRET_LEN: usize = 32;
const NONCE_LEN: usize = 16;

/// The node's key for form tokens.
pub struct Secret {
    key: hmac::Key,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// Reads the secret from `data_dir`, or makes one there (readable by
    /// the node's user only) on the first start with the page on. Kept on
    /// disk so that a restart does not void the forms members have open.
    pub fn load_or_create(data_dir: &Path) -> Result<Secret, String> {
        let path = data_dir.join(SECRET_FILE);
        match std::fs::read(&path) {
            Ok(bytes) if bytes.len() == SECRET_LEN => return Ok(Secret::from_bytes(&bytes)),
            Ok(bytes) => {
                return Err(format!(
                    "{} holds {} bytes, not {SECRET_LEN}: delete it and start again (open forms then have to be opened again)",
                    path.display(),
                    bytes.len()
                ))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(format!("cannot read {}: {error}", path.display())),
        }
        let mut bytes = [0u8; SECRET_LEN];
        rand::rng().fill_bytes(&mut bytes);
        write_private(&path, &bytes)
            .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
        Ok(Secret::from_bytes(&bytes))
    }

    fn from_bytes(bytes: &[u8]) -> Secret {
        Secret {
            key: hmac::Key::new(hmac::HMAC_SHA256, bytes),
        }
    }

    /// A fresh nonce for the cookie.
    pub fn nonce() -> String {
        let mut bytes = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut bytes);
        hex::encode(bytes)
    }

    /// The hidden field's value for a form of `station` shown at `now_ms`
    /// to the browser holding `nonce`.
    pub fn token(&self, station: &str, nonce: &str, now_ms: Millis) -> String {
        let tag = hmac::sign(&self.key, &message(station, nonce, now_ms));
        format!("{now_ms}.{}", hex::encode(tag.as_ref()))
    }

    /// Whether `token` was made by [`Secret::token`] for `station` and
    /// `nonce`, and is still valid at `now_ms`.
    pub fn verify(&self, station: &str, nonce: &str, token: &str, now_ms: Millis) -> bool {
        let Some((issued, tag)) = token.split_once('.') else {
            return false;
        };
        let Ok(issued_ms) = issued.parse::<Millis>() else {
            return false;
        };
        // A minute of slack for a clock step between showing and posting.
        let fresh = now_ms
            .checked_sub(issued_ms)
            .is_some_and(|age| (-60_000..=VALID_MS).contains(&age));
        if !fresh {
            return false;
        }
        let Ok(tag) = hex::decode(tag) else {
            return false;
        };
        hmac::verify(&self.key, &message(station, nonce, issued_ms), &tag).is_ok()
    }
}

fn message(station: &str, nonce: &str, issued_ms: Millis) -> Vec<u8> {
    format!("report-in form v1\n{station}\n{nonce}\n{issued_ms}").into_bytes()
}

fn write_private(path: &PathBuf, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_verifies_only_for_its_station_nonce_and_time() {
        let dir = tempfile::tempdir().unwrap();
        let secret = Secret::load_or_create(dir.path()).unwrap();
        let nonce = Secret::nonce();
        let token = secret.token("ab3de7gh", &nonce, 1_000_000);
        assert!(secret.verify("ab3de7gh", &nonce, &token, 1_000_000 + 60_000));
        assert!(!secret.verify("zz3de7gh", &nonce, &token, 1_000_000));
        assert!(!secret.verify("ab3de7gh", &Secret::nonce(), &token, 1_000_000));
        assert!(!secret.verify("ab3de7gh", &nonce, &token, 1_000_000 + VALID_MS + 1));
        assert!(!secret.verify("ab3de7gh", &nonce, &token, 1_000_000 - 120_000));
        assert!(!secret.verify("ab3de7gh", &nonce, "", 1_000_000));
        assert!(!secret.verify("ab3de7gh", &nonce, "1000000.zz", 1_000_000));
        let far = format!("-9223372036854775808.{}", token.split_once('.').unwrap().1);
        assert!(!secret.verify("ab3de7gh", &nonce, &far, i64::MAX));
        let forged = format!("1000001.{}", token.split_once('.').unwrap().1);
        assert!(!secret.verify("ab3de7gh", &nonce, &forged, 1_000_001));
    }

    #[test]
    fn the_secret_survives_a_restart_and_a_bad_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = Secret::load_or_create(dir.path()).unwrap();
        let token = first.token("s", "n", 5);
        let again = Secret::load_or_create(dir.path()).unwrap();
        assert!(again.verify("s", "n", &token, 5));
        std::fs::write(dir.path().join(SECRET_FILE), b"short").unwrap();
        let error = Secret::load_or_create(dir.path()).unwrap_err();
        assert!(error.contains("delete it"), "{error}");
    }
}
