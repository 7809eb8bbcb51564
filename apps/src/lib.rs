//! Shared pieces of the weaprous binaries: the processes' entry points ([`cmd`]) and flag
//! helpers. No protocol logic lives here.

pub mod chatbench;
pub mod cmd;
pub mod p2pbench;
pub mod password;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

/// Ends the process: status 0 for `Ok`, else the error on stderr as `NAME: error` and
/// status 1.
pub fn exit_with(name: &str, result: Result<(), String>) -> ! {
    match result {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("{name}: {e}");
            std::process::exit(1);
        }
    }
}

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

/// Creates `dir` if needed, readable by its owner only.
pub fn private_dir(dir: &std::path::Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("--data-dir {}: {e}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("--data-dir {}: {e}", dir.display()))?;
    }
    Ok(())
}

/// A duration flag: `250ms`, `2s`, `1.5s`, `3m`, `1h`, or a number of seconds.
pub fn duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (say 500ms, 2s or 1m)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("{text:?}: the unit must be ms, s, m or h")),
    };
    if !seconds.is_finite() || !(0.001..=86_400.0).contains(&seconds) {
        return Err(format!("{text:?}: from 1ms to 24 hours"));
    }
    Ok(std::time::Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::duration;
    use std::time::Duration;

    #[test]
    fn durations_take_a_unit_or_mean_seconds() {
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("3m"), Ok(Duration::from_secs(180)));
        assert_eq!(duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "s", "-1s", "25h", "0ms", "1e9", "ten", "5d"] {
            assert!(duration(bad).is_err(), "{bad}");
        }
    }
}
