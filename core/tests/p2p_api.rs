//! A peer node's API under arbitrary requests (the `peer_requests` fuzz target's layout):
//! no panic, one answer each, errors as JSON (`weaprous_core::p2p::check`).

#[test]
fn the_request_checker_sees_every_route_with_every_kind_of_credentials() {
    let mut data = Vec::new();
    for route in 0..18u8 {
        for auth in 0..10u8 {
            data.extend_from_slice(&[route, auth % 4, auth, 0]);
            data.extend_from_slice(br#"{"peer":"bob","message":"hi","conversation":"broadcast","upto":"3","ip":"127.0.0.1","port":"1"}"#);
            data.push(0);
        }
    }
    // Past MAX_REQUESTS the checker stops; run it in slices so every route is reached.
    for chunk in data
        .split_inclusive(|&b| b == 0)
        .collect::<Vec<_>>()
        .chunks(30)
    {
        weaprous_core::p2p::check::check_requests(&chunk.concat());
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, failure_persistence: None, ..Default::default() })]
    #[test]
    fn any_requests_get_one_answer_each(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
        weaprous_core::p2p::check::check_requests(&data);
    }
}
