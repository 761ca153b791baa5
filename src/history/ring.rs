//! The bounded ring of recent records and the one query over it (filters,
//! newest first, pages by `before`), as plain code with no locks or I/O.
//!
//! Ids are request ids, which a client may reuse (a retry with its
//! `X-Request-ID`). A lookup by id finds the newest record with it; `before`
//! counts from the oldest, so paging always moves towards older records and
//! never comes back to a page it has seen.

use std::collections::VecDeque;
use std::sync::Arc;

use super::{Outcome, Record};

/// The last `capacity` records, oldest first.
#[derive(Debug)]
pub struct Ring {
    records: VecDeque<Arc<Record>>,
    capacity: usize,
}

/// What `GET /api/executions` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub function: Option<String>,
    /// A trigger type (`http`, `route`...).
    pub trigger: Option<&'static str>,
    pub outcome: Option<Outcome>,
    /// Only records older than the record with this id.
    pub before: Option<String>,
    pub limit: usize,
}

impl Query {
    /// Every record, newest first, `limit` at a time.
    pub fn all(limit: usize) -> Query {
        Query { function: None, trigger: None, outcome: None, before: None, limit }
    }

    fn matches(&self, record: &Record) -> bool {
        self.function.as_ref().is_none_or(|f| *f == record.function)
            && self.trigger.is_none_or(|t| t == record.trigger.as_str())
            && self.outcome.is_none_or(|o| o == record.outcome)
    }
}

/// One page of records, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub records: Vec<Arc<Record>>,
    /// The `before` of the next page, when more records match.
    pub next_before: Option<String>,
}

impl Ring {
    pub fn new(capacity: usize) -> Ring {
        Ring { records: VecDeque::new(), capacity }
    }

    /// Adds the newest record, forgetting the oldest when full.
    pub fn push(&mut self, record: Arc<Record>) {
        if self.capacity == 0 {
            return;
        }
        if self.records.len() == self.capacity {
            self.records.pop_front();
        }
        self.records.push_back(record);
    }

    /// The newest record with this id.
    pub fn get(&self, id: &str) -> Option<Arc<Record>> {
        self.records.iter().rev().find(|r| r.id == id).cloned()
    }

    /// Up to `limit` matching records, newest first, older than `before`
    /// when it is given (no record is older than an id no longer kept).
    pub fn list(&self, query: &Query) -> Page {
        let end = match &query.before {
            Some(id) => self.records.iter().position(|r| r.id == *id).unwrap_or(0),
            None => self.records.len(),
        };
        let mut matching = self.records.range(..end).rev().filter(|r| query.matches(r));
        let records: Vec<Arc<Record>> = matching.by_ref().take(query.limit).cloned().collect();
        let next_before = match matching.next() {
            Some(_) => records.last().map(|r| r.id.clone()),
            None => None,
        };
        Page { records, next_before }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::record;
    use super::*;
    use crate::invoke::Trigger;

    fn ring(capacity: usize, records: &[(&str, &str, Trigger, Outcome)]) -> Ring {
        let mut ring = Ring::new(capacity);
        for (id, function, trigger, outcome) in records {
            ring.push(Arc::new(record(id, function, trigger.clone(), *outcome)));
        }
        ring
    }

    fn ids(page: &Page) -> Vec<&str> {
        page.records.iter().map(|r| r.id.as_str()).collect()
    }

    fn hook() -> Trigger {
        Trigger::Webhook { path: "/h".into() }
    }

    #[test]
    fn the_ring_keeps_the_newest_up_to_its_capacity() {
        let calls: Vec<_> =
            ["1", "2", "3", "4"].map(|id| (id, "f", Trigger::Http, Outcome::Ok)).into_iter().collect();
        assert_eq!(ids(&ring(3, &calls).list(&Query::all(10))), ["4", "3", "2"]);
        assert_eq!(ring(0, &calls).list(&Query::all(10)).records, []);
        assert_eq!(ring(3, &calls).get("1"), None);
        assert_eq!(ring(3, &calls).get("2").map(|r| r.id.clone()), Some("2".into()));
    }

    #[test]
    fn filters_combine() {
        let ring = ring(
            10,
            &[
                ("1", "a", Trigger::Http, Outcome::Ok),
                ("2", "b", Trigger::Http, Outcome::Error),
                ("3", "a", hook(), Outcome::Rejected),
                ("4", "a", Trigger::Http, Outcome::Timeout),
                ("5", "b", hook(), Outcome::Ok),
            ],
        );
        let query = |f: Option<&str>, t: Option<&'static str>, o: Option<Outcome>| Query {
            function: f.map(String::from),
            trigger: t,
            outcome: o,
            ..Query::all(10)
        };
        assert_eq!(ids(&ring.list(&query(Some("a"), None, None))), ["4", "3", "1"]);
        assert_eq!(ids(&ring.list(&query(None, Some("webhook"), None))), ["5", "3"]);
        assert_eq!(ids(&ring.list(&query(None, None, Some(Outcome::Ok)))), ["5", "1"]);
        assert_eq!(ids(&ring.list(&query(Some("a"), Some("http"), Some(Outcome::Timeout)))), ["4"]);
        assert_eq!(ids(&ring.list(&query(Some("c"), None, None))), Vec::<&str>::new());
    }

    #[test]
    fn pages_go_back_by_before_until_nothing_is_left() {
        let calls: Vec<_> = ["1", "2", "3", "4", "5", "6", "7"]
            .into_iter()
            .zip(["odd", "even"].into_iter().cycle())
            .map(|(id, function)| (id, function, Trigger::Http, Outcome::Ok))
            .collect();
        let ring = ring(10, &calls);
        let page = |before: Option<&str>| {
            let query =
                Query { function: Some("odd".into()), before: before.map(String::from), ..Query::all(2) };
            ring.list(&query)
        };
        let first = page(None);
        assert_eq!((ids(&first), first.next_before.as_deref()), (vec!["7", "5"], Some("5")));
        let second = page(first.next_before.as_deref());
        assert_eq!((ids(&second), second.next_before.as_deref()), (vec!["3", "1"], None));
        assert_eq!(ids(&page(Some("4"))), ["3", "1"], "before need not match the filters");
        assert_eq!(ids(&page(Some("1"))), Vec::<&str>::new());
        assert_eq!(page(Some("unknown")).records, [], "nothing kept is older than a forgotten id");
    }

    #[test]
    fn a_reused_id_is_found_newest_and_paged_from_oldest() {
        let ring = ring(
            10,
            &[
                ("a", "f", Trigger::Http, Outcome::Ok),
                ("x", "f", Trigger::Http, Outcome::Error),
                ("x", "f", Trigger::Http, Outcome::Ok),
                ("b", "f", Trigger::Http, Outcome::Ok),
            ],
        );
        assert_eq!(ring.get("x").map(|r| r.outcome), Some(Outcome::Ok));
        let older = ring.list(&Query { before: Some("x".into()), ..Query::all(10) });
        assert_eq!(ids(&older), ["a"], "never back to a record already paged past");
    }
}
