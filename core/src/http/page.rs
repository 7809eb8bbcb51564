//! The pages a server writes itself (errors, redirects): a small HTML page in the site's look
//! for a browser, plain text for anything else.
//!
//! Decision: a request is a browser's when its `Accept` names `text/html` (every browser's
//! navigation does; curl, API clients and load balancers' probes do not), as the chat API's
//! JSON errors will be chosen later. The HTML page carries its own few lines of style, the
//! site's colours and font, rather than a link to the site's stylesheet: a proxy's error page
//! may answer for a host whose stylesheet does not exist.

use super::{Headers, Status};

/// Whether the request whose fields are `headers` comes from a browser (see the module docs).
pub fn wants_html(headers: &Headers) -> bool {
    headers.get_all("accept").any(|v| {
        v.split(|&b| b == b',').any(|item| {
            let media = item.split(|&b| b == b';').next().unwrap_or(&[]);
            super::chars::trim_ows(media).eq_ignore_ascii_case(b"text/html")
        })
    })
}

/// The `Content-Type` and body of the page for `status`.
pub fn page(status: Status, html: bool) -> (&'static str, String) {
    let title = format!("{} {}", status.0, status.reason());
    let text = explanation(status);
    if !html {
        return ("text/plain; charset=utf-8", format!("{title}\n{text}\n"));
    }
    let body = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n\
         <style>body{{font-family:system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}}\
         main{{max-width:40rem;margin:3rem auto;padding:0 1rem}}h1{{color:#2878c8}}</style>\n\
         </head>\n<body>\n<main>\n<h1>{title}</h1>\n<p>{text}</p>\n<p><a href=\"/\">Home</a></p>\n\
         </main>\n</body>\n</html>\n"
    );
    ("text/html; charset=utf-8", body)
}

/// One sentence on what the status means to the person who got it.
fn explanation(status: Status) -> &'static str {
    match status.0 {
        301 | 308 => "The page has moved; your browser should follow it.",
        400 => "The request could not be understood.",
        403 => "You may not see this page.",
        404 => "There is no page at this address.",
        405 => "This address does not take that kind of request.",
        408 => "The request took too long to arrive.",
        413 => "The request is larger than this server takes.",
        414 => "The address is longer than this server takes.",
        416 => "The requested range is not part of the file.",
        417 => "The server cannot meet the request's expectation.",
        431 => "The request's header fields are larger than this server takes.",
        500 => "Something went wrong on the server.",
        501 => "The server does not know that kind of request.",
        502 => "The server behind this one could not be reached or answered badly.",
        503 => "The service is not available right now.",
        504 => "The server behind this one did not answer in time.",
        505 => "The server does not speak that version of HTTP.",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> bool {
        let mut h = Headers::new();
        h.append("Accept", v);
        wants_html(&h)
    }

    #[test]
    fn a_browser_is_who_accepts_html() {
        assert!(accept("text/html,application/xhtml+xml,*/*;q=0.8"));
        assert!(accept("application/json, TEXT/HTML;q=0.5"));
        assert!(!accept("*/*"));
        assert!(!accept("application/json"));
        assert!(!accept("text/htmlx"));
        assert!(!wants_html(&Headers::new()));
    }

    #[test]
    fn pages_say_the_status_in_the_form_asked_for() {
        let (t, b) = page(Status::NOT_FOUND, false);
        assert_eq!(t, "text/plain; charset=utf-8");
        assert_eq!(b, "404 Not Found\nThere is no page at this address.\n");
        let (t, b) = page(Status::BAD_GATEWAY, true);
        assert_eq!(t, "text/html; charset=utf-8");
        assert!(b.starts_with("<!doctype html>") && b.contains("<h1>502 Bad Gateway</h1>"));
        assert!(b.contains("color:#2878c8"), "the site's look");
    }
}
