//! `liaisonctl demo`: a real federation of three nodes on this machine,
//! walked through the whole job, step by step; and `liaisonctl demo
//! roster`, the synthetic roster it imports.
//!
//! The demo starts three `liaison-node` processes (the binary next to
//! `liaisonctl`) on loopback ports with a fresh federation CA: Pingliang
//! (平凉, the outflow city) and two host regions, Lanzhou (兰州) and Xi'an
//! (西安). It then talks to each node's admin service exactly as the other
//! verbs do (never through `liaisonctl` subprocesses), and narrates: peers,
//! branches, the roster import, the uncovered report, a co-management
//! agreement, the members syncing to Lanzhou, the lost-contact report, the
//! host's records coming back, and a transfer. State lives in a temporary
//! directory (or `--keep DIR`); node logs are `<dir>/<node>/node.log`.

mod nodes;
mod roster;

use std::future::Future;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::{Datelike, NaiveDate};
use clap::Subcommand;
use liaison_proto::v1 as pb;
use liaisonctl::output::{dash, Table};

use nodes::{Layout, Node, LANZHOU, PINGLIANG, REGIONS, XIAN};
use roster::{DESTINATIONS, HOME_BRANCHES};

use super::Admin;

/// Bound on one admin call (the import has its own).
const RPC_TIMEOUT: Duration = Duration::from_secs(30);
const IMPORT_TIMEOUT: Duration = Duration::from_secs(300);
/// Bound on waiting for the peers' links.
const LINK_WAIT: Duration = Duration::from_secs(60);
/// Bound on waiting for one message to cross the federation.
const FLOW_WAIT: Duration = Duration::from_secs(60);
/// Bound on waiting for the covered members to arrive at Lanzhou.
const SYNC_WAIT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(100);

/// The file that marks a directory as a demo's state, so `--keep` may
/// replace it.
const MARKER: &str = ".liaison-demo";
const STEPS: u32 = 10;

/// Mobile members of Pingliang at the end of 2018.
const DEFAULT_COUNT: u32 = 7074;
const DEFAULT_SEED: u64 = 2018;

const HOME_BRANCHES_HELP: &str = "\
Home branches: the home_branch column names one of these org ids, which a
node must have before the import (`liaisonctl demo` creates them at Pingliang
with `liaisonctl org add ID --name NAME --level branch`):
  pl-kongtong    崆峒区农村第一党支部
  pl-jingning    静宁县农村第一党支部
  pl-zhuanglang  庄浪县农村第一党支部
  pl-jingchuan   泾川县农村第一党支部
  pl-huating     华亭市农村第一党支部
  pl-lingtai     灵台县农村第一党支部
  pl-chongxin    崇信县农村第一党支部

Destinations (destination_place, county-level codes): Lanzhou 6201xx, Baiyin
6204xx, Xi'an 6101xx, Beijing 11xxxx, Tianjin 12xxxx, Yinchuan 6401xx, Wuzhong
6403xx, Urumqi 6501xx. The same --count, --seed and --as-of give the same
file, byte for byte.";

/// Arguments of `liaisonctl demo`.
#[derive(Debug, clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Starts three liaison-node processes (Pingliang 平凉, the outflow city; Lanzhou 兰州 \
and Xi'an 西安, host regions) with a fresh federation CA on loopback ports, and walks through \
peers, branches, a synthetic roster, a co-management agreement, the members syncing, the \
lost-contact report, the host's records coming home and a transfer. Then the nodes keep \
running, with the commands to explore them, until Ctrl-C.\n\nNeeds liaison-node next to \
liaisonctl: `cargo build --release` builds both."
)]
pub struct DemoArgs {
    #[command(subcommand)]
    command: Option<DemoCommand>,
    /// Keep the state (CA, node configs, databases, logs) in DIR: created if
    /// missing; refused if not empty, unless it holds a previous demo's state,
    /// which is replaced. Default: a temporary directory, deleted at the end.
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
    /// Run the script, stop the nodes cleanly and exit, instead of leaving
    /// them running until Ctrl-C.
    #[arg(long)]
    exit_after: bool,
    /// Mobile members in Pingliang's synthetic roster (7,074 at the end of
    /// 2018); at least 50.
    #[arg(long, default_value_t = DEFAULT_COUNT, value_parser = clap::value_parser!(u32).range(50..=100_000))]
    count: u32,
    /// Seed of the synthetic roster.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,
}

#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// Write a synthetic roster of Pingliang's mobile members (流动党员) as
    /// the CSV `member import` reads: the "four more, four fewer" profile
    /// (四多四少), the study's eight destinations, valid ID numbers.
    Roster(RosterArgs),
}

#[derive(Debug, clap::Args)]
#[command(after_help = HOME_BRANCHES_HELP)]
pub struct RosterArgs {
    /// How many members.
    #[arg(long, default_value_t = DEFAULT_COUNT, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    count: u32,
    /// Seed: the same seed (with the same count and date) gives the same file.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,
    /// Count departure dates back from this day (YYYY-MM-DD); default:
    /// today in Beijing time. Imported later, more members show as lost.
    #[arg(long, value_name = "DATE")]
    as_of: Option<NaiveDate>,
    /// Write to FILE (created with mode 0600) instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Also write the home branches the roster names to FILE, as the CSV
    /// `org import` reads (a node needs them before the roster's import).
    #[arg(long, value_name = "FILE")]
    orgs: Option<PathBuf>,
}

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    match args.command {
        Some(DemoCommand::Roster(roster_args)) => write_roster(roster_args),
        None => run_demo(args),
    }
}

/// Today in Beijing time, as the nodes count days.
fn today() -> NaiveDate {
    chrono::Utc::now()
        .with_timezone(&liaison_types::time::china_time())
        .date_naive()
}

fn write_roster(args: RosterArgs) -> anyhow::Result<()> {
    let as_of = args.as_of.unwrap_or_else(today);
    let csv = roster::generate(args.count as usize, args.seed, as_of).csv();
    match &args.out {
        Some(path) => {
            write_private(path, csv.as_bytes())?;
            eprintln!(
                "wrote {} members to {} (seed {}, departures counted back from {as_of})",
                args.count,
                path.display(),
                args.seed
            );
        }
        None => liaisonctl::output::write_out(csv.as_bytes()),
    }
    if let Some(path) = &args.orgs {
        let mut orgs = String::from("组织代码,组织名称,层级\n");
        for branch in &HOME_BRANCHES {
            orgs.push_str(&format!("{},{},党支部\n", branch.org_id, branch.name));
        }
        std::fs::write(path, orgs.as_bytes())
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        eprintln!(
            "wrote the {} home branches to {} (`liaisonctl org import {}` adds them)",
            HOME_BRANCHES.len(),
            path.display(),
            path.display()
        );
    }
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}

// ------------------------------------------------------------ the run

