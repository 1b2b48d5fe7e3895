//! The delta overlay: sparse per-voxel edits kept beside the base index.
//!
//! # Layout
//!
//! Deltas are grouped by the `16³` brick that holds them: a hash map (ahash, fixed
//! seeds so runs are reproducible) from a packed brick key to that brick's deltas,
//! a `Vec` sorted by in-brick index. One [`Delta`] is 12 bytes. The grouping is what
//! the rest of the crate needs: a consolidation job gets each brick's deltas
//! without sorting, region and spatial queries visit only the bricks they touch,
//! and the per-brick overhead is shared by every delta in the brick, which keeps
//! the cost per delta low when edits cluster (erosion, deposition).
//!
//! | operation | cost |
//! | --- | --- |
//! | lookup | one hash probe + binary search in the brick (at most 12 steps) |
//! | insert / remove | lookup + a shift of the brick's tail (at most 48 KiB, usually a few bytes) |
//! | region of `b` bricks | `min(b, bricks with deltas)` probes |
//!
//! # Invariants
//!
//! - `SORTED`: a brick's deltas are sorted by in-brick index, without repeats.
//! - `NO_EMPTY`: a brick key is present only while it holds a delta.
//! - `COUNTED`: `len` is the number of deltas; `time_sum` the sum of their write
//!   times; `capacity` the sum of the bricks' `Vec` capacities.
//! - `ELIDED` (active layer): no delta holds the material beneath it.

use crate::MaterialId;
use crate::base::{BRICK_LOG2, BRICK_MASK, BRICK_SIZE};
use glam::IVec3;
use std::collections::HashMap;

/// Packed brick coordinates (21 bits per axis): the overlay's map key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct BrickKey(u64);

const KEY_OFFSET: i32 = 1 << 20;
const KEY_MASK: u64 = (1 << 21) - 1;

impl BrickKey {
    /// The key of the brick holding `p`, and `p`'s index in it.
    #[inline]
    pub fn split(p: IVec3) -> (Self, u16) {
        (Self::of_brick(p >> BRICK_LOG2 as i32), crate::base::local_index(p) as u16)
    }

    /// The key of the brick with brick coordinates `b`.
    #[inline]
    pub fn of_brick(b: IVec3) -> Self {
        let u = (b + IVec3::splat(KEY_OFFSET)).as_uvec3();
        Self(u64::from(u.x) | u64::from(u.y) << 21 | u64::from(u.z) << 42)
    }

    /// Brick coordinates.
    #[inline]
    pub fn brick(self) -> IVec3 {
        IVec3::new((self.0 & KEY_MASK) as i32, ((self.0 >> 21) & KEY_MASK) as i32, ((self.0 >> 42) & KEY_MASK) as i32)
            - IVec3::splat(KEY_OFFSET)
    }

    /// World position of the brick's smallest corner.
    #[inline]
    pub fn min_corner(self) -> IVec3 {
        self.brick() << BRICK_LOG2 as i32
    }

    /// World position of in-brick index `local`.
    #[inline]
    pub fn position(self, local: u16) -> IVec3 {
        let l = i32::from(local);
        self.min_corner() + IVec3::new(l & BRICK_MASK, (l >> 4) & BRICK_MASK, l >> 8)
    }
}

/// One delta: 12 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Delta {
    /// In-brick index, x fastest.
    pub local: u16,
    /// The material this delta reads as.
    pub material: MaterialId,
    /// The material beneath this layer when the delta was first written: what a
    /// revert compares against.
    pub beneath: MaterialId,
    /// Writes to this voxel since the delta was created, starting at 1 (saturating).
    pub version: u16,
    /// Storage clock (ms) of the last write.
    pub written_at: u32,
}

const _: () = assert!(std::mem::size_of::<Delta>() == 12);

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

type BrickMap = FastMap<BrickKey, Vec<Delta>>;

fn new_map() -> BrickMap {
    HashMap::with_hasher(fixed_hasher())
}

/// One layer of deltas (the active layer, or the frozen one a job consolidates).
#[derive(Clone, Debug)]
pub(crate) struct DeltaLayer {
    bricks: BrickMap,
    len: usize,
    time_sum: u64,
    capacity: usize,
}

