//! The cookie jar, the cookie-date parser and the `Cookie` field reader never panic, and a jar
//! never sends a cookie for a request it does not match.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weaprous_core::time::UnixTime;
use weaprous_core::web::cookie::parse_cookie_header;
use weaprous_core::web::cookie_date;
use weaprous_core::web::jar::Jar;
use weaprous_core::web::url::Url;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = cookie_date::parse(&text);
    let _ = parse_cookie_header(&text);
    let now = UnixTime(1_796_631_000);
    let mut jar = Jar::new();
    let here = Url::parse("http://a.example/x/y").expect("a URL");
    for line in text.lines() {
        jar.set(now, &here, line);
    }
    let _ = jar.header(now, &here);
    let elsewhere = Url::parse("http://b.other/").expect("a URL");
    assert_eq!(
        jar.header(now, &elsewhere),
        "",
        "a.example can only set cookies for a.example and example: never for b.other"
    );
    if let Some(u) = Url::parse(&text) {
        let _ = jar.header(now, &u);
    }
});
