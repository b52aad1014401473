//! `liaisonctl status`: the node's id, version, uptime, database and peers.

use liaison_proto::v1 as pb;
use liaisonctl::output::{self, json_line, Format};
use serde_json::json;

use super::{Admin, Failure};

pub async fn run(admin: &mut Admin, format: Format) -> Result<(), Failure> {
    let s = admin.status(pb::StatusRequest {}).await?.into_inner();
    match format {
        Format::Json => json_line(
            "status",
            json!({
                "node_id": s.node_id, "display_name": s.display_name, "federation": s.federation,
                "software_version": s.software_version, "protocol_version": s.protocol_version,
                "uptime_seconds": s.uptime_seconds, "database_path": s.database_path,
                "database_bytes": s.database_bytes, "peers_up": s.peers_up, "peers_total": s.peers_total,
                "federation_addr": s.federation_addr, "log_id": s.log_id,
                "reconciling": s.reconciling, "metrics_addr": s.metrics_addr,
                "certificate_not_after": output::rfc3339(s.certificate_not_after_ms),
                "certificate_days_left": days_left(s.certificate_not_after_ms),
                "crl_path": s.crl_path, "crl_revoked": s.crl_revoked,
                "crl_next_update": (s.crl_next_update_ms > 0).then(|| output::rfc3339(s.crl_next_update_ms)),
            }),
        ),
        Format::Table => output::print_out(&format!(
            "node        {} ({})\nfederation  {}\nversion     {} (protocol {})\nuptime      {}\nlistening   {}\ndatabase    {} ({})\nlog id      {}\npeers       {} up of {}\n",
            s.node_id, s.display_name, s.federation, s.software_version, s.protocol_version,
            duration(s.uptime_seconds), s.federation_addr, s.database_path, bytes(s.database_bytes),
            s.log_id, s.peers_up, s.peers_total
        )),
    }
    if format == Format::Table {
        let days = days_left(s.certificate_not_after_ms);
        output::print_out(&format!(
            "certificate expires {} ({days} days)\n",
            output::time(s.certificate_not_after_ms)
        ));
        if days <= CERTIFICATE_WARNING_DAYS {
            output::print_out(&format!(
                "warning     the node's certificate expires in {days} days: have the CA issue a new one (`liaisonctl ca issue`), put it in place and run `liaisonctl reload`\n"
            ));
        }
        if !s.crl_path.is_empty() {
            output::print_out(&format!(
                "revocation  {} ({} revoked)\n",
                s.crl_path, s.crl_revoked
            ));
        }
        if s.crl_next_update_ms > 0 {
            let days = days_left(s.crl_next_update_ms);
            if days < CRL_WARNING_DAYS {
                output::print_out(&format!(
                    "warning     the revocation list is {} {}: the node keeps enforcing it, but certificates revoked since are not in it; have the CA sign a new one (`liaisonctl ca crl`), copy it in place and run `liaisonctl reload`\n",
                    if days < 0 { "past its next update, due" } else { "due for renewal" },
                    output::time(s.crl_next_update_ms)
                ));
            }
        }
        if !s.metrics_addr.is_empty() {
            output::print_out(&format!("metrics     http://{}/metrics\n", s.metrics_addr));
        }
    }
    if s.reconciling && format == Format::Table {
        output::print_out(
            "state       reconciling after a restore: owner actions are refused until every peer answered (`liaisonctl reconcile status`)\n",
        );
    }
    Ok(())
}

/// Days before its certificate expires from which `status` and `todo`
/// warn: time to have the CA issue a new one and reload.
pub const CERTIFICATE_WARNING_DAYS: i64 = 30;

/// Days before the revocation list's next update from which `status` and
/// `todo` warn.
pub const CRL_WARNING_DAYS: i64 = 7;

/// Whole days from now until `not_after_ms` (negative once past).
pub fn days_left(not_after_ms: i64) -> i64 {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    (not_after_ms - now_ms).div_euclid(86_400_000)
}

/// `liaisonctl reload`: the node reads node.toml's `[tls]` section and
/// the certificate, key, CA bundle and revocation list it names again.
pub async fn reload(admin: &mut Admin, format: Format) -> Result<(), Failure> {
    let r = admin.reload(pb::ReloadRequest {}).await?.into_inner();
    match format {
        Format::Json => json_line(
            "reload",
            json!({
                "detail": r.detail,
                "certificate_not_after": output::rfc3339(r.certificate_not_after_ms),
                "restart_needed": r.restart_needed,
                "connections_cut": r.connections_cut,
            }),
        ),
        Format::Table => {
            output::print_out(&format!("reloaded: {}\n", r.detail));
            if !r.restart_needed.is_empty() {
                output::print_out(&format!(
                    "needs a restart: {} changed in node.toml; a reload puts only [tls] in force (`systemctl restart liaison-node`)\n",
                    r.restart_needed.join(", ")
                ));
            }
        }
    }
    Ok(())
}

fn duration(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86400,
        seconds / 3600 % 24,
        seconds / 60 % 60,
        seconds % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}
