//! `liaison-node` and `liaisonctl`, built once per process.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

/// The two binaries the kit runs, of the profile this executable was built
/// with.
#[derive(Debug)]
pub struct Binaries {
    pub node: PathBuf,
    pub ctl: PathBuf,
}

static BINARIES: OnceLock<Binaries> = OnceLock::new();

/// Builds `liaison-node` and `liaisonctl` once per process and returns
/// their paths.
///
/// `cargo test -p liaison-tests` compiles the libraries these tests link, but
/// not the other packages' binaries, so we run `cargo build` for them, in the
/// same target directory and profile as this executable: a test
/// (`<target>/<profile>/deps/<test>`) or a program that links the kit
/// (`<target>/<profile>/liaison-bench`). `$CARGO` is the cargo that runs us.
pub fn binaries() -> &'static Binaries {
    BINARIES.get_or_init(|| {
        let (target_dir, profile) = target_and_profile();
        build(&target_dir, &profile);
        located(&target_dir.join(&profile))
    })
}

/// The binaries next to this executable as they are, without running
/// cargo (the bench's `--no-build`); [`binaries`] returns them from then
/// on. Panics, naming the build command, if one is missing.
pub fn prebuilt_binaries() -> &'static Binaries {
    BINARIES.get_or_init(|| {
        let (target_dir, profile) = target_and_profile();
        located(&target_dir.join(&profile))
    })
}

/// The target directory and the profile's directory name (`debug`,
/// `release`, ...) of this executable.
fn target_and_profile() -> (PathBuf, String) {
    let exe = std::env::current_exe().expect("the path of this executable");
    let mut profile_dir = exe.parent().expect("an executable is in a directory");
    if profile_dir.file_name().is_some_and(|name| name == "deps") {
        profile_dir = profile_dir
            .parent()
            .expect("deps/ is in a profile's directory");
    }
    let target_dir = profile_dir
        .parent()
        .unwrap_or_else(|| {
            panic!(
                "{} is not in <target>/<profile>/ or <target>/<profile>/deps/",
                exe.display()
            )
        })
        .to_owned();
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("debug")
        .to_owned();
    (target_dir, profile)
}

/// `cargo build` of both binaries in `target_dir`, profile `profile`.
fn build(target_dir: &Path, profile: &str) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args([
            "build",
            "--quiet",
            "-p",
            "liaison-node",
            "-p",
            "liaisonctl",
            "--bins",
        ])
        .current_dir(workspace_root())
        .env("CARGO_TARGET_DIR", target_dir)
        .stdin(Stdio::null());
    // Cargo gives a test process, and `cargo run` a program, the
    // environment of its package (for example CARGO_MANIFEST_DIR). Build scripts that watch such variables
    // (ring's does) would see a change and rebuild half the dependency tree,
    // here and again in the next `cargo test`; so build with the caller's
    // environment, not the test's.
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        let per_package = matches!(
            name,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_MANIFEST_LINKS"
                | "CARGO_CRATE_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_TARGET_TMPDIR"
                | "CARGO_RUSTC_CURRENT_DIR"
                | "CARGO_BIN_NAME"
                | "OUT_DIR"
        ) || name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_BIN_EXE_");
        if per_package {
            build.env_remove(name);
        }
    }
    match profile {
        "debug" => {}
        "release" => {
            build.arg("--release");
        }
        other => {
            build.args(["--profile", other]);
        }
    }
    let started = Instant::now();
    let output = build
        .output()
        .expect("cannot run cargo to build the binaries");
    assert!(
        output.status.success(),
        "building liaison-node and liaisonctl failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!(
        "liaison-tests: binaries ready in {} ({:.1}s)",
        target_dir.join(profile).display(),
        started.elapsed().as_secs_f64()
    );
}

/// The binaries in `profile_dir`, which must be there.
fn located(profile_dir: &Path) -> Binaries {
    let binaries = Binaries {
        node: profile_dir.join("liaison-node"),
        ctl: profile_dir.join("liaisonctl"),
    };
    for path in [&binaries.node, &binaries.ctl] {
        assert!(
            path.is_file(),
            "{} is missing: `cargo build -p liaison-node -p liaisonctl --bins` in the profile of {}",
            path.display(),
            profile_dir.display()
        );
    }
    binaries
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_owned()
}