impl Default for DeltaLayer {
    fn default() -> Self {
        Self { bricks: new_map(), len: 0, time_sum: 0, capacity: 0 }
    }
}

/// One write of a batch, addressed within its brick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BrickWrite {
    /// In-brick index.
    pub local: u16,
    /// The material written.
    pub material: MaterialId,
}

/// Reverts and no-op writes counted by [`DeltaLayer::merge_brick`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct MergeCounts {
    pub reverts: u64,
    pub unchanged: u64,
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
    /// The material equals the one beneath and there was no delta: nothing to do.
    Unchanged,
}

impl DeltaLayer {
    /// Number of deltas.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the layer holds no delta.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of bricks holding deltas.
    pub fn brick_count(&self) -> usize {
        self.bricks.len()
    }

    /// The delta at `local` of brick `key`.
    #[inline]
    pub fn get(&self, key: BrickKey, local: u16) -> Option<&Delta> {
        let entries = self.bricks.get(&key)?;
        entries.binary_search_by_key(&local, |d| d.local).ok().map(|i| &entries[i])
    }

    /// The deltas of brick `key`, sorted by in-brick index.
    #[inline]
    pub fn brick(&self, key: BrickKey) -> Option<&[Delta]> {
        self.bricks.get(&key).map(Vec::as_slice)
    }

    /// Every brick and its deltas, in map order.
    pub fn iter(&self) -> impl Iterator<Item = (BrickKey, &[Delta])> {
        self.bricks.iter().map(|(k, v)| (*k, v.as_slice()))
    }

    /// Mean write time (storage clock, ms) of the deltas, if any.
    pub fn mean_written_at(&self) -> Option<u64> {
        (self.len > 0).then(|| self.time_sum / self.len as u64)
    }

    /// Heap bytes held: map buckets plus every brick's `Vec` capacity.
    pub fn bytes(&self) -> usize {
        // hashbrown: one control byte per bucket plus the group padding; buckets are
        // capacity * 8 / 7 rounded up to a power of two.
        let buckets =
            if self.bricks.capacity() == 0 { 0 } else { (self.bricks.capacity() * 8 / 7).next_power_of_two() };
        let bucket = std::mem::size_of::<(BrickKey, Vec<Delta>)>() + 1;
        buckets * bucket + self.capacity * std::mem::size_of::<Delta>()
    }

    /// Writes `material` at (`key`, `local`) in this layer. `beneath` is asked for
    /// the value under this layer only when no delta exists there yet.
    #[inline]
    pub fn write(
        &mut self,
        key: BrickKey,
        local: u16,
        material: MaterialId,
        now: u32,
        beneath: impl FnOnce() -> MaterialId,
    ) -> WriteEffect {
        if let Some(entries) = self.bricks.get_mut(&key) {
            match entries.binary_search_by_key(&local, |d| d.local) {
                Ok(i) => {
                    let d = &mut entries[i];
                    self.time_sum -= u64::from(d.written_at);
                    if material == d.beneath {
                        entries.remove(i);
                        self.len -= 1;
                        if entries.is_empty() {
                            self.capacity -= entries.capacity();
                            self.bricks.remove(&key);
                        }
                        return WriteEffect::Reverted;
                    }
                    d.material = material;
                    d.version = d.version.saturating_add(1);
                    d.written_at = now;
                    self.time_sum += u64::from(now);
                    WriteEffect::Overwritten
                }
                Err(i) => {
                    let under = beneath();
                    if material == under {
                        return WriteEffect::Unchanged;
                    }
                    let before = entries.capacity();
                    entries.insert(i, Delta::new(local, material, under, now));
                    self.capacity += entries.capacity() - before;
                    self.len += 1;
                    self.time_sum += u64::from(now);
                    WriteEffect::Inserted
                }
            }
        } else {
            let under = beneath();
            if material == under {
                return WriteEffect::Unchanged;
            }
            let mut entries = Vec::with_capacity(4);
            entries.push(Delta::new(local, material, under, now));
            self.capacity += entries.capacity();
            self.bricks.insert(key, entries);
            self.len += 1;
            self.time_sum += u64::from(now);
            WriteEffect::Inserted
        }
    }

