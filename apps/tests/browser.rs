//! The chat in a real browser: headless Chromium (Debian's package, installed by the test
//! command) drives `stack` through the proxy, by `apps/tests/browser/chat.mjs` (Node.js over
//! the DevTools protocol). Two sessions sign in, one posts, the other sees it live; HTML in a
//! message stays text; a reload shows the history; signing out makes `/` a 401 again.
//! Screenshots are kept in `target/test-artifacts/browser/`.
//!
//! The second test runs `stack --peers 2` and has two peer UIs (`apps/tests/browser/peer.mjs`)
//! exchange a direct message and a broadcast, live.
//!
//! Chromium and Node.js are required: without them these tests fail, they never skip.

mod common;

use std::process::Command;

fn tools_present() {
    for tool in ["node", "chromium"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            found,
            "{tool} is missing: scripts/test installs it (apt-get install nodejs chromium)"
        );
    }
}

#[test]
fn two_peers_message_each_other_live_in_chromium() {
    tools_present();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let data = common::TempDir::new("browser-peers");
    // Peer B's UI is on the port after A's.
    let ui_a = common::free_port();
    let args: Vec<String> = [
        "--backend-port",
        &common::free_port().to_string(),
        "--app-port",
        &common::free_port().to_string(),
        "--proxy-port",
        &common::free_port().to_string(),
        "--data-dir",
        &data.path().to_string_lossy(),
        "--www",
        &format!("{root}/www"),
        "--static",
        &format!("{root}/static"),
        "--peers",
        "2",
        "--peer-ui-port",
        &ui_a.to_string(),
        "--peer-p2p-port",
        &common::free_port().to_string(),
        // A peer that starts second shows on the first's list at its next heartbeat.
        "--peer-heartbeat",
        "300ms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let stack =
        common::Server::start_waiting_for(env!("CARGO_BIN_EXE_stack"), &args, "proxy listening on");
    let mut logins = Vec::new();
    while logins.len() < 2 {
        let line = stack.wait_line("stack: peer ");
        // stack: peer alice    http://localhost:PORT/  (sign in: alice / PASSWORD)
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap()
            .trim_end_matches('/')
            .to_string();
        let creds = line
            .rsplit("(sign in: ")
            .next()
            .unwrap()
            .trim_end_matches(')');
        let (user, pw) = creds.split_once(" / ").unwrap();
        logins.push((url, user.to_string(), pw.to_string()));
    }
    stack.wait_line("Ctrl-C stops everything");
    let artifacts = format!("{root}/target/test-artifacts/browser-peers");
    let _ = std::fs::remove_dir_all(&artifacts);
    let out = Command::new("node")
        .arg(format!("{root}/apps/tests/browser/peer.mjs"))
        .arg(&artifacts)
        .args([
            &logins[0].0,
            &logins[0].1,
            &logins[0].2,
            &logins[1].0,
            &logins[1].1,
            &logins[1].2,
        ])
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(report["ok"], true);
    println!(
        "browser: a direct message reached the other peer's page in {} ms, a broadcast in {} ms",
        report["direct_ms"], report["broadcast_ms"]
    );
    for shot in [
        "peer-b-unread.png",
        "peer-a-delivered.png",
        "peer-a-broadcast.png",
    ] {
        let len = std::fs::metadata(format!("{artifacts}/{shot}")).map_or(0, |m| m.len());
        assert!(len > 1000, "{shot} was not kept ({len} bytes)");
    }
}

#[test]
fn two_people_chat_through_the_proxy_in_chromium() {
    tools_present();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let data = common::TempDir::new("browser-data");
    let proxy_port = common::free_port();
    let args: Vec<String> = vec![
        "--backend-port".into(),
        common::free_port().to_string(),
        "--app-port".into(),
        common::free_port().to_string(),
        "--proxy-port".into(),
        proxy_port.to_string(),
        "--data-dir".into(),
        data.path().to_string_lossy().into_owned(),
        "--www".into(),
        format!("{root}/www"),
        "--static".into(),
        format!("{root}/static"),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let stack =
        common::Server::start_waiting_for(env!("CARGO_BIN_EXE_stack"), &args, "proxy listening on");
    stack.wait_line("Ctrl-C stops everything");
    let artifacts = format!("{root}/target/test-artifacts/browser");
    // Screenshots of an earlier run must not pass for this one's.
    let _ = std::fs::remove_dir_all(&artifacts);
    let out = Command::new("node")
        .arg(format!("{root}/apps/tests/browser/chat.mjs"))
        .arg(format!("http://localhost:{proxy_port}"))
        .arg(&artifacts)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(report["ok"], true);
    // The latency a person saw, from A's Enter to B's page showing the message.
    println!(
        "browser: A's message reached B's page in {} ms; screenshots in {artifacts}",
        report["latency_ms"]
    );
    for shot in [
        "b-live.png",
        "a-sent.png",
        "b-reloaded.png",
        "a-signed-out.png",
    ] {
        let len = std::fs::metadata(format!("{artifacts}/{shot}")).map_or(0, |m| m.len());
        assert!(len > 1000, "{shot} was not kept ({len} bytes)");
    }
}
