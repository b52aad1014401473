//! The report-in page (一键报到): a real node serving it, reached over
//! plain HTTP and HTTPS as a phone (or the reverse proxy) would, and in
//! headless Chromium at a phone's size, driven over WebDriver.
//!
//! The browser test needs Debian's `chromium` and `chromium-driver`
//! (`.ci/run` installs them and sets `LIAISON_REQUIRE_BROWSER=1`); without
//! them, and without that variable, it says loudly that it is skipped.
//! Its screenshots are kept under the target directory, in `artefacts/`.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use liaison_tests::{timed, Federation, PageClient, PageResponse, TestNode, DEFAULT_WAIT};

/// A member's answers as the tests type them; `phone` and `name` vary.
fn fields<'a>(name: &'a str, phone: &'a str, token: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("name", name),
        ("phone", phone),
        ("home_place", "620800"),
        ("home_branch", "崆峒区西关社区党支部"),
        ("certificate_no", ""),
        ("employer", "兰州某物流公司"),
        ("address", ""),
        ("consent", "yes"),
        ("token", token),
    ]
}

/// Opens a service station at `node`, run by its branch `b1`, and
/// returns its code.
async fn open_station(node: &TestNode) -> String {
    node.org_add("b1").await;
    let records = node.ctl_json(&[
        "station",
        "add",
        "--name",
        "兰州市平凉籍流动党员服务站",
        "--org",
        "b1",
        "--address",
        "城关区庆阳路 1 号",
        "--hours",
        "周一至周五 9:00-17:00",
    ]);
    records[0].1["code"]
        .as_str()
        .expect("the station's code")
        .to_owned()
}

/// The member the end-to-end tests follow, and the others who report in.
const KNOWN: &str = "马成林";
const UNKNOWN: &str = "林晓";

/// Pingliang (home, 6208) and Lanzhou (host, 6201, with the page and
/// `settings`) under an active agreement; at Pingliang a member away at
/// Lanzhou for 300 days without contact, so lost (失联), whose home
/// section Lanzhou holds; a station at Lanzhou. Returns both nodes, the
/// member's id and the station's code.
async fn lost_member_away_at_lanzhou(
    fed: &Federation,
    settings: &str,
) -> (TestNode, TestNode, String, String) {
    let pingliang = fed.node("pingliang").await;
    let lanzhou = started_with_page(fed, "lanzhou", settings).await;
    pingliang.peer_serving(&lanzhou, "6201");
    lanzhou.peer_serving(&pingliang, "6208");
    fed.wait_linked(&pingliang, &lanzhou).await;
    pingliang.org_add("b1").await;
    let added = pingliang.ctl_json(&[
        "member",
        "add",
        "--name",
        KNOWN,
        "--gender",
        "男",
        "--birth-date",
        "1988-03-12",
        "--party-status",
        "正式",
        "--home-branch",
        "b1",
    ]);
    let member_id = added[0].1["member_id"]
        .as_str()
        .expect("the member's id")
        .to_owned();
    let departed = (chrono::Utc::now().date_naive() - chrono::Duration::days(300)).to_string();
    pingliang.ctl_ok(&[
        "outflow",
        "register",
        &member_id,
        "--to",
        "620102",
        "--departed-on",
        &departed,
    ]);
    fed.agree(&pingliang, &lanzhou, "平凉-兰州-2026-07").await;
    pingliang
        .wait_until(DEFAULT_WAIT, "the member lost at Pingliang", async || {
            contact_status(&pingliang, &member_id)["status"] == "lost"
        })
        .await;
    lanzhou
        .wait_until(
            DEFAULT_WAIT,
            "Lanzhou to hold the member's home section",
            async || lanzhou.show(&member_id).await.is_some(),
        )
        .await;
    let station = open_station(&lanzhou).await;
    (pingliang, lanzhou, member_id, station)
}

fn contact_status(node: &TestNode, member_id: &str) -> serde_json::Value {
    node.ctl_json(&["contact", "status", member_id])
        .into_iter()
        .next()
        .expect("the member's contact status")
        .1
}

