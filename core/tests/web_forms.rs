//! Form bodies and query strings, and Basic credentials.

use proptest::prelude::*;
use weaprous_core::web::base64::{decode as base64_decode, encode as base64_encode};
use weaprous_core::web::basic::{self, credentials};
use weaprous_core::web::form::{decode, encode, Form, FormError, MAX_PAIRS};

#[test]
fn every_escape_is_decoded_not_only_plus_and_at() {
    let f = Form::parse(b"user=al%69ce%40example.com&msg=caf%C3%A9+%26+cr%C3%A8me%21&empty=&flag")
        .unwrap();
    assert_eq!(f.get("user"), Some("alice@example.com"));
    assert_eq!(f.get("msg"), Some("café & crème!"));
    assert_eq!(f.get("empty"), Some(""));
    assert_eq!(
        f.get("flag"),
        Some(""),
        "a name without = has an empty value"
    );
    assert_eq!(f.get("missing"), None);
    assert_eq!(
        Form::parse(b"a=1&a=2").unwrap().get("a"),
        Some("1"),
        "the first of a repeated name"
    );
    assert_eq!(
        Form::parse(b"&&a=1&").unwrap().pairs.len(),
        1,
        "empty pairs are skipped"
    );
    assert_eq!(Form::parse(b"k%3Dx=v%3Dy").unwrap().get("k=x"), Some("v=y"));
    assert_eq!(
        Form::parse(b"a=1=2").unwrap().get("a"),
        Some("1=2"),
        "split on the first ="
    );
}

#[test]
fn malformed_forms_are_refused_with_a_reason() {
    assert_eq!(Form::parse(b"a=%zz"), Err(FormError::BadEscape));
    assert_eq!(Form::parse(b"a=%4"), Err(FormError::BadEscape));
    assert_eq!(Form::parse(b"a=%"), Err(FormError::BadEscape));
    assert_eq!(Form::parse(b"a=%C3"), Err(FormError::NotUtf8));
    assert_eq!(Form::parse(b"a=\xff"), Err(FormError::NotUtf8));
    let many: Vec<u8> = (0..=MAX_PAIRS)
        .map(|i| format!("k{i}=v&"))
        .collect::<String>()
        .into();
    assert_eq!(Form::parse(&many), Err(FormError::TooManyPairs));
    let enough: Vec<u8> = (0..MAX_PAIRS)
        .map(|i| format!("k{i}=v&"))
        .collect::<String>()
        .into();
    assert_eq!(Form::parse(&enough).unwrap().pairs.len(), MAX_PAIRS);
}

#[test]
fn basic_credentials_as_curl_sends_them() {
    // curl -u admin:password
    assert_eq!(
        credentials("Basic YWRtaW46cGFzc3dvcmQ="),
        Some(("admin".into(), "password".into()))
    );
    assert_eq!(
        credentials("basic   YWRtaW46cGFzc3dvcmQ="),
        Some(("admin".into(), "password".into())),
        "scheme in any case"
    );
    // RFC 7617 §2.1's example with a UTF-8 user-id: "test" / "123£".
    assert_eq!(
        credentials("Basic dGVzdDoxMjPCow=="),
        Some(("test".into(), "123£".into()))
    );
    assert_eq!(
        credentials("Basic dTpwOnE="),
        Some(("u".into(), "p:q".into())),
        "a : in the password"
    );
    assert_eq!(credentials("Bearer YWRtaW46cGFzc3dvcmQ="), None);
    assert_eq!(credentials("Basic"), None);
    assert_eq!(credentials("Basic !!!!"), None);
    assert_eq!(credentials("Basic YWRtaW4="), None, "no colon");
    assert_eq!(credentials("Basic /w=="), None, "not UTF-8");
    assert_eq!(
        basic::authorization("admin", "password"),
        "Basic YWRtaW46cGFzc3dvcmQ="
    );
    assert!(basic::CHALLENGE.starts_with("Basic realm=\"weaprous\""));
}

#[test]
fn base64_per_rfc_4648_vectors() {
    for (plain, coded) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64_encode(plain.as_bytes()), coded);
        assert_eq!(base64_decode(coded).as_deref(), Some(plain.as_bytes()));
        assert_eq!(
            base64_decode(coded.trim_end_matches('=')).as_deref(),
            Some(plain.as_bytes()),
            "unpadded"
        );
    }
    for bad in ["Z", "Zm9vY", "Zg=", "Zg===", "Z===", "Zm9v!", "Zm=v"] {
        assert_eq!(base64_decode(bad), None, "{bad:?}");
    }
}

proptest! {
    #[test]
    fn encode_then_decode_is_the_identity(s in "\\PC{0,40}") {
        prop_assert_eq!(decode(encode(&s).as_bytes()), Ok(s.clone()));
        let body = format!("k={}&other=1", encode(&s));
        let f = Form::parse(body.as_bytes()).unwrap();
        prop_assert_eq!(f.get("k"), Some(s.as_str()));
    }

    #[test]
    fn base64_round_trips(data in proptest::collection::vec(any::<u8>(), 0..64)) {
        prop_assert_eq!(base64_decode(&base64_encode(&data)), Some(data));
    }

    #[test]
    fn no_input_panics_the_decoders(raw in proptest::collection::vec(any::<u8>(), 0..64), s in ".{0,40}") {
        let _ = Form::parse(&raw);
        let _ = credentials(&s);
        let _ = base64_decode(&s);
    }
}

proptest! {
    /// What any bytes decode to encodes back to the same pairs (the fuzz target's property).
    #[test]
    fn a_decoded_form_survives_its_own_encoding(
        raw in proptest::collection::vec(prop_oneof![Just(b'&'), Just(b'='), Just(b'%'), Just(b'+'), any::<u8>()], 0..80),
    ) {
        if let Ok(form) = Form::parse(&raw) {
            let again: Vec<String> = form
                .pairs
                .iter()
                .map(|(n, v)| format!("{}={}", encode(n), encode(v)))
                .collect();
            prop_assert_eq!(Form::parse(again.join("&").as_bytes()), Ok(form));
        }
    }
}
