//! The route table: which handler a method and a path reach, with the path's parameters.
//!
//! `router.route(&[Method::Get], "/channel/{name}/messages", handler)` adds a route; a `{name}`
//! segment matches any one segment and is handed to the handler, decoded. Matching runs on the
//! request's path as [`normalize_path`] leaves it (escapes decoded once, dot-segments and empty
//! segments gone, an encoded `/` refused), so `/channel/my%20room/messages` gives
//! `name = "my room"` and `/login/` reaches `/login` (the seed's pages post to `/login/`).
//!
//! # What a lookup says
//! * [`Found`](Lookup::Found): the first route, in the order they were added, whose pattern and
//!   method match; `HEAD` reaches every `GET` route (the server sends the head only).
//! * [`MethodNotAllowed`](Lookup::MethodNotAllowed): some route's pattern matches but none of
//!   its methods: a 405 whose `Allow` lists the methods of every matching pattern (with `HEAD`
//!   wherever `GET` is), in a fixed order.
//! * [`NotFound`](Lookup::NotFound): no pattern matches; the app falls back to its static files.
//!
//! The query string is not the router's: the handler reads it with [`super::form::Form`].

use crate::http::target::CleanPath;
use crate::http::Method;

#[cfg(doc)]
use crate::http::target::normalize_path;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

#[derive(Clone, Debug)]
struct Route<H> {
    methods: Vec<Method>,
    pattern: Vec<Segment>,
    handler: H,
}

/// The parameters a route's `{name}` segments matched, decoded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The outcome of [`Router::lookup`].
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<'a, H> {
    Found { handler: &'a H, params: Params },
    MethodNotAllowed { allow: Vec<Method> },
    NotFound,
}

/// A route table over handlers of type `H` (functions, or an enum the app matches on).
#[derive(Clone, Debug)]
pub struct Router<H> {
    routes: Vec<Route<H>>,
}

impl<H> Default for Router<H> {
    fn default() -> Self {
        Router { routes: Vec::new() }
    }
}

/// The order `Allow` lists methods in.
const ORDER: [Method; 7] = [
    Method::Get,
    Method::Head,
    Method::Post,
    Method::Put,
    Method::Patch,
    Method::Delete,
    Method::Options,
];

impl<H> Router<H> {
    pub fn new() -> Self {
        Router::default()
    }

    /// Adds a route. `pattern` starts with `/`; its segments are literals or `{name}`.
    ///
    /// # Panics
    /// On a pattern that does not start with `/` or has an empty `{}`: a route table is
    /// written by the programmer, so this is a bug found by the first test that builds it.
    pub fn route(&mut self, methods: &[Method], pattern: &str, handler: H) -> &mut Self {
        assert!(
            pattern.starts_with('/'),
            "route {pattern:?}: must start with /"
        );
        let pattern = pattern
            .split('/')
            .filter(|s| !s.is_empty())
            .map(
                |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => {
                        assert!(!name.is_empty(), "route: an empty {{}}");
                        Segment::Param(name.to_string())
                    }
                    None => Segment::Literal(s.to_string()),
                },
            )
            .collect();
        self.routes.push(Route {
            methods: methods.to_vec(),
            pattern,
            handler,
        });
        self
    }

    /// The route for `method` and `path`; see the module docs.
    pub fn lookup(&self, method: &Method, path: &CleanPath) -> Lookup<'_, H> {
        let segments: Vec<&str> = path.segments().collect();
        let mut allow: Vec<Method> = Vec::new();
        for route in &self.routes {
            let Some(params) = matches(&route.pattern, &segments) else {
                continue;
            };
            let allowed = route
                .methods
                .iter()
                .any(|m| m == method || (*method == Method::Head && *m == Method::Get));
            if allowed {
                return Lookup::Found {
                    handler: &route.handler,
                    params,
                };
            }
            for m in &route.methods {
                if !allow.contains(m) {
                    allow.push(m.clone());
                }
                if *m == Method::Get && !allow.contains(&Method::Head) {
                    allow.push(Method::Head);
                }
            }
        }
        if allow.is_empty() {
            return Lookup::NotFound;
        }
        allow.sort_by_key(|m| ORDER.iter().position(|o| o == m).unwrap_or(ORDER.len()));
        Lookup::MethodNotAllowed { allow }
    }
}

fn matches(pattern: &[Segment], segments: &[&str]) -> Option<Params> {
    if pattern.len() != segments.len() {
        return None;
    }
    let mut params = Vec::new();
    for (p, s) in pattern.iter().zip(segments) {
        match p {
            Segment::Literal(l) if l == s => {}
            Segment::Literal(_) => return None,
            Segment::Param(name) => params.push((name.clone(), s.to_string())),
        }
    }
    Some(Params(params))
}

/// The value of an `Allow` field for `methods`.
pub fn allow_value(methods: &[Method]) -> String {
    methods
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}
