//! HTTP Basic authentication (RFC 7617) on the server's side: reading `Authorization: Basic`
//! and the challenge to send with a 401 (RFC 7235 §3.1 requires one on every 401).
//!
//! Credentials are UTF-8 (we announce `charset="UTF-8"`, §2.1); a user-id may not contain `:`,
//! the password may. Anything unreadable (another scheme, bad base64, not UTF-8, no `:`) is
//! `None`, which the app answers like missing credentials: 401 with the challenge.

use super::base64;

/// The challenge for API clients.
pub const CHALLENGE: &str = "Basic realm=\"weaprous\", charset=\"UTF-8\"";

/// The user-id and password of an `Authorization` field value, if it is Basic and readable.
pub fn credentials(authorization: &str) -> Option<(String, String)> {
    let v = authorization.trim_matches([' ', '\t']);
    let (scheme, token) = v.split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let bytes = base64::decode(token.trim_matches([' ', '\t']))?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// The `Authorization` value for `user` and `password` (what a client sends).
pub fn authorization(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::encode(format!("{user}:{password}").as_bytes())
    )
}
