//! Graceful shutdown: SIGINT and SIGTERM stop the accept loop and tell every connection to
//! drain (finish the exchange in progress, then close).
//!
//! The drain signal is a closed channel: every connection task holds a [`DrainSignal`] and
//! `recv` on it fails, waking all of them at once, when the sender is dropped.

use smol::channel::{Receiver, Sender};

/// Held by the server; dropping it (or calling [`Drain::start`]) drains every connection.
pub struct Drain(Option<Sender<()>>);

/// Held by each connection task.
#[derive(Clone)]
pub struct DrainSignal(Receiver<()>);

pub fn drain_pair() -> (Drain, DrainSignal) {
    let (tx, rx) = smol::channel::bounded(1);
    (Drain(Some(tx)), DrainSignal(rx))
}

impl Drain {
    pub fn start(&mut self) {
        self.0 = None;
    }
}

impl DrainSignal {
    /// Resolves once draining has begun.
    pub async fn wait(&self) {
        while self.0.recv().await.is_ok() {}
    }
    pub fn is_draining(&self) -> bool {
        self.0.is_closed()
    }
}

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