/// The form of `station`, with its token (the client keeps the cookie).
async fn form(client: &mut PageClient, station: &str) -> (PageResponse, String) {
    let page = client.get(&format!("/s/{station}")).await;
    assert_eq!(page.status, 200, "the form: {}", page.body);
    let token = page.form_token().expect("the form has its token field");
    (page, token)
}

async fn started_with_page(fed: &Federation, node_id: &str, settings: &str) -> TestNode {
    fed.start(fed.config(node_id).with_report_in(settings))
        .await
}

#[tokio::test]
async fn the_form_is_served_with_safe_headers_and_refuses_forged_oversized_and_bad_input() {
    let fed = Federation::new("reportin_page_form");
    let host = started_with_page(&fed, "lanzhou", "").await;
    let station = open_station(&host).await;
    let addr = host.report_in_addr().await;
    let mut client = PageClient::http(addr);

    let (page, token) = form(&mut client, &station).await;
    for (header, expected) in [
        ("content-security-policy", "default-src 'none'"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
        ("x-content-type-options", "nosniff"),
    ] {
        let value = page.header(header).unwrap_or_default();
        assert!(value.contains(expected), "{header}: `{value}`");
    }
    let cookie = page.header("set-cookie").expect("the form sets its cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!page.body.contains("<script"), "the page runs no script");
    assert!(
        page.body.contains("620800"),
        "the place picker lists 平凉市"
    );
    let css = client.get("/static/page.css").await;
    assert_eq!(css.status, 200);
    assert!(css
        .header("content-type")
        .unwrap_or_default()
        .starts_with("text/css"));

    // An unknown station and a malformed code: one and the same answer.
    let unknown = client.get("/s/zzzzzzzz").await;
    let malformed = client.get("/s/..%2F..%2Fetc").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(malformed.status, 404);
    assert_eq!(unknown.body, malformed.body);

    // A forged form: no cookie and no token, a cookie without a token, a
    // token made up.
    let path = format!("/s/{station}");
    let mut stranger = PageClient::http(addr);
    let forged = stranger
        .post_form(&path, &fields("张三", "13912345678", ""))
        .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert!(forged.body.contains("请重新打开报到页面"));
    let no_token = client
        .post_form(&path, &fields("张三", "13912345678", ""))
        .await;
    assert_eq!(no_token.status, 403);
    let made_up = format!("{}.{}", liaison_tests::now_ms(), "ab".repeat(32));
    let made_up = client
        .post_form(&path, &fields("张三", "13912345678", &made_up))
        .await;
    assert_eq!(made_up.status, 403);
    // The token of one station does not open another's form.
    let other = client
        .post_form("/s/zzzzzzzz", &fields("张三", "13912345678", &token))
        .await;
    assert_eq!(other.status, 404);

    // A body over the bound.
    let big = vec![b'a'; 20 * 1024];
    let oversized = client.post_raw(&path, big).await;
    assert_eq!(oversized.status, 413, "{}", oversized.body);

    // A bad phone, and markup typed as a name: the problem beside the
    // phone field, the name shown as text.
    let hostile = "<script>alert(1)</script>";
    let bad = client
        .post_form(&path, &fields(hostile, "12345", &token))
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    let phone_field = field_html(&bad.body, "phone");
    assert!(
        phone_field.contains(r#"class="problem" id="phone-problem""#),
        "the phone's problem is inside its field: {phone_field}"
    );
    assert!(!bad.body.contains(hostile), "markup typed is never markup");
    assert!(bad.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(
        bad.form_token().is_some(),
        "the form is shown again to correct"
    );

    // Every refusal is audited, with nothing typed in it.
    let refusals: Vec<_> = host
        .audit()
        .into_iter()
        .filter(|e| e.action == "reportin.refused")
        .collect();
    assert_eq!(refusals.len(), 4, "{refusals:?}");
    assert!(refusals
        .iter()
        .any(|e| e.detail.contains("fields: name, phone") || e.detail.contains("fields: phone")));
    for entry in host.audit() {
        for typed in ["张三", "13912345678", "alert", "12345"] {
            assert!(
                !entry.detail.contains(typed),
                "audit holds `{typed}`: {entry:?}"
            );
        }
    }
    let log = host.log();
    for typed in ["张三", "13912345678", "alert(1)"] {
        assert!(!log.contains(typed), "the node's log holds `{typed}`");
    }
}

/// The HTML of the form's field `name`, from its `div` to the next field's.
fn field_html<'a>(body: &'a str, name: &str) -> &'a str {
    let start = body
        .find(&format!(r#"id="field-{name}""#))
        .unwrap_or_else(|| panic!("no field {name} in {body}"));
    let rest = &body[start..];
    let end = rest[1..]
        .find(r#"id="field-"#)
        .map_or(rest.len(), |i| i + 1);
    &rest[..end]
}

#[tokio::test]
async fn the_rate_limits_count_per_client_address_behind_the_proxy_and_per_phone() {
    let fed = Federation::new("reportin_page_limits");
    let host = started_with_page(
        &fed,
        "lanzhou",
        "behind_proxy = true\nper_address_per_hour = 3\nper_phone_per_day = 1",
    )
    .await;
    let station = open_station(&host).await;
    let addr = host.report_in_addr().await;
    let path = format!("/s/{station}");

    // One address: three submissions, then refused with when to come back.
    // What the client put in front of the proxy's entry does not count.
    let mut phone = PageClient::http(addr);
    phone.forwarded_for = Some("198.51.100.1, 203.0.113.7".into());
    let (_, token) = form(&mut phone, &station).await;
    for _ in 0..3 {
        let answer = phone.post_form(&path, &fields("李四", "1", &token)).await;
        assert_eq!(answer.status, 422, "{}", answer.body);
    }
    let refused = phone.post_form(&path, &fields("李四", "1", &token)).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(refused.body.contains("提交太频繁"));
    let retry: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry), "Retry-After {retry}");
    phone.forwarded_for = Some("198.51.100.2, 203.0.113.7".into());
    let still = phone.post_form(&path, &fields("李四", "1", &token)).await;
    assert_eq!(still.status, 429, "the proxy's entry is the client");

    // Another address goes on; one phone number reports in once a day,
    // however it is written.
    let mut other = PageClient::http(addr);
    other.forwarded_for = Some("203.0.113.8".into());
    let (_, token) = form(&mut other, &station).await;
    let first = other
        .post_form(&path, &fields("李四", "13912345678", &token))
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(first.body.contains("报到信息已提交"));
    let again = other
        .post_form(&path, &fields("李四", "+86 139-1234-5678", &token))
        .await;
    assert_eq!(again.status, 429, "{}", again.body);
    let different = other
        .post_form(&path, &fields("王五", "13987654321", &token))
        .await;
    assert_eq!(different.status, 200, "{}", different.body);

    // Each limit's first refusal in its window is audited, once.
    let refusals: Vec<_> = host
        .audit()
        .into_iter()
        .filter(|e| e.action == "reportin.refused" && e.detail.contains("over report_in"))
        .collect();
    assert_eq!(refusals.len(), 2, "{refusals:?}");
    assert!(refusals
        .iter()
        .any(|e| e.actor == "remote:203.0.113.7" && e.detail.contains("per_address_per_hour")));
    assert!(refusals
        .iter()
        .any(|e| e.detail.contains("per_phone_per_day")));
}

#[tokio::test]
async fn https_serves_the_page_with_the_configured_certificate_and_a_wrong_key_stops_the_start() {
    let fed = Federation::new("reportin_page_https");
    let page_cert = fed.issue("page");
    let section = |key: &std::path::Path| {
        format!(
            "\n[report_in]\nenabled = true\nlisten = \"127.0.0.1:0\"\npublic_url = \"https://localhost\"\ntls_cert = {:?}\ntls_key = {:?}\n",
            page_cert.cert.display().to_string(),
            key.display().to_string()
        )
    };

    // A key that is not the certificate's: the node says so and does not start.
    let mut wrong = fed.config("lanzhou");
    wrong.extra.push_str(&section(&fed.issue("other").key));
    let output = fed.run_node_to_exit(&wrong, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("report-in page")
            && stderr.contains("do not make a certificate and its key"),
        "{stderr}"
    );

    let mut config = fed.config("lanzhou");
    config.extra.push_str(&section(&page_cert.key));
    let mut host = fed.start(config).await;
    let station = open_station(&host).await;
    let addr = host.report_in_addr().await;
    let mut roots = rustls::RootCertStore::empty();
    for cert in liaison_types::identity::read_certs(&fed.ca_cert()).unwrap() {
        roots.add(cert).unwrap();
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut client = PageClient::https(addr, Arc::new(tls), "localhost");
    let (page, token) = form(&mut client, &station).await;
    let cookie = page.header("set-cookie").unwrap();
    assert!(cookie.contains("Secure"), "{cookie}");
    assert!(page.header("strict-transport-security").is_some());
    let sent = client
        .post_form(
            &format!("/s/{station}"),
            &fields("赵六", "13911112222", &token),
        )
        .await;
    assert_eq!(sent.status, 200, "{}", sent.body);

    // The page stops with the node.
    assert!(host.stop().success(), "{}", host.log());
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "the page is closed"
    );
}

/// `chromedriver` on a free port of localhost, stopped on drop.
struct Driver {
    child: Child,
    url: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    /// Kills chromedriver's process group: the Chromium it started too,
    /// should a failed test leave its session open.
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) on the process group this test created.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        let _ = self.child.wait();
    }
}

const CHROMIUM: &str = "/usr/bin/chromium";
/// Bound on starting a browser session.
const SESSION_WITHIN: Duration = Duration::from_secs(60);
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Starts chromedriver, or says loudly why the browser test is skipped
/// (`None`); with `LIAISON_REQUIRE_BROWSER` set a missing browser fails.
async fn chromedriver() -> Option<Driver> {
    let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
        .into_iter()
        .filter(|path| !std::path::Path::new(path).exists())
        .collect();
    if !missing.is_empty() {
        if std::env::var_os("LIAISON_REQUIRE_BROWSER").is_some() {
            panic!("LIAISON_REQUIRE_BROWSER is set but {missing:?} are missing: apt-get install chromium chromium-driver");
        }
        eprintln!(
            "\n!!!!!!!! SKIPPED: the report-in page's browser test needs {missing:?} (apt-get install chromium chromium-driver) !!!!!!!!\n"
        );
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _profile: tempfile::tempdir().expect("a profile directory"),
    };
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    liaison_tests::wait_until(
        DEFAULT_WAIT,
        "chromedriver to listen",
        String::new,
        async || tokio::net::TcpStream::connect(addr).await.is_ok(),
    )
    .await;
    Some(driver)
}

/// A phone's screen: 390 × 844 CSS pixels, a phone's user agent.
async fn phone_browser(driver: &Driver) -> fantoccini::Client {
    let user_agent = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36";
    let capabilities = serde_json::json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-extensions", "--lang=zh-CN",
                format!("--user-data-dir={}", driver._profile.path().display()),
            ],
            "mobileEmulation": {
                "deviceMetrics": { "width": 390, "height": 844, "pixelRatio": 2.0, "mobile": true, "touch": true },
                "userAgent": user_agent,
            },
        },
    });
    let serde_json::Value::Object(capabilities) = capabilities else {
        unreachable!("an object")
    };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    // Chromium's first start on a loaded machine takes longer than a call.
    tokio::time::timeout(
        SESSION_WITHIN,
        fantoccini::ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&driver.url),
    )
    .await
    .unwrap_or_else(|_| panic!("no Chromium session within {SESSION_WITHIN:?}"))
    .expect("a WebDriver session with Chromium")
}

