//! Periodic upkeep: one named thread for the whole server. Its chore is to
//! drop instances idle past `idle_instance_ttl` ([`Registry::trim_idle`]),
//! which must happen even for a function that gets no more calls, so no
//! request can do it. The thread waits with `recv_timeout(next deadline)` on
//! the channel its owner sends `Stop` on; [`Janitor::stop`] (or dropping
//! the janitor) sends it and joins the thread.

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::error::Error;
use crate::registry::Registry;

enum Message {
    Stop,
}

/// The running upkeep thread; stops and joins it when dropped.
pub struct Janitor {
    tx: Sender<Message>,
    thread: Option<JoinHandle<()>>,
}

impl Janitor {
    pub fn start(registry: Arc<Registry>) -> Result<Janitor, Error> {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("janitor".into())
            .spawn(move || run(&rx, &registry))
            .map_err(Error::thread("janitor"))?;
        Ok(Janitor { tx, thread: Some(thread) })
    }

    /// Stops the thread and waits for it (it stops between chores, which
    /// take no longer than dropping some instances).
    pub fn stop(self) {
        drop(self);
    }
}

fn run(rx: &Receiver<Message>, registry: &Registry) {
    let mut next = registry.trim_idle(Instant::now());
    loop {
        match rx.recv_timeout(next.saturating_duration_since(Instant::now())) {
            Err(RecvTimeoutError::Timeout) => next = registry.trim_idle(Instant::now()),
            Ok(Message::Stop) | Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

impl Drop for Janitor {
    fn drop(&mut self) {
        let _ = self.tx.send(Message::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::registry::Defaults;
    use crate::testutil::{TempDir, call_at_once, defaults};

    #[test]
    fn idle_instances_are_trimmed_without_further_calls_and_stop_joins() {
        let root = TempDir::new("janitor");
        root.write("f/manifest.yaml", "plugin: plugin.wat\nentrypoint: grow\nconfig: {hold_ms: '200'}\n");
        let wat =
            std::fs::read_to_string(format!("{}/testdata/plugins/grow.wat", env!("CARGO_MANIFEST_DIR")));
        root.write("f/plugin.wat", wat.unwrap());
        let ttl = Duration::from_millis(100);
        let registry =
            Arc::new(Registry::new(root.path(), Defaults { idle_instance_ttl: ttl, ..defaults() }));
        registry.reload();
        let pool = registry.get("f").unwrap().current().unwrap().pool.clone();
        let janitor = Janitor::start(registry).unwrap();
        call_at_once(&pool, "grow", 2);
        let deadline = Instant::now() + Duration::from_secs(10);
        while pool.stats().idle > 1 {
            assert!(Instant::now() < deadline, "the janitor did not trim: {:?}", pool.stats());
            std::thread::sleep(Duration::from_millis(10));
        }
        janitor.stop();
        assert_eq!(Arc::strong_count(&pool), 1, "the thread ended and dropped the registry");
    }
}
