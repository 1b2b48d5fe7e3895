//! The delta overlay: sparse per-voxel edits kept beside the base index, in two
//! layers that share one map.
//!
//! # Layout
//!
//! Deltas are grouped by the `16³` brick that holds them: a hash map (ahash, fixed
//! seeds so runs are reproducible) from a packed brick key to the brick's
//! [`BrickDeltas`]: its deltas sorted by in-brick index, and a 64-bit mask with
//! one bit per `4³` block that holds a delta. One [`Delta`] is 12 bytes. A brick's
//! first four deltas sit inline in its map entry, so the many bricks that hold a
//! few (scattered edits) cost no heap block and a read of them no second cache
//! miss. The entry is then 72 bytes. At 100K random deltas in the default world's
//! 65,536 bricks, a brick holding one of them holds 1 + Poisson(1.5) deltas: at
//! most four 93% of the time.
//!
//! A delta is *active* (written since the consolidation in flight began) or
//! *frozen* (picked by that consolidation, readable until the base holds it). Both
//! layers live in the same arrays: an active and a frozen delta of one voxel sit
//! side by side, active first, so one probe and one binary search answer a read
//! whichever layer holds the voxel, and a read of a block without deltas stops at
//! the mask without touching the deltas.
//!
//! The grouping is what the rest of the crate needs: a consolidation job gets each
//! brick's deltas without sorting, region and spatial queries visit only the
//! bricks they touch, and the per-brick overhead is shared by every delta in the
//! brick, which keeps the cost per delta low when edits cluster (erosion).
//!
//! | operation | cost |
//! | --- | --- |
//! | lookup | one hash probe, a mask test, then a binary search in the brick (at most 13 steps) |
//! | insert / remove | lookup + a shift of the brick's tail (at most 96 KiB, usually a few bytes) |
//! | region of `b` bricks | `min(b, bricks with deltas)` probes |
//!
//! # Invariants
//!
//! - `SORTED`: a brick's deltas are sorted by (in-brick index, layer), active
//!   before frozen, without repeats: a voxel has at most one delta per layer.
//! - `NO_EMPTY`: a brick key is present only while it holds a delta.
//! - `MASKED`: the block of every delta has its bit set in the brick's mask (bits
//!   may outlive their deltas until the brick's next merge: the mask is a filter).
//! - `SPENT`: once a job is finished, the base holds its frozen deltas: they are
//!   *spent*, read as absent, and purged by the next freeze (which scans every
//!   delta anyway), so finishing costs nothing per delta. Until then they hold
//!   memory: at most one job's deltas. A synchronous consolidation, which has
//!   the main thread anyway, drops its deltas at once instead. Frozen deltas
//!   are either all live (a job in flight: `spent == 0`) or all spent
//!   (`frozen == 0`).
//! - `COUNTED`: `active` and `frozen` count the live deltas of each layer, `spent`
//!   the spent ones, `time_sum` sums the active deltas' write times, `capacity`
//!   the bricks' heap capacities (zero while a brick's deltas are inline).
//! - `ELIDED`: no active delta holds the material beneath it.

mod delta;
mod freeze;
mod key;

pub(crate) use crate::base::BrickWrite;
pub(crate) use delta::Delta;
pub(crate) use key::{BrickKey, brick_range};

use crate::MaterialId;
use delta::{DeltaVec, INLINE_DELTAS, block_bit, find, gallop, heap_capacity};
use std::collections::HashMap;
use std::collections::hash_map::Entry;

/// The crate's hash map: ahash with fixed seeds.
pub(crate) type FastMap<K, V> = HashMap<K, V, ahash::RandomState>;

/// A hasher with fixed seeds: iteration order, and so every strategy's choice among
/// equals, is the same from run to run. Keys come from the simulation, not from an
/// attacker, so there is no flooding to defend against.
pub(crate) fn fixed_hasher() -> ahash::RandomState {
    ahash::RandomState::with_seeds(
        0x243f_6a88_85a3_08d3,
        0x1319_8a2e_0370_7344,
        0xa409_3822_299f_31d0,
        0x082e_fa98_ec4e_6c89,
    )
}

/// The delta a read of voxel `local` sees in a brick's deltas and mask: the
/// active one, else the frozen one unless frozen deltas are `spent` (`SPENT`).
/// The one read rule, shared by point reads and the [`Reader`](crate::Reader).
#[inline]
pub(crate) fn lookup(deltas: &[Delta], mask: u64, local: u16, spent: bool) -> Option<&Delta> {
    if mask & block_bit(local) == 0 {
        return None;
    }
    deltas.get(find(deltas, local)).filter(|d| d.local() == local && !(d.is_frozen() && spent))
}

