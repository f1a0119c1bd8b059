//! A fixed-capacity map with least-recently-used eviction and pinning.
//!
//! Nodes live in one `Vec` (never longer than the capacity) linked by `u32` indices; pinned
//! nodes are unlinked from the recency list so they are never evicted.

use std::collections::HashMap;
use std::hash::Hash;

use crate::types::SipBuildHasher;

const NIL: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Node<K, V> {
    key: K,
    value: V,
    prev: u32,
    next: u32,
    linked: bool,
}

/// The map. `K` and `V` are small `Copy` records.
#[derive(Debug)]
pub(crate) struct LruMap<K, V> {
    map: HashMap<K, u32, SipBuildHasher>,
    nodes: Vec<Node<K, V>>,
    free: Vec<u32>,
    head: u32,
    tail: u32,
    cap: usize,
}

impl<K: Copy + Hash + Eq, V: Copy> LruMap<K, V> {
    pub(crate) fn new(cap: usize, hasher: SipBuildHasher) -> Self {
        Self {
            map: HashMap::with_hasher(hasher),
            nodes: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            cap,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Heap bytes held (the map's table and the node storage).
    pub(crate) fn heap_bytes(&self) -> usize {
        let entry = size_of::<(K, u32)>().saturating_add(1);
        self.map
            .capacity()
            .saturating_mul(entry)
            .saturating_add(
                self.nodes
                    .capacity()
                    .saturating_mul(size_of::<Node<K, V>>()),
            )
            .saturating_add(self.free.capacity().saturating_mul(size_of::<u32>()))
    }

    /// Worst-case heap bytes for `cap` entries.
    pub(crate) fn worst_case_bytes(cap: usize) -> usize {
        // hashbrown keeps at most 7/8 of its power-of-two buckets full: at most 2 × cap / (7/8).
        let buckets = cap.saturating_mul(8).div_ceil(7).next_power_of_two();
        let entry = size_of::<(K, u32)>().saturating_add(1);
        buckets
            .saturating_mul(entry)
            .saturating_add(cap.saturating_mul(size_of::<Node<K, V>>() + size_of::<u32>()))
    }

    pub(crate) fn find(&self, key: &K) -> Option<u32> {
        self.map.get(key).copied()
    }

    pub(crate) fn get(&self, i: u32) -> Option<&V> {
        self.nodes.get(i as usize).map(|n| &n.value)
    }

    pub(crate) fn get_mut(&mut self, i: u32) -> Option<&mut V> {
        self.nodes.get_mut(i as usize).map(|n| &mut n.value)
    }

    /// Marks `i` most recently used (no effect on pinned nodes).
    pub(crate) fn touch(&mut self, i: u32) {
        if self.nodes.get(i as usize).is_some_and(|n| n.linked) && self.head != i {
            self.unlink(i);
            self.link_front(i);
        }
    }

    /// Inserts a new key (the caller checked it is absent), evicting the least recently used
    /// unpinned entry when full. Returns the index and the evicted entry, or `None` when every
    /// entry is pinned.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<(u32, Option<(K, V)>)> {
        let mut evicted = None;
        if self.map.len() >= self.cap {
            let victim = self.tail;
            let node = self.nodes.get(victim as usize).copied()?;
            self.remove(victim);
            evicted = Some((node.key, node.value));
        }
        let node = Node {
            key,
            value,
            prev: NIL,
            next: NIL,
            linked: false,
        };
        let i = match self.free.pop() {
            Some(i) => {
                let slot = self.nodes.get_mut(i as usize)?;
                *slot = node;
                i
            }
            None => {
                let i = u32::try_from(self.nodes.len()).ok().filter(|&i| i != NIL)?;
                self.nodes.push(node);
                i
            }
        };
        self.map.insert(key, i);
        self.link_front(i);
        Some((i, evicted))
    }

    pub(crate) fn remove(&mut self, i: u32) -> Option<V> {
        let node = *self.nodes.get(i as usize)?;
        if self.map.get(&node.key) != Some(&i) {
            return None;
        }
        if node.linked {
            self.unlink(i);
        }
        self.map.remove(&node.key);
        self.free.push(i);
        if self.map.is_empty() {
            // Give memory back once the table drains.
            self.nodes.clear();
            self.free.clear();
        }
        Some(node.value)
    }

    /// Unlinks `i` from the recency list so it is never evicted.
    pub(crate) fn pin(&mut self, i: u32) {
        if self.nodes.get(i as usize).is_some_and(|n| n.linked) {
            self.unlink(i);
        }
    }

    /// Puts a pinned `i` back at the most recently used end.
    pub(crate) fn unpin(&mut self, i: u32) {
        if self.nodes.get(i as usize).is_some_and(|n| !n.linked) {
            self.link_front(i);
        }
    }

    /// Returns the least recently used unpinned entry.
    pub(crate) fn lru(&self) -> Option<(u32, &V)> {
        self.nodes
            .get(self.tail as usize)
            .map(|n| (self.tail, &n.value))
    }

    fn unlink(&mut self, i: u32) {
        let Some(n) = self.nodes.get_mut(i as usize) else {
            return;
        };
        let (p, nx) = (n.prev, n.next);
        n.prev = NIL;
        n.next = NIL;
        n.linked = false;
        match self.nodes.get_mut(p as usize) {
            Some(pn) => pn.next = nx,
            None => self.head = nx,
        }
        match self.nodes.get_mut(nx as usize) {
            Some(nn) => nn.prev = p,
            None => self.tail = p,
        }
    }

    fn link_front(&mut self, i: u32) {
        let head = self.head;
        let Some(n) = self.nodes.get_mut(i as usize) else {
            return;
        };
        n.prev = NIL;
        n.next = head;
        n.linked = true;
        match self.nodes.get_mut(head as usize) {
            Some(h) => h.prev = i,
            None => self.tail = i,
        }
        self.head = i;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(cap: usize) -> LruMap<u32, u32> {
        LruMap::new(cap, SipBuildHasher::new([7, 9]))
    }

    #[test]
    fn evicts_lru_and_respects_pins() {
        let mut t = m(3);
        let a = t.insert(1, 10).unwrap().0;
        let _b = t.insert(2, 20).unwrap().0;
        let _c = t.insert(3, 30).unwrap().0;
        t.touch(a);
        let (_, ev) = t.insert(4, 40).unwrap();
        assert_eq!(ev, Some((2, 20)));
        let ia = t.find(&1).unwrap();
        t.pin(ia);
        let (_, ev) = t.insert(5, 50).unwrap();
        assert_eq!(ev, Some((3, 30)));
        let (_, ev) = t.insert(6, 60).unwrap();
        assert_eq!(ev, Some((4, 40)));
        assert_eq!(t.len(), 3);
        assert!(t.find(&1).is_some());
        // Pin everything: insert fails instead of evicting.
        let i5 = t.find(&5).unwrap();
        let i6 = t.find(&6).unwrap();
        t.pin(i5);
        t.pin(i6);
        assert!(t.insert(7, 70).is_none());
        t.unpin(i5);
        let (_, ev) = t.insert(7, 70).unwrap();
        assert_eq!(ev, Some((5, 50)));
    }

    #[test]
    fn remove_and_reuse() {
        let mut t = m(4);
        for k in 0..4 {
            t.insert(k, k);
        }
        let i = t.find(&2).unwrap();
        assert_eq!(t.remove(i), Some(2));
        assert_eq!(t.remove(i), None);
        t.insert(9, 9);
        assert_eq!(t.len(), 4);
        assert_eq!(t.lru().map(|(_, v)| *v), Some(0));
        for k in [0, 1, 3, 9] {
            let i = t.find(&k).unwrap();
            t.remove(i);
        }
        assert!(t.is_empty());
        assert_eq!(t.heap_bytes() > 0, t.map.capacity() > 0);
    }
}
