//! The live entries: id → its latest put record, in the order each id was
//! first put (a replacement keeps its place; a put after a remove is new).
//! Recovery replays the file into it, the writer applies each committed
//! batch, compaction writes it out.

use std::collections::{BTreeMap, HashMap};

use super::record::{Op, Record};

#[derive(Debug, Default)]
pub struct Live {
    /// Put records by the sequence number of their id's first put.
    records: BTreeMap<u64, Record>,
    /// Each live id's sequence number.
    sequence: HashMap<String, u64>,
    next: u64,
    /// Bytes of the put records.
    bytes: u64,
}

impl Live {
    pub fn apply(&mut self, record: Record) {
        match record.op {
            Op::Put => self.put(record),
            Op::Remove => self.remove(&record.id),
        }
    }

    fn put(&mut self, record: Record) {
        self.bytes += record.bytes.len() as u64;
        if let Some(old) = self.sequence.get(&record.id).and_then(|n| self.records.get_mut(n)) {
            self.bytes -= old.bytes.len() as u64;
            *old = record;
            return;
        }
        self.sequence.insert(record.id.clone(), self.next);
        self.records.insert(self.next, record);
        self.next += 1;
    }

    fn remove(&mut self, id: &str) {
        if let Some(old) = self.sequence.remove(id).and_then(|n| self.records.remove(&n)) {
            self.bytes -= old.bytes.len() as u64;
        }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Bytes the live records take in the file.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The put records, in order.
    pub fn records(&self) -> impl Iterator<Item = &[u8]> {
        self.records.values().map(|record| &record.bytes[..])
    }

    /// Each id and its payload, in order.
    pub fn entries(&self) -> Vec<(String, Vec<u8>)> {
        self.records.values().map(|r| (r.id.clone(), Record::payload(&r.bytes).to_vec())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(live: &mut Live, op: Op, id: &str, payload: &str) {
        live.apply(Record::encode(op, id, payload.as_bytes()).unwrap());
    }

    fn entries(live: &Live) -> Vec<(String, String)> {
        let text = |p: Vec<u8>| String::from_utf8(p).unwrap();
        live.entries().into_iter().map(|(id, p)| (id, text(p))).collect()
    }

    #[test]
    fn a_replacement_keeps_its_place_and_a_put_after_a_remove_goes_last() {
        let mut live = Live::default();
        for id in ["a", "b", "c"] {
            apply(&mut live, Op::Put, id, "1");
        }
        apply(&mut live, Op::Put, "a", "2");
        apply(&mut live, Op::Remove, "b", "");
        apply(&mut live, Op::Put, "b", "3");
        apply(&mut live, Op::Remove, "missing", "");
        let expected = [("a", "2"), ("c", "1"), ("b", "3")].map(|(id, p)| (id.to_string(), p.to_string()));
        assert_eq!(entries(&live), expected);
        assert_eq!(live.len(), 3);
        assert_eq!(live.bytes(), live.records().map(|r| r.len() as u64).sum::<u64>());
    }

    #[test]
    fn removing_everything_leaves_no_bytes() {
        let mut live = Live::default();
        apply(&mut live, Op::Put, "a", "payload");
        apply(&mut live, Op::Put, "a", "longer payload");
        apply(&mut live, Op::Remove, "a", "");
        assert_eq!((live.len(), live.bytes()), (0, 0));
    }
}
