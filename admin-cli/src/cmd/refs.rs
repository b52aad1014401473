//! References a clerk has in hand (a name, a letter number, an agreement
//! number, an id prefix), resolved by the node to the record's id before a
//! verb runs: every verb that names a member, transfer, agreement,
//! organization, peer or service station takes them. An ambiguous or unknown reference is
//! refused (exit 1) with the candidates.

use liaison_proto::v1 as pb;

use super::{Admin, Failure};

/// A member named on the command line.
#[derive(Debug, Clone, clap::Args)]
pub struct MemberArg {
    /// The member: name, national ID number (members this node owns), id, or an id prefix of 8+ characters.
    #[arg(value_name = "MEMBER")]
    pub member: String,
    /// Narrows a member given by name to this branch (its code or full name).
    #[arg(long, value_name = "ORG")]
    pub branch: Option<String>,
}

/// Resolves `reference` at the node. `action` names the change it is for
/// (`peer.pause`), or is empty for a read: a reference refused for a change
/// is audited as that change refused.
async fn resolve(
    admin: &mut Admin,
    kind: &str,
    reference: &str,
    branch: Option<&str>,
    action: &str,
) -> Result<String, Failure> {
    let deadline = WAIT.get().map(|wait| tokio::time::Instant::now() + *wait);
    loop {
        // Only the last attempt is audited as the action refused.
        let waiting = deadline.is_some_and(|d| tokio::time::Instant::now() < d);
        let request = pb::ResolveRequest {
            kind: kind.into(),
            reference: reference.into(),
            branch: branch.unwrap_or_default().into(),
            action: if waiting {
                String::new()
            } else {
                action.into()
            },
        };
        match admin.resolve(request).await {
            Ok(resolved) => return Ok(resolved.into_inner().id),
            Err(status) if waiting && status.code() == tonic::Code::NotFound => {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Err(status) => return Err(status.into()),
        }
    }
}

/// How long a reference not known yet is looked for again (`--wait`).
static WAIT: std::sync::OnceLock<std::time::Duration> = std::sync::OnceLock::new();

/// From now on, a reference the node does not know yet is looked for again
/// until `wait` has passed: a record on its way from a peer.
pub fn wait_for_records(wait: std::time::Duration) {
    let _ = WAIT.set(wait);
}

impl MemberArg {
    /// The member's id.
    pub async fn id(&self, admin: &mut Admin, action: &str) -> Result<String, Failure> {
        resolve(
            admin,
            "member",
            &self.member,
            self.branch.as_deref(),
            action,
        )
        .await
    }
}

/// A member's id, from a reference without a branch to narrow it.
pub async fn member(admin: &mut Admin, reference: &str, action: &str) -> Result<String, Failure> {
    resolve(admin, "member", reference, None, action).await
}

/// A transfer's id, from its id, an id prefix or its letter number.
pub async fn transfer(admin: &mut Admin, reference: &str, action: &str) -> Result<String, Failure> {
    resolve(admin, "transfer", reference, None, action).await
}

/// An agreement's id, from its id, an id prefix or its agreement number.
pub async fn agreement(
    admin: &mut Admin,
    reference: &str,
    action: &str,
) -> Result<String, Failure> {
    resolve(admin, "agreement", reference, None, action).await
}

/// An organization's code, from its code or full name.
pub async fn org(admin: &mut Admin, reference: &str, action: &str) -> Result<String, Failure> {
    resolve(admin, "org", reference, None, action).await
}

/// The host branch of a host section: an organization of this node by
/// code or full name, else the text as given (a host may name a branch it
/// has not registered as an organization).
pub async fn host_branch(admin: &mut Admin, text: &str) -> Result<String, Failure> {
    match resolve(admin, "org", text, None, "").await {
        Ok(code) => Ok(code),
        Err(Failure::Refused(_)) => Ok(text.to_owned()),
        Err(other) => Err(other),
    }
}

/// A service station's code, from its code or name.
pub async fn station(admin: &mut Admin, reference: &str, action: &str) -> Result<String, Failure> {
    resolve(admin, "station", reference, None, action).await
}

/// A peer's node id, from its node id or display name.
pub async fn peer(admin: &mut Admin, reference: &str, action: &str) -> Result<String, Failure> {
    resolve(admin, "peer", reference, None, action).await
}
