//! Form and query decoding never panics, and what it decodes encodes back to text that decodes
//! to the same pairs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weaprous_core::web::form::{encode, Form};

fuzz_target!(|data: &[u8]| {
    if let Ok(form) = Form::parse(data) {
        let again: Vec<String> = form
            .pairs
            .iter()
            .map(|(n, v)| format!("{}={}", encode(n), encode(v)))
            .collect();
        let reparsed = Form::parse(again.join("&").as_bytes()).expect("our own encoding decodes");
        // Empty pairs (`&&`) are skipped on the first read; everything else survives.
        assert_eq!(reparsed, form);
    }
});
