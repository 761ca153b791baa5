//! Concurrency: a bounded pool of instances per plugin version, and a slot
//! that swaps a function to a new version atomically.
//!
//! Each call checks out its own instance (never shared between two calls),
//! reuses idle ones (instantiating per call costs ~10x a warm call for large
//! plugins) and discards instances after failures. Swapping a slot replaces
//! an `Arc<Pool>`: calls in flight keep the old pool alive and finish on it.
//!
//! Why the pool is split by engine shard: a warm call takes well under a
//! microsecond, so any lock that every call takes becomes the bottleneck
//! when two cores call at once. Each shard keeps its own idle list behind its
//! own lock, and each thread has a home shard (assigned round-robin the
//! first time it calls), so long-lived worker threads touch disjoint state.
//! A thread whose home shard has no idle instance takes one from another
//! shard before it makes a new one: a function called one call at a time
//! keeps one instance on shard 0 and never builds another shard. A new
//! instance whose home shard is not compiled yet is made on shard 0 while
//! the pool's builder thread compiles that shard, and is replaced by one on
//! its own shard when it comes back after that shard is ready.
//! Only the instance count is global (an atomic); a mutex and condvar are
//! used only when every instance is busy and a caller has to wait.
//!
//! Memory: an instance that outgrew its start does not come back (the rule
//! is `Instance::is_reusable`), and idle instances beyond the one a function
//! keeps warm are dropped once idle for the server's `idle_instance_ttl`
//! ([`Pool::trim_idle`], called by the janitor thread). Idle time counts from
//! when an instance came back, which costs one more clock read per call
//! (about 25 ns).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::error::{Error, TimeLimit};
use super::instance::{CallReport, Instance};
use super::plugin::Plugin;
use super::state::Vars;
use crate::sync::lock;

/// Instances of one plugin version, at most `max_instances` at a time,
/// spread over the plugin's engine shards.
pub struct Pool {
    plugin: Plugin,
    vars: Arc<Vars>,
    max_instances: usize,
    shards: Vec<ShardPool>,
    /// Instances in existence: idle, busy, or being created.
    total: AtomicUsize,
    /// Callers waiting in [`Pool::wait`].
    waiting: AtomicUsize,
    gate: Mutex<()>,
    freed: Condvar,
    builder: Mutex<Builder>,
}

/// Compiling shards in the background, one at a time.
struct Builder {
    /// The thread compiling a shard, if one was started; joined on drop.
    running: Option<JoinHandle<()>>,
    /// Per shard: a build was started (never twice, even if it failed).
    started: Vec<bool>,
}

/// The idle instances of one engine shard. Aligned so two shards' locks
/// never share a cache line (which would make cores contend after all).
#[derive(Default)]
#[repr(align(128))]
struct ShardPool {
    idle: Mutex<Vec<Idle>>,
}

/// An idle instance. Boxed on purpose: an `Instance` is about 1.7 KB, moved
/// twice per call.
struct Idle {
    instance: Box<Instance>,
    /// When it came back to the pool.
    since: Instant,
}

impl ShardPool {
    fn pop(&self) -> Option<Box<Instance>> {
        lock(&self.idle).pop().map(|idle| idle.instance)
    }

    fn len(&self) -> usize {
        lock(&self.idle).len()
    }

    /// Takes out at most `most` instances idle for `ttl` or longer at `now`.
    fn take_expired(&self, now: Instant, ttl: Duration, most: usize) -> Vec<Idle> {
        let mut idle = lock(&self.idle);
        let mut taken = Vec::new();
        let mut i = 0;
        while i < idle.len() && taken.len() < most {
            if now.saturating_duration_since(idle[i].since) >= ttl {
                taken.push(idle.swap_remove(i));
            } else {
                i += 1;
            }
        }
        taken
    }

    /// When the instance idle longest here became idle.
    fn oldest(&self) -> Option<Instant> {
        lock(&self.idle).iter().map(|idle| idle.since).min()
    }
}

