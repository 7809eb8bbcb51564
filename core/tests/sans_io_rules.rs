//! ARCHITECTURE.md, "The crates": core/ does no I/O, reads no clock, spawns nothing, uses no global RNG and no
#![allow(clippy::disallowed_methods)] // tests read their fixtures from disk
//! hash-ordered collections. clippy.toml catches calls; this test catches the rest by reading
//! the source, so a rule break fails `cargo test` even where clippy is not run.

use std::path::Path;

const FORBIDDEN: &[&str] = &[
    "std::net",
    "std::fs",
    "std::thread",
    "std::process",
    "Instant::now",
    "SystemTime::now",
    "smol::",
    "async_io::",
    "tokio::",
    "async fn",
    "HashMap",
    "HashSet",
    "unsafe ",
    "fastrand::u64(",
    "fastrand::u32(",
    "fastrand::usize(",
    "fastrand::bool(",
    "fastrand::f64(",
    "fastrand::shuffle(",
    "fastrand::seed(",
];

fn visit(dir: &Path, hits: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("core/src is readable") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            visit(&path, hits);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("source is UTF-8");
            for (n, line) in text.lines().enumerate() {
                let code = line.trim_start();
                if code.starts_with("//") {
                    continue;
                }
                for f in FORBIDDEN {
                    if code.contains(f) {
                        hits.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                    }
                }
            }
        }
    }
}

#[test]
fn core_source_stays_sans_io_and_deterministic() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut hits = Vec::new();
    visit(&src, &mut hits);
    assert!(
        hits.is_empty(),
        "core/ breaks the sans-I/O rules:\n{}",
        hits.join("\n")
    );
}

#[test]
fn the_rule_checker_sees_a_violation() {
    let dir = std::env::temp_dir().join(format!("weaprous-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("bad.rs"),
        "fn f() { let _ = std::time::Instant::now(); }\n",
    )
    .unwrap();
    let mut hits = Vec::new();
    visit(&dir, &mut hits);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(hits.len(), 1);
}
