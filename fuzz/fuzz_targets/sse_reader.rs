//! The event-stream reader never panics, and what it reads does not depend on how the bytes
//! were split (the first byte says where to cut).
#![no_main]

use libfuzzer_sys::fuzz_target;
use weaprous_core::web::sse::Reader;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let mut whole = Reader::new();
    let all = whole.feed(stream).expect("short input");
    let cut = usize::from(cut).min(stream.len());
    let mut split = Reader::new();
    let mut parts = split.feed(&stream[..cut]).expect("short input");
    parts.extend(split.feed(&stream[cut..]).expect("short input"));
    assert_eq!(all, parts);
    assert_eq!(whole.last_id, split.last_id);
});