/// Busy and idle instance counts at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub busy: usize,
    pub idle: usize,
}

/// The calling thread's home shard, before taking it modulo a shard count.
fn home() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static HOME: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    HOME.with(|h| *h)
}

impl Pool {
    /// A pool for `plugin`; creates one instance right away, so a plugin
    /// that cannot be instantiated fails here, before it serves.
    pub fn new(plugin: Plugin, vars: Arc<Vars>, max_instances: usize) -> Result<Pool, Error> {
        let max_instances = max_instances.max(1);
        let shards: Vec<ShardPool> =
            (0..plugin.engines().min(max_instances)).map(|_| ShardPool::default()).collect();
        let deadline = plugin.limits().timeout.map(|t| Instant::now() + t);
        let first = Instance::new(&plugin, 0, vars.clone(), deadline)?;
        lock(&shards[0].idle).push(Idle { instance: Box::new(first), since: Instant::now() });
        let builder = Builder { running: None, started: vec![false; shards.len()] };
        Ok(Pool {
            plugin,
            vars,
            max_instances,
            shards,
            total: AtomicUsize::new(1),
            waiting: AtomicUsize::new(0),
            gate: Mutex::new(()),
            freed: Condvar::new(),
            builder: Mutex::new(builder),
        })
    }

    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// The vars shared by this pool's instances.
    pub fn vars(&self) -> &Arc<Vars> {
        &self.vars
    }

    /// Callers waiting for an instance right now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// The most instances this pool runs at once.
    pub fn capacity(&self) -> usize {
        self.max_instances
    }

    pub fn stats(&self) -> PoolStats {
        let idle: usize = self.shards.iter().map(ShardPool::len).sum();
        let total = self.total.load(Ordering::SeqCst);
        PoolStats { busy: total.saturating_sub(idle), idle }
    }

    /// Idle instances per engine shard at one moment (index = shard).
    pub fn idle_per_shard(&self) -> Vec<usize> {
        self.shards.iter().map(ShardPool::len).collect()
    }

    /// Calls `export` on a free instance. The plugin's timeout starts now
    /// and covers waiting for an instance and creating one.
    pub fn call(&self, export: &str, input: &[u8]) -> CallReport {
        self.call_within(export, input, None)
    }

    /// [`Pool::call`] under the shorter of the plugin's timeout and `limit`
    /// (a trigger's own time limit, such as a hook's); a timeout names the
    /// limit that ended the call.
    pub fn call_within(&self, export: &str, input: &[u8], limit: Option<Duration>) -> CallReport {
        let start = Instant::now();
        let timeout = match (self.plugin.limits().timeout, limit) {
            (Some(own), Some(limit)) => Some(own.min(limit)),
            (own, limit) => own.or(limit),
        };
        let deadline = timeout.map(|t| start + t);
        let (shard, mut instance) = match self.checkout(start, deadline) {
            Ok(found) => found,
            Err(error) => {
                return CallReport { result: Err(error), logs: Vec::new(), fuel_used: 0 };
            }
        };
        let mut report = instance.call_until(export, input, deadline);
        self.checkin(shard, instance);
        if let (Err(Error::Timeout { limit: TimeLimit::WallClock(named) }), Some(timeout)) =
            (&mut report.result, timeout)
        {
            *named = timeout;
        }
        report
    }

    /// Drops the instances idle for `ttl` or longer at `now`, except `keep`
    /// idle ones. Returns when the next of those beyond `keep` will have
    /// been idle for `ttl`, if any.
    pub fn trim_idle(&self, now: Instant, ttl: Duration, keep: usize) -> Option<Instant> {
        let mut spare = self.stats().idle.saturating_sub(keep);
        for shard in &self.shards {
            let expired = shard.take_expired(now, ttl, spare);
            spare -= expired.len();
            for idle in expired {
                drop(idle);
                self.release();
            }
        }
        if self.stats().idle <= keep {
            return None;
        }
        self.shards.iter().filter_map(ShardPool::oldest).min().map(|since| since + ttl)
    }