/// Where the tests keep what a person would look at.
fn artefacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // target/<profile>/deps/<test binary>
            let exe = std::env::current_exe().expect("the test binary's path");
            exe.ancestors()
                .nth(3)
                .expect("a target directory")
                .to_owned()
        });
    let dir = target.join("artefacts");
    std::fs::create_dir_all(&dir).expect("the artefacts directory");
    dir
}

async fn screenshot(browser: &fantoccini::Client, name: &str) -> PathBuf {
    let png = timed("a screenshot", browser.screenshot())
        .await
        .expect("a screenshot");
    assert!(png.len() > 1000 && png.starts_with(b"\x89PNG"), "a PNG");
    let path = artefacts().join(name);
    std::fs::write(&path, png).expect("write the screenshot");
    eprintln!("screenshot: {}", path.display());
    path
}

async fn fill(browser: &fantoccini::Client, name: &str, phone: &str) {
    use fantoccini::Locator;
    let typed = [
        ("#name", name),
        ("#phone", phone),
        ("#home_branch", "崆峒区西关社区党支部"),
        ("#employer", "兰州某物流公司"),
    ];
    for (selector, text) in typed {
        let input = browser.find(Locator::Css(selector)).await.expect(selector);
        input.clear().await.expect("clear");
        input.send_keys(text).await.expect("type");
    }
    let place = browser
        .find(Locator::Css("#home_place"))
        .await
        .expect("the place picker");
    place.select_by_value("620800").await.expect("pick 平凉市");
    let consent = browser
        .find(Locator::Css("#consent"))
        .await
        .expect("the consent box");
    if !consent.is_selected().await.expect("consent state") {
        consent.click().await.expect("tick consent");
    }
}