fn run_demo(args: DemoArgs) -> anyhow::Result<()> {
    let binary = nodes::node_binary()?;
    // Worker threads keep the admin connections' tasks running while the
    // main thread waits for a node to exit, so the node's graceful shutdown
    // sees them close.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        // Signal handlers first: from here on Ctrl-C stops the nodes.
        let mut interrupt = Interrupt::new()?;
        let state = StateDir::prepare(args.keep.as_deref()).await?;
        let started = Instant::now();
        let mut script = Script::new(&state.path, args.count as usize, args.seed);
        let outcome = {
            let run = script.run(&binary);
            tokio::pin!(run);
            tokio::select! {
                outcome = &mut run => Ok(outcome),
                signal = interrupt.recv() => {
                    liaisonctl::outln!("\n{signal}: stopping the nodes …");
                    Err(signal)
                }
            }
            // The script's future, which owns the nodes, is dropped here:
            // that stops them.
        };
        let mut fed = match outcome {
            Ok(Ok(fed)) => fed,
            Ok(Err(error)) => {
                return Err(error.context(state.failure_note(script.step, script.title)))
            }
            Err(signal) => {
                state.finish();
                bail!(
                    "interrupted ({signal}) during step {}/{STEPS} ({})",
                    script.step,
                    script.title
                );
            }
        };
        script.summary(&fed, started.elapsed());
        if !args.exit_after {
            explore(&fed, &state);
            let signal = interrupt.recv().await;
            liaisonctl::outln!("\n{signal}: stopping the nodes …");
        }
        fed.stop()?;
        state.finish();
        Ok(())
    })
}

/// Ctrl-C (SIGINT) and SIGTERM.
struct Interrupt {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Interrupt {
    fn new() -> anyhow::Result<Interrupt> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Interrupt {
            term: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot handle Ctrl-C")?,
        })
    }

    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "Ctrl-C",
            _ = self.term.recv() => "SIGTERM",
        }
    }
}

/// Where the demo keeps its state.
struct StateDir {
    path: PathBuf,
    /// A directory of our own, deleted at the end (unless the demo fails).
    temporary: bool,
}

impl StateDir {
    async fn prepare(keep: Option<&Path>) -> anyhow::Result<StateDir> {
        let (path, temporary) = match keep {
            Some(dir) => {
                prepare_kept(dir).await?;
                let path = std::fs::canonicalize(dir)
                    .with_context(|| format!("cannot resolve {}", dir.display()))?;
                (path, false)
            }
            None => {
                let base = std::env::temp_dir();
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.subsec_nanos())
                    .unwrap_or(0);
                let path = base.join(format!("liaison-demo-{}-{nanos:x}", std::process::id()));
                std::fs::create_dir(&path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                (path, true)
            }
        };
        std::fs::write(
            path.join(MARKER),
            "The state of `liaisonctl demo`: `liaisonctl demo --keep` may replace this directory.\n",
        )
        .with_context(|| format!("cannot write in {}", path.display()))?;
        for region in &REGIONS {
            Layout::of(&path, region).check_socket_path()?;
        }
        Ok(StateDir { path, temporary })
    }

    /// What to tell when the demo failed: at which step, and where the
    /// state and logs are.
    fn failure_note(&self, step: u32, title: &str) -> String {
        let logs: Vec<String> = REGIONS
            .iter()
            .map(|r| Layout::of(&self.path, r).log.display().to_string())
            .collect();
        format!(
            "the demo failed at step {step}/{STEPS} ({title}); its state is kept in {} (node logs: {})",
            self.path.display(),
            logs.join(", ")
        )
    }

    fn finish(&self) {
        if self.temporary {
            match std::fs::remove_dir_all(&self.path) {
                Ok(()) => liaisonctl::outln!(
                    "Stopped. The demo's state in {} was deleted (--keep DIR keeps it).",
                    self.path.display()
                ),
                Err(e) => eprintln!("liaisonctl: cannot delete {}: {e}", self.path.display()),
            }
        } else {
            liaisonctl::outln!(
                "Stopped. The state stays in {}; start the nodes again with",
                self.path.display()
            );
            for region in &REGIONS {
                liaisonctl::outln!(
                    "  {} --config {} &",
                    node_path_hint(),
                    Layout::of(&self.path, region).config.display()
                );
            }
        }
    }
}

fn node_path_hint() -> String {
    nodes::node_binary()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "liaison-node".into())
}

/// Makes `dir` ready: missing or empty is fine; a previous demo's state is
/// cleared (unless its nodes still run); anything else is refused.
async fn prepare_kept(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        return std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create {}", dir.display()));
    }
    if !dir.is_dir() {
        bail!("--keep {}: not a directory", dir.display());
    }
    let entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .collect::<Result<_, _>>()?;
    if entries.is_empty() {
        return Ok(());
    }
    if !dir.join(MARKER).is_file() {
        bail!(
            "--keep {}: the directory is not empty and does not hold a previous demo's state (no {MARKER} file); choose a new or empty directory",
            dir.display()
        );
    }
    for region in &REGIONS {
        let socket = Layout::of(dir, region).socket;
        if nodes::answers(&socket).await {
            bail!(
                "--keep {}: a node of the previous demo still runs there (it answers on {}); stop it first",
                dir.display(),
                socket.display()
            );
        }
    }
    for name in ["ca", "roster.csv", "pingliang", "lanzhou", "xian", MARKER] {
        let path = dir.join(name);
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else if path.exists() {
            std::fs::remove_file(&path)
        } else {
            Ok(())
        };
        removed.with_context(|| format!("cannot clear the previous demo's {}", path.display()))?;
    }
    Ok(())
}

/// The three running nodes, and what the script did with them.
struct Federation {
    p: Node,
    l: Node,
    x: Node,
    agreement_id: String,
    hosted: u64,
    /// The member who reported in at Lanzhou and was transferred there.
    member_id: String,
    member_name: String,
    transfer_id: String,
}

impl Federation {
    /// Stops the three nodes cleanly (SIGTERM, then wait).
    fn stop(&mut self) -> anyhow::Result<()> {
        for node in [&mut self.p, &mut self.l, &mut self.x] {
            if let Some(status) = node.stop()? {
                if !status.success() {
                    eprintln!(
                        "liaisonctl: liaison-node {} stopped with {status}; see {}",
                        node.region.node_id,
                        node.layout.log.display()
                    );
                }
            }
        }
        Ok(())
    }
}

/// The narrated script and where it is.
struct Script {
    dir: PathBuf,
    count: usize,
    seed: u64,
    step: u32,
    title: &'static str,
    step_started: Instant,
    timings: Vec<(u32, &'static str, Duration)>,
}

impl Script {
    fn new(dir: &Path, count: usize, seed: u64) -> Script {
        Script {
            dir: dir.to_owned(),
            count,
            seed,
            step: 0,
            title: "starting",
            step_started: Instant::now(),
            timings: Vec::new(),
        }
    }

