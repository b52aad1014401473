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
        tokio::spawn(async move {
            signals.wait().await;
            tracing::info!("signal received, stopping");
            shutdown.cancel();
        });
        running.wait().await;
        ExitCode::SUCCESS
    })
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

/// SIGTERM and SIGINT, each registered when created.
struct Signals {
    term: Option<tokio::signal::unix::Signal>,
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn register() -> Signals {
        use tokio::signal::unix::{signal, SignalKind};
        Signals {
            term: signal(SignalKind::terminate()).ok(),
            int: signal(SignalKind::interrupt()).ok(),
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
