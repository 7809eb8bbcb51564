//! `proxy.conf`: the seed's file, every directive, every error (with its position), routing.

use weaprous_core::proxy::config::{Config, Part, Policy, Upstream, Var};
use weaprous_core::time::Duration;

/// The configuration as the seed document ships it: `dist_policy` without its `;`.
const SEED: &str = r#"host "localhost:8080" {
    proxy_pass http://127.0.0.1:9000;
}

host "127.0.0.1:8080" {
    proxy_pass http://127.0.0.1:9000;
}

host "app1.local" {
    proxy_pass http://127.0.0.1:9001;
}

host "app2.local" {
    proxy_pass http://127.0.0.1:9002;
    proxy_pass http://127.0.0.1:9003;
    dist_policy round-robin
}
"#;

fn up(host: &str, port: u16) -> Upstream {
    Upstream {
        host: host.into(),
        port,
        weight: 1,
        backup: false,
    }
}

fn error(text: &str) -> String {
    let e = Config::parse(text).expect_err("must be refused");
    e.to_string()
}

#[test]
fn the_seed_file_loads_as_the_seed_meant_it() {
    let c = Config::parse(SEED).unwrap();
    assert_eq!(c.hosts.len(), 4);
    let app2 = c.route("app2.local").unwrap();
    let root = app2.location("/");
    assert_eq!(
        root.upstreams,
        vec![up("127.0.0.1", 9002), up("127.0.0.1", 9003)]
    );
    assert_eq!(root.policy, Policy::RoundRobin);
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    let w = c.warnings[0].to_string();
    assert!(w.starts_with("17:1:"), "{w}");
    assert!(w.contains("dist_policy") && w.contains("16:5"), "{w}");
}

#[test]
fn a_commented_out_block_is_inactive() {
    let text =
        format!("{SEED}\n# host \"old.local\" {{\n#   proxy_pass http://10.0.0.1:80;\n# }}\n");
    let c = Config::parse(&text).unwrap();
    assert!(c.route("old.local").is_none());
    assert_eq!(c.hosts.len(), 4);
}

#[test]
fn the_shipped_file_routes_as_documented() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/proxy.conf"))
            .unwrap();
    let c = Config::parse(&text).unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    // The entry point reaches the chat app, as the seed routes it.
    for h in ["localhost:8080", "127.0.0.1:8080", "LOCALHOST:8080"] {
        assert_eq!(
            c.route(h).unwrap().location("/").upstreams,
            vec![up("127.0.0.1", 8000)],
            "{h}"
        );
    }
    assert_eq!(
        c.route("app1.local").unwrap().location("/x").upstreams,
        vec![up("127.0.0.1", 9000)]
    );
    let app2 = c.route("app2.local:8080").unwrap().location("/");
    assert_eq!(
        app2.upstreams,
        vec![up("127.0.0.1", 9001), up("127.0.0.1", 9002)]
    );
    assert_eq!(app2.policy, Policy::RoundRobin);
    assert!(
        c.route("unknown.example").is_none(),
        "no default block: unknown hosts get 404"
    );
}

