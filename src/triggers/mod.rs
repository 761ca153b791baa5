//! Triggers: what starts an invocation besides `POST /api/functions/{name}`.
//! User routes are mounted from the manifests of the loaded versions;
//! [`Routes`] keeps the table in step with the registry, rebuilding it
//! whenever a version is swapped in or a function goes (never from two
//! reads: one table is built from one pass over the current versions).

pub mod events;
pub mod path;
pub mod routes;
pub mod schedules;
pub mod verify;

use std::sync::{Arc, Mutex, RwLock};

use crate::manifest::Problem;
use crate::registry::Registry;
use crate::sync::{lock, read, write};
use routes::RouteTable;

/// The route table of a registry, rebuilt after its changes.
pub struct Routes {
    registry: Arc<Registry>,
    current: RwLock<Built>,
    rebuilding: Mutex<()>,
}

#[derive(Clone)]
struct Built {
    generation: u64,
    table: Arc<RouteTable>,
    problems: Arc<Vec<Problem>>,
}

impl Routes {
    pub fn new(registry: Arc<Registry>) -> Routes {
        let built = Built { generation: u64::MAX, table: Arc::default(), problems: Arc::default() };
        Routes { registry, current: RwLock::new(built), rebuilding: Mutex::new(()) }
    }

    /// The table for the registry as it is now.
    pub fn table(&self) -> Arc<RouteTable> {
        self.built().table
    }

    /// Route conflicts and reserved paths, as manifest problems.
    pub fn problems(&self) -> Arc<Vec<Problem>> {
        self.built().problems
    }

    fn built(&self) -> Built {
        let built = read(&self.current).clone();
        if built.generation == self.registry.generation() {
            return built;
        }
        let _one_at_a_time = lock(&self.rebuilding);
        let generation = self.registry.generation();
        let previous = read(&self.current).clone();
        if previous.generation == generation {
            return previous;
        }
        let manifests: Vec<_> =
            self.registry.list().iter().filter_map(|f| f.current()).map(|v| v.manifest.clone()).collect();
        let (table, problems) = RouteTable::build(&manifests, &previous.table);
        for problem in problems.iter().filter(|p| !previous.problems.contains(p)) {
            log::warn!("{problem}");
        }
        let built = Built { generation, table: Arc::new(table), problems: Arc::new(problems) };
        *write(&self.current) = built.clone();
        built
    }
}