    /// An idle instance from the home shard or another one, a new one on
    /// the home shard if under the bound, or wait for one.
    fn checkout(&self, start: Instant, deadline: Option<Instant>) -> Result<(usize, Box<Instance>), Error> {
        self.checkout_from(home(), start, deadline)
    }

    fn checkout_from(
        &self,
        home: usize,
        start: Instant,
        deadline: Option<Instant>,
    ) -> Result<(usize, Box<Instance>), Error> {
        let home = home % self.shards.len();
        if let Some(found) = self.take_idle(home) {
            return Ok(found);
        }
        if self.reserve() {
            return self.create(home, deadline);
        }
        self.wait(home, start, deadline)
    }

    /// An idle instance from any shard, starting at `home`.
    fn take_idle(&self, home: usize) -> Option<(usize, Box<Instance>)> {
        let n = self.shards.len();
        (0..n).map(|offset| (home + offset) % n).find_map(|s| Some((s, self.shards[s].pop()?)))
    }

    /// Counts one more instance if the bound allows it.
    fn reserve(&self) -> bool {
        let max = self.max_instances;
        self.total.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| (t < max).then_some(t + 1)).is_ok()
    }

    /// A new instance on `shard`, or on a compiled one while `shard` is
    /// still compiling (a stand-in, replaced once `shard` is ready); returns
    /// the shard it is on.
    fn create(&self, shard: usize, deadline: Option<Instant>) -> Result<(usize, Box<Instance>), Error> {
        let ready = self.ready_shard(shard);
        let created = Instance::new(&self.plugin, ready, self.vars.clone(), deadline);
        if created.is_err() {
            self.release();
        }
        created.map(|mut instance| {
            instance.stand_in_for = (ready != shard).then_some(shard);
            (ready, Box::new(instance))
        })
    }

    /// One instance fewer exists: wake a waiter, who may create one.
    fn release(&self) {
        self.total.fetch_sub(1, Ordering::SeqCst);
        self.wake();
    }

    /// Waits for an instance until the deadline. The waiter registers,
    /// then retries under the gate; returners notify under the same gate,
    /// so no wake-up between the retry and the wait is lost. Instances are
    /// created outside the gate.
    fn wait(
        &self,
        home: usize,
        start: Instant,
        deadline: Option<Instant>,
    ) -> Result<(usize, Box<Instance>), Error> {
        let mut gate = lock(&self.gate);
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let outcome = loop {
            if let Some(found) = self.take_idle(home) {
                break Ok(Some(found));
            }
            if self.reserve() {
                break Ok(None);
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            gate = match left {
                Some(left) if left.is_zero() => {
                    break Err(Error::Busy { waited: start.elapsed() });
                }
                Some(left) => self.freed.wait_timeout(gate, left).unwrap_or_else(|e| e.into_inner()).0,
                None => self.freed.wait(gate).unwrap_or_else(|e| e.into_inner()),
            };
        };
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        drop(gate);
        match outcome? {
            Some(found) => Ok(found),
            None => self.create(home, deadline),
        }
    }

    /// Returns an instance after a call; one that is no longer reusable is
    /// dropped, and a stand-in is replaced once its own shard is ready.
    fn checkin(&self, shard: usize, instance: Box<Instance>) {
        if !instance.is_reusable() {
            drop(instance);
            self.release();
            return;
        }
        match instance.stand_in_for {
            Some(own) if self.plugin.has_shard(own) => self.replace(own, instance),
            _ => self.put_back(shard, instance, Instant::now()),
        }
    }

    /// Swaps a stand-in for a new instance on its own shard, so two
    /// threads end on two engines (once per stand-in; a call pays it
    /// anyway, this one or the next).
    fn replace(&self, own: usize, stand_in: Box<Instance>) {
        drop(stand_in);
        let deadline = self.plugin.limits().timeout.map(|t| Instant::now() + t);
        match Instance::new(&self.plugin, own, self.vars.clone(), deadline) {
            Ok(instance) => self.put_back(own, Box::new(instance), Instant::now()),
            Err(_) => self.release(),
        }
    }

    /// Makes an instance idle, as of `now`.
    fn put_back(&self, shard: usize, instance: Box<Instance>, now: Instant) {
        lock(&self.shards[shard].idle).push(Idle { instance, since: now });
        self.wake();
    }

    /// `shard` if it is compiled; else shard 0, after starting to compile
    /// `shard` on the builder thread (once; one build at a time). Only a
    /// call that creates an instance gets here, so the lock costs nothing.
    fn ready_shard(&self, shard: usize) -> usize {
        if self.plugin.has_shard(shard) {
            return shard;
        }
        let mut builder = lock(&self.builder);
        let busy = builder.running.as_ref().is_some_and(|running| !running.is_finished());
        if busy || builder.started[shard] {
            return 0;
        }
        if let Some(done) = builder.running.take() {
            let _ = done.join();
        }
        let plugin = self.plugin.clone();
        let build = move || {
            if let Err(error) = plugin.shard(shard) {
                log::warn!(
                    "{}: engine shard {shard} not built, calls share the others: {error}",
                    plugin.name()
                );
            }
        };
        // Without a thread, a later call tries again.
        if let Ok(handle) = std::thread::Builder::new().name("alyx-shard".into()).spawn(build) {
            builder.running = Some(handle);
            builder.started[shard] = true;
        }
        0
    }

    fn wake(&self) {
        if self.waiting.load(Ordering::SeqCst) > 0 {
            let _gate = lock(&self.gate);
            self.freed.notify_one();
        }
    }
}

