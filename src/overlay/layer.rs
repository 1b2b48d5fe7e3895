//! One layer of deltas: a map from brick to the brick's sorted deltas.

use super::delta::{Delta, DeltaVec, find, gallop, heap_capacity, lookup, mask_of};
use crate::coords::brick::{BrickKey, block_bit};
use crate::hash::{FastMap, fixed_hasher};
use crate::material::MaterialId;
use std::collections::hash_map::Entry;

/// One brick's deltas in one layer.
#[derive(Clone, Debug, Default)]
pub(crate) struct BrickDeltas {
    /// One bit per `4³` block holding a delta (`MASKED`).
    pub mask: u64,
    /// Sorted by voxel, one per voxel (`SORTED`); the first three inline.
    pub deltas: DeltaVec,
}

const _: () = assert!(std::mem::size_of::<(BrickKey, BrickDeltas)>() == 72, "the layout notes' entry size");

/// A layer: every brick's deltas, and the counts the layer keeps (`COUNTED`).
#[derive(Debug)]
pub(crate) struct Layer {
    bricks: FastMap<BrickKey, BrickDeltas>,
    len: usize,
    /// Sum of the deltas' write times (ms), for the mean age.
    time_sum: u128,
    /// Sum of the bricks' heap capacities, in deltas.
    heap: usize,
}

impl Clone for Layer {
    /// A copy: what a write pays when a snapshot shares the active layer. A
    /// copied brick's deltas take only the heap they need, so the heap count
    /// is taken again (`COUNTED`).
    fn clone(&self) -> Self {
        let bricks = self.bricks.clone();
        let heap = bricks.values().map(|b| heap_capacity(&b.deltas)).sum();
        Self { bricks, len: self.len, time_sum: self.time_sum, heap }
    }
}

impl Default for Layer {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

/// What a write did to a layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WriteEffect {
    /// A new delta.
    Inserted,
    /// An existing delta took the new material.
    Overwritten,
    /// The material equals the one beneath: the delta was removed.
    Reverted,
    /// The voxel already reads as the material: nothing to do, not a change.
    Unchanged,
}

impl WriteEffect {
    /// True when the write changed the voxel's value.
    #[inline]
    pub fn changed(self) -> bool {
        self != WriteEffect::Unchanged
    }
}

/// A write of a batch to one brick, tagged with its place in the batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TaggedWrite {
    pub local: u16,
    pub material: MaterialId,
    pub tag: u32,
}

/// Reverts and no-op writes counted by [`Layer::merge_brick`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct MergeCounts {
    pub reverts: u64,
    pub unchanged: u64,
}

impl Layer {
    /// An empty layer with room for `bricks` bricks.
    pub fn with_capacity(bricks: usize) -> Self {
        Self { bricks: FastMap::with_capacity_and_hasher(bricks, fixed_hasher()), len: 0, time_sum: 0, heap: 0 }
    }

    /// Number of deltas.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Number of bricks holding deltas.
    #[inline]
    pub fn brick_count(&self) -> usize {
        self.bricks.len()
    }

    /// Bricks the map holds without growing.
    pub fn brick_capacity(&self) -> usize {
        self.bricks.capacity()
    }

    /// Sum of the deltas' write times.
    pub fn time_sum(&self) -> u128 {
        self.time_sum
    }

    /// The delta of (`key`, `local`), if this layer has one.
    #[inline]
    pub fn get(&self, key: BrickKey, local: u16) -> Option<&Delta> {
        let brick = self.bricks.get(&key)?;
        lookup(&brick.deltas, brick.mask, local)
    }

    /// Brick `key`'s deltas and block mask.
    #[inline]
    pub fn brick(&self, key: BrickKey) -> Option<(&[Delta], u64)> {
        self.bricks.get(&key).map(|b| (b.deltas.as_slice(), b.mask))
    }

    /// Every brick and its deltas, in map order.
    pub fn iter(&self) -> impl Iterator<Item = (BrickKey, &[Delta])> {
        self.bricks.iter().map(|(k, v)| (*k, v.deltas.as_slice()))
    }

