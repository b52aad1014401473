//! `liaison-node`: the daemon. Parses flags, reads the config, sets up
//! logging and signals, and hands over to `liaison_node::node::run`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use liaison_types::config::{Config, LogFormat};
use tokio_util::sync::CancellationToken;

/// Liaison node: a federated registry of mobile Party members (流动党员).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The node's configuration file (`liaisonctl init` writes an example).
    #[arg(long, short, env = "LIAISON_CONFIG", default_value = "node.toml")]
    config: PathBuf,
    /// Log as JSON lines instead of human-readable text (overrides log.format).
    #[arg(long)]
    log_json: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Put a backup (`liaisonctl backup`) in place of the database of this
    /// node, which must be stopped: the backup is checked (whole, of a
    /// schema this version knows, of this node) and the node reconciles
    /// with its peers at its next start.
    Restore {
        /// The backup file.
        #[arg(long)]
        from: PathBuf,
    },
}

/// Exit codes: 0 stopped cleanly, 1 failed while running, 2 bad configuration.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    limit_malloc_arenas();
    let args = Args::parse();
    let config = match Config::load(&args.config) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("liaison-node: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let json = args.log_json || config.log_format == LogFormat::Json;
    init_logging(json);
    if let Some(Command::Restore { from }) = &args.command {
        return restore(&config, from);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("liaison-node: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        // Registered before the node answers anything, so a SIGTERM that
        // comes as soon as the admin socket answers stops it cleanly rather
        // than killing it (the default action) before a task installed them.
        let signals = Signals::register();
        let running = match liaison_node::node::start(config, shutdown.clone()).await {
            Ok(running) => running,
            Err(error) => {
                eprintln!("liaison-node: {error}");
                return ExitCode::from(EXIT_CONFIG);
            }
        };
        let node = running.node.clone();
        tokio::spawn(async move {
            let Signals { term, int, hup } = signals;
            // SIGHUP reloads the certificates, key, CA and revocation list.
            if let Some(mut hup) = hup {
                let node = node.clone();
                tokio::spawn(async move {
                    while hup.recv().await.is_some() {
                        tracing::info!("SIGHUP received: reloading the credentials");
                        let _ = node.reload(liaison_core::store::audit::Actor::Node).await;
                    }
                });
            }
            Signals {
                term,
                int,
                hup: None,
            }
            .wait()
            .await;
            tracing::info!("signal received, stopping");
            shutdown.cancel();
        });
        running.wait().await;
        ExitCode::SUCCESS
    })
}

/// `liaison-node restore`: exit 0 restored, 1 refused (nothing changed).
fn restore(config: &Config, from: &std::path::Path) -> ExitCode {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    match liaison_node::restore::restore(config, from, now_ms) {
        Ok(restored) => {
            let taken = liaison_types::time::format_ms(restored.backup_at_ms, config.time_zone);
            println!(
                "restored {} (a backup of {} taken {taken}) as {}",
                from.display(),
                config.node_id,
                config.database_path().display()
            );
            if let Some(replaced) = restored.replaced {
                println!(
                    "the database that was in place is kept as {} (with its -wal and -shm): delete it once the node has reconciled",
                    replaced.display()
                );
            }
            println!("next: start the node; it reconciles with every peer before acting as an owner (`liaisonctl reconcile status`)");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("liaison-node: restore refused, nothing changed: {error}");
            ExitCode::FAILURE
        }
    }
}

/// glibc gives threads that allocate at once arenas of their own, up to
/// eight per core, and memory freed by another thread than the one that
/// allocated it stays in the first one's arena. A node serving hundreds of
/// peers' connections from a few threads spreads each connection's
/// buffers over several arenas that way; two arenas keep that
/// fragmentation small and still let both of a small machine's cores
/// allocate at once. `MALLOC_ARENA_MAX` in the environment still wins.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; called before
        // any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

/// SIGTERM and SIGINT (stop), SIGHUP (reload), each registered when
/// created.
struct Signals {
    term: Option<tokio::signal::unix::Signal>,
    int: Option<tokio::signal::unix::Signal>,
    hup: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn register() -> Signals {
        use tokio::signal::unix::{signal, SignalKind};
        Signals {
            term: signal(SignalKind::terminate()).ok(),
            int: signal(SignalKind::interrupt()).ok(),
            hup: signal(SignalKind::hangup()).ok(),
        }
    }

    async fn wait(self) {
        let (Some(mut term), Some(mut int)) = (self.term, self.int) else {
            // Without signal handlers the node still stops when killed.
            std::future::pending::<()>().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
}

fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("LIAISON_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,rusqlite_migration=warn"));
    // Colour only for a person at a terminal: a log file, journald or a
    // pipe gets plain text (and `NO_COLOR` turns it off anywhere).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
