//! Every OS call beyond `std`'s portable surface lives in `src/platform/`: no other source file
//! of the crate names epoll, eventfd, `/proc`, `libc`, `rustix`, `polling` or a Linux-only
//! socket option in its code (comments may explain them). This keeps the rule mechanical
//! where a macOS or BSD build cannot run here.

use std::path::Path;

const BANNED: &[&str] = &[
    "epoll",
    "eventfd",
    "/proc",
    "libc::",
    "rustix",
    "polling::",
    "TCP_CORK",
    "TCP_DEFER_ACCEPT",
    "MSG_MORE",
    "SendFlags",
    "reuseport",
    "sendfile",
    "std::os::linux",
];

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().unwrap() != "platform" {
                sources(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a line: what comes before a `//` comment.
fn code(line: &str) -> &str {
    line.find("//").map_or(line, |i| &line[..i])
}

#[test]
fn no_os_call_outside_the_platform_module() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    assert!(files.len() >= 8, "found only {files:?}");
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = code(line);
            for banned in BANNED {
                if code.contains(banned) {
                    found.push(format!("{}:{}: {banned}: {line}", file.display(), n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "outside src/platform/:\n{}",
        found.join("\n")
    );
}

/// The rule's own check: the platform module does name them, so the scan would see them.
#[test]
fn the_platform_module_is_where_they_are() {
    let linux = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/platform/linux.rs");
    let text = std::fs::read_to_string(linux).unwrap();
    for banned in ["epoll", "eventfd", "/proc", "libc::", "TCP_DEFER_ACCEPT"] {
        assert!(
            text.lines().any(|l| code(l).contains(banned)),
            "{banned} not in linux.rs"
        );
    }
}