/// One brick's deltas, both layers.
#[derive(Clone, Debug, Default)]
pub(crate) struct BrickDeltas {
    /// One bit per `4³` block holding a delta (`MASKED`).
    mask: u64,
    /// Sorted by voxel, active first (`SORTED`); the first four inline.
    deltas: DeltaVec,
}

const _: () = assert!(std::mem::size_of::<(BrickKey, BrickDeltas)>() == 72, "the layout notes' entry size");

/// The overlay: every brick's active and frozen deltas.
#[derive(Clone, Debug)]
pub(crate) struct Overlay {
    bricks: FastMap<BrickKey, BrickDeltas>,
    active: usize,
    frozen: usize,
    spent: usize,
    time_sum: u64,
    capacity: usize,
}

impl Default for Overlay {
    fn default() -> Self {
        Self { bricks: HashMap::with_hasher(fixed_hasher()), active: 0, frozen: 0, spent: 0, time_sum: 0, capacity: 0 }
    }
}

/// Reverts and no-op writes counted by [`Overlay::merge_brick`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct MergeCounts {
    pub reverts: u64,
    pub unchanged: u64,
}

/// What a write did to the active layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WriteEffect {
    /// A new delta.
    Inserted,
    /// An existing delta took the new material.
    Overwritten,
    /// The material equals the one beneath: the delta was removed.
    Reverted,
    /// The material equals the one beneath and there was no delta: nothing to do.
    Unchanged,
}

/// The deltas a consolidation takes, copied out as it needs them: each brick's
/// writes in voxel order.
#[derive(Clone, Debug, Default)]
pub(crate) struct FrozenDeltas {
    /// Every brick with frozen deltas and the range of its writes.
    pub bricks: Vec<(BrickKey, std::ops::Range<usize>)>,
    /// The writes, brick after brick.
    pub writes: Vec<BrickWrite>,
}

impl Overlay {
    /// Number of deltas, both layers.
    #[inline]
    pub fn len(&self) -> usize {
        self.active + self.frozen
    }

    /// Number of active deltas.
    #[inline]
    pub fn active_len(&self) -> usize {
        self.active
    }

    /// Number of frozen deltas of the job in flight.
    #[inline]
    pub fn frozen_len(&self) -> usize {
        self.frozen
    }