/// Submits the form shown and waits until the next page has loaded (the
/// old page's elements gone stale: a POST keeps the URL).
async fn submit(browser: &fantoccini::Client) {
    use fantoccini::Locator;
    let old = browser.find(Locator::Css("html")).await.expect("the page");
    let button = browser
        .find(Locator::Css("button[type=submit]"))
        .await
        .expect("the button");
    button.click().await.expect("submit");
    liaison_tests::wait_until(
        DEFAULT_WAIT,
        "the answer to a submission",
        String::new,
        async || {
            if old.tag_name().await.is_ok() {
                return false;
            }
            let ready = browser.execute("return document.readyState;", vec![]).await;
            ready.is_ok_and(|state| state == "complete")
                && browser.find(Locator::Css("main")).await.is_ok()
        },
    )
    .await;
}

async fn main_text(browser: &fantoccini::Client) -> String {
    use fantoccini::Locator;
    let main = browser.find(Locator::Css("main")).await.expect("main");
    main.text().await.expect("its text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_browser_fills_in_the_form() {
    use fantoccini::Locator;
    let Some(driver) = chromedriver().await else {
        return;
    };
    let fed = Federation::new("reportin_page_browser");
    let (_pingliang, lanzhou, _member_id, station) =
        lost_member_away_at_lanzhou(&fed, "per_address_per_hour = 4").await;
    let addr = lanzhou.report_in_addr().await;
    let url = format!("http://{addr}/s/{station}");
    let browser = phone_browser(&driver).await;

    // The form at a phone's width, nothing wider than the screen.
    timed("open the form", browser.goto(&url))
        .await
        .expect("the form");
    let width = browser
        .execute(
            "return [window.innerWidth, document.documentElement.scrollWidth];",
            vec![],
        )
        .await
        .expect("the widths");
    let (inner, scroll) = (width[0].as_u64().unwrap(), width[1].as_u64().unwrap());
    assert_eq!(inner, 390, "a phone's viewport");
    assert!(
        scroll <= inner,
        "the page is {scroll}px wide on a {inner}px screen"
    );
    screenshot(&browser, "reportin-phone.png").await;
    browser
        .execute(
            "document.getElementById('consent').scrollIntoView();",
            vec![],
        )
        .await
        .expect("scroll to the consent line");
    screenshot(&browser, "reportin-phone-consent.png").await;

    // A bad phone: the problem beside the phone field, what was typed kept.
    fill(&browser, KNOWN, "12345").await;
    submit(&browser).await;
    let problem = browser
        .find(Locator::Css("#field-phone #phone-problem"))
        .await
        .expect("the phone's problem inside its field");
    assert!(!problem.text().await.unwrap().is_empty());
    let name = browser.find(Locator::Css("#name")).await.unwrap();
    assert_eq!(name.prop("value").await.unwrap().as_deref(), Some(KNOWN));
    assert!(
        browser.find(Locator::Css("#name-problem")).await.is_err(),
        "the name was fine"
    );
    screenshot(&browser, "reportin-phone-problem.png").await;

    // The member, then a stranger: one and the same confirmation.
    fill(&browser, KNOWN, "13800001111").await;
    submit(&browser).await;
    let known = main_text(&browser).await;
    assert!(known.contains("报到信息已提交"), "{known}");
    screenshot(&browser, "reportin-phone-received.png").await;
    browser.goto(&url).await.expect("the form");
    fill(&browser, UNKNOWN, "13800002222").await;
    submit(&browser).await;
    let unknown = main_text(&browser).await;
    assert_eq!(known, unknown, "nothing tells a member from a stranger");

    // A form another site forged, without the token: refused.
    let forged = format!(
        "data:text/html;charset=utf-8,<form method=post action='{url}'><input name=name value=x><input name=phone value=13800003333><input name=consent value=yes><button type=submit>go</button></form>"
    );
    browser.goto(&forged).await.expect("the forged form");
    submit(&browser).await;
    let refused = main_text(&browser).await;
    assert!(refused.contains("请重新打开报到页面"), "{refused}");

    // The fifth submission from this address in the hour (the forged one
    // counted) is refused.
    browser.goto(&url).await.expect("the form");
    fill(&browser, "陈七", "13800004444").await;
    submit(&browser).await;
    let limited = main_text(&browser).await;
    assert!(limited.contains("提交太频繁"), "{limited}");

    // Two claims reached the clerk: the bad, forged and limited ones did not.
    let claims = lanzhou.ctl_json(&["reportin", "list"]);
    assert_eq!(claims.len(), 2, "{claims:?}");
    let _ = browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_lost_at_pingliang_reports_in_through_a_lanzhou_station_page_and_is_regained() {
    let fed = Federation::new("reportin_page_e2e");
    let (pingliang, lanzhou, member_id, station) = lost_member_away_at_lanzhou(&fed, "").await;
    let addr = lanzhou.report_in_addr().await;
    let path = format!("/s/{station}");

    // The member, a stranger, and someone from a region Lanzhou has no
    // agreement with (天水市) report in: the same answer, byte for byte.
    let mut answers = Vec::new();
    for (name, phone, place) in [
        (KNOWN, "13912340001", "620800"),
        (UNKNOWN, "13912340002", "620800"),
        ("周立", "13912340003", "620500"),
    ] {
        let mut phone_client = PageClient::http(addr);
        let (_, token) = form(&mut phone_client, &station).await;
        let mut typed = fields(name, phone, &token);
        typed[2] = ("home_place", place);
        let answer = phone_client.post_form(&path, &typed).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answers.push(answer.body);
    }
    assert_eq!(
        answers[0], answers[1],
        "known and unknown get the same page"
    );
    assert_eq!(answers[0], answers[2]);

    // Three claims at Lanzhou; the member's proposes the member; the
    // Tianshui claim has no home to go to.
    let claims: Vec<serde_json::Value> = lanzhou
        .ctl_json(&["reportin", "list"])
        .into_iter()
        .map(|(_, claim)| claim)
        .collect();
    assert_eq!(claims.len(), 3, "{claims:?}");
    let claim_of = |name: &str| {
        claims
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no claim of {name}: {claims:?}"))
            .clone()
    };
    let known = claim_of(KNOWN);
    assert_eq!(known["station"], station.as_str());
    assert_eq!(known["home_node"], "pingliang");
    let shown = lanzhou.ctl_json(&["reportin", "show", known["claim_id"].as_str().unwrap()]);
    let candidates = shown[0].1["candidates"].as_array().unwrap().clone();
    assert!(
        candidates
            .iter()
            .any(|c| c["member_id"] == member_id.as_str()),
        "the member is proposed: {candidates:?}"
    );
    assert_eq!(
        claim_of("周立")["home_node"],
        "",
        "no agreement with 天水市"
    );

    // The clerk confirms; Pingliang has the member back, through the report-in.
    lanzhou.ctl_ok(&["reportin", "confirm", known["claim_id"].as_str().unwrap()]);
    pingliang
        .wait_until(
            DEFAULT_WAIT,
            "the member regained at Pingliang",
            async || contact_status(&pingliang, &member_id)["status"] == "regained",
        )
        .await;
    let status = contact_status(&pingliang, &member_id);
    let recent = status["recent"].as_array().unwrap();
    assert!(
        recent
            .iter()
            .any(|c| c["channel"] == "report-in" && c["author"] == "lanzhou"),
        "the report-in is the contact: {status}"
    );

    // The page's submissions are audited at Lanzhou without what was typed.
    let audit = lanzhou.audit();
    let submitted = audit
        .iter()
        .filter(|e| e.action == "reportin.submitted")
        .count();
    assert_eq!(submitted, 3);
    for entry in &audit {
        for typed in ["13912340001", "13912340002", UNKNOWN, "周立"] {
            assert!(
                !entry.detail.contains(typed),
                "audit holds `{typed}`: {entry:?}"
            );
        }
    }
    assert!(
        !lanzhou.log().contains("13912340002"),
        "no phone in the log"
    );
}

/// Prints the seed when the test fails.
struct Seed(u64);

impl Drop for Seed {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("reportin_page: failed with LIAISON_PAGE_SEED={}", self.0);
        }
    }
}

