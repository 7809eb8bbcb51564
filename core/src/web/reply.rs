//! The answers every WeApRous node gives the same way, as [`AppReply`] values: JSON with its
//! status, a redirect, a 401 for a browser or an API client, a "starting" page.

use super::cookie::SetCookie;
use super::request::error_json;
use super::router::{allow_value, Lookup, Params, Router};
use crate::backend::app::{AppReply, AppRequest};
use crate::http::target::normalize_path;
use crate::http::{Method, ResponseHead, Status};

/// What a 401 to a browser names: a scheme no browser prompts for (RFC 7235 §3.1 wants a
/// challenge on every 401; `Basic` would open a password dialog).
pub const BROWSER_CHALLENGE: &str = "Session realm=\"weaprous\"";

/// A JSON body with `status` and extra head fields (never cached).
pub fn json(status: Status, headers: &[(&str, &str)], json: String) -> AppReply {
    let mut head = ResponseHead::new(status);
    head.headers.append("Content-Type", "application/json");
    head.headers.append("Cache-Control", "no-store");
    for (n, v) in headers {
        head.headers.append(n, v);
    }
    AppReply::Respond {
        head,
        body: json.into_bytes(),
    }
}

/// `{"status":"error","message":...}` with `status`.
pub fn error(status: u16, message: &str) -> AppReply {
    json(Status(status), &[], error_json(message))
}

/// A `303` to `location`, setting `cookie` if given.
pub fn redirect(location: &str, cookie: Option<&SetCookie>) -> AppReply {
    let mut head = ResponseHead::new(Status(303));
    head.headers.append("Location", location);
    head.headers.append("Cache-Control", "no-store");
    if let Some(c) = cookie {
        head.headers.append("Set-Cookie", c.to_string());
    }
    AppReply::Respond {
        head,
        body: Vec::new(),
    }
}

/// A small HTML page with `status` and extra head fields.
pub fn page(status: Status, headers: &[(&str, &str)], html: &str) -> AppReply {
    let mut head = ResponseHead::new(status);
    head.headers
        .append("Content-Type", "text/html; charset=utf-8");
    head.headers.append("Cache-Control", "no-store");
    for (n, v) in headers {
        head.headers.append(n, v);
    }
    AppReply::Respond {
        head,
        body: html.as_bytes().to_vec(),
    }
}

/// A 401: a page that sends a browser to the login form, JSON and a Basic challenge for an
/// API client.
pub fn unauthorized(browser: bool) -> AppReply {
    if browser {
        return page(
            Status(401),
            &[("WWW-Authenticate", BROWSER_CHALLENGE)],
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <title>Sign in</title>\n<meta http-equiv=\"refresh\" content=\"0; url=/login.html\">\n\
             </head>\n<body>\n<p>You need to <a href=\"/login.html\">sign in</a>.</p>\n</body>\n</html>\n",
        );
    }
    json(
        Status(401),
        &[("WWW-Authenticate", super::basic::CHALLENGE)],
        error_json("sign in first"),
    )
}

/// A 503 for a browser: a page that reloads itself a second later, saying `what` is starting.
pub fn starting_page(what: &str) -> AppReply {
    page(
        Status::SERVICE_UNAVAILABLE,
        &[("Retry-After", "1")],
        &format!(
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <title>Starting</title>\n<meta http-equiv=\"refresh\" content=\"1\">\n</head>\n\
             <body>\n<p>{what} is starting; this page reloads by itself.</p>\n</body>\n</html>\n"
        ),
    )
}

/// The route `req` names in `router`, or the answer when it names none: `400` for a path that
/// does not normalise, `405` with `Allow` for a method the path does not take, the static-file
/// rules for any other `GET` or `HEAD` (public), `404` for the rest.
pub fn route<H: Copy>(router: &Router<H>, req: &AppRequest) -> Result<(H, Params), AppReply> {
    let Ok(path) = normalize_path(req.head.target.path()) else {
        return Err(error(400, "bad path"));
    };
    match router.lookup(&req.head.method, &path) {
        Lookup::Found { handler, params } => Ok((*handler, params)),
        Lookup::MethodNotAllowed { allow } => Err(json(
            Status::METHOD_NOT_ALLOWED,
            &[("Allow", &allow_value(&allow))],
            error_json("this address does not take that method"),
        )),
        Lookup::NotFound if matches!(req.head.method, Method::Get | Method::Head) => {
            Err(AppReply::Static { private: false })
        }
        Lookup::NotFound => Err(error(404, "no such route")),
    }
}

/// The head of an event stream (`GET`: a stream follows; `HEAD`: the head alone).
pub fn event_stream(method: &Method) -> AppReply {
    let mut head = ResponseHead::new(Status::OK);
    head.headers.append("Content-Type", "text/event-stream");
    if *method == Method::Head {
        return AppReply::Respond {
            head,
            body: Vec::new(),
        };
    }
    head.headers.append("Cache-Control", "no-store");
    // nginx and others buffer responses unless told not to.
    head.headers.append("X-Accel-Buffering", "no");
    AppReply::Stream { head }
}
