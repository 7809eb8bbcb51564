//! Signals: SIGINT and SIGTERM start a graceful shutdown (the event loop stops accepting and
//! tells every connection to drain: finish the exchange in progress, then close); SIGHUP asks
//! for a configuration reload.
//!
//! Watching starts when [`terminate_signal`] returns, not when its result is awaited: a
//! server calls it before it says it is listening, so a signal sent the moment it is ready
//! drains instead of meeting the default action, which kills the process mid-response.

use async_signal::{Signal, Signals};
use futures_lite::StreamExt;

/// SIGINT and SIGTERM, watched from the moment this was made.
pub struct TerminateSignal(Signals);

impl TerminateSignal {
    /// Resolves on the first SIGINT or SIGTERM (at once if one came already), with its number.
    pub async fn recv(mut self) -> std::io::Result<i32> {
        let sig = self.0.next().await.transpose()?;
        Ok(sig.map_or(0, |s| s as i32))
    }
}

/// Starts watching SIGINT and SIGTERM: from now on they no longer end the process.
pub fn terminate_signal() -> std::io::Result<TerminateSignal> {
    Signals::new([Signal::Int, Signal::Term]).map(TerminateSignal)
}

/// Calls `on_hup` on every SIGHUP, from a thread of its own, for the life of the process
/// (configuration reloads). Fails if the signal cannot be watched.
pub fn on_sighup(on_hup: impl Fn() + Send + 'static) -> std::io::Result<()> {
    let mut signals = Signals::new([Signal::Hup])?;
    std::thread::spawn(move || {
        async_io::block_on(async {
            while let Some(Ok(_)) = signals.next().await {
                on_hup();
            }
        })
    });
    Ok(())
}

/// Asks the process `pid` to shut down gracefully (SIGTERM), as a supervisor does with its
/// children. An error says it could not be asked (it is gone, or not ours).
pub fn ask_to_stop(pid: u32) -> std::io::Result<()> {
    crate::platform::ask_to_stop(pid)
}

/// Makes this process receive SIGTERM (a graceful shutdown) when the process that started it
/// dies, however it dies: a supervisor killed outright leaves no orphans serving its ports.
/// Linux and FreeBSD; elsewhere nothing is done.
pub fn stop_with_parent() {
    crate::platform::stop_with_parent()
}
