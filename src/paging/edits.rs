//! The edits a paged world keeps in memory: every one when it has no file;
//! with a file, those not yet acknowledged durable in it.
//!
//! # Invariants
//!
//! - `LATER_IN_MEMORY`: every batch handed to the file and not acknowledged
//!   is kept (`flushing`, in order), and so is every edit not handed yet
//!   (`unsaved`); an acknowledged batch is dropped. So an edit the file has
//!   and memory does not is older than every edit memory holds: a sector
//!   made from the file and then given memory's edits, in order, is exact,
//!   provided the file was read at or after the last acknowledged batch that
//!   touched the sector ([`Edits::stale`] says when it was not).
//! - `COUNTED`: `count` is the edits kept: the voxels of `unsaved` plus the
//!   changes of every batch in `flushing`.

// Without a file (feature `persistence`) no batch is ever handed over.
#![cfg_attr(not(feature = "persistence"), allow(dead_code))]

use crate::hash::{FastMap, fast_map};
use crate::material::MaterialId;
use glam::{IVec2, IVec3};
use std::collections::VecDeque;
use std::sync::Arc;

/// Batch numbers are below it (a file holding a larger one is refused).
pub(super) const MAX_BATCH: u64 = 1 << 62;

/// One sector's edits, by voxel.
pub(super) type SectorEdits = FastMap<IVec3, MaterialId>;

/// A batch handed to the file: each sector's edits, sorted by voxel.
pub(super) type FlushBatch = Arc<Vec<(IVec2, Vec<(IVec3, MaterialId)>)>>;

/// The edits kept in memory; see the [module docs](self).
pub(super) struct Edits {
    unsaved: FastMap<IVec2, SectorEdits>,
    flushing: VecDeque<(u64, FlushBatch)>,
    count: usize,
    /// The last acknowledged batch that touched each sector.
    acked_touch: FastMap<IVec2, u64>,
    /// The number the next batch gets (1 first).
    next_batch: u64,
}

impl Default for Edits {
    fn default() -> Self {
        Self { unsaved: fast_map(), flushing: VecDeque::new(), count: 0, acked_touch: fast_map(), next_batch: 0 }
    }
}

impl Edits {
    /// Keeps `m` at `p` in sector `key`; refuses a voxel not kept already
    /// (unsaved or in a batch in flight) when `most` edits are, before
    /// allocating anything for it. A voxel kept already is never refused: it
    /// may be kept once more while its batch is in flight.
    pub fn record(&mut self, key: IVec2, p: IVec3, m: MaterialId, most: usize) -> Result<(), usize> {
        let unsaved = self.unsaved.get(&key).is_some_and(|e| e.contains_key(&p));
        if !unsaved && self.count >= most && !self.in_flight(key, p) {
            return Err(most);
        }
        self.count += usize::from(!unsaved);
        self.unsaved.entry(key).or_insert_with(fast_map).insert(p, m);
        Ok(())
    }

    /// Whether `p` is in a batch handed over and not acknowledged.
    fn in_flight(&self, key: IVec2, p: IVec3) -> bool {
        self.flushing.iter().any(|(_, batch)| {
            batch
                .binary_search_by_key(&(key.x, key.y), |(k, _)| (k.x, k.y))
                .is_ok_and(|i| batch[i].1.binary_search_by_key(&(p.x, p.y, p.z), |(q, _)| (q.x, q.y, q.z)).is_ok())
        })
    }

    /// Sector `key`'s edits kept in memory, the last one per voxel, sorted
    /// by voxel: what a sector made from the generator and the file is
    /// given at install (`LATER_IN_MEMORY`).
    pub fn for_sector(&self, key: IVec2) -> Vec<(IVec3, MaterialId)> {
        let mut merged: SectorEdits = fast_map();
        for (_, batch) in &self.flushing {
            // A batch's sectors are sorted by key.
            if let Ok(i) = batch.binary_search_by_key(&(key.x, key.y), |(k, _)| (k.x, k.y)) {
                merged.extend(batch[i].1.iter().copied());
            }
        }
        if let Some(e) = self.unsaved.get(&key) {
            merged.extend(e.iter().map(|(p, m)| (*p, *m)));
        }
        let mut sorted: Vec<(IVec3, MaterialId)> = merged.into_iter().collect();
        sorted.sort_unstable_by_key(|(p, _)| (p.x, p.y, p.z));
        sorted
    }

    /// Whether a sector read from the file as of batch `read` misses an
    /// edit memory no longer holds.
    pub fn stale(&self, key: IVec2, read: u64) -> bool {
        self.acked_touch.get(&key).is_some_and(|&t| t > read)
    }

    /// Moves every unsaved edit into a new batch and returns it with its
    /// number; `None` when there is nothing to hand over.
    pub fn take_batch(&mut self) -> Option<(u64, FlushBatch)> {
        // Numbers stop short of the file's bound (never reached in practice):
        // the edits then stay unsaved rather than be numbered twice.
        if self.unsaved.is_empty() || self.next_batch + 1 >= MAX_BATCH {
            return None;
        }
        self.next_batch += 1;
        let mut sectors: Vec<(IVec2, Vec<(IVec3, MaterialId)>)> = self
            .unsaved
            .drain()
            .map(|(k, e)| {
                let mut sorted: Vec<(IVec3, MaterialId)> = e.into_iter().collect();
                sorted.sort_unstable_by_key(|(p, _)| (p.x, p.y, p.z));
                (k, sorted)
            })
            .collect();
        sectors.sort_unstable_by_key(|(k, _)| (k.x, k.y));
        let batch = Arc::new(sectors);
        self.flushing.push_back((self.next_batch, Arc::clone(&batch)));
        Some((self.next_batch, batch))
    }

