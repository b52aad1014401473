//! The core's modules form layers: each uses only the modules below it
//! (the crate doc lists them). This test reads the sources and fails on a
//! use of a module that is not below, so a new import cycle fails CI.

use std::collections::BTreeSet;
use std::path::Path;

/// The top-level modules, bottom to top.
const LAYERS: &[&str] = &[
    "error",
    "clock",
    "letters",
    "store",
    "outcome",
    "epoch",
    "log",
    "quarantine",
    "members",
    "agreements",
    "superseded",
    "hosting",
    "transfers",
    "apply",
    "reconcile",
    "peering",
    "refs",
    "import",
    "reportin",
    "todo",
    "stats",
    "reports",
];

/// The files of each directory module, bottom to top: each uses only the
/// files before it (`mod.rs` only declares them).
const DIRECTORY_LAYERS: &[(&str, &[&str])] = &[
    (
        "members",
        &[
            "labels", "orgs", "contacts", "host", "outflows", "copies", "records", "status",
            "views", "scope", "sharing", "edits",
        ],
    ),
    (
        "agreements",
        &[
            "storage",
            "signatures",
            "calendar",
            "views",
            "actions",
            "host",
            "events",
        ],
    ),
    (
        "transfers",
        &[
            "state", "views", "sender", "receiver", "calendar", "events", "restore",
        ],
    ),
    ("reportin", &["stations", "claims"]),
    (
        "reports",
        &[
            "table",
            "query",
            "places",
            "inflow",
            "outflow",
            "contact",
            "transfers",
            "due",
            "activity",
            "trend",
            "agreements",
            "uncovered",
            "reportin",
        ],
    ),
    (
        "reconcile",
        &[
            "restore",
            "report",
            "agreement",
            "own_records",
            "adopt",
            "peer_side",
        ],
    ),
];

/// Files that hold tests of several modules, not part of the layers.
const TEST_FILES: &[&str] = &[
    "lib",
    "tests",
    "agreement_tests",
    "transfer_tests",
    "reconcile_tests",
    "refusal_tests",
    "property_tests",
    "layer_tests",
    "report_tests",
    "reportin_tests",
];

/// The modules `source` names after `prefix` (`crate` or `super`): the
/// first segment of each path, also inside `use prefix::{a, b::c}`.
fn named_after(source: &str, prefix: &str) -> BTreeSet<String> {
    let code: String = source
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let ident = |s: &str| -> String {
        s.trim_start_matches(['{', ' ', '\n'])
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut names = BTreeSet::new();
    let pattern = format!("{prefix}::");
    for (at, _) in code.match_indices(&pattern) {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &code[at + pattern.len()..];
        if !rest.starts_with('{') {
            names.insert(ident(rest));
            continue;
        }
        // A group: the names at its first level.
        let mut depth = 0;
        let mut item_start = 1;
        for (i, c) in rest.char_indices() {
            match c {
                '{' => depth += 1,
                '}' | ',' if depth == 1 => {
                    names.insert(ident(&rest[item_start..i]));
                    item_start = i + 1;
                    if c == '}' {
                        break;
                    }
                }
                '}' => depth -= 1,
                _ => {}
            }
        }
    }
    names
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `.rs` files directly in `dir`, by stem.
fn rust_files(dir: &Path) -> Vec<String> {
    let mut stems: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "rs"))
        .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    stems.sort();
    stems
}

/// Each pair (user, used) where `used` is not in `layers` before `user`.
fn check(layers: &[&str], uses: &[(String, BTreeSet<String>)]) -> Vec<String> {
    let mut wrong = Vec::new();
    for (user, used) in uses {
        let Some(level) = layers.iter().position(|m| m == user) else {
            wrong.push(format!("{user} is in no layer: place it in the list"));
            continue;
        };
        for other in used.iter().filter(|o| *o != user) {
            match layers.iter().position(|m| m == other) {
                Some(below) if below < level => {}
                Some(_) => wrong.push(format!("{user} uses {other}, which is not below it")),
                None => {}
            }
        }
    }
    wrong
}

#[test]
fn top_level_modules_use_only_the_layers_below() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut uses = Vec::new();
    for stem in rust_files(&src) {
        if TEST_FILES.contains(&stem.as_str()) {
            continue;
        }
        let source = read(&src.join(format!("{stem}.rs")));
        // In a file at the top, `super` is the crate.
        let mut used = named_after(&source, "crate");
        used.extend(named_after(&source, "super"));
        uses.push((stem, used));
    }
    for entry in std::fs::read_dir(&src).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let mut used = BTreeSet::new();
        for stem in rust_files(&dir) {
            used.extend(named_after(&read(&dir.join(format!("{stem}.rs"))), "crate"));
        }
        uses.push((
            dir.file_name().unwrap().to_string_lossy().into_owned(),
            used,
        ));
    }
    let modules: BTreeSet<&str> = uses.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(
        modules,
        LAYERS.iter().copied().collect(),
        "modules and layers"
    );
    let wrong = check(LAYERS, &uses);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn files_of_a_directory_module_use_only_the_files_before_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for (dir, layers) in DIRECTORY_LAYERS {
        let dir_path = src.join(dir);
        let files: Vec<String> = rust_files(&dir_path)
            .into_iter()
            .filter(|stem| stem != "mod")
            .collect();
        let mut uses = Vec::new();
        for stem in &files {
            let used = named_after(&read(&dir_path.join(format!("{stem}.rs"))), "super")
                .into_iter()
                .filter(|name| files.contains(name))
                .collect();
            uses.push((stem.clone(), used));
        }
        let wrong = check(layers, &uses);
        assert!(wrong.is_empty(), "in {dir}: {}", wrong.join("\n"));
    }
}

#[test]
fn the_check_finds_a_cycle() {
    let uses = vec![
        (
            "log".to_string(),
            named_after("use crate::{members::load_home, Ctx};", "crate"),
        ),
        (
            "members".to_string(),
            named_after("crate::log::append(", "crate"),
        ),
    ];
    assert_eq!(
        check(&["log", "members"], &uses),
        vec!["log uses members, which is not below it".to_string()]
    );
}
