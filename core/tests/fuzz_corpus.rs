//! Replays the fuzz corpora (`fuzz/corpus/*/`) as ordinary tests, with each fuzz target's
//! input layout, so every input the fuzzer kept stays checked without nightly.
#![allow(clippy::disallowed_methods)] // tests read their fixtures from disk

use std::path::Path;
use weaprous_core::http::parse::Kind;
use weaprous_core::http::split_check::check_fuzz_input;
use weaprous_core::proxy::config::assert_round_trip;

fn corpus(name: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(name);
    std::fs::read_dir(&dir)
        .expect("the corpus is checked in")
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect()
}

#[test]
fn request_parser_corpus_replays() {
    let inputs = corpus("request_parser");
    assert!(inputs.len() >= 20, "corpus has {} inputs", inputs.len());
    for data in inputs {
        check_fuzz_input(Kind::Request, &data);
    }
}

#[test]
fn response_parser_corpus_replays() {
    let inputs = corpus("response_parser");
    assert!(inputs.len() >= 10, "corpus has {} inputs", inputs.len());
    for data in inputs {
        check_fuzz_input(Kind::Response, &data);
    }
}

#[test]
fn proxy_config_corpus_replays() {
    let inputs = corpus("proxy_config");
    assert!(inputs.len() >= 10, "corpus has {} inputs", inputs.len());
    for data in inputs {
        assert_round_trip(&String::from_utf8_lossy(&data));
    }
}

#[test]
fn p2p_frames_corpus_replays() {
    let inputs = corpus("p2p_frames");
    assert!(inputs.len() >= 10, "corpus has {} inputs", inputs.len());
    for data in inputs {
        weaprous_core::p2p::wire::check_frames(&data);
    }
}
