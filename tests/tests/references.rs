//! References a clerk has in hand, through the real binaries: members by
//! name (narrowed by branch), national ID number and id prefix; an
//! agreement driven by its agreement number; a transfer driven by its
//! letter number; organizations and peers by name. Ambiguous and unknown
//! references are refused (exit 1) with the candidates.

use std::process::Output;
use std::time::Duration;

use liaison_tests::*;
use serde_json::Value;

fn refused(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(1),
        "refused with exit 1:\n{}",
        describe_output(output)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The one JSON record `args` prints, of type `kind`.
fn record(node: &TestNode, kind: &str, args: &[&str]) -> Value {
    let mut records = node.ctl_json(args);
    assert_eq!(records.len(), 1, "{args:?}: {records:?}");
    let (t, data) = records.remove(0);
    assert_eq!(t, kind, "{args:?}");
    data
}

fn add_member(node: &TestNode, name: &str, national_id: &str, branch: &str, birth: &str) -> String {
    let member = record(
        node,
        "member",
        &[
            "member",
            "add",
            "--name",
            name,
            "--gender",
            "男",
            "--birth-date",
            birth,
            "--national-id",
            national_id,
            "--party-status",
            "正式",
            "--home-branch",
            branch,
        ],
    );
    member["member_id"].as_str().expect("an id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clerks_name_members_agreements_transfers_orgs_and_peers_as_they_have_them() {
    let fed = Federation::new("references");
    let pingliang = fed.node("pingliang").await;
    let lanzhou = fed.node("lanzhou").await;
    // Pingliang records Lanzhou as serving Gansu's capital (6201).
    pingliang.ctl_ok(&[
        "peer",
        "add",
        "lanzhou",
        "--endpoint",
        &lanzhou.endpoint(),
        "--name",
        "兰州",
        "--serves",
        "6201",
    ]);
    lanzhou.peer(&pingliang);
    fed.wait_linked(&pingliang, &lanzhou).await;
    for (node, code, name) in [
        (&pingliang, "pl-kt", "崆峒区第一支部"),
        (&pingliang, "pl-jn", "静宁县第一支部"),
        (&lanzhou, "lz-cg", "城关区流动党员支部"),
    ] {
        node.ctl_ok(&["org", "add", code, "--name", name, "--level", "branch"]);
    }

    // Organizations by full name.
    let id_wang_2 = national_id("62080219880321001");
    let wang_kt = add_member(
        &pingliang,
        "王宇",
        &national_id("62080119900517001"),
        "崆峒区第一支部",
        "1990-05-17",
    );
    let wang_jn = add_member(&pingliang, "王宇", &id_wang_2, "pl-jn", "1988-03-21");
    let li = add_member(
        &pingliang,
        "李娜",
        &national_id("62080119920315002"),
        "pl-kt",
        "1992-03-15",
    );

    // Members: by name, by name and branch, by ID number, by id prefix.
    let show = |args: &[&str]| -> String {
        let mut full = vec!["member", "show"];
        full.extend_from_slice(args);
        record(&pingliang, "member", &full)["member_id"]
            .as_str()
            .expect("an id")
            .to_owned()
    };
    assert_eq!(show(&["李娜"]), li);
    assert_eq!(show(&["王宇", "--branch", "静宁县第一支部"]), wang_jn);
    assert_eq!(show(&["王宇", "--branch", "pl-kt"]), wang_kt);
    assert_eq!(show(&[&id_wang_2]), wang_jn);
    // Ids are time-ordered, so ids made within about a minute share their
    // first 8 characters: a prefix names a member once it reaches past the
    // others, as the candidates show it.
    let sharing = [&li, &wang_kt, &wang_jn]
        .into_iter()
        .filter(|id| id.starts_with(&li[..8]))
        .count();
    if sharing > 1 {
        let stderr = refused(&pingliang.ctl(&["member", "show", &li[..8]]));
        assert!(
            stderr.contains(&format!("names {sharing} members")),
            "{stderr}"
        );
        let shown = stderr
            .lines()
            .find(|l| l.contains("李娜"))
            .and_then(|l| l.rsplit(" · ").next())
            .expect("李娜's line")
            .trim()
            .to_owned();
        assert!(li.starts_with(&shown) && shown.len() > 8, "{shown}");
        assert_eq!(show(&[&shown]), li);
    } else {
        // The ids' clock crossed a 65-second boundary between them.
        assert_eq!(show(&[&li[..8]]), li);
    }
    assert_eq!(show(&[&li]), li);

    // Ambiguous: every candidate, told apart by branch and birth year.
    let stderr = refused(&pingliang.ctl(&["member", "show", "王宇"]));
    for expected in [
        "names 2 members",
        "崆峒区第一支部",
        "静宁县第一支部",
        "born 1990",
        "born 1988",
        "--branch",
    ] {
        assert!(stderr.contains(expected), "`{expected}` in:\n{stderr}");
    }
    // Each candidate's id prefix, long enough to name it alone: ids made in
    // one millisecond share their first characters, so its length varies.
    for (id, other) in [(&wang_kt, &wang_jn), (&wang_jn, &wang_kt)] {
        assert!(
            stderr
                .split_whitespace()
                .any(|word| word.len() >= 8 && id.starts_with(word) && !other.starts_with(word)),
            "a prefix of {id} that is not one of {other} in:\n{stderr}"
        );
    }
    // Unknown ones say so.
    let stderr = refused(&pingliang.ctl(&["member", "show", "张三"]));
    assert!(stderr.contains("no member here is named 张三"), "{stderr}");
    let stderr = refused(&pingliang.ctl(&["member", "show", "620801199912310000"]));
    assert!(stderr.contains("ID number"), "{stderr}");
    let stderr = refused(&pingliang.ctl(&["member", "show", "李娜", "--branch", "没有的支部"]));
    assert!(stderr.contains("no organization"), "{stderr}");
    // A member reference works in every verb that takes one.
    pingliang.ctl_ok(&[
        "outflow",
        "register",
        "李娜",
        "--to",
        "620102",
        "--departed-on",
        "2026-03-01",
    ]);
    pingliang.ctl_ok(&["contact", "record", "李娜", "--channel", "phone"]);
    // Contact tables name the member.
    let status = pingliang.ctl_ok(&["contact", "status", "李娜"]);
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("name") && l.ends_with("李娜")),
        "{status}"
    );
    assert!(
        status
            .lines()
            .any(|l| l.contains(li.as_str()) && l.contains("李娜")),
        "{status}"
    );

    // Places by name or code; listings show the name with the code.
    pingliang.ctl_ok(&[
        "outflow",
        "register",
        "王宇",
        "--branch",
        "静宁县第一支部",
        "--to",
        "兰州",
        "--departed-on",
        "2026-04-01",
    ]);
    let listed = pingliang.ctl_ok(&["outflow", "list"]);
    assert!(listed.contains("兰州市 (6201)"), "{listed}");
    assert!(listed.contains("兰州市城关区 (620102)"), "{listed}");
    let unknown = refused(&pingliang.ctl(&[
        "outflow",
        "register",
        "王宇",
        "--branch",
        "pl-kt",
        "--to",
        "999999",
        "--departed-on",
        "2026-04-01",
    ]));
    assert!(unknown.contains("999999"), "{unknown}");
    let ambiguous = refused(&pingliang.ctl(&[
        "outflow",
        "register",
        "王宇",
        "--branch",
        "pl-kt",
        "--to",
        "朝阳区",
        "--departed-on",
        "2026-04-01",
    ]));
    assert!(
        ambiguous.contains("110105") && ambiguous.contains("220104"),
        "{ambiguous}"
    );

    // An agreement driven by its number; the peer named by its name.
    let number = "平凉-兰州-2026-01";
    pingliang.ctl_ok(&[
        "agreement",
        "propose",
        "--with",
        "兰州",
        "--number",
        number,
        "--from",
        "2026-01-01",
        "--until",
        "2030-12-31",
    ]);
    // Before anyone signs, the proposal says whom it would cover.
    let proposed = pingliang.ctl_ok(&["agreement", "show", number]);
    assert!(proposed.contains("would cover"), "{proposed}");
    assert!(
        proposed.contains("李娜") && proposed.contains("王宇"),
        "{proposed}"
    );
    lanzhou
        .wait_until(
            Duration::from_secs(30),
            "the proposal reached Lanzhou",
            async || lanzhou.ctl(&["agreement", "show", number]).status.success(),
        )
        .await;
    lanzhou.ctl_ok(&["agreement", "accept", number]);
    for node in [&pingliang, &lanzhou] {
        node.wait_until(
            Duration::from_secs(30),
            "the agreement is active",
            async || record(node, "agreement", &["agreement", "show", number])["state"] == "active",
        )
        .await;
    }
    let unknown = refused(&lanzhou.ctl(&["agreement", "show", "平凉-兰州-2026-99"]));
    assert!(unknown.contains("no agreement here"), "{unknown}");
    // A number is used once; without --number the next one is made up
    // from the parties' names, the year and the sequence.
    let taken = refused(&pingliang.ctl(&[
        "agreement",
        "propose",
        "--with",
        "lanzhou",
        "--number",
        number,
        "--from",
        "2026-06-01",
        "--until",
        "2030-12-31",
    ]));
    assert!(taken.contains("taken"), "{taken}");
    let next = record(
        &pingliang,
        "agreement",
        &[
            "agreement",
            "propose",
            "--with",
            "lanzhou",
            "--from",
            "2026-06-01",
            "--until",
            "2030-12-31",
        ],
    );
    assert_eq!(next["number"], "平凉-兰州-2026-02", "{next}");

    // A transfer driven by its letter number, from start to completion.
    let started = record(
        &pingliang,
        "transfer",
        &["transfer", "start", "李娜", "--to", "兰州"],
    );
    let letter = started["letter_no"]
        .as_str()
        .expect("a letter number")
        .to_owned();
    assert!(letter.starts_with("PINGLIANG-"), "{letter}");
    lanzhou
        .wait_until(
            Duration::from_secs(30),
            "the offer reached Lanzhou",
            async || lanzhou.ctl(&["transfer", "show", &letter]).status.success(),
        )
        .await;
    lanzhou.ctl_ok(&[
        "transfer",
        "accept",
        &letter,
        "--branch",
        "城关区流动党员支部",
    ]);
    pingliang
        .wait_until(
            Duration::from_secs(30),
            "the transfer completed",
            async || {
                record(&pingliang, "transfer", &["transfer", "show", &letter])["state"]
                    == "completed"
            },
        )
        .await;
    // The receiver now finds the member by name too.
    assert_eq!(
        record(&lanzhou, "member", &["member", "show", "李娜"])["member_id"],
        li.as_str()
    );
    // A registration corrected: away to Xi'an, not Lanzhou, after all;
    // Lanzhou's copy goes.
    lanzhou
        .wait_until(
            Duration::from_secs(30),
            "王宇 (静宁) shared with Lanzhou",
            async || lanzhou.ctl(&["member", "show", &wang_jn]).status.success(),
        )
        .await;
    // The host names the copy's basis by the agreement number.
    let shown = lanzhou.ctl_ok(&["member", "show", &wang_jn]);
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("basis") && l.ends_with(&format!("agreement {number}"))),
        "{shown}"
    );
    let corrected = record(
        &pingliang,
        "member",
        &[
            "outflow",
            "update",
            "王宇",
            "--branch",
            "静宁县第一支部",
            "--to",
            "西安市",
        ],
    );
    assert_eq!(
        corrected["outflow"]["destination_place"], "6101",
        "{corrected}"
    );
    lanzhou
        .wait_until(
            Duration::from_secs(30),
            "Lanzhou dropped its copy",
            async || !lanzhou.ctl(&["member", "show", &wang_jn]).status.success(),
        )
        .await;

    // What was disclosed, on which basis, named as the clerk knows it.
    let disclosed = pingliang.ctl_ok(&["member", "disclosures", &li]);
    assert!(
        disclosed.contains(&format!("agreement {number}")),
        "{disclosed}"
    );
    assert!(
        disclosed.contains(&format!("transfer {letter}")),
        "{disclosed}"
    );
    let unknown = refused(&pingliang.ctl(&["transfer", "show", "PINGLIANG-2026-999999"]));
    assert!(unknown.contains("no transfer here"), "{unknown}");

    // Peers and organizations by name.
    assert_eq!(
        record(&pingliang, "peer", &["peer", "show", "兰州"])["node_id"],
        "lanzhou"
    );
    let unknown = refused(&pingliang.ctl(&["peer", "show", "西安"]));
    assert!(unknown.contains("no peer"), "{unknown}");
}
