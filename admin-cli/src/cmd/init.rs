//! `liaisonctl init`: write an example node.toml (a local file; no node).

use std::path::{Path, PathBuf};

use anyhow::Context;

/// Arguments of `liaisonctl init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    #[arg(long)]
    node_id: String,
    #[arg(long)]
    display_name: Option<String>,
    /// Federation listen address.
    #[arg(long, default_value = "0.0.0.0:7401")]
    listen: String,
    #[arg(long, default_value = "node.toml")]
    out: PathBuf,
    /// Overwrite an existing file.
    #[arg(long)]
    force: bool,
}

pub fn run(args: InitArgs) -> anyhow::Result<()> {
    init(
        &args.node_id,
        args.display_name.as_deref(),
        &args.listen,
        &args.out,
        args.force,
    )
}

fn init(
    node_id: &str,
    display_name: Option<&str>,
    listen: &str,
    out: &Path,
    force: bool,
) -> anyhow::Result<()> {
    let id = liaison_types::identity::NodeId::parse(node_id)?;
    if out.exists() && !force {
        anyhow::bail!("{} exists: pass --force to overwrite it", out.display());
    }
    let text =
        liaison_types::config::example(id.as_str(), display_name.unwrap_or(id.as_str()), listen);
    std::fs::write(out, text).with_context(|| format!("cannot write {}", out.display()))?;
    liaisonctl::outln!(
        "wrote {}: edit the paths, then start `liaison-node --config {}`",
        out.display(),
        out.display()
    );
    Ok(())
}