    /// The deltas a read sees in a brick's slice: every active delta, and the
    /// live frozen ones no active delta of the same voxel hides.
    pub fn visible<'a>(&self, deltas: &'a [Delta]) -> impl Iterator<Item = &'a Delta> {
        let spent = self.spent > 0;
        deltas
            .iter()
            .enumerate()
            .filter(move |(i, d)| !(d.is_frozen() && (spent || (*i > 0 && deltas[i - 1].local() == d.local()))))
            .map(|(_, d)| d)
    }

    /// True when frozen deltas are spent: a [`Reader`](crate::Reader) caching a
    /// brick's slice needs to know.
    #[inline]
    pub fn frozen_spent(&self) -> bool {
        self.spent > 0
    }

    /// Number of bricks holding deltas.
    pub fn brick_count(&self) -> usize {
        self.bricks.len()
    }

    /// The delta a read of (`key`, `local`) sees: the active one, else the frozen one.
    #[inline]
    pub fn get(&self, key: BrickKey, local: u16) -> Option<&Delta> {
        let brick = self.bricks.get(&key)?;
        lookup(&brick.deltas, brick.mask, local, self.spent > 0)
    }

    /// Brick `key`'s deltas (both layers, see [`visible`]) and block mask.
    #[inline]
    pub fn brick(&self, key: BrickKey) -> Option<(&[Delta], u64)> {
        self.bricks.get(&key).map(|b| (b.deltas.as_slice(), b.mask))
    }

    /// Every brick and its deltas (both layers), in map order.
    pub fn iter(&self) -> impl Iterator<Item = (BrickKey, &[Delta])> {
        self.bricks.iter().map(|(k, v)| (*k, v.deltas.as_slice()))
    }

    /// Mean write time (storage clock, ms) of the active deltas, if any.
    pub fn mean_written_at(&self) -> Option<u64> {
        (self.active > 0).then(|| self.time_sum / self.active as u64)
    }

    /// Heap bytes held: map buckets (small bricks' deltas inline) plus every spilled
    /// brick's heap capacity.
    pub fn bytes(&self) -> usize {
        // hashbrown: one control byte per bucket plus the group padding; buckets are
        // capacity * 8 / 7 rounded up to a power of two.
        let buckets =
            if self.bricks.capacity() == 0 { 0 } else { (self.bricks.capacity() * 8 / 7).next_power_of_two() };
        let bucket = std::mem::size_of::<(BrickKey, BrickDeltas)>() + 1;
        buckets * bucket + self.capacity * std::mem::size_of::<Delta>()
    }

    /// Writes `material` at (`key`, `local`) in the active layer. `base` is asked
    /// for the base's material only when the voxel has no delta in either layer.
    #[inline]
    pub fn write(
        &mut self,
        key: BrickKey,
        local: u16,
        material: MaterialId,
        now: u32,
        base: impl FnOnce() -> MaterialId,
    ) -> WriteEffect {
        // One probe whether or not the brick has deltas yet.
        let brick = match self.bricks.entry(key) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => {
                let under = base();
                if material == under {
                    return WriteEffect::Unchanged;
                }
                let mut deltas = DeltaVec::new();
                deltas.push(Delta::active(local, material, under, now));
                v.insert(BrickDeltas { mask: block_bit(local), deltas });
                self.active += 1;
                self.time_sum += u64::from(now);
                return WriteEffect::Inserted;
            }
        };
        let bit = block_bit(local);
        let (i, under) = if brick.mask & bit == 0 {
            // No delta of this voxel in either layer. The base read is issued before
            // the search for the insert position: independent, their misses overlap.
            let under = base();
            (find(&brick.deltas, local), under)
        } else {
            let i = find(&brick.deltas, local);
            match brick.deltas.get(i).copied().filter(|d| d.local() == local) {
                Some(d) if !d.is_frozen() => {
                    self.time_sum -= u64::from(d.written_at);
                    if material == d.beneath {
                        brick.deltas.remove(i);
                        self.active -= 1;
                        if brick.deltas.is_empty() {
                            self.capacity -= heap_capacity(&brick.deltas);
                            self.bricks.remove(&key);
                        }
                        return WriteEffect::Reverted;
                    }
                    let d = &mut brick.deltas[i];
                    d.material = material;
                    d.version = d.version.saturating_add(1);
                    d.written_at = now;
                    self.time_sum += u64::from(now);
                    return WriteEffect::Overwritten;
                }
                // Beneath the active layer: the frozen delta, else the base (a spent
                // frozen delta's material is the base's: either will do).
                Some(frozen) => (i, frozen.material),
                None => (i, base()),
            }
        };
        if material == under {
            return WriteEffect::Unchanged;
        }
        let before = heap_capacity(&brick.deltas);
        brick.deltas.insert(i, Delta::active(local, material, under, now));
        brick.mask |= bit;
        self.capacity += heap_capacity(&brick.deltas) - before;
        self.active += 1;
        self.time_sum += u64::from(now);
        WriteEffect::Inserted
    }

    /// Applies a brick's share of a batch to the active layer in one merge pass:
    /// `writes` are sorted by in-brick index, writes to one voxel in input order.
    /// Equivalent to calling [`write`](Self::write) for each in order, at
    /// `O(deltas in the brick + writes)` instead of a shift per insert.
    /// `base(local)` is asked once per voxel that has no delta in either layer.
    /// `scratch` is a reused buffer.
    pub fn merge_brick(
        &mut self,
        key: BrickKey,
        writes: &[BrickWrite],
        now: u32,
        mut base: impl FnMut(u16) -> MaterialId,
        scratch: &mut Vec<Delta>,
    ) -> MergeCounts {
        let mut counts = MergeCounts::default();
        let slot = self.bricks.entry(key).or_default();
        let old_capacity = heap_capacity(&slot.deltas);
        let existing: &[Delta] = &slot.deltas;
        let old_len = existing.len();
        let mut time_delta: i64 = 0;
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
                Some(d) if d.slot == local << 1 => {
                    time_delta -= i64::from(d.written_at);
                    i += 1;
                    Some(*d)
                }
                _ => None,
            };
            // A frozen delta stays where it is (copied with the next run, after the
            // active result) and is what lies beneath a new active delta (spent,
            // its material is the base's).
            let mut under = existing.get(i).filter(|d| d.local() == local).map(|d| d.material);
            while j < writes.len() && writes[j].local == local {
                let m = writes[j].material;
                match &mut state {
                    Some(d) if m == d.beneath => {
                        under = Some(d.beneath);
                        state = None;
                        counts.reverts += 1;
                    }
                    Some(d) => {
                        d.material = m;
                        d.version = d.version.saturating_add(1);
                        d.written_at = now;
                    }
                    None => {
                        let b = *under.get_or_insert_with(|| base(local));
                        if m == b {
                            counts.unchanged += 1;
                        } else {
                            state = Some(Delta::active(local, m, b, now));
                        }
                    }
                }
                j += 1;
            }
            if let Some(d) = state {
                time_delta += i64::from(d.written_at);
                scratch.push(d);
            }
        }
        scratch.extend_from_slice(&existing[i..]);
        // The merged deltas become the brick's and its old heap buffer the next
        // scratch buffer: one copy, no allocation. A result that fits inline is
        // copied there (the old buffer, if larger, becomes the scratch); one far
        // smaller than the buffer is copied, so a small brick keeps a small buffer.
        if scratch.len() <= INLINE_DELTAS {
            let old = std::mem::replace(&mut slot.deltas, DeltaVec::from_slice(scratch));
            if old.spilled() && old.capacity() > scratch.capacity() {
                *scratch = old.into_vec();
            }
        } else if scratch.capacity() <= 2 * scratch.len().max(8) {
            let merged = DeltaVec::from_vec(std::mem::take(scratch));
            let old = std::mem::replace(&mut slot.deltas, merged);
            if old.spilled() {
                *scratch = old.into_vec();
            }
        } else {
            slot.deltas.clear();
            slot.deltas.extend_from_slice(scratch);
        }
        // Frozen deltas are copied through unchanged: the difference is active.
        self.active = self.active + slot.deltas.len() - old_len;
        self.time_sum = (self.time_sum as i64 + time_delta) as u64;
        // A superset is enough (`MASKED`): the written blocks, not a rescan.
        slot.mask |= writes.iter().fold(0, |m, w| m | block_bit(w.local));
        if slot.deltas.is_empty() {
            self.capacity -= old_capacity;
            self.bricks.remove(&key);
        } else {
            self.capacity = self.capacity - old_capacity + heap_capacity(&slot.deltas);
        }
        counts
    }

    /// Checks `SORTED`, `NO_EMPTY`, `MASKED`, `COUNTED` and `ELIDED` (debug
    /// builds; `O(deltas)`).
    #[cfg(any(test, debug_assertions))]
    pub fn check(&self) {
        debug_assert!(self.frozen == 0 || self.spent == 0, "SPENT: frozen deltas are all live or all spent");
        let (mut active, mut frozen, mut time_sum, mut capacity) = (0, 0, 0, 0);
        for brick in self.bricks.values() {
            let deltas = &brick.deltas;
            debug_assert!(!deltas.is_empty(), "NO_EMPTY: a brick key holds a delta");
            debug_assert!(
                deltas.windows(2).all(|w| w[0].slot < w[1].slot),
                "SORTED: a brick's deltas are sorted by voxel and layer without repeats"
            );
            debug_assert_eq!(delta::mask_of(deltas) & !brick.mask, 0, "MASKED: every delta's block bit is set");
            for d in deltas {
                if d.is_frozen() {
                    frozen += 1;
                } else {
                    debug_assert_ne!(d.material, d.beneath, "ELIDED: no active delta equals what lies beneath");
                    active += 1;
                    time_sum += u64::from(d.written_at);
                }
            }
            capacity += heap_capacity(deltas);
        }
        debug_assert_eq!((active, frozen), (self.active, self.frozen + self.spent), "COUNTED: deltas per layer");
        debug_assert_eq!(time_sum, self.time_sum, "COUNTED: time_sum sums active write times");
        debug_assert_eq!(capacity, self.capacity, "COUNTED: capacity sums heap capacities");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use glam::IVec3;

    #[test]
    fn writes_count_and_revert() {
        let mut overlay = Overlay::default();
        let (k, l) = BrickKey::split(IVec3::new(3, 4, 5));
        let base = || MaterialId(1);
        assert_eq!(overlay.write(k, l, MaterialId(1), 0, base), WriteEffect::Unchanged);
        assert_eq!(overlay.write(k, l, MaterialId(2), 5, base), WriteEffect::Inserted);
        assert_eq!(overlay.write(k, l, MaterialId(3), 9, base), WriteEffect::Overwritten);
        assert_eq!(overlay.get(k, l).map(|d| (d.version, d.written_at)), Some((2, 9)));
        assert_eq!(overlay.len(), 1);
        assert_eq!(overlay.write(k, l, MaterialId(1), 10, base), WriteEffect::Reverted);
        assert_eq!(overlay.len(), 0);
        assert_eq!(overlay.brick_count(), 0);
        overlay.check();
    }

    #[test]
    fn an_active_delta_sits_on_the_frozen_one_and_thaws_onto_the_base() {
        let mut overlay = Overlay::default();
        let (k, l) = BrickKey::split(IVec3::new(7, 0, 2));
        let base = || MaterialId(1);
        overlay.write(k, l, MaterialId(2), 0, base);
        let frozen = overlay.freeze(|_| true, |_| true);
        assert_eq!((overlay.active_len(), overlay.frozen_len()), (0, 1));
        assert_eq!(frozen.writes, vec![BrickWrite { local: l, material: MaterialId(2) }]);
        // Writing the frozen material again is a no-op on the active layer.
        assert_eq!(overlay.write(k, l, MaterialId(2), 1, base), WriteEffect::Unchanged);
        assert_eq!(overlay.write(k, l, MaterialId(1), 2, base), WriteEffect::Inserted);
        assert_eq!(overlay.get(k, l).map(|d| (d.material, d.beneath)), Some((MaterialId(1), MaterialId(2))));
        overlay.check();
        // Cancelled: the active delta now lies on the base, which it equals.
        assert_eq!(overlay.thaw(&[k]), 1);
        assert_eq!(overlay.len(), 0);
        overlay.check();
    }

    #[test]
    fn spent_deltas_read_as_absent_and_the_next_freeze_purges_them() {
        let mut overlay = Overlay::default();
        let (k, l) = BrickKey::split(IVec3::new(1, 1, 1));
        let other = BrickKey::split(IVec3::new(2, 1, 1)).1;
        overlay.write(k, l, MaterialId(2), 0, || MaterialId(1));
        let _ = overlay.freeze(|_| true, |_| true);
        overlay.write(k, other, MaterialId(3), 1, || MaterialId(1));
        overlay.spend_frozen();
        assert_eq!(overlay.len(), 1);
        assert!(overlay.get(k, l).is_none(), "the base holds it now");
        let (deltas, _) = overlay.brick(k).unwrap();
        assert_eq!(deltas.len(), 2, "kept until purged");
        assert_eq!(overlay.visible(deltas).count(), 1);
        overlay.check();
        let frozen = overlay.freeze(|_| true, |_| true);
        assert_eq!(frozen.writes, vec![BrickWrite { local: other, material: MaterialId(3) }]);
        assert_eq!(overlay.brick(k).unwrap().0.len(), 1, "purged");
        overlay.check();
    }

    #[test]
    fn a_bricks_first_deltas_sit_inline_and_the_next_spills_to_the_heap() {
        let mut overlay = Overlay::default();
        let write = |overlay: &mut Overlay, x| {
            let (k, l) = BrickKey::split(IVec3::new(x, 0, 0));
            assert_eq!(overlay.write(k, l, MaterialId(2), 0, || MaterialId(1)), WriteEffect::Inserted);
        };
        // One brick: the map's buckets stay as the first write sized them.
        write(&mut overlay, 0);
        let buckets = overlay.bytes();
        for x in 1..=INLINE_DELTAS as i32 {
            write(&mut overlay, x);
            let heap = overlay.bytes() - buckets;
            assert_eq!(heap == 0, x < INLINE_DELTAS as i32, "{} deltas, {heap} heap bytes", x + 1);
        }
        overlay.check();
    }

    #[test]
    fn the_mask_answers_reads_of_empty_blocks_and_merges_refresh_it() {
        let mut overlay = Overlay::default();
        let (k, l) = BrickKey::split(IVec3::new(0, 0, 0));
        let far = BrickKey::split(IVec3::new(15, 15, 15)).1;
        overlay.write(k, l, MaterialId(2), 0, || MaterialId(1));
        assert!(overlay.get(k, far).is_none());
        let (_, mask) = overlay.brick(k).unwrap();
        assert_eq!(mask, 1);
        let mut scratch = Vec::new();
        let writes = [BrickWrite { local: far, material: MaterialId(3) }];
        overlay.merge_brick(k, &writes, 1, |_| MaterialId(1), &mut scratch);
        assert_eq!(overlay.brick(k).unwrap().1, 1 | 1 << 63);
        overlay.check();
    }
}