#[test]
fn every_directive() {
    let c = Config::parse(
        r#"
        proxy_connect_timeout 2s;
        proxy_set_header X-Top 1;
        host "Shop.Example:8443" {
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Req "id=${request_id} via $scheme $$5";
            proxy_pass http://10.0.0.1:8080 weight=3;
            proxy_pass http://10.0.0.2 backup;
            dist_policy weighted;
            proxy_read_timeout 2m;
            location /api/ {
                proxy_pass http://[::1]:9100/;
                dist_policy least-conn;
                proxy_send_timeout 500ms;
            }
            location /api/v2/ { dist_policy ip-hash; }
        }
        default { proxy_pass http://127.0.0.1:9000; dist_policy random; }
        "#,
    )
    .unwrap();
    let shop = c.route("shop.example:8443").unwrap();
    let root = shop.location("/index.html");
    assert_eq!(root.prefix, "/");
    assert_eq!(root.upstreams[0].weight, 3);
    assert_eq!(
        root.upstreams[1],
        Upstream {
            host: "10.0.0.2".into(),
            port: 80,
            weight: 1,
            backup: true
        }
    );
    assert_eq!(root.policy, Policy::Weighted);
    assert_eq!(
        root.timeouts.connect,
        Duration::from_secs(2),
        "inherited from the top"
    );
    assert_eq!(root.timeouts.read, Duration::from_secs(120));
    assert_eq!(root.timeouts.send, Duration::from_secs(60), "the default");
    let names: Vec<&str> = root.set_headers.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(
        names,
        ["X-Real-IP", "X-Req"],
        "a level's headers replace the top level's"
    );
    assert_eq!(
        root.set_headers[1].value,
        vec![
            Part::Lit("id=".into()),
            Part::Var(Var::RequestId),
            Part::Lit(" via ".into()),
            Part::Var(Var::Scheme),
            Part::Lit(" $5".into()),
        ]
    );
    let api = shop.location("/api/users");
    assert_eq!(api.prefix, "/api/");
    assert_eq!(api.upstreams, vec![up("[::1]", 9100)]);
    assert_eq!(api.policy, Policy::LeastConn);
    assert_eq!(api.timeouts.send, Duration::from_millis(500));
    assert_eq!(api.timeouts.read, Duration::from_secs(120), "from the host");
    let v2 = shop.location("/api/v2/x");
    assert_eq!(v2.prefix, "/api/v2/", "the longest prefix wins");
    assert_eq!(
        v2.upstreams.len(),
        2,
        "a location without proxy_pass uses the host's"
    );
    assert_eq!(v2.policy, Policy::IpHash);
    let other = c.route("nobody.example").unwrap();
    assert_eq!(other.label(), "default");
    assert_eq!(other.location("/").policy, Policy::Random);
    assert_eq!(
        other.location("/").set_headers.len(),
        1,
        "the top level's headers"
    );
}

#[test]
fn host_matching_tries_name_and_port_then_the_bare_name() {
    let c = Config::parse(
        "host a.local { proxy_pass http://1.1.1.1:1; }\n\
         host \"a.local:8080\" { proxy_pass http://2.2.2.2:2; }\n",
    )
    .unwrap();
    let port_of = |h: &str| c.route(h).map(|v| v.location("/").upstreams[0].port);
    assert_eq!(port_of("a.local:8080"), Some(2));
    assert_eq!(port_of("A.LOCAL:8080"), Some(2));
    assert_eq!(port_of("a.local:9999"), Some(1));
    assert_eq!(port_of("a.local"), Some(1));
    assert_eq!(port_of("a.local."), Some(1));
    assert_eq!(port_of("b.local"), None);
}

#[test]
fn every_error_names_its_line_and_column() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "host a { proxy_pass http://x:1; bogus 1; }",
            "1:33:",
            "unknown directive `bogus`",
        ),
        (
            "host a {\n  dist_policy round-robin\n  proxy_pass http://x:1;\n}",
            "3:3:",
            "expected `;` after `round-robin`",
        ),
        (
            "host a { proxy_pass https://x:1; }",
            "1:21:",
            "expected http://HOST[:PORT]",
        ),
        ("host a { proxy_pass http://x:1/app; }", "1:21:", "no path"),
        (
            "host a { proxy_pass http://x:1 weight=0; }",
            "1:32:",
            "weight must be",
        ),
        (
            "host a { proxy_pass http://x:1; dist_policy fastest; }",
            "1:45:",
            "unknown dist_policy `fastest`",
        ),
        (
            "host a { proxy_pass http://x:1; }\nhost A { proxy_pass http://y:1; }",
            "2:6:",
            "already defined at 1:1",
        ),
        ("host a {\n proxy_pass http://x:1;\n", "2:", "not closed"),
        (
            "host a { proxy_pass http://x:1; proxy_set_header X $nope; }",
            "1:50:",
            "unknown variable `$nope`",
        ),
        (
            "host a { location /x { location /y { } } }",
            "1:24:",
            "cannot be nested",
        ),
        ("proxy_pass http://x:1;", "1:1:", "belongs inside"),
        (
            "host a { proxy_pass http://x:1; proxy_read_timeout soon; }",
            "1:52:",
            "expected a duration",
        ),
        ("host a { dist_policy random; }", "1:1:", "no `proxy_pass`"),
        ("host a { location api { } }", "1:19:", "starts with `/`"),
        ("host \"a b\" { }", "1:6:", "not a host name"),
        ("host a { proxy_pass http://x:1 }", "", ""),
        ("host \"a { }", "1:6:", "unterminated string"),
        ("host a proxy_pass", "1:8:", "expected `{`"),
        ("}", "1:1:", "expected a directive"),
    ];
    for (text, at, what) in cases {
        if at.is_empty() {
            // Accepted with a warning, not an error.
            assert!(
                Config::parse(text).is_ok_and(|c| c.warnings.len() == 1),
                "{text}"
            );
            continue;
        }
        let e = error(text);
        assert!(e.starts_with(at), "{text:?}: {e}");
        assert!(e.contains(what), "{text:?}: {e}");
    }
}