    /// Heap bytes held: map buckets (small bricks' deltas inline) plus every
    /// spilled brick's heap capacity.
    pub fn bytes(&self) -> usize {
        // hashbrown: one control byte per bucket plus the group padding; buckets are
        // capacity * 8 / 7 rounded up to a power of two.
        let buckets =
            if self.bricks.capacity() == 0 { 0 } else { (self.bricks.capacity() * 8 / 7).next_power_of_two() };
        let bucket = std::mem::size_of::<(BrickKey, BrickDeltas)>() + 1;
        buckets * bucket + self.heap * std::mem::size_of::<Delta>()
    }

    /// Writes `material` at (`key`, `local`). `under` is asked for the material
    /// beneath this layer only when the voxel has no delta here.
    #[inline]
    pub fn write(
        &mut self,
        key: BrickKey,
        local: u16,
        material: MaterialId,
        now: u64,
        under: impl FnOnce() -> MaterialId,
    ) -> WriteEffect {
        // One probe whether or not the brick has deltas yet.
        let brick = match self.bricks.entry(key) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => {
                let beneath = under();
                if material == beneath {
                    return WriteEffect::Unchanged;
                }
                let mut deltas = DeltaVec::new();
                deltas.push(Delta::new(local, material, beneath, now));
                v.insert(BrickDeltas { mask: block_bit(local), deltas });
                self.len += 1;
                self.time_sum += u128::from(now);
                return WriteEffect::Inserted;
            }
        };
        let bit = block_bit(local);
        let (i, beneath) = if brick.mask & bit == 0 {
            // No delta of this voxel here. The read beneath is issued before the
            // search for the insert position: independent, their misses overlap.
            let beneath = under();
            (find(&brick.deltas, local), beneath)
        } else {
            let i = find(&brick.deltas, local);
            match brick.deltas.get(i).copied() {
                Some(d) if d.local == local => {
                    if material == d.material {
                        return WriteEffect::Unchanged;
                    }
                    self.time_sum -= u128::from(d.written_at());
                    if material == d.beneath {
                        brick.deltas.remove(i);
                        self.len -= 1;
                        if brick.deltas.is_empty() {
                            self.heap -= heap_capacity(&brick.deltas);
                            self.bricks.remove(&key);
                        }
                        return WriteEffect::Reverted;
                    }
                    brick.deltas[i].rewrite(material, now);
                    self.time_sum += u128::from(now);
                    return WriteEffect::Overwritten;
                }
                _ => (i, under()),
            }
        };
        if material == beneath {
            return WriteEffect::Unchanged;
        }
        let before = heap_capacity(&brick.deltas);
        brick.deltas.insert(i, Delta::new(local, material, beneath, now));
        brick.mask |= bit;
        self.heap += heap_capacity(&brick.deltas) - before;
        self.len += 1;
        self.time_sum += u128::from(now);
        WriteEffect::Inserted
    }

    /// Applies a brick's share of a batch in one merge pass: `writes` are sorted
    /// by in-brick index, writes to one voxel in input order. Equivalent to
    /// calling [`write`](Self::write) for each in order, at
    /// `O(deltas in the brick + writes)` instead of a shift per insert.
    /// `under[j]` is the material beneath this layer at `writes[j]`'s voxel;
    /// `changed` is called with the tag of every write that changed its voxel's
    /// value. `scratch` is a reused buffer.
    pub fn merge_brick(
        &mut self,
        key: BrickKey,
        writes: &[TaggedWrite],
        now: u64,
        under: &[MaterialId],
        scratch: &mut Vec<Delta>,
        changed: &mut impl FnMut(u32),
    ) -> MergeCounts {
        debug_assert_eq!(under.len(), writes.len());
        let mut counts = MergeCounts::default();
        let slot = self.bricks.entry(key).or_default();
        let old_heap = heap_capacity(&slot.deltas);
        let existing: &[Delta] = &slot.deltas;
        let old_len = existing.len();
        let mut time_delta: i128 = 0;
        scratch.clear();
        scratch.reserve(existing.len() + writes.len());
        let (mut i, mut j) = (0, 0);
        while j < writes.len() {
            let local = writes[j].local;
            // Untouched deltas before this voxel, copied as one run.
            let run = gallop(&existing[i..], local);
            scratch.extend_from_slice(&existing[i..i + run]);
            i += run;
            let mut state = match existing.get(i) {
                Some(d) if d.local == local => {
                    time_delta -= i128::from(d.written_at());
                    i += 1;
                    Some(*d)
                }
                _ => None,
            };
            let mut beneath = state.map(|d| d.beneath);
            while j < writes.len() && writes[j].local == local {
                let w = writes[j];
                match &mut state {
                    Some(d) if w.material == d.material => counts.unchanged += 1,
                    Some(d) if w.material == d.beneath => {
                        state = None;
                        counts.reverts += 1;
                        changed(w.tag);
                    }
                    Some(d) => {
                        d.rewrite(w.material, now);
                        changed(w.tag);
                    }
                    None => {
                        let b = *beneath.get_or_insert(under[j]);
                        if w.material == b {
                            counts.unchanged += 1;
                        } else {
                            state = Some(Delta::new(local, w.material, b, now));
                            changed(w.tag);
                        }
                    }
                }
                j += 1;
            }
            if let Some(d) = state {
                time_delta += i128::from(d.written_at());
                scratch.push(d);
            }
        }
        scratch.extend_from_slice(&existing[i..]);
        self.len = self.len + scratch.len() - old_len;
        self.time_sum = self.time_sum.wrapping_add_signed(time_delta);
        if scratch.is_empty() {
            self.heap -= old_heap;
            self.bricks.remove(&key);
            return counts;
        }
        slot.deltas.clear();
        slot.deltas.extend_from_slice(scratch);
        slot.mask = mask_of(&slot.deltas);
        self.heap = self.heap - old_heap + heap_capacity(&slot.deltas);
        counts
    }

    /// Adds a brick this layer does not hold yet, with `deltas` already sorted
    /// by voxel, one per voxel, none equal to its `beneath`: how a layer is built
    /// from a merge.
    pub fn push_brick(&mut self, key: BrickKey, deltas: &[Delta]) {
        if deltas.is_empty() {
            return;
        }
        let deltas = DeltaVec::from_slice(deltas);
        self.len += deltas.len();
        self.time_sum += deltas.iter().map(|d| u128::from(d.written_at())).sum::<u128>();
        self.heap += heap_capacity(&deltas);
        let previous = self.bricks.insert(key, BrickDeltas { mask: mask_of(&deltas), deltas });
        debug_assert!(previous.is_none(), "a merge builds each brick once");
    }

    /// Checks `SORTED`, `NO_EMPTY`, `MASKED`, `COUNTED` and `ELIDED` (debug builds;
    /// `O(deltas)`).
    #[cfg(any(test, debug_assertions))]
    pub fn check(&self) {
        let (mut len, mut time, mut heap) = (0, 0u128, 0);
        for (key, brick) in &self.bricks {
            let d = &brick.deltas;
            debug_assert!(!d.is_empty(), "NO_EMPTY: brick {key:?} is present without deltas");
            debug_assert!(d.windows(2).all(|w| w[0].local < w[1].local), "SORTED: brick {key:?}");
            debug_assert!(d.iter().all(|x| brick.mask & block_bit(x.local) != 0), "MASKED: brick {key:?}");
            debug_assert!(d.iter().all(|x| x.material != x.beneath), "ELIDED: brick {key:?}");
            len += d.len();
            time += d.iter().map(|x| u128::from(x.written_at())).sum::<u128>();
            heap += heap_capacity(d);
        }
        debug_assert_eq!((len, time, heap), (self.len, self.time_sum, self.heap), "COUNTED");
    }
}