/// Text from the characters that break naive pages and parsers.
fn hostile_text(rng: &mut impl rand::Rng, max_chars: usize) -> String {
    const CHARS: [char; 22] = [
        'a', 'Z', '0', '9', '1', '<', '>', '&', '"', '\'', '\0', '\n', '\t', '%', '+', ' ', '中',
        '文', '😀', '\u{202e}', '\u{feff}', '\u{7f}',
    ];
    let n = rng.random_range(0..=max_chars);
    (0..n)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())])
        .collect()
}

#[tokio::test]
async fn any_body_posted_is_answered_without_a_failure_and_each_accepted_one_is_one_claim() {
    use rand::{Rng as _, SeedableRng as _};
    let seed = std::env::var("LIAISON_PAGE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let _seed = Seed(seed);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let fed = Federation::new("reportin_page_any_input");
    let host = started_with_page(
        &fed,
        "lanzhou",
        "per_address_per_hour = 100000\nper_phone_per_day = 100000",
    )
    .await;
    let station = open_station(&host).await;
    let addr = host.report_in_addr().await;
    let path = format!("/s/{station}");
    let mut client = PageClient::http(addr);
    let (_, token) = form(&mut client, &station).await;
    let names = liaison_types::reportin::FIELDS;
    let mut accepted = 0;
    for case in 0..150 {
        let body: Vec<u8> = match rng.random_range(0..4) {
            // Any bytes.
            0 => (0..rng.random_range(0..2000))
                .map(|_| rng.random())
                .collect(),
            // Any fields, any values, the token right.
            1 => {
                let mut form = form_urlencoded::Serializer::new(String::new());
                form.append_pair("token", &token);
                for _ in 0..rng.random_range(0..12) {
                    let name = if rng.random_bool(0.8) {
                        names[rng.random_range(0..names.len())].to_owned()
                    } else {
                        hostile_text(&mut rng, 12)
                    };
                    form.append_pair(&name, &hostile_text(&mut rng, 250));
                }
                form.finish().into_bytes()
            }
            // A good form with one value made hostile.
            _ => {
                let phone = format!("139{:08}", rng.random_range(0..100_000_000u32));
                let mut typed: Vec<(String, String)> = fields("何平", &phone, &token)
                    .into_iter()
                    .map(|(n, v)| (n.to_owned(), v.to_owned()))
                    .collect();
                let spoilt = rng.random_range(0..names.len());
                typed[spoilt].1 = hostile_text(&mut rng, 60);
                form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(typed)
                    .finish()
                    .into_bytes()
            }
        };
        let answer = client.post_raw(&path, body).await;
        assert!(
            matches!(answer.status, 200 | 400 | 403 | 413 | 422),
            "case {case}: {} {}",
            answer.status,
            answer.body
        );
        if answer.status == 200 {
            accepted += 1;
        }
    }
    form(&mut client, &station).await;
    let claims = host.ctl_json(&["reportin", "list"]);
    assert_eq!(claims.len(), accepted, "one claim per accepted submission");
}
