//! The invoke lane's queue: one FIFO per key (a function) and its limit (the
//! function's instances). A job is taken only while its key has fewer than
//! `limit` jobs running, and keys take turns, so one slow function's backlog
//! never holds every worker or delays another function's calls.

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex};

use crate::sync::lock;

pub struct Fair<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
}

struct State<T> {
    queues: HashMap<String, Queue<T>>,
    /// Keys with a job waiting and room to run it, in turn order.
    turns: VecDeque<String>,
    closed: bool,
}

struct Queue<T> {
    jobs: VecDeque<T>,
    running: usize,
    limit: usize,
    in_turns: bool,
}

impl<T> Default for Fair<T> {
    fn default() -> Fair<T> {
        let state = State { queues: HashMap::new(), turns: VecDeque::new(), closed: false };
        Fair { state: Mutex::new(state), ready: Condvar::new() }
    }
}

impl<T> State<T> {
    /// Gives `key` a turn if it has a job and room to run it.
    fn offer(&mut self, key: &str) -> bool {
        let Some(queue) = self.queues.get_mut(key) else { return false };
        let ready = !queue.in_turns && !queue.jobs.is_empty() && queue.running < queue.limit;
        if ready {
            queue.in_turns = true;
            self.turns.push_back(key.to_string());
        }
        ready
    }
}

impl<T> Fair<T> {
    /// Queues `job` under `key`, which runs at most `limit` jobs at once.
    pub fn push(&self, key: &str, limit: usize, job: T) {
        let mut state = lock(&self.state);
        let queue = state.queues.entry(key.to_string()).or_insert_with(|| Queue {
            jobs: VecDeque::new(),
            running: 0,
            limit,
            in_turns: false,
        });
        queue.limit = limit.max(1);
        queue.jobs.push_back(job);
        if state.offer(key) {
            self.ready.notify_one();
        }
    }

    /// The next job whose key has room, waiting for one; `None` once closed
    /// and nothing is left to run.
    pub fn take(&self) -> Option<(String, T)> {
        let mut state = lock(&self.state);
        loop {
            if let Some(key) = state.turns.pop_front() {
                let queue = state.queues.get_mut(&key).expect("a key in turn has a queue");
                queue.in_turns = false;
                let Some(job) = queue.jobs.pop_front() else { continue };
                queue.running += 1;
                state.offer(&key);
                if !state.turns.is_empty() {
                    self.ready.notify_one();
                }
                return Some((key, job));
            }
            if state.closed && state.queues.values().all(|q| q.jobs.is_empty()) {
                return None;
            }
            state = self.ready.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// A job of `key` finished: its room goes to the next one.
    pub fn finished(&self, key: &str) {
        let mut state = lock(&self.state);
        let Some(queue) = state.queues.get_mut(key) else { return };
        queue.running = queue.running.saturating_sub(1);
        if queue.running == 0 && queue.jobs.is_empty() {
            state.queues.remove(key);
        } else if state.offer(key) {
            self.ready.notify_one();
        }
        if state.closed {
            self.ready.notify_all();
        }
    }

    /// No more jobs will come: workers end once the queued ones ran.
    pub fn close(&self) {
        lock(&self.state).closed = true;
        self.ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_runs_at_most_its_limit_and_others_pass_it() {
        let fair = Fair::default();
        for i in 0..5 {
            fair.push("slow", 2, format!("slow{i}"));
        }
        fair.push("fast", 4, "fast0".to_string());
        let first: Vec<String> = (0..3).map(|_| fair.take().unwrap().1).collect();
        assert_eq!(first, ["slow0", "fast0", "slow1"], "turns alternate; slow stops at 2 running");
        fair.finished("fast");
        fair.push("fast", 4, "fast1".to_string());
        assert_eq!(fair.take().unwrap().1, "fast1", "fast is not behind slow's backlog");
        fair.finished("slow");
        assert_eq!(fair.take().unwrap().1, "slow2", "a finished slow job makes room for the next");
    }

    #[test]
    fn waiting_workers_all_wake_for_jobs_they_may_run() {
        let fair = std::sync::Arc::new(Fair::default());
        let (taken, got) = std::sync::mpsc::channel();
        let workers: Vec<_> = (0..3)
            .map(|_| {
                let (fair, taken) = (fair.clone(), taken.clone());
                std::thread::spawn(move || {
                    if let Some((_, job)) = fair.take() {
                        taken.send(job).unwrap();
                    }
                })
            })
            .collect();
        for job in 0..3 {
            fair.push("k", 3, job);
        }
        let mut jobs: Vec<i32> =
            (0..3).map(|_| got.recv_timeout(std::time::Duration::from_secs(10)).unwrap()).collect();
        jobs.sort();
        assert_eq!(jobs, [0, 1, 2], "three jobs, three workers, all running at once");
        fair.close();
        (0..3).for_each(|_| fair.finished("k"));
        workers.into_iter().for_each(|w| w.join().unwrap());
    }

    #[test]
    fn closing_lets_queued_jobs_run_then_ends() {
        let fair = Fair::default();
        fair.push("k", 1, 1);
        fair.push("k", 1, 2);
        fair.close();
        assert_eq!(fair.take(), Some(("k".to_string(), 1)));
        let fair = std::sync::Arc::new(fair);
        let worker = {
            let fair = fair.clone();
            std::thread::spawn(move || fair.take())
        };
        fair.finished("k");
        assert_eq!(worker.join().unwrap(), Some(("k".to_string(), 2)));
        fair.finished("k");
        assert_eq!(fair.take(), None);
    }
}
