//! Browser or API client, the Origin check, the client's address, error bodies.

use std::net::IpAddr;
use weaprous_core::web::request::{client_addr, error_json, origin_allowed, wants_html};

#[test]
fn browsers_ask_for_html() {
    // Chromium's page load.
    assert!(wants_html(Some(
        "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
    )));
    assert!(wants_html(Some("TEXT/HTML; charset=utf-8")));
    assert!(!wants_html(Some("*/*")), "curl");
    assert!(!wants_html(Some("application/json")));
    assert!(!wants_html(Some("text/htmlx")));
    assert!(!wants_html(None));
}

#[test]
fn origin_must_name_our_host_when_present() {
    assert!(
        origin_allowed(None, Some("localhost:8080")),
        "no Origin: allowed"
    );
    assert!(origin_allowed(
        Some("http://localhost:8080"),
        Some("localhost:8080")
    ));
    assert!(origin_allowed(
        Some("http://LOCALHOST:8080"),
        Some("localhost:8080")
    ));
    assert!(
        origin_allowed(Some("http://example.com"), Some("example.com:80")),
        "default port"
    );
    assert!(origin_allowed(
        Some("https://example.com"),
        Some("example.com:443")
    ));
    assert!(origin_allowed(
        Some("http://[::1]:8000"),
        Some("[::1]:8000")
    ));
    assert!(!origin_allowed(
        Some("http://evil.example"),
        Some("localhost:8080")
    ));
    assert!(
        !origin_allowed(Some("http://localhost:8000"), Some("localhost:8080")),
        "another port"
    );
    // `Host` carries no scheme, so only host and port are compared (one port serves one scheme).
    assert!(origin_allowed(
        Some("https://localhost:8080"),
        Some("localhost:8080")
    ));
    assert!(
        !origin_allowed(Some("https://example.com"), Some("example.com")),
        "443 is not 80"
    );
    assert!(!origin_allowed(Some("null"), Some("localhost:8080")));
    assert!(!origin_allowed(Some("http://localhost:8080"), None));
    assert!(!origin_allowed(
        Some("http://localhost:8080/x"),
        Some("localhost:8080")
    ));
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn forwarded_for_only_from_a_trusted_proxy() {
    let proxy = ip("10.0.0.1");
    let trusted = [proxy, ip("10.0.0.2")];
    let client = ip("203.0.113.7");
    assert_eq!(
        client_addr(client, Some("1.2.3.4"), &trusted),
        client,
        "an untrusted peer's header is ignored"
    );
    assert_eq!(client_addr(proxy, Some("203.0.113.7"), &trusted), client);
    assert_eq!(
        client_addr(proxy, Some("6.6.6.6, 203.0.113.7"), &trusted),
        client,
        "the client wrote the left one"
    );
    assert_eq!(
        client_addr(proxy, Some("203.0.113.7, 10.0.0.2"), &trusted),
        client,
        "through two of ours"
    );
    assert_eq!(client_addr(proxy, None, &trusted), proxy);
    assert_eq!(client_addr(proxy, Some("garbage"), &trusted), proxy);
    assert_eq!(
        client_addr(proxy, Some("10.0.0.2"), &trusted),
        ip("10.0.0.2")
    );
}

#[test]
fn errors_are_json_with_a_message() {
    let v: serde_json::Value = serde_json::from_str(&error_json("no \"such\" channel")).unwrap();
    assert_eq!(v["status"], "error");
    assert_eq!(v["message"], "no \"such\" channel");
}