impl Drop for Pool {
    /// Waits for a shard being compiled (it holds the plugin, not the pool).
    fn drop(&mut self) {
        let builder = self.builder.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(handle) = builder.running.take() {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::PluginSpec;
    use crate::testutil::plugin;

    #[test]
    fn a_stand_in_is_replaced_once_its_own_shard_is_ready() {
        let mut spec = PluginSpec::new("two", b"(module (func (export \"run\")))".to_vec());
        spec.engines = 2;
        let pool = Pool::new(Plugin::compile(spec).unwrap(), Vars::new(), 2).unwrap();
        assert!(pool.reserve());
        let (shard, instance) = pool.create(1, None).unwrap();
        assert_eq!((shard, instance.stand_in_for), (0, Some(1)), "shard 1 compiles in the background");
        pool.plugin.compile_shards().unwrap();
        pool.checkin(shard, instance);
        assert_eq!(pool.stats(), PoolStats { busy: 0, idle: 2 });
        assert_eq!(pool.idle_per_shard(), [1, 1], "the stand-in's replacement is on shard 1");
    }

    #[test]
    fn a_thread_takes_another_shards_idle_instance_before_building_its_own_shard() {
        let mut spec = PluginSpec::new("two", b"(module (func (export \"run\")))".to_vec());
        spec.engines = 2;
        let pool = Pool::new(Plugin::compile(spec).unwrap(), Vars::new(), 2).unwrap();
        let (shard, instance) = pool.checkout_from(1, Instant::now(), None).unwrap();
        assert_eq!((shard, pool.stats()), (0, PoolStats { busy: 1, idle: 0 }), "shard 0's instance");
        assert!(!lock(&pool.builder).started[1], "one call at a time builds no shard");
        let (other, stand_in) = pool.checkout_from(1, Instant::now(), None).unwrap();
        assert_eq!((other, stand_in.stand_in_for), (0, Some(1)), "a second call at once: a new one");
        assert!(lock(&pool.builder).started[1], "and shard 1 is being built");
        pool.checkin(shard, instance);
        pool.checkin(other, stand_in);
        assert_eq!(pool.stats(), PoolStats { busy: 0, idle: 2 });
    }

    const TTL: Duration = Duration::from_secs(60);

    fn pool(max_instances: usize) -> Pool {
        Pool::new(plugin("memory.wat", &[]), Vars::new(), max_instances).unwrap()
    }

    /// Makes `n` instances exist and returns them to the pool as if at
    /// `t0 + seconds[i]`.
    fn idle_since(pool: &Pool, t0: Instant, seconds: &[u64]) {
        let taken: Vec<_> = seconds.iter().map(|_| pool.checkout(Instant::now(), None).unwrap()).collect();
        for ((shard, instance), s) in taken.into_iter().zip(seconds) {
            pool.put_back(shard, instance, t0 + Duration::from_secs(*s));
        }
    }

    fn at(t0: Instant, seconds: u64) -> Instant {
        t0 + Duration::from_secs(seconds)
    }

    #[track_caller]
    fn assert_counts(pool: &Pool, busy: usize, idle: usize) {
        assert_eq!(pool.stats(), PoolStats { busy, idle });
    }

    #[test]
    fn instances_idle_past_the_ttl_go_but_one_stays() {
        let pool = pool(3);
        let t0 = Instant::now();
        idle_since(&pool, t0, &[0, 10, 20]);
        assert_eq!(pool.trim_idle(at(t0, 65), TTL, 1), Some(at(t0, 70)), "the next expires at 70 s");
        assert_counts(&pool, 0, 2);
        assert_eq!(pool.trim_idle(at(t0, 100), TTL, 1), None, "one left, and it stays");
        assert_counts(&pool, 0, 1);
        assert_eq!(pool.trim_idle(at(t0, 10_000), TTL, 1), None);
        assert_counts(&pool, 0, 1);
    }

    #[test]
    fn instances_used_within_the_ttl_stay() {
        let pool = pool(3);
        let t0 = Instant::now();
        idle_since(&pool, t0, &[0, 10, 20]);
        assert_eq!(pool.trim_idle(at(t0, 59), TTL, 1), Some(at(t0, 60)));
        assert_counts(&pool, 0, 3);
    }

    #[test]
    fn busy_instances_are_neither_dropped_nor_counted_as_the_one_kept() {
        let pool = pool(2);
        let t0 = Instant::now();
        idle_since(&pool, t0, &[0, 0]);
        let busy = pool.checkout(Instant::now(), None).unwrap();
        assert_eq!(pool.trim_idle(at(t0, 3600), TTL, 1), None);
        assert_counts(&pool, 1, 1);
        pool.put_back(busy.0, busy.1, at(t0, 3600));
        assert_counts(&pool, 0, 2);
    }

    #[test]
    fn a_trimmed_pool_makes_new_instances_again() {
        let pool = pool(2);
        let t0 = Instant::now();
        idle_since(&pool, t0, &[0, 0]);
        pool.trim_idle(at(t0, 3600), TTL, 1);
        idle_since(&pool, t0, &[0, 0]);
        assert_counts(&pool, 0, 2);
    }

    #[test]
    fn an_instance_that_outgrew_its_start_is_not_returned() {
        let pool = pool(1);
        assert!(pool.call("grow", b"8").result.is_ok());
        assert_counts(&pool, 0, 1);
        assert!(pool.call("grow", b"17").result.is_ok());
        assert_counts(&pool, 0, 0);
        assert!(pool.call("grow", b"1").result.is_ok(), "a new instance serves the next call");
        assert_counts(&pool, 0, 1);
    }

    #[test]
    fn a_shorter_limit_ends_the_call_and_is_the_one_named() {
        let pool = Pool::new(plugin("loop.wat", &[]), Vars::new(), 1).unwrap();
        let limit = Duration::from_millis(50);
        let report = pool.call_within("spin", b"", Some(limit));
        assert_eq!(report.result, Err(Error::Timeout { limit: TimeLimit::WallClock(limit) }));
        assert_counts(&pool, 0, 0);
    }
}