    /// Starts step `title`: prints its heading and records the previous
    /// step's time.
    fn begin(&mut self, title: &'static str, chinese: &str) {
        self.end_step();
        self.step += 1;
        self.title = title;
        self.step_started = Instant::now();
        liaisonctl::outln!("\n[{}/{STEPS}] {title} ({chinese})", self.step);
    }

    fn end_step(&mut self) {
        if self.step > 0 && self.timings.last().is_none_or(|t| t.0 != self.step) {
            self.timings
                .push((self.step, self.title, self.step_started.elapsed()));
        }
    }

    /// Polls `probe` until it gives a value, for at most `within`; on
    /// timeout the error names the step, what was awaited and the logs.
    async fn wait<T>(
        &self,
        what: &str,
        within: Duration,
        mut probe: impl AsyncFnMut() -> anyhow::Result<Option<T>>,
    ) -> anyhow::Result<T> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(value) = probe().await? {
                return Ok(value);
            }
            if Instant::now() >= deadline {
                bail!("timed out after {} s waiting for {what}", within.as_secs());
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The whole script; returns the running federation.
    async fn run(&mut self, binary: &Path) -> anyhow::Result<Federation> {
        liaisonctl::outln!(
            "Liaison demo: a federation of three real nodes on this machine, on loopback ports only."
        );
        liaisonctl::outln!(
            "State (CA, configs, databases, logs): {}",
            self.dir.display()
        );
        let mut fed = self.start_nodes(binary).await?;
        self.peers(&mut fed).await?;
        self.branches(&mut fed).await?;
        self.import(&mut fed).await?;
        self.uncovered(&mut fed).await?;
        let signed_at = self.agreement(&mut fed).await?;
        self.sync(&mut fed, signed_at).await?;
        let lost = self.lost_contact(&mut fed).await?;
        self.host_records(&mut fed, lost).await?;
        self.transfer(&mut fed).await?;
        self.end_step();
        Ok(fed)
    }

    /// 1. The CA, the certificates, the configs, three nodes.
    async fn start_nodes(&mut self, binary: &Path) -> anyhow::Result<Federation> {
        self.begin("A federation and its nodes", "联邦, 节点");
        say("Every region runs its own node and keeps its own records. A federation CA (根证书)");
        say("issues each node a certificate that names it; nodes speak to each other only over");
        say("mutual TLS with these certificates, and operators speak to their own node only.");
        let dir = self.dir.clone();
        let ca_dir = nodes::make_ca(&dir)?;
        let mut started = Vec::new();
        for region in REGIONS {
            let layout = Layout::of(&dir, &region);
            std::fs::create_dir_all(&layout.dir)
                .with_context(|| format!("cannot create {}", layout.dir.display()))?;
            nodes::prepare(&ca_dir, &layout, &region)?;
            let node = Node::start(binary, region, layout)
                .await
                .with_context(|| format!("starting the {} node", region.name))?;
            started.push(node);
        }
        let mut started = started.into_iter();
        let (Some(p), Some(l), Some(x)) = (started.next(), started.next(), started.next()) else {
            bail!("three nodes were started");
        };
        for (node, role) in [
            (&p, "the outflow city (流出地)"),
            (&l, "a host region (流入地), serves 6201"),
            (&x, "a host region (流入地), serves 6101"),
        ] {
            say(&format!(
                "started {} {:<9} node {:<9} on {}  — {role}",
                node.region.display_name, node.region.name, node.region.node_id, node.addr
            ));
        }
        say(&format!(
            "CA: {}/ca (federation `{}`); logs: <state>/<node>/node.log",
            dir.display(),
            nodes::FEDERATION
        ));
        Ok(Federation {
            p,
            l,
            x,
            agreement_id: String::new(),
            member_id: String::new(),
            member_name: String::new(),
            transfer_id: String::new(),
            hosted: 0,
        })
    }

    /// 2. Each operator admits the other regions' nodes.
    async fn peers(&mut self, fed: &mut Federation) -> anyhow::Result<()> {
        self.begin("Peers", "对等节点");
        say("A certificate is not enough: each operator admits the other regions' nodes by name.");
        say("Pingliang records which place codes each host serves, so it knows where members go.");
        let Federation { p, l, x, .. } = fed;
        add_peer(p, l).await?;
        add_peer(p, x).await?;
        add_peer(l, p).await?;
        add_peer(x, p).await?;
        self.wait(
            "the links Pingliang–Lanzhou and Pingliang–Xi'an",
            LINK_WAIT,
            async || {
                let peers = rpc(
                    "PeerList",
                    p.admin.peer_list(pb::PeerListRequest { pending: false }),
                )
                .await?;
                let up = |id: &str| {
                    peers
                        .peers
                        .iter()
                        .any(|q| q.node_id == id && q.outbound_up && q.inbound_up)
                };
                Ok((up(LANZHOU.node_id) && up(XIAN.node_id)).then_some(()))
            },
        )
        .await?;
        say("Pingliang ⇄ Lanzhou and Pingliang ⇄ Xi'an are linked: each pulls the other's change log.");
        Ok(())
    }

    /// 3. Home branches at Pingliang, mobile members' branches at the hosts.
    async fn branches(&mut self, fed: &mut Federation) -> anyhow::Result<()> {
        self.begin("Branches", "党支部");
        say("Pingliang's members belong to home branches in its seven counties (组织关系 stays there);");
        say("the hosts run branches for mobile members (流动党员党支部) by trade (同业) or hometown (同乡).");
        for b in HOME_BRANCHES {
            add_org(&mut fed.p, b.org_id, b.name, "branch", "").await?;
        }
        for (id, name, form) in [
            (HOST_BRANCH, HOST_BRANCH_NAME, "同业"),
            ("lz-commerce", "兰州市商贸餐饮流动党员党支部", "同业"),
            ("lz-pingliang", "平凉籍在兰流动党员联合党支部", "同乡"),
        ] {
            add_org(&mut fed.l, id, name, "mobile_branch", form).await?;
        }
        add_org(
            &mut fed.x,
            "xa-pingliang",
            "西安市平凉籍流动党员党支部",
            "mobile_branch",
            "同乡",
        )
        .await?;
        say(&format!(
            "Pingliang: {} county branches ({} …); Lanzhou: {HOST_BRANCH}, lz-commerce, lz-pingliang;",
            HOME_BRANCHES.len(),
            HOME_BRANCHES[0].org_id
        ));
        say("Xi'an: xa-pingliang (`org add`).");
        Ok(())
    }

    /// 4. The synthetic roster, imported at Pingliang.
    async fn import(&mut self, fed: &mut Federation) -> anyhow::Result<()> {
        self.begin("The roster", "流动党员信息库");
        let roster = roster::generate(self.count, self.seed, today());
        let csv = roster.csv();
        let roster_path = self.dir.join("roster.csv");
        write_private(&roster_path, csv.as_bytes())?;
        say(&format!(
            "A synthetic roster of {} mobile members (流动党员) of Pingliang, shaped like the study's",
            self.count
        ));
        say(&format!(
            "figures (7,074 at the end of 2018): `liaisonctl demo roster --count {} --seed {}`,",
            self.count, self.seed
        ));
        say(&format!(
            "written to {}. Every person in it is invented.",
            roster_path.display()
        ));
        let profile: Vec<String> = roster
            .profile()
            .iter()
            .map(|(what, share)| format!("{share:.0}% {what}"))
            .collect();
        say(&format!(
            "Four more, four fewer (四多四少): {}, {};",
            profile[0], profile[1]
        ));
        say(&format!("{}, {}.", profile[2], profile[3]));
        say("Importing at Pingliang (`member import roster.csv`) …");
        let import_started = Instant::now();
        let result = rpc_within(
            "MemberImport",
            IMPORT_TIMEOUT,
            fed.p
                .admin
                .member_import(tokio_stream::iter(liaisonctl::sheet::send::csv_chunks(
                    csv.as_bytes(),
                    Default::default(),
                )?)),
        )
        .await?;
        if let Some(problem) = result.problems.first() {
            bail!(
                "the roster has {} bad rows, e.g. line {}: {}",
                result.problems.len(),
                problem.line,
                problem.message
            );
        }
        say(&format!(
            "Pingliang imported {} members with their departures (流出登记) in {:.1} s:",
            result.imported,
            import_started.elapsed().as_secs_f64()
        ));
        let mut table = Table::new(&["DESTINATION", "", "CODE", "MEMBERS", "NODE"]);
        for (city, n) in roster.by_city() {
            let node = match city.prefix {
                "6201" => LANZHOU.node_id,
                "6101" => XIAN.node_id,
                _ => "-",
            };
            table.row(vec![
                city.name.into(),
                city.name_zh.into(),
                city.code.into(),
                n.to_string(),
                node.into(),
            ]);
        }
        print_table(&table);
        Ok(())
    }

    /// 5. Who is away without an agreement.
    async fn uncovered(&mut self, fed: &mut Federation) -> anyhow::Result<()> {
        self.begin("Who is uncovered", "未覆盖");
        say(
            "Nothing about a member leaves Pingliang without a basis. With no agreement yet, every",
        );
        say("member away is uncovered, even where the region has a node (`report uncovered`):");
        let report = rpc(
            "ReportUncovered",
            fed.p.admin.report_uncovered(pb::ReportUncoveredRequest {}),
        )
        .await?;
        print_table(&uncovered_by_city(&report));
        say(&format!(
            "total: {} members away without an active agreement",
            report.total
        ));
        Ok(())
    }

    /// 6. Pingliang proposes, Lanzhou accepts; returns when Lanzhou signed.
    async fn agreement(&mut self, fed: &mut Federation) -> anyhow::Result<Instant> {
        self.begin("A co-management agreement", "双向共管协议");
        say("Pingliang (the outflow side, who coordinates) proposes an agreement to Lanzhou; its scope");
        say("is every Pingliang member registered as gone to a place Lanzhou serves. Lanzhou signs.");
        let Federation { p, l, .. } = fed;
        let today = today();
        let number = format!("平凉-兰州-{}-01", today.year());
        let until = NaiveDate::from_ymd_opt(today.year() + 1, 12, 31).unwrap_or(today);
        let proposed = rpc(
            "AgreementPropose",
            p.admin.agreement_propose(pb::AgreementProposeRequest {
                peer: LANZHOU.node_id.into(),
                role: "outflow".into(),
                terms: Some(agreement_terms(&number, today, until)),
            }),
        )
        .await?;
        let agreement_id = proposed.agreement_id.clone();
        say(&format!(
            "Pingliang proposed {number} (`agreement propose`), in force {today} to {until}: {}.",
            proposed.state
        ));
        self.wait("Lanzhou to receive the proposal", FLOW_WAIT, async || {
            Ok(agreement_state(&mut l.admin, &agreement_id)
                .await?
                .filter(|s| s == "proposed"))
        })
        .await?;
        let accepted = rpc(
            "AgreementAccept",
            l.admin.agreement_accept(pb::AgreementRef {
                agreement_id: agreement_id.clone(),
            }),
        )
        .await?;
        let signed_at = Instant::now();
        say(&format!(
            "Lanzhou accepted and signed version {} (`agreement accept`).",
            accepted.version
        ));
        // The coordinator activates it on applying Lanzhou's signature, and
        // starts sharing in the same transaction; step 7 watches Lanzhou.
        self.wait(
            "the agreement to be active at Pingliang",
            FLOW_WAIT,
            async || {
                Ok(agreement_state(&mut p.admin, &agreement_id)
                    .await?
                    .filter(|s| s == "active"))
            },
        )
        .await?;
        let shown = rpc(
            "AgreementShow",
            p.admin.agreement_show(pb::AgreementRef {
                agreement_id: agreement_id.clone(),
            }),
        )
        .await?;
        let signatures: Vec<String> = shown
            .history
            .iter()
            .filter(|v| v.version == shown.active_version)
            .flat_map(|v| v.signatures.iter())
            .map(|s| format!("{} ({})", s.signer, s.status))
            .collect();
        say(&format!(
            "Active at Pingliang, the coordinator: version {}, signed by {}.",
            shown.active_version,
            signatures.join(" and ")
        ));
        fed.agreement_id = agreement_id;
        Ok(signed_at)
    }

    /// 7. The covered members arrive at Lanzhou, with a progress bar.
    async fn sync(&mut self, fed: &mut Federation, signed_at: Instant) -> anyhow::Result<()> {
        self.begin("Members syncing to Lanzhou", "信息互通");
        let Federation { p, l, .. } = fed;
        let target = count_members(
            &mut p.admin,
            pb::MemberListRequest {
                scope: "owned".into(),
                away: true,
                destination: LANZHOU.serves[0].into(),
                ..Default::default()
            },
        )
        .await?;
        say(&format!(
            "The agreement covers Pingliang's {target} members away to Lanzhou. Pingliang shares with"
        ));
        say("Lanzhou what a host needs — name, gender, birth year, phone, party status, home branch,");
        say("contact status, departure, certificate — never the ID number, birth date or address.");
        let mut bar = Progress::new(target);
        let hosted = self
            .wait(
                "the covered members to arrive at Lanzhou",
                SYNC_WAIT,
                async || {
                    let n = count_members(
                        &mut l.admin,
                        pb::MemberListRequest {
                            scope: "hosted".into(),
                            ..Default::default()
                        },
                    )
                    .await?;
                    bar.draw(n, signed_at.elapsed());
                    Ok((n >= target).then_some(n))
                },
            )
            .await;
        bar.finish();
        let hosted = hosted?;
        let agreement_id = fed.agreement_id.clone();
        self.wait(
            "the agreement to be active at Lanzhou",
            FLOW_WAIT,
            async || {
                Ok(agreement_state(&mut l.admin, &agreement_id)
                    .await?
                    .filter(|s| s == "active"))
            },
        )
        .await?;
        let replication = rpc(
            "PeerStatus",
            l.admin.peer_status(pb::PeerStatusRequest {
                node_id: PINGLIANG.node_id.into(),
            }),
        )
        .await?;
        let applied = replication
            .peers
            .first()
            .map(|r| r.applied_total)
            .unwrap_or(0);
        say(&format!(
            "{hosted} members arrived at Lanzhou within {:.1} s of its signature ({applied} events applied",
            signed_at.elapsed().as_secs_f64()
        ));
        say("from Pingliang's change log, each exactly once; `peer status`). The agreement is active");
        say("on both sides (`agreement list`).");
        let sample = rpc(
            "MemberList",
            l.admin.member_list(pb::MemberListRequest {
                scope: "hosted".into(),
                limit: 1,
                ..Default::default()
            }),
        )
        .await?;
        if let Some(m) = sample.members.first() {
            say(&format!(
                "At Lanzhou (`member list --hosted`), e.g. {} ({}, born {}, at {}, home branch {}):",
                m.name,
                m.gender,
                m.birth_year,
                m.outflow
                    .as_ref()
                    .map(|o| o.destination_place.as_str())
                    .unwrap_or("-"),
                dash(&m.home_branch_name),
            ));
            say(&format!(
                "national ID {}, birth date {}; shared under agreement {}.",
                or_not_shared(&m.national_id),
                or_not_shared(&m.birth_date),
                m.basis
            ));
        }
        let report = rpc(
            "ReportUncovered",
            p.admin.report_uncovered(pb::ReportUncoveredRequest {}),
        )
        .await?;
        say(&format!(
            "`report uncovered` at Pingliang now counts {} members (Lanzhou's are covered).",
            report.total
        ));
        fed.hosted = hosted;
        Ok(())
    }

    /// 8. Counts by contact status; returns a lost member Lanzhou hosts.
    async fn lost_contact(&mut self, fed: &mut Federation) -> anyhow::Result<Option<pb::Member>> {
        self.begin("Lost contact", "失联");
        say("Pingliang derives each member's contact status from the last contact or org life: over");
        say("3 months without is overdue (逾期), over 6 months lost (失联). Nobody has recorded a contact");
        say("yet, so the departure dates decide (`member list --owned --away --status STATUS`):");
        let Federation { p, l, .. } = fed;
        let mut table = Table::new(&["STATUS", "", "MEMBERS"]);
        for (status, chinese) in CONTACT_STATUSES {
            let n = count_members(
                &mut p.admin,
                pb::MemberListRequest {
                    scope: "owned".into(),
                    away: true,
                    contact_status: status.into(),
                    ..Default::default()
                },
            )
            .await?;
            table.row(vec![status.into(), chinese.into(), n.to_string()]);
        }
        print_table(&table);
        say("By destination:");
        let mut table = Table::new(&["DESTINATION", "", "AWAY", "LOST"]);
        for city in DESTINATIONS {
            let request = |status: &str| pb::MemberListRequest {
                scope: "owned".into(),
                away: true,
                destination: city.prefix.into(),
                contact_status: status.into(),
                ..Default::default()
            };
            let away = count_members(&mut p.admin, request("")).await?;
            let lost = count_members(&mut p.admin, request("lost")).await?;
            table.row(vec![
                city.name.into(),
                city.name_zh.into(),
                away.to_string(),
                lost.to_string(),
            ]);
        }
        print_table(&table);
        let lost_at_l = rpc(
            "MemberList",
            l.admin.member_list(pb::MemberListRequest {
                scope: "hosted".into(),
                contact_status: "lost".into(),
                limit: 3,
                ..Default::default()
            }),
        )
        .await?;
        say(&format!(
            "Lanzhou sees the status too: {} of its {} hosted members are lost, e.g.:",
            lost_at_l.total, fed.hosted
        ));
        let mut table = Table::new(&["MEMBER", "NAME", "PLACE", "LEFT ON"]);
        for m in &lost_at_l.members {
            let o = m.outflow.clone().unwrap_or_default();
            table.row(vec![
                m.member_id.clone(),
                m.name.clone(),
                o.destination_place,
                o.departed_on,
            ]);
        }
        print_table(&table);
        Ok(lost_at_l.members.into_iter().next())
    }

    /// 9. Lanzhou's host section, contact and activity reach Pingliang.
    async fn host_records(
        &mut self,
        fed: &mut Federation,
        lost: Option<pb::Member>,
    ) -> anyhow::Result<()> {
        self.begin("The host's part comes home", "流入地管理");
        let Federation { p, l, .. } = fed;
        let member = match lost {
            Some(m) => m,
            None => rpc(
                "MemberList",
                l.admin.member_list(pb::MemberListRequest {
                    scope: "hosted".into(),
                    limit: 1,
                    ..Default::default()
                }),
            )
            .await?
            .members
            .into_iter()
            .next()
            .context("Lanzhou hosts no member")?,
        };
        let member_id = member.member_id.clone();
        let name = member.name.clone();
        let today = today().to_string();
        say(&format!(
            "{name} reports in (报到) at Lanzhou's construction-trade branch with the activity certificate."
        ));
        say("Lanzhou writes its host section (`member host-set`), records the org life as a contact");
        say("(`contact record --channel org_life`) and a theme party day (`activity record`).");
        rpc(
            "HostSectionSet",
            l.admin.host_section_set(pb::HostSectionRequest {
                member_id: member_id.clone(),
                host_branch: Some(HOST_BRANCH_NAME.into()),
                reported_on: Some(today.clone()),
                address: Some("兰州市城关区".into()),
                employer: Some("兰州陇原建设工程有限公司".into()),
                industry: Some("建筑业".into()),
                job: Some("施工员".into()),
                contact_person: Some("赵书记".into()),
                contact_phone: Some("0931-8456789".into()),
                last_seen_at_host: Some(today.clone()),
                station: None,
            }),
        )
        .await?;
        rpc(
            "ContactRecord",
            l.admin.contact_record(pb::ContactRequest {
                member_id: member_id.clone(),
                channel: "org_life".into(),
                at: String::new(),
                by: HOST_BRANCH_NAME.into(),
                outcome: "参加支部主题党日，持《流动党员活动证》报到".into(),
            }),
        )
        .await?;
        rpc(
            "ActivityRecord",
            l.admin.activity_record(pb::ActivityRequest {
                member_id: member_id.clone(),
                kind: "theme_day".into(),
                date: today,
                branch: HOST_BRANCH_NAME.into(),
                hours: 2.5,
                note: "学习《关于进一步加强和改进流动党员管理工作的意见》".into(),
            }),
        )
        .await?;
        let (home_view, activity) = self
            .wait(
                "Lanzhou's records to reach Pingliang",
                FLOW_WAIT,
                async || {
                    let m = rpc(
                        "MemberShow",
                        p.admin.member_show(pb::MemberRef {
                            member_id: member_id.clone(),
                        }),
                    )
                    .await?;
                    let activities = rpc(
                        "ActivityList",
                        p.admin.activity_list(pb::ActivityListRequest {
                            member_id: member_id.clone(),
                            limit: 10,
                        }),
                    )
                    .await?;
                    let host_section = m.host_sections.iter().any(|h| h.author == LANZHOU.node_id);
                    let activity = activities
                        .activities
                        .into_iter()
                        .find(|a| a.author == LANZHOU.node_id);
                    Ok(match activity {
                        Some(a) if host_section && m.contact_status == "in_contact" => Some((m, a)),
                        _ => None,
                    })
                },
            )
            .await?;
        say(&format!(
            "Back at Pingliang (`member show`, `activity list`), {name} is now {} (was {}):",
            home_view.contact_status, member.contact_status
        ));
        if let Some(h) = home_view
            .host_sections
            .iter()
            .find(|h| h.author == LANZHOU.node_id)
        {
            say(&format!(
                "  host section by lanzhou: {} at {}, {} ({}), reported in on {}",
                h.host_branch, h.employer, h.job, h.industry, h.reported_on
            ));
        }
        say(&format!(
            "  last contact {} (org life, recorded by lanzhou)",
            home_view.last_contact
        ));
        say(&format!(
            "  activity by {}: {} on {}, {} h — {}",
            activity.author, activity.kind, activity.date, activity.hours, activity.note
        ));
        fed.member_id = member_id;
        fed.member_name = name;
        Ok(())
    }

    /// 10. The member's relationship moves to Lanzhou.
    async fn transfer(&mut self, fed: &mut Federation) -> anyhow::Result<()> {
        self.begin("A transfer", "组织关系转接");
        let Federation {
            p,
            l,
            member_id,
            member_name: name,
            ..
        } = fed;
        say(&format!(
            "{name} has settled in Lanzhou for good: the relationship should follow (应转尽转)."
        ));
        say("Pingliang issues the introduction letter (介绍信) to Lanzhou (`transfer start`); Lanzhou");
        say("accepts into its branch (`transfer accept`); Pingliang releases the member — the commit");
        say("point — and Lanzhou, now the owner, returns the receipt (回执).");
        let transfer = rpc(
            "TransferStart",
            p.admin.transfer_start(pb::TransferStartRequest {
                member_id: member_id.clone(),
                to: LANZHOU.node_id.into(),
                valid_days: 30,
                reason: "在兰州稳定就业并定居".into(),
            }),
        )
        .await?;
        let transfer_id = transfer.transfer_id.clone();
        say(&format!(
            "Letter {} issued {}, valid until {}: {}.",
            transfer.letter_no, transfer.issued_on, transfer.expires_on, transfer.state
        ));
        self.wait("the letter to reach Lanzhou", FLOW_WAIT, async || {
            Ok(transfer_state(&mut l.admin, &transfer_id)
                .await?
                .filter(|s| s == "pending"))
        })
        .await?;
        let accepted = rpc(
            "TransferAccept",
            l.admin.transfer_accept(pb::TransferAcceptRequest {
                transfer_id: transfer_id.clone(),
                branch: HOST_BRANCH.into(),
            }),
        )
        .await?;
        say(&format!(
            "Lanzhou accepted into {HOST_BRANCH}: {}.",
            accepted.state
        ));
        self.wait(
            "the transfer to complete on both sides",
            FLOW_WAIT,
            async || {
                let at_p = transfer_state(&mut p.admin, &transfer_id).await?;
                let at_l = transfer_state(&mut l.admin, &transfer_id).await?;
                Ok(
                    (at_p.as_deref() == Some("completed") && at_l.as_deref() == Some("completed"))
                        .then_some(()),
                )
            },
        )
        .await?;
        say("Completed on both sides (`transfer show`); the receipt is back at Pingliang.");
        let tombstone = rpc(
            "MemberShow",
            p.admin.member_show(pb::MemberRef {
                member_id: member_id.clone(),
            }),
        )
        .await?;
        let moved = tombstone.moved.unwrap_or_default();
        say(&format!(
            "At Pingliang a tombstone remains (`member show`): moved to {} on {}, letter {}.",
            moved.to_node, moved.released_on, moved.letter_no
        ));
        let owned = rpc(
            "MemberShow",
            l.admin.member_show(pb::MemberRef {
                member_id: member_id.clone(),
            }),
        )
        .await?;
        say(&format!(
            "At Lanzhou {} is now its own member (owner {}, generation {}), in {}.",
            owned.name,
            owned.owner,
            owned.generation,
            dash(&owned.home_branch_name)
        ));
        fed.transfer_id = transfer_id;
        Ok(())
    }

    fn summary(&self, fed: &Federation, total: Duration) {
        liaisonctl::outln!("\nDone in {:.1} s:", total.as_secs_f64());
        let mut table = Table::new(&["STEP", "", "SECONDS"]);
        for (step, title, took) in &self.timings {
            table.row(vec![
                step.to_string(),
                (*title).into(),
                format!("{:.1}", took.as_secs_f64()),
            ]);
        }
        print_table(&table);
        say(&format!(
            "agreement {} active on both sides",
            fed.agreement_id
        ));
        say(&format!("{} members hosted at Lanzhou", fed.hosted));
        say(&format!(
            "{} ({}) transferred to Lanzhou by transfer {}",
            fed.member_name, fed.member_id, fed.transfer_id
        ));
    }
}

/// The branch at Lanzhou that receives the member who reports in.
const HOST_BRANCH: &str = "lz-construction";
const HOST_BRANCH_NAME: &str = "兰州市建筑业流动党员党支部";

fn or_not_shared(value: &str) -> &str {
    if value.is_empty() {
        "not shared"
    } else {
        value
    }
}

const CONTACT_STATUSES: [(&str, &str); 6] = [
    ("in_contact", "联系正常"),
    ("overdue", "逾期未联系"),
    ("lost", "失联"),
    ("searching", "查找中"),
    ("regained", "经查找取得联系"),
    ("unreachable", "经查找仍无法取得联系"),
];

/// Prints the commands to explore each node.
fn explore(fed: &Federation, state: &StateDir) {
    let ctl = ctl_command();
    let at = |node: &Node| format!("{ctl} --socket {}", node.layout.socket.display());
    let (p, l, x) = (at(&fed.p), at(&fed.l), at(&fed.x));
    let today = today();
    liaisonctl::outln!(
        "\nThe nodes keep running. Explore them (each operator talks to their own node):"
    );
    liaisonctl::outln!("\n  Pingliang (平凉):");
    for args in [
        "status".to_owned(),
        "report uncovered".to_owned(),
        "member list --owned --away --status lost --limit 20".to_owned(),
        format!("member show {}", fed.member_id),
        format!("transfer show {}", fed.transfer_id),
        "agreement list".to_owned(),
        "audit list --limit 20".to_owned(),
    ] {
        liaisonctl::outln!("    {p} {args}");
    }
    liaisonctl::outln!("\n  Lanzhou (兰州):");
    for args in [
        "member list --hosted --limit 20".to_owned(),
        format!("member show {}", fed.member_id),
        "transfer list".to_owned(),
        "peer status".to_owned(),
    ] {
        liaisonctl::outln!("    {l} {args}");
    }
    liaisonctl::outln!(
        "\n  Xi'an (西安) has a node but no agreement yet; propose one, accept it, and watch:"
    );
    let number = format!("平凉-西安-{}-01", today.year());
    liaisonctl::outln!(
        "    {p} agreement propose --with 西安 --number {number} --from {today} --until {}-12-31",
        today.year() + 1
    );
    liaisonctl::outln!("    {x} agreement list");
    liaisonctl::outln!("    {x} agreement accept {number} --wait 30");
    liaisonctl::outln!("    {x} member list --hosted --limit 20");
    if !state.temporary {
        liaisonctl::outln!(
            "\n  The state stays in {} (node logs: <node>/node.log).",
            state.path.display()
        );
    }
    liaisonctl::outln!("\nPress Ctrl-C to stop the nodes.");
}

/// How to call this liaisonctl: by name if the one on the PATH is this
/// binary, else by its full path.
fn ctl_command() -> String {
    let Ok(me) = std::env::current_exe().and_then(std::fs::canonicalize) else {
        return "liaisonctl".into();
    };
    let on_path = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths)
            .any(|dir| std::fs::canonicalize(dir.join("liaisonctl")).is_ok_and(|p| p == me))
    });
    if on_path {
        "liaisonctl".into()
    } else {
        me.display().to_string()
    }
}