    /// Applies a brick's share of a batch in one merge pass: `writes` are sorted by
    /// in-brick index, writes to one voxel in input order. Equivalent to calling
    /// [`write`](Self::write) for each in order, at `O(deltas in the brick +
    /// writes)` instead of a shift per insert. `beneath(local)` is asked once per
    /// voxel that has no delta yet. `scratch` is a reused buffer.
    pub fn merge_brick(
        &mut self,
        key: BrickKey,
        writes: &[BrickWrite],
        now: u32,
        mut beneath: impl FnMut(u16) -> MaterialId,
        scratch: &mut Vec<Delta>,
    ) -> MergeCounts {
        let mut counts = MergeCounts::default();
        let slot = self.bricks.entry(key).or_default();
        let existing = &*slot;
        let old_capacity = existing.capacity();
        let old_len = existing.len();
        let mut time_delta: i64 = 0;
        scratch.clear();
        scratch.reserve(existing.len() + writes.len());
        let (mut i, mut j) = (0, 0);
        while j < writes.len() {
            let local = writes[j].local;
            // Untouched deltas before this voxel, copied as one run.
            let run = existing[i..].partition_point(|d| d.local < local);
            scratch.extend_from_slice(&existing[i..i + run]);
            i += run;
            let mut state = if i < existing.len() && existing[i].local == local {
                time_delta -= i64::from(existing[i].written_at);
                i += 1;
                Some(existing[i - 1])
            } else {
                None
            };
            let mut under = None;
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
                        let b = *under.get_or_insert_with(|| beneath(local));
                        if m == b {
                            counts.unchanged += 1;
                        } else {
                            state = Some(Delta::new(local, m, b, now));
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
        // The merged deltas become the brick's Vec and the old one the next scratch
        // buffer: one copy, no allocation, unless the buffer is far larger than
        // the brick needs (then copy, so a small brick keeps a small Vec).
        if scratch.capacity() <= 2 * scratch.len().max(8) {
            std::mem::swap(slot, scratch);
        } else {
            slot.clear();
            slot.extend_from_slice(scratch);
        }
        self.len = self.len - old_len + slot.len();
        self.time_sum = (self.time_sum as i64 + time_delta) as u64;
        if slot.is_empty() {
            self.capacity -= old_capacity;
            self.bricks.remove(&key);
        } else {
            self.capacity = self.capacity - old_capacity + slot.capacity();
        }
        counts
    }

    /// Inserts or replaces a whole delta record (used when a cancelled job's frozen
    /// deltas return under the active layer).
    pub fn put(&mut self, key: BrickKey, delta: Delta) {
        let entries = self.bricks.entry(key).or_default();
        let before = entries.capacity();
        match entries.binary_search_by_key(&delta.local, |d| d.local) {
            Ok(i) => {
                self.time_sum -= u64::from(entries[i].written_at);
                entries[i] = delta;
            }
            Err(i) => {
                entries.insert(i, delta);
                self.len += 1;
            }
        }
        self.time_sum += u64::from(delta.written_at);
        self.capacity = self.capacity + entries.capacity() - before;
    }

    /// Removes and returns the delta at (`key`, `local`).
    pub fn take(&mut self, key: BrickKey, local: u16) -> Option<Delta> {
        let entries = self.bricks.get_mut(&key)?;
        let i = entries.binary_search_by_key(&local, |d| d.local).ok()?;
        let d = entries.remove(i);
        self.len -= 1;
        self.time_sum -= u64::from(d.written_at);
        if entries.is_empty() {
            self.capacity -= entries.capacity();
            self.bricks.remove(&key);
        }
        Some(d)
    }

    /// Moves out every brick whose key satisfies `pred` (whole `Vec`s, no copy).
    pub fn take_bricks(&mut self, mut pred: impl FnMut(BrickKey) -> bool) -> DeltaLayer {
        let mut out = DeltaLayer::default();
        for (key, entries) in self.bricks.extract_if(|k, _| pred(*k)) {
            out.bricks.insert(key, entries);
        }
        self.recount();
        out.recount();
        out
    }

    /// Moves out every delta that satisfies `pred`.
    pub fn take_deltas(&mut self, mut pred: impl FnMut(BrickKey, &Delta) -> bool) -> DeltaLayer {
        let mut out = DeltaLayer::default();
        for (key, entries) in self.bricks.iter_mut() {
            let taken: Vec<Delta> = entries.extract_if(.., |d| pred(*key, d)).collect();
            if !taken.is_empty() {
                out.bricks.insert(*key, taken);
            }
        }
        self.bricks.retain(|_, e| !e.is_empty());
        self.recount();
        out.recount();
        out
    }

    /// Restores `COUNTED` after a bulk move: `O(bricks + deltas)`.
    fn recount(&mut self) {
        self.len = 0;
        self.time_sum = 0;
        self.capacity = 0;
        for entries in self.bricks.values() {
            self.len += entries.len();
            self.capacity += entries.capacity();
            self.time_sum += entries.iter().map(|d| u64::from(d.written_at)).sum::<u64>();
        }
    }

    /// Checks `SORTED`, `NO_EMPTY` and `COUNTED` (debug builds; `O(deltas)`).
    #[cfg(any(test, debug_assertions))]
    pub fn check(&self) {
        let mut len = 0;
        let mut time_sum = 0;
        let mut capacity = 0;
        for entries in self.bricks.values() {
            debug_assert!(!entries.is_empty(), "NO_EMPTY: a brick key holds a delta");
            debug_assert!(
                entries.windows(2).all(|w| w[0].local < w[1].local),
                "SORTED: a brick's deltas are sorted without repeats"
            );
            len += entries.len();
            capacity += entries.capacity();
            time_sum += entries.iter().map(|d| u64::from(d.written_at)).sum::<u64>();
        }
        debug_assert_eq!(len, self.len, "COUNTED: len is the number of deltas");
        debug_assert_eq!(time_sum, self.time_sum, "COUNTED: time_sum sums write times");
        debug_assert_eq!(capacity, self.capacity, "COUNTED: capacity sums Vec capacities");
    }
}

impl Delta {
    fn new(local: u16, material: MaterialId, beneath: MaterialId, now: u32) -> Self {
        Self { local, material, beneath, version: 1, written_at: now }
    }
}

/// Brick coordinates of every brick overlapping `bounds` (world voxels), as a box.
pub(crate) fn brick_range(bounds: &crate::Aabb) -> crate::Aabb {
    crate::Aabb::new(bounds.min >> BRICK_LOG2 as i32, ((bounds.max - IVec3::ONE) >> BRICK_LOG2 as i32) + IVec3::ONE)
}

const _: () = assert!(BRICK_SIZE == 16, "BrickKey::position unpacks a 16³ index");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brick_keys_round_trip_including_negative_coordinates() {
        for p in [IVec3::new(-1, -17, 33), IVec3::new(1 << 19, -(1 << 20), 0), IVec3::ZERO] {
            let (key, local) = BrickKey::split(p);
            assert_eq!(key.position(local), p);
        }
    }

    #[test]
    fn writes_count_and_revert() {
        let mut layer = DeltaLayer::default();
        let (k, l) = BrickKey::split(IVec3::new(3, 4, 5));
        let base = || MaterialId(1);
        assert_eq!(layer.write(k, l, MaterialId(1), 0, base), WriteEffect::Unchanged);
        assert_eq!(layer.write(k, l, MaterialId(2), 5, base), WriteEffect::Inserted);
        assert_eq!(layer.write(k, l, MaterialId(3), 9, base), WriteEffect::Overwritten);
        assert_eq!(layer.get(k, l).map(|d| (d.version, d.written_at)), Some((2, 9)));
        assert_eq!(layer.len(), 1);
        assert_eq!(layer.write(k, l, MaterialId(1), 10, base), WriteEffect::Reverted);
        assert_eq!(layer.len(), 0);
        assert_eq!(layer.brick_count(), 0);
        layer.check();
    }
}
