//! Shared pieces of the weaprous binaries: the processes' entry points ([`cmd`]) and flag
//! helpers. No protocol logic lives here.

pub mod cmd;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

/// `--server-ip` and `--server-port` as one address.
pub fn socket_addr(ip: &str, port: u16) -> Result<SocketAddr, String> {
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| format!("--server-ip {ip:?} is not an IP address"))?;
    Ok(SocketAddr::new(ip, port))
}

/// An existing directory as an absolute path with every symlink resolved, without a trailing
/// slash (the form the backend machine compares real paths against).
pub fn root_dir(flag: &str, dir: &Path) -> Result<String, String> {
    let real = std::fs::canonicalize(dir).map_err(|e| format!("{flag} {}: {e}", dir.display()))?;
    if !real.is_dir() {
        return Err(format!("{flag} {}: not a directory", dir.display()));
    }
    Ok(real.to_string_lossy().trim_end_matches('/').to_string())
}

/// Standard base64 (RFC 4648 §4) with padding, for `httptool`'s JSON output.
pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(super::base64(i.as_bytes()), o);
        }
    }
}
