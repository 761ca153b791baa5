//! One watcher type, configured twice by the dev loop (sources and plugins).
//!
//! notify delivers file events on its own thread; `classify` turns each
//! path into a key (or drops it) and the key goes over a channel to a named
//! debounce thread, which waits with `recv_timeout(next deadline)` and hands
//! the keys that fell quiet to `fire`. Dropping the watcher sends `Shutdown`
//! on the same channel and joins the thread.

use std::hash::Hash;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::{EventKind, RecursiveMode, Watcher as _};

use super::debounce::Debouncer;
use crate::error::Error;

enum Message<K> {
    Event(K),
    Shutdown,
}

/// A running watcher; stops and joins its thread when dropped.
pub struct Watcher<K: Send + 'static> {
    tx: Sender<Message<K>>,
    thread: Option<JoinHandle<()>>,
    _notify: notify::RecommendedWatcher,
}

impl<K: Hash + Eq + Clone + Send + 'static> Watcher<K> {
    /// Watches `root` recursively; keys fire `delay` after their last event.
    pub fn start(
        name: &str,
        root: &Path,
        delay: Duration,
        classify: impl Fn(&Path) -> Option<K> + Send + 'static,
        fire: impl FnMut(Vec<K>) + Send + 'static,
    ) -> Result<Watcher<K>, Error> {
        let cannot_watch =
            |e: notify::Error| Error::Watch { path: root.to_path_buf(), message: e.to_string() };
        let (tx, rx) = mpsc::channel();
        let events = tx.clone();
        let mut notify = notify::recommended_watcher(move |result: notify::Result<notify::Event>| {
            let Ok(event) = result else { return };
            // Reads (our own loading of a plugin included) are not changes.
            if matches!(event.kind, EventKind::Access(_)) {
                return;
            }
            for key in event.paths.iter().filter_map(|p| classify(p)) {
                let _ = events.send(Message::Event(key));
            }
        })
        .map_err(cannot_watch)?;
        notify.watch(root, RecursiveMode::Recursive).map_err(cannot_watch)?;
        let thread = std::thread::Builder::new()
            .name(format!("watch-{name}"))
            .spawn(move || debounce_loop(rx, delay, fire))
            .map_err(Error::thread(&format!("watch-{name}")))?;
        Ok(Watcher { tx, thread: Some(thread), _notify: notify })
    }
}

fn debounce_loop<K: Hash + Eq + Clone>(
    rx: mpsc::Receiver<Message<K>>,
    delay: Duration,
    mut fire: impl FnMut(Vec<K>),
) {
    let mut debouncer = Debouncer::new(delay);
    loop {
        let message = match debouncer.next_deadline() {
            Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match message {
            Ok(Message::Event(key)) => debouncer.event(key, Instant::now()),
            Ok(Message::Shutdown) | Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {
                let due = debouncer.due(Instant::now());
                if !due.is_empty() {
                    fire(due);
                }
            }
        }
    }
}

impl<K: Send + 'static> Drop for Watcher<K> {
    fn drop(&mut self) {
        let _ = self.tx.send(Message::Shutdown);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The folder of `root` that `path` lies in (`root/NAME/...` → `root/NAME`).
pub fn function_dir(root: &Path, path: &Path) -> Option<PathBuf> {
    let first = path.strip_prefix(root).ok()?.components().next()?;
    Some(root.join(first))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn paths_map_to_their_function_folder() {
        let root = Path::new("/f");
        assert_eq!(function_dir(root, Path::new("/f/hello/src/a.c")), Some(PathBuf::from("/f/hello")));
        assert_eq!(function_dir(root, Path::new("/f/hello")), Some(PathBuf::from("/f/hello")));
        assert_eq!(function_dir(root, Path::new("/elsewhere/x")), None);
        assert_eq!(function_dir(root, Path::new("/f")), None);
    }

    #[test]
    fn events_are_debounced_and_fired_then_the_thread_stops() {
        let root = TempDir::new("watch");
        let delay = Duration::from_millis(200);
        let (fired, got) = mpsc::channel();
        let watcher = Watcher::start(
            "test",
            root.path(),
            delay,
            |p: &Path| p.extension().is_some_and(|e| e == "txt").then_some("txt"),
            move |keys| fired.send(keys).unwrap(),
        )
        .unwrap();
        for i in 0..5 {
            root.write("a.txt", format!("{i}"));
        }
        root.write("ignored.log", "x");
        assert_eq!(got.recv_timeout(Duration::from_secs(10)).unwrap(), ["txt"]);
        // Well past the delay: a second batch for the same writes would be here by now.
        let second = got.recv_timeout(delay * 5);
        assert_eq!(second, Err(RecvTimeoutError::Timeout), "five writes fired once");
        drop(watcher);
        assert_eq!(
            got.try_recv(),
            Err(mpsc::TryRecvError::Disconnected),
            "the thread ended and dropped `fire`"
        );
    }
}
