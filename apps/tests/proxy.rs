//! `proxy --check` as a user runs it.

use std::process::Command;

fn check(config: &str) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_proxy"))
        .args(["--check", "--config", config])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn temp_conf(name: &str, text: &str) -> String {
    let p = std::env::temp_dir().join(format!("weaprous-{}-{name}.conf", std::process::id()));
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn the_shipped_config_checks_and_prints_its_routes() {
    let conf = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/proxy.conf");
    let (ok, out, err) = check(conf);
    assert!(ok, "{err}");
    assert!(err.is_empty(), "no warnings: {err}");
    assert!(out.contains("syntax is ok (4 hosts)"), "{out}");
    let app2 = out.lines().find(|l| l.starts_with("app2.local")).unwrap();
    assert!(
        app2.contains("round-robin") && app2.contains("127.0.0.1:9001, 127.0.0.1:9002"),
        "{app2}"
    );
}

#[test]
fn a_missing_semicolon_before_a_brace_is_a_warning_with_its_line() {
    let conf = temp_conf("warn", "host a {\n  proxy_pass http://127.0.0.1:1\n}\n");
    let (ok, _, err) = check(&conf);
    assert!(ok);
    assert!(err.contains(&format!("{conf}:3:1: warning:")), "{err}");
}

#[test]
fn an_error_names_file_line_and_column_and_fails() {
    let conf = temp_conf(
        "err",
        "host a {\n  proxy_pass http://127.0.0.1:1;\n  dist_policy sometimes;\n}\n",
    );
    let (ok, out, err) = check(&conf);
    assert!(!ok);
    assert!(out.is_empty());
    assert!(
        err.starts_with(&format!("proxy: {conf}:3:15: unknown dist_policy")),
        "{err}"
    );
    let (ok, _, err) = check("/nonexistent/proxy.conf");
    assert!(!ok);
    assert!(err.contains("/nonexistent/proxy.conf"), "{err}");
}
