//! Signals: SIGINT and SIGTERM start a graceful shutdown (the event loop stops accepting and
//! tells every connection to drain: finish the exchange in progress, then close); SIGHUP asks
//! for a configuration reload.

/// Resolves on the first SIGINT or SIGTERM.
pub async fn terminate_signal() -> std::io::Result<i32> {
    use async_signal::{Signal, Signals};
    use futures_lite::StreamExt;
    let mut signals = Signals::new([Signal::Int, Signal::Term])?;
    let sig = signals.next().await.transpose()?;
    Ok(sig.map_or(0, |s| s as i32))
}

/// Calls `on_hup` on every SIGHUP, from a thread of its own, for the life of the process
/// (configuration reloads). Fails if the signal cannot be watched.
pub fn on_sighup(on_hup: impl Fn() + Send + 'static) -> std::io::Result<()> {
    use async_signal::{Signal, Signals};
    use futures_lite::StreamExt;
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
