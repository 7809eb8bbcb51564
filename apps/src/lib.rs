//! Shared pieces of the weaprous binaries: the processes' entry points ([`cmd`]) and flag
//! helpers. No protocol logic lives here.

pub mod chatbench;
pub mod cmd;
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
