//! The few parts of an `http:` or `https:` URL that a client needs: scheme, host, port, path
//! and query. Not a general URL parser: no relative references, no IDNA; a host is lowercased
//! and kept as written otherwise.

/// A parsed absolute http(s) URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// `http` or `https`.
    pub scheme: String,
    /// Lowercase; an IPv6 address keeps its brackets.
    pub host: String,
    pub port: u16,
    /// Starts with `/` (`/` when the URL has none).
    pub path: String,
    /// After `?`, without it; `None` when there is no `?`.
    pub query: Option<String>,
}

impl Url {
    /// Parses `http://host[:port]/path?query#fragment` (or https); `None` for anything else.
    pub fn parse(s: &str) -> Option<Url> {
        let (scheme, rest) = s.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let rest = rest.split('#').next().unwrap_or("");
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        // Userinfo is not part of the host.
        let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = if hostport.starts_with('[') {
            let close = hostport.find(']')?;
            let port = hostport[close + 1..].strip_prefix(':');
            (&hostport[..=close], port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return None;
        }
        let port = match port {
            Some("") | None => default_port,
            Some(p) => p.parse().ok()?,
        };
        let (path, query) = match tail.split_once('?') {
            Some((p, q)) => (p, Some(q.to_string())),
            None => (tail, None),
        };
        Some(Url {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
            path: if path.is_empty() {
                "/".into()
            } else {
                path.into()
            },
            query,
        })
    }

    /// The connection is protected (`Secure` cookies may go on it).
    pub fn secure(&self) -> bool {
        self.scheme == "https"
    }

    /// The host is an IP address (domain matching then means equality).
    pub fn host_is_ip(&self) -> bool {
        self.host.starts_with('[') || self.host.parse::<core::net::Ipv4Addr>().is_ok()
    }

    /// The request-target for this URL: the path, and `?query` when there is one.
    pub fn target(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.clone(),
        }
    }
}