    /// Puts a batch the file could not take back in front of the unsaved
    /// edits (a later edit of a voxel still wins).
    pub fn unhand(&mut self, number: u64) {
        let Some(i) = self.flushing.iter().position(|(n, _)| *n == number) else { return };
        let Some((_, batch)) = self.flushing.remove(i) else { return };
        for (key, edits) in batch.iter() {
            let kept = self.unsaved.entry(*key).or_insert_with(fast_map);
            for (p, m) in edits {
                if kept.contains_key(p) {
                    self.count -= 1;
                } else {
                    kept.insert(*p, *m);
                }
            }
        }
    }

    /// The file acknowledged every batch up to `number`: they are dropped.
    pub fn acknowledged(&mut self, number: u64) {
        while self.flushing.front().is_some_and(|(n, _)| *n <= number) {
            let Some((n, batch)) = self.flushing.pop_front() else { break };
            for (key, edits) in batch.iter() {
                self.count -= edits.len();
                self.acked_touch.insert(*key, n);
            }
        }
    }

    /// Numbers the next batches after `last` (the file's last batch: the
    /// numbers go on from there, so a read's number compares with them).
    pub fn number_after(&mut self, last: u64) {
        self.next_batch = self.next_batch.max(last);
    }

    /// The number of the last batch handed over (0 before the first).
    pub fn last_handed(&self) -> u64 {
        self.flushing.back().map_or(0, |(n, _)| *n)
    }

    /// Forgets the acknowledgements of sectors `asked` does not hold: only a
    /// sector being made can have been read before one (`acked_touch` stays
    /// as small as the requests in flight).
    pub fn prune_acknowledged(&mut self, asked: impl Fn(IVec2) -> bool) {
        self.acked_touch.retain(|k, _| asked(*k));
    }

    /// Drops sector `key`'s edits not handed to the file.
    pub fn forget(&mut self, key: IVec2) {
        if let Some(e) = self.unsaved.remove(&key) {
            self.count -= e.len();
        }
    }

    /// Edits kept (`COUNTED`).
    pub fn count(&self) -> usize {
        self.count
    }

    /// Whether batches are handed over and not acknowledged.
    pub fn flushing(&self) -> usize {
        self.flushing.len()
    }

    /// The bytes of the maps: their tables as allocated, and the batches.
    pub fn bytes(&self) -> usize {
        let entry = std::mem::size_of::<(IVec3, MaterialId)>();
        let map = std::mem::size_of::<(IVec2, SectorEdits)>() + 1;
        let unsaved =
            self.unsaved.capacity() * map + self.unsaved.values().map(|e| e.capacity() * (entry + 1)).sum::<usize>();
        let flushing: usize = self.flushing.iter().flat_map(|(_, b)| b.iter()).map(|(_, e)| e.capacity() * entry).sum();
        unsaved + flushing + self.acked_touch.capacity() * (std::mem::size_of::<(IVec2, u64)>() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::materials;

    #[test]
    fn memory_edits_come_in_order_and_an_acknowledged_batch_makes_an_older_read_stale() {
        let (k, p) = (IVec2::ZERO, IVec3::new(1, 2, 3));
        let mut e = Edits::default();
        e.record(k, p, materials::SAND, 10).unwrap();
        let (first, _) = e.take_batch().unwrap();
        e.record(k, p, materials::MAGMA, 10).unwrap();
        assert_eq!(e.count(), 2);
        assert_eq!(e.for_sector(k), vec![(p, materials::MAGMA)]);
        assert!(!e.stale(k, 0));
        e.acknowledged(first);
        assert!(e.stale(k, 0) && !e.stale(k, first));
        assert_eq!(e.count(), 1);
        assert_eq!(e.for_sector(k), vec![(p, materials::MAGMA)]);
    }

    #[test]
    fn a_voxel_in_flight_edited_again_at_the_cap_is_kept_and_counted_once_each() {
        let (k, p) = (IVec2::ZERO, IVec3::new(1, 2, 3));
        let mut e = Edits::default();
        e.record(k, p, materials::SAND, 1).unwrap();
        let (first, _) = e.take_batch().unwrap();
        e.record(k, p, materials::MAGMA, 1).unwrap();
        assert_eq!(e.record(k, IVec3::ONE, materials::SAND, 1), Err(1));
        assert_eq!(e.count(), 2);
        e.acknowledged(first);
        let (second, _) = e.take_batch().unwrap();
        e.acknowledged(second);
        assert_eq!(e.count(), 0);
        // Only the sectors being made keep their acknowledgements.
        assert!(e.stale(k, first));
        e.prune_acknowledged(|_| false);
        assert!(!e.stale(k, 0));
    }

    #[test]
    fn a_batch_handed_back_yields_to_later_edits_and_is_counted_once() {
        let (k, p, q) = (IVec2::ZERO, IVec3::new(1, 2, 3), IVec3::new(4, 5, 6));
        let mut e = Edits::default();
        e.record(k, p, materials::SAND, 10).unwrap();
        e.record(k, q, materials::SAND, 10).unwrap();
        let (n, _) = e.take_batch().unwrap();
        e.record(k, p, materials::MAGMA, 10).unwrap();
        e.unhand(n);
        assert_eq!(e.count(), 2);
        assert_eq!(e.for_sector(k), vec![(p, materials::MAGMA), (q, materials::SAND)]);
        assert_eq!(e.record(k, IVec3::ONE, materials::SAND, 2), Err(2));
    }
}
