//! Concurrency: a bounded pool of instances per plugin version, and a slot
//! that swaps a function to a new version atomically.
//!
//! Each call checks out its own instance (never shared between two calls),
//! reuses idle ones (instantiating per call costs ~10x a warm call for large
//! plugins) and discards instances after failures. Swapping a slot replaces
//! an `Arc<Pool>`: calls in flight keep the old pool alive and finish on it.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::Instant;

use super::error::Error;
use super::instance::{CallReport, Instance};
use super::plugin::Plugin;
use super::state::Vars;

/// Instances of one plugin version, at most `max_instances` at a time.
pub struct Pool {
    plugin: Plugin,
    vars: Arc<Vars>,
    max_instances: usize,
    state: Mutex<PoolState>,
    freed: Condvar,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<Instance>,
    /// Instances in existence: idle, busy, or being created.
    total: usize,
}

/// Busy and idle instance counts at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub busy: usize,
    pub idle: usize,
}

impl Pool {
    /// A pool for `plugin`; creates one instance right away, so a plugin
    /// that cannot be instantiated fails here, before it serves.
    pub fn new(plugin: Plugin, vars: Arc<Vars>, max_instances: usize) -> Result<Pool, Error> {
        let deadline = plugin.limits().timeout.map(|t| Instant::now() + t);
        let first = Instance::new(&plugin, vars.clone(), deadline)?;
        let state = PoolState {
            idle: vec![first],
            total: 1,
        };
        Ok(Pool {
            plugin,
            vars,
            max_instances: max_instances.max(1),
            state: Mutex::new(state),
            freed: Condvar::new(),
        })
    }

    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// The vars shared by this pool's instances.
    pub fn vars(&self) -> &Arc<Vars> {
        &self.vars
    }

    pub fn stats(&self) -> PoolStats {
        let state = self.lock();
        PoolStats {
            busy: state.total - state.idle.len(),
            idle: state.idle.len(),
        }
    }

    /// Calls `export` on a free instance. The plugin's timeout starts now
    /// and covers waiting for an instance and creating one.
    pub fn call(&self, export: &str, input: &[u8]) -> CallReport {
        let start = Instant::now();
        let deadline = self.plugin.limits().timeout.map(|t| start + t);
        let mut instance = match self.checkout(start, deadline) {
            Ok(instance) => instance,
            Err(error) => {
                return CallReport {
                    result: Err(error),
                    logs: Vec::new(),
                    fuel_used: 0,
                };
            }
        };
        let report = instance.call_until(export, input, deadline);
        self.checkin(instance);
        report
    }

    /// An idle instance, a new one if under the bound, or wait for one.
    fn checkout(&self, start: Instant, deadline: Option<Instant>) -> Result<Instance, Error> {
        let mut state = self.lock();
        loop {
            if let Some(instance) = state.idle.pop() {
                return Ok(instance);
            }
            if state.total < self.max_instances {
                state.total += 1;
                drop(state);
                return self.create(deadline);
            }
            state = self.wait(state, start, deadline)?;
        }
    }

    fn create(&self, deadline: Option<Instant>) -> Result<Instance, Error> {
        let created = Instance::new(&self.plugin, self.vars.clone(), deadline);
        if created.is_err() {
            self.lock().total -= 1;
            self.freed.notify_one();
        }
        created
    }

    fn wait<'a>(
        &self,
        state: MutexGuard<'a, PoolState>,
        start: Instant,
        deadline: Option<Instant>,
    ) -> Result<MutexGuard<'a, PoolState>, Error> {
        let Some(deadline) = deadline else {
            return Ok(self.freed.wait(state).unwrap_or_else(|e| e.into_inner()));
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Busy {
                waited: start.elapsed(),
            });
        }
        let (state, _) = self
            .freed
            .wait_timeout(state, left)
            .unwrap_or_else(|e| e.into_inner());
        Ok(state)
    }

    /// Returns an instance after a call; a spent one is dropped.
    fn checkin(&self, instance: Instance) {
        let mut state = self.lock();
        if instance.is_reusable() {
            state.idle.push(instance);
        } else {
            state.total -= 1;
        }
        drop(state);
        self.freed.notify_one();
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // The pool's bookkeeping is updated in single steps; a panic elsewhere
        // cannot leave it inconsistent, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The current version of a function's plugin, swappable atomically.
pub struct PluginSlot {
    current: RwLock<Arc<Pool>>,
}

impl PluginSlot {
    pub fn new(pool: Pool) -> PluginSlot {
        PluginSlot {
            current: RwLock::new(Arc::new(pool)),
        }
    }

    /// The pool calls should use now; hold it for the whole call.
    pub fn current(&self) -> Arc<Pool> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Makes `pool` current and returns the previous one (calls in flight
    /// finish on it; it is freed when the last one returns).
    pub fn swap(&self, pool: Pool) -> Arc<Pool> {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        std::mem::replace(&mut *current, Arc::new(pool))
    }

    /// Calls `export` on the current version.
    pub fn call(&self, export: &str, input: &[u8]) -> CallReport {
        self.current().call(export, input)
    }
}