#[test]
fn the_canonical_form_parses_back_to_the_same_configuration() {
    let texts = [
        SEED.to_string(),
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/proxy.conf")).unwrap(),
        "host x { proxy_set_header A \"q\\\"uote $$ ${host}\"; proxy_pass http://[::1]:1 weight=2 backup; location /a/ { proxy_pass http://b:2; } }\ndefault { proxy_pass http://c; }".into(),
    ];
    for t in texts {
        let c = Config::parse(&t).unwrap();
        let again = Config::parse(&c.to_conf()).unwrap_or_else(|e| panic!("{e}\n{}", c.to_conf()));
        assert_eq!(again.hosts.len(), c.hosts.len());
        for (a, b) in again.hosts.iter().zip(&c.hosts) {
            assert_eq!(
                (&a.name, a.port, &a.locations),
                (&b.name, b.port, &b.locations)
            );
        }
        assert_eq!(
            again.default.map(|d| d.locations),
            c.default.map(|d| d.locations)
        );
    }
}

#[test]
fn the_table_lists_every_route() {
    let c = Config::parse(SEED).unwrap();
    let t = c.table();
    assert!(t.contains("app2.local"), "{t}");
    assert!(t.contains("127.0.0.1:9002, 127.0.0.1:9003"), "{t}");
    assert_eq!(t.lines().count(), 4);
}

#[test]
fn a_colon_without_a_port_is_refused_not_read_as_no_port() {
    // Found by the proxy_config fuzz target: `http://x:` was read as the host `x:` on port 80,
    // whose canonical form `http://x::80` did not parse back.
    for bad in [
        "http://x:",
        "http://x:0",
        "http://x:65536",
        "http://x:8a",
        "http://:80",
    ] {
        let e = error(&format!("host a {{ proxy_pass {bad}; }}"));
        assert!(e.contains("expected http://HOST[:PORT]"), "{bad}: {e}");
    }
    // Found by the fuzz target too: `a..` lost one dot per round trip.
    for bad in [
        "\"a:\"",
        "\"a:0\"",
        "\":80\"",
        "\".\"",
        "\"a..\"",
        "\"a..b\"",
        "\"..:80\"",
    ] {
        let e = error(&format!("host {bad} {{ proxy_pass http://x:1; }}"));
        assert!(e.contains("not a host name"), "{bad}: {e}");
    }
}

#[test]
fn a_file_that_routes_nothing_is_warned_about() {
    let c = Config::parse("proxy_read_timeout 5s;").unwrap();
    assert_eq!(c.warnings.len(), 1);
    assert!(c.warnings[0]
        .message
        .contains("no host block and no default"));
    assert!(Config::parse("default { proxy_pass http://127.0.0.1:1; }")
        .unwrap()
        .warnings
        .is_empty());
}