// ------------------------------------------------------------ helpers

/// Prints narration, indented.
fn say(text: &str) {
    liaisonctl::outln!("  {text}");
}

fn print_table(table: &Table) {
    for line in table.render().lines() {
        liaisonctl::outln!("    {line}");
    }
}

/// Awaits an admin call for at most [`RPC_TIMEOUT`].
async fn rpc<T>(
    what: &str,
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> anyhow::Result<T> {
    rpc_within(what, RPC_TIMEOUT, call).await
}

async fn rpc_within<T>(
    what: &str,
    within: Duration,
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> anyhow::Result<T> {
    match tokio::time::timeout(within, call).await {
        Err(_) => bail!(
            "{what}: the node did not answer within {} s",
            within.as_secs()
        ),
        Ok(Err(status)) => bail!("{what}: {:?}: {}", status.code(), status.message()),
        Ok(Ok(response)) => Ok(response.into_inner()),
    }
}

async fn add_peer(at: &mut Node, other: &Node) -> anyhow::Result<()> {
    let serves = if at.region.node_id == PINGLIANG.node_id {
        other
            .region
            .serves
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    } else {
        Vec::new()
    };
    let peer = rpc(
        "PeerAdd",
        at.admin.peer_add(pb::PeerAddRequest {
            node_id: other.region.node_id.into(),
            endpoint: other.endpoint(),
            fingerprint: String::new(),
            display_name: other.region.display_name.into(),
            serves,
        }),
    )
    .await
    .with_context(|| format!("{} adding peer {}", at.region.node_id, other.region.node_id))?;
    let serves = if peer.serves.is_empty() {
        String::new()
    } else {
        format!(" --serves {}", peer.serves.join(","))
    };
    say(&format!(
        "{}: peer add {} --endpoint {}{serves}",
        at.region.name, peer.node_id, peer.endpoint
    ));
    Ok(())
}

async fn add_org(
    at: &mut Node,
    org_id: &str,
    name: &str,
    level: &str,
    form: &str,
) -> anyhow::Result<()> {
    rpc(
        "OrgAdd",
        at.admin.org_add(pb::Org {
            org_id: org_id.into(),
            name: name.into(),
            level: level.into(),
            form: form.into(),
            ..Default::default()
        }),
    )
    .await
    .with_context(|| format!("{}: org add {org_id}", at.region.node_id))?;
    Ok(())
}

/// How many members a `member list` request matches.
async fn count_members(admin: &mut Admin, request: pb::MemberListRequest) -> anyhow::Result<u64> {
    let request = pb::MemberListRequest {
        limit: 1,
        ..request
    };
    Ok(rpc("MemberList", admin.member_list(request)).await?.total)
}

/// The agreement's state at a node, or `None` if the node does not know it.
async fn agreement_state(admin: &mut Admin, agreement_id: &str) -> anyhow::Result<Option<String>> {
    let call = admin.agreement_show(pb::AgreementRef {
        agreement_id: agreement_id.into(),
    });
    match tokio::time::timeout(RPC_TIMEOUT, call).await {
        Err(_) => bail!(
            "AgreementShow: the node did not answer within {} s",
            RPC_TIMEOUT.as_secs()
        ),
        Ok(Err(status)) if status.code() == tonic::Code::NotFound => Ok(None),
        Ok(Err(status)) => bail!("AgreementShow: {:?}: {}", status.code(), status.message()),
        Ok(Ok(view)) => Ok(Some(view.into_inner().state)),
    }
}

/// The transfer's state at a node, or `None` if the node does not know it.
async fn transfer_state(admin: &mut Admin, transfer_id: &str) -> anyhow::Result<Option<String>> {
    let call = admin.transfer_show(pb::TransferRef {
        transfer_id: transfer_id.into(),
    });
    match tokio::time::timeout(RPC_TIMEOUT, call).await {
        Err(_) => bail!(
            "TransferShow: the node did not answer within {} s",
            RPC_TIMEOUT.as_secs()
        ),
        Ok(Err(status)) if status.code() == tonic::Code::NotFound => Ok(None),
        Ok(Err(status)) => bail!("TransferShow: {:?}: {}", status.code(), status.message()),
        Ok(Ok(view)) => Ok(Some(view.into_inner().state)),
    }
}

fn agreement_terms(number: &str, from: NaiveDate, until: NaiveDate) -> pb::AgreementTerms {
    pb::AgreementTerms {
        number: number.into(),
        effective_from: from.to_string(),
        effective_until: until.to_string(),
        scope_kind: "destination".into(),
        education: "流出地负责外出前教育和学习资料，流入地组织日常学习，培训互认".into(),
        org_life: "流入地流动党员党支部安排组织生活（三会一课、主题党日）".into(),
        dues_collector: "inflow".into(),
        evaluation_input: "流入地每年向流出地反馈民主评议意见".into(),
        contact_report: "monthly".into(),
        services: "兰州平凉籍流动党员联络站：就业、维权、政策咨询".into(),
        outflow_liaisons: vec![pb::LiaisonPerson {
            name: "平凉市委组织部组织科".into(),
            phone: "0933-8212345".into(),
            role: "联络人".into(),
        }],
        inflow_liaisons: vec![pb::LiaisonPerson {
            name: "兰州市委组织部组织一处".into(),
            phone: "0931-8801234".into(),
            role: "联络人".into(),
        }],
        notes: "demo".into(),
        ..Default::default()
    }
}

/// The uncovered groups summed by destination city.
fn uncovered_by_city(report: &pb::ReportUncoveredResponse) -> Table {
    let mut rows: Vec<(String, String, String, u64)> = Vec::new();
    for g in &report.groups {
        let (label, zh) = match roster::city_of(&g.destination_place) {
            Some(city) => (
                format!("{} {}xx", city.name, city.prefix),
                city.name_zh.to_owned(),
            ),
            None => (g.destination_place.clone(), String::new()),
        };
        let node = dash(&g.destination_node);
        match rows.iter_mut().find(|r| r.0 == label && r.2 == node) {
            Some(row) => row.3 += g.members,
            None => rows.push((label, zh, node, g.members)),
        }
    }
    let mut table = Table::new(&["DESTINATION", "", "NODE", "MEMBERS"]);
    for (label, zh, node, n) in rows {
        table.row(vec![label, zh, node, n.to_string()]);
    }
    table
}

/// A text progress bar on stderr: redrawn in place on a terminal, a line
/// every few seconds otherwise.
struct Progress {
    target: u64,
    tty: bool,
    last_line: Option<Instant>,
    last: u64,
}

impl Progress {
    fn new(target: u64) -> Progress {
        Progress {
            target,
            tty: std::io::stderr().is_terminal(),
            last_line: None,
            last: 0,
        }
    }

    fn draw(&mut self, done: u64, elapsed: Duration) {
        self.last = done;
        let line = bar(done, self.target, 40, elapsed);
        let mut stderr = std::io::stderr().lock();
        if self.tty {
            let _ = write!(stderr, "\r  {line}");
        } else if self
            .last_line
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(2))
            || done >= self.target
        {
            let _ = writeln!(stderr, "  {line}");
            self.last_line = Some(Instant::now());
        }
        let _ = stderr.flush();
    }

    fn finish(&mut self) {
        if self.tty {
            let _ = writeln!(std::io::stderr());
        }
    }
}

fn bar(done: u64, target: u64, width: u64, elapsed: Duration) -> String {
    let filled = (done.min(target) * width)
        .checked_div(target)
        .unwrap_or(width);
    format!(
        "[{}{}] {done}/{target} members at Lanzhou  {:.1} s",
        "#".repeat(filled as usize),
        "-".repeat((width - filled) as usize),
        elapsed.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::{parse, refused};
    use crate::Command;

    fn demo(args: &[&str]) -> DemoArgs {
        let mut full = vec!["demo"];
        full.extend_from_slice(args);
        match parse(&full) {
            Command::Demo(args) => args,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn demo_flags_parse_with_defaults() {
        let args = demo(&[]);
        assert!(args.command.is_none() && !args.exit_after && args.keep.is_none());
        assert_eq!((args.count, args.seed), (7074, 2018));
        let args = demo(&[
            "--keep",
            "/tmp/d",
            "--exit-after",
            "--count",
            "2000",
            "--seed",
            "5",
        ]);
        assert_eq!(args.keep, Some(PathBuf::from("/tmp/d")));
        assert!(args.exit_after);
        assert_eq!((args.count, args.seed), (2000, 5));
        assert!(refused(&["demo", "--count", "49"]));
    }

    #[test]
    fn roster_flags_parse() {
        let args = demo(&["roster", "--count", "300", "--seed", "7", "--out", "r.csv"]);
        let Some(DemoCommand::Roster(r)) = args.command else {
            panic!("not roster");
        };
        assert_eq!((r.count, r.seed), (300, 7));
        assert_eq!(r.out, Some(PathBuf::from("r.csv")));
        assert_eq!(r.as_of, None);
        let args = demo(&["roster", "--as-of", "2026-03-01"]);
        let Some(DemoCommand::Roster(r)) = args.command else {
            panic!("not roster");
        };
        assert_eq!(r.as_of, NaiveDate::from_ymd_opt(2026, 3, 1));
        assert!(refused(&["demo", "roster", "--as-of", "March"]));
        assert!(refused(&["demo", "--exit-after", "roster"]));
    }

    #[test]
    fn the_help_names_every_home_branch() {
        for b in HOME_BRANCHES {
            let line = HOME_BRANCHES_HELP
                .lines()
                .find(|l| l.trim_start().starts_with(b.org_id))
                .unwrap_or_else(|| panic!("{} missing from the help", b.org_id));
            assert!(line.ends_with(b.name), "{line}");
        }
    }

    #[test]
    fn bar_fills_in_proportion() {
        let d = Duration::from_millis(1500);
        assert!(bar(0, 10, 10, d).starts_with("[----------] 0/10"));
        assert!(bar(5, 10, 10, d).starts_with("[#####-----] 5/10"));
        assert!(bar(12, 10, 10, d).starts_with("[##########] 12/10"));
        assert!(bar(0, 0, 4, d).starts_with("[####] 0/0"));
        assert!(bar(1, 2, 4, d).ends_with("1.5 s"));
    }

    #[test]
    fn uncovered_groups_sum_by_city() {
        let group = |place: &str, node: &str, n: u64| pb::UncoveredGroup {
            destination_place: place.into(),
            destination_node: node.into(),
            members: n,
            member_ids: Vec::new(),
        };
        let report = pb::ReportUncoveredResponse {
            groups: vec![
                group("620102", "lanzhou", 3),
                group("620103", "lanzhou", 4),
                group("620402", "", 2),
                group("330782", "", 1),
            ],
            total: 10,
        };
        let text = uncovered_by_city(&report).render();
        let rows: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(rows[1], ["Lanzhou", "6201xx", "兰州", "lanzhou", "7"]);
        assert_eq!(rows[2], ["Baiyin", "6204xx", "白银", "-", "2"]);
        assert_eq!(rows[3], ["330782", "-", "1"]);
    }

    #[tokio::test]
    async fn kept_dir_must_be_empty_or_a_previous_demo() {
        let base = std::env::temp_dir().join(format!("liaison-demo-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        // Missing: created.
        prepare_kept(&base).await.unwrap();
        assert!(base.is_dir());
        // Someone else's files: refused, and left alone.
        std::fs::write(base.join("notes.txt"), "mine").unwrap();
        let error = prepare_kept(&base).await.unwrap_err().to_string();
        assert!(error.contains("not empty"), "{error}");
        assert!(base.join("notes.txt").exists());
        // A previous demo's: cleared (only what the demo writes).
        std::fs::write(base.join(MARKER), "").unwrap();
        std::fs::create_dir_all(base.join("pingliang/data")).unwrap();
        std::fs::write(base.join("roster.csv"), "x").unwrap();
        prepare_kept(&base).await.unwrap();
        assert!(!base.join("pingliang").exists() && !base.join("roster.csv").exists());
        assert!(!base.join(MARKER).exists());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
