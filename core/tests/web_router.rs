//! The route table: parameters, trailing slashes, HEAD for GET, 405 with `Allow`, 404.

use weaprous_core::http::target::normalize_path;
use weaprous_core::http::Method;
use weaprous_core::web::router::{allow_value, Lookup, Router};

#[derive(Debug, PartialEq, Eq)]
enum H {
    Login,
    Messages,
    Post,
    Channels,
    CreateChannel,
}

fn router() -> Router<H> {
    let mut r = Router::new();
    r.route(&[Method::Post], "/login", H::Login)
        .route(&[Method::Get], "/channel/{name}/messages", H::Messages)
        .route(&[Method::Post], "/channel/{name}/message", H::Post)
        .route(&[Method::Get], "/channels", H::Channels)
        .route(&[Method::Post], "/channels", H::CreateChannel);
    r
}

fn find(r: &Router<H>, m: Method, path: &str) -> Result<(&'static str, Vec<String>), String> {
    let clean = normalize_path(path).map_err(|e| format!("{e:?}"))?;
    match r.lookup(&m, &clean) {
        Lookup::Found { handler, params } => {
            let name = match handler {
                H::Login => "login",
                H::Messages => "messages",
                H::Post => "post",
                H::Channels => "channels",
                H::CreateChannel => "create",
            };
            Ok((
                name,
                params.get("name").map(String::from).into_iter().collect(),
            ))
        }
        Lookup::MethodNotAllowed { allow } => Err(format!("405 {}", allow_value(&allow))),
        Lookup::NotFound => Err("404".into()),
    }
}

#[test]
fn parameters_are_decoded_segments() {
    let r = router();
    assert_eq!(
        find(&r, Method::Get, "/channel/general/messages"),
        Ok(("messages", vec!["general".into()]))
    );
    assert_eq!(
        find(&r, Method::Get, "/channel/my%20room/messages"),
        Ok(("messages", vec!["my room".into()]))
    );
    assert_eq!(
        find(&r, Method::Get, "/channel/caf%C3%A9/messages"),
        Ok(("messages", vec!["café".into()]))
    );
    assert_eq!(
        find(&r, Method::Post, "/channel/x/message"),
        Ok(("post", vec!["x".into()]))
    );
    assert_eq!(
        find(&r, Method::Get, "/channel/a%2Fb/messages"),
        Err("EncodedSlash".into()),
        "a parameter never holds a /"
    );
}

#[test]
fn a_trailing_slash_and_dot_segments_are_tolerated() {
    let r = router();
    assert_eq!(find(&r, Method::Post, "/login/"), Ok(("login", vec![])));
    assert_eq!(find(&r, Method::Post, "/./login"), Ok(("login", vec![])));
    assert_eq!(
        find(&r, Method::Get, "/channel/general/messages/"),
        Ok(("messages", vec!["general".into()]))
    );
}

#[test]
fn head_reaches_every_get_route() {
    let r = router();
    assert_eq!(
        find(&r, Method::Head, "/channels"),
        Ok(("channels", vec![]))
    );
    assert_eq!(
        find(&r, Method::Head, "/channel/g/messages"),
        Ok(("messages", vec!["g".into()]))
    );
    assert_eq!(
        find(&r, Method::Head, "/login"),
        Err("405 POST".into()),
        "HEAD only where GET is"
    );
}

#[test]
fn a_wrong_method_is_405_with_every_allowed_method() {
    let r = router();
    assert_eq!(find(&r, Method::Get, "/login"), Err("405 POST".into()));
    assert_eq!(
        find(&r, Method::Delete, "/channels"),
        Err("405 GET, HEAD, POST".into()),
        "two routes, one path"
    );
    assert_eq!(
        find(&r, Method::Put, "/channel/g/messages"),
        Err("405 GET, HEAD".into())
    );
    assert_eq!(
        find(&r, Method::Post, "/channels"),
        Ok(("create", vec![])),
        "the second route on a path is reached"
    );
}

#[test]
fn no_matching_pattern_is_404() {
    let r = router();
    assert_eq!(find(&r, Method::Get, "/"), Err("404".into()));
    assert_eq!(
        find(&r, Method::Get, "/channel/general"),
        Err("404".into()),
        "too short"
    );
    assert_eq!(
        find(&r, Method::Get, "/channel/a/b/messages"),
        Err("404".into()),
        "too long"
    );
    assert_eq!(
        find(&r, Method::Get, "/Channels"),
        Err("404".into()),
        "literals are case-sensitive"
    );
}

#[test]
#[should_panic(expected = "must start with /")]
fn a_pattern_without_a_leading_slash_is_a_programming_error() {
    Router::new().route(&[Method::Get], "login", ());
}
