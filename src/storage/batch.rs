//! [`DeltaStorage::batch_update`]: a batch applied exactly as if each update came
//! alone, by the path that suits its shape.
//!
//! - **Scattered** (a few writes per brick on average, as random edits): each
//!   write takes the single-update path, in input order. Grouping would cost more
//!   than it saves: most bricks get one write.
//! - **Dense** (many writes per brick, as an erosion front): the writes are
//!   grouped by brick (one probe of a small map per write, a counting scatter of
//!   the writes packed in integers), each brick's writes sorted by voxel and
//!   input order (a counting sort past [`COUNTING_SORT_MIN`]), and each brick's
//!   deltas merged in one pass, walking them forward with a galloping search,
//!   so a batch that fills a brick costs no more than one that sprinkles it.
//!
//! The shape is estimated before any write, from a bitmap of brick hashes (8 bits
//! per write): a write whose bit is already set probably repeats a brick. Either
//! path gives the same result; the estimate only picks the cheaper one.
//!
//! The buffers live in [`BatchScratch`] and are reused, sized by the largest
//! batch so far: a steady stream of batches does not allocate.

use super::{BatchOutcome, DeltaStorage, RejectedUpdate};
use crate::coords::BRICK_VOLUME;
use crate::coords::brick::BrickKey;
use crate::hash::{FastMap, fast_map};
use crate::material::{MaterialId, MaterialUpdate};
use crate::overlay::{MergeScratch, TaggedWrite};

/// Writes to one brick from which a batch sorts them by counting rather than
/// comparing: past this, `O(n log n)` compares cost more than a 4096-entry pass.
const COUNTING_SORT_MIN: usize = 256;

/// A batch whose writes land on at most this many per brick, on average, is
/// scattered: each write takes the single-update path. Up to here a write's
/// insert shifts a few deltas, less than a merge's copy of the brick.
const SCATTERED_WRITES_PER_BRICK: usize = 4;

/// A validated update of a batch.
#[derive(Clone, Copy, Debug)]
struct BatchItem {
    key: BrickKey,
    /// In-brick index.
    local: u16,
    material: MaterialId,
    /// Index of the item's brick among the batch's bricks.
    group: u32,
}

/// `batch_update`'s reused buffers.
#[derive(Clone, Debug)]
pub(super) struct BatchScratch {
    /// The batch's valid updates.
    items: Vec<BatchItem>,
    /// The shape estimate's bitmap of brick hashes.
    seen: Vec<u64>,
    /// Dense path: each brick's group, the groups' ends, the writes packed
    /// (see `pack`) and grouped by brick, one brick's writes, the merge's
    /// buffers, and a counting sort's counts.
    groups: FastMap<BrickKey, u32>,
    offsets: Vec<u32>,
    grouped: Vec<u64>,
    writes: Vec<TaggedWrite>,
    merge: MergeScratch,
    counts: Vec<u32>,
    /// One bit per item: the write changed its voxel (dense path).
    changed: Vec<u64>,
}

impl Default for BatchScratch {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            seen: Vec::new(),
            groups: fast_map(),
            offsets: Vec::new(),
            grouped: Vec::new(),
            writes: Vec::new(),
            merge: MergeScratch::default(),
            counts: Vec::new(),
            changed: Vec::new(),
        }
    }
}

impl BatchScratch {
    /// True when the items average at most [`SCATTERED_WRITES_PER_BRICK`] writes
    /// per brick. Counts writes whose brick hash (Fibonacci hashing into a bitmap
    /// of 8 bits per write) was already seen: a distinct brick sharing a bit is
    /// rare at that load and only tips the choice toward the dense path.
    fn scattered(&mut self) -> bool {
        let n = self.items.len();
        if n <= SCATTERED_WRITES_PER_BRICK {
            return true;
        }
        let log2 = (n * 8).next_power_of_two().trailing_zeros().max(6);
        self.seen.clear();
        self.seen.resize(1 << (log2 - 6), 0);
        let mut repeats = 0;
        for item in &self.items {
            let h = (item.key.to_bits().wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - log2)) as usize;
            let (word, bit) = (h >> 6, 1u64 << (h & 63));
            repeats += usize::from(self.seen[word] & bit != 0);
            self.seen[word] |= bit;
        }
        // Writes that found their bit clear: about one per brick.
        (n - repeats) * SCATTERED_WRITES_PER_BRICK >= n
    }

    /// Numbers each item's brick by first appearance (`item.group`), one probe of
    /// a small map per run of writes to one brick; returns the number of bricks.
    fn number_groups(&mut self) -> usize {
        self.groups.clear();
        let mut last: Option<(BrickKey, u32)> = None;
        for item in self.items.iter_mut() {
            // Runs of one brick, common in spatial input, skip the probe.
            item.group = match last {
                Some((key, g)) if key == item.key => g,
                _ => {
                    let next = self.groups.len() as u32;
                    let g = *self.groups.entry(item.key).or_insert(next);
                    last = Some((item.key, g));
                    g
                }
            };
        }
        self.groups.len()
    }
}

/// The crate's one counting sort: places each of `n` items, ordered by
/// `key(i) < buckets` and in input order within a key (stable), by calling
/// `place(i, position)`. Afterwards `counts[k]` is the end of bucket `k`.
/// `O(n + buckets)`; `counts` is a reused buffer.
fn counting_sort(
    n: usize,
    buckets: usize,
    key: impl Fn(usize) -> usize,
    counts: &mut Vec<u32>,
    mut place: impl FnMut(usize, usize),
) {
    counts.clear();
    counts.resize(buckets, 0);
    for i in 0..n {
        counts[key(i)] += 1;
    }
    // Counts to starts; placing then advances each to its bucket's end.
    let mut sum = 0;
    for c in counts.iter_mut() {
        (*c, sum) = (sum, sum + *c);
    }
    for i in 0..n {
        let cursor = &mut counts[key(i)];
        place(i, *cursor as usize);
        *cursor += 1;
    }
}

/// A write of a dense batch packed for sorting: in-brick index (12 bits) above
/// the input index (32 bits) above the material (16 bits), so integer order is
/// voxel order, then input order.
#[inline]
fn pack(item: &BatchItem, index: usize) -> u64 {
    debug_assert!(u32::try_from(index).is_ok(), "a batch holds fewer than 2^32 writes");
    u64::from(item.local) << 48 | (index as u64) << 16 | u64::from(item.material.0)
}

#[inline]
fn unpack_write(packed: u64) -> TaggedWrite {
    TaggedWrite { local: (packed >> 48) as u16, material: MaterialId(packed as u16), tag: (packed >> 16) as u32 }
}

#[inline]
fn unpack_index(packed: u64) -> usize {
    (packed >> 16) as u32 as usize
}

impl DeltaStorage {
    /// Applies updates in order. Bad positions are reported and counted; every
    /// valid update is applied (a bad one does not reject the batch).
    ///
    /// The result equals calling [`update`](Self::update) for each in order,
    /// change numbers included. A scattered batch takes that path; a dense one is
    /// grouped by brick, each group sorted by voxel, and each brick's deltas
    /// merged in one pass, so a batch that fills a brick costs no more than one
    /// that sprinkles it. The buffers are reused: a steady stream of batches does
    /// not allocate.
    ///
    /// ```
    /// use bevy_delta_overlay::{Aabb, BaseIndex, DeltaConfig, DeltaStorage, MaterialId, MaterialUpdate};
    /// use glam::IVec3;
    /// let base = BaseIndex::uniform(Aabb::new(IVec3::ZERO, IVec3::splat(32)), MaterialId(1))?;
    /// let mut world = DeltaStorage::new(base, DeltaConfig::default());
    /// let outcome = world.batch_update([
    ///     MaterialUpdate::new(IVec3::new(1, 2, 3), MaterialId(2)),
    ///     MaterialUpdate::new(IVec3::new(99, 0, 0), MaterialId(2)), // outside
    /// ]);
    /// assert_eq!((outcome.applied, outcome.rejected.len()), (1, 1));
    /// # Ok::<(), bevy_delta_overlay::VoxelError>(())
    /// ```
    pub fn batch_update(&mut self, updates: impl IntoIterator<Item = impl Into<MaterialUpdate>>) -> BatchOutcome {
        self.batch_apply(updates.into_iter().map(Into::into), true)
    }

    /// `batch_update`, numbering the changes in the feed when `number` is set.
    pub(super) fn batch_apply(
        &mut self,
        updates: impl IntoIterator<Item = MaterialUpdate>,
        number: bool,
    ) -> BatchOutcome {
        let mut scratch = std::mem::take(&mut self.batch);
        let outcome = self.validate(updates, &mut scratch.items);
        self.build_surface_tiles_of(scratch.items.iter().map(|item| item.key.position(item.local)));
        let origin = self.bounds().min;
        scratch.changed.clear();
        scratch.changed.resize(scratch.items.len().div_ceil(64), 0);
        if scratch.scattered() {
            for i in 0..scratch.items.len() {
                let item = scratch.items[i];
                if self.write(item.key, item.local, item.material).changed() {
                    scratch.changed[i / 64] |= 1 << (i % 64);
                }
                self.enforce_cap();
            }
        } else {
            self.apply_grouped(&mut scratch);
        }
        // Numbered in input order, whichever path applied them.
        for (i, item) in scratch.items.iter().enumerate() {
            if scratch.changed[i / 64] & (1 << (i % 64)) != 0 {
                let q = item.key.position(item.local);
                if number {
                    self.feed.push(origin + q, item.material);
                }
                self.note_surface(q);
            }
        }
        self.settle_surfaces();
        self.batch = scratch;
        self.debug_check();
        outcome
    }

    /// Checks every update's position: the valid ones go to `items`, addressed
    /// by brick; the others are counted and reported.
    fn validate(
        &mut self,
        updates: impl IntoIterator<Item = MaterialUpdate>,
        items: &mut Vec<BatchItem>,
    ) -> BatchOutcome {
        let mut outcome = BatchOutcome::default();
        items.clear();
        let origin = self.bounds().min;
        for update in updates {
            match self.base.check(update.position) {
                Ok(()) => {
                    let (key, local) = BrickKey::split(update.position - origin);
                    items.push(BatchItem { key, local, material: update.material, group: 0 });
                }
                Err(error) => {
                    self.counters.rejects += 1;
                    outcome.rejected.push(RejectedUpdate { update, error });
                }
            }
        }
        outcome.applied = items.len();
        self.counters.updates += items.len() as u64;
        outcome
    }

    /// The dense path: group by brick, sort each brick's writes by voxel and
    /// input order, and merge brick by brick, marking the writes that changed
    /// their voxel in `scratch.changed`. Counting sorts throughout: one pass to
    /// group the batch, one per brick holding many writes.
    fn apply_grouped(&mut self, scratch: &mut BatchScratch) {
        let bricks = scratch.number_groups();
        let BatchScratch { items, offsets, grouped, writes, merge, counts, changed, .. } = scratch;
        // Each write packed in one integer (see `pack`), scattered by group:
        // the groups then sort plain integers, with no load through an index.
        grouped.clear();
        grouped.resize(items.len(), 0);
        counting_sort(
            items.len(),
            bricks,
            |i| items[i].group as usize,
            offsets,
            |i, at| grouped[at] = pack(&items[i], i),
        );
        let mut mark = |tag: u32| changed[tag as usize / 64] |= 1 << (tag % 64);
        let mut start = 0;
        for &end in offsets.iter() {
            let group = &mut grouped[start..end as usize];
            start = end as usize;
            let key = items[unpack_index(group[0])].key;
            if let [only] = *group {
                // A lone write: a plain write, without the merge's buffers.
                let w = unpack_write(only);
                if self.write(key, w.local, w.material).changed() {
                    mark(w.tag);
                }
            } else {
                sort_brick_writes(group, writes, counts);
                // The base brick, fetched once for the whole group.
                let base = self.base.brick_local(key.min_corner());
                let done = self.overlay.merge_brick(key, writes, self.clock_ms, base, merge, &mut mark);
                self.counters.reverts += done.reverts;
                self.counters.unchanged += done.unchanged;
            }
            self.enforce_cap();
        }
    }
}

/// One brick's packed writes (in input order) into `writes`, sorted by voxel
/// and input order: by counting past [`COUNTING_SORT_MIN`] writes (stable, so
/// writes to one voxel keep their order), by comparing below it (packed writes
/// are unique, so an unstable sort is exact).
fn sort_brick_writes(group: &mut [u64], writes: &mut Vec<TaggedWrite>, counts: &mut Vec<u32>) {
    writes.clear();
    if group.len() >= COUNTING_SORT_MIN {
        writes.resize(group.len(), TaggedWrite { local: 0, material: MaterialId::AIR, tag: 0 });
        let local = |i: usize| usize::from(unpack_write(group[i]).local);
        counting_sort(group.len(), BRICK_VOLUME, local, counts, |i, at| writes[at] = unpack_write(group[i]));
    } else {
        group.sort_unstable();
        writes.extend(group.iter().map(|&p| unpack_write(p)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use glam::IVec3;

    fn shape(positions: impl IntoIterator<Item = IVec3>) -> bool {
        let mut scratch = BatchScratch::default();
        for p in positions {
            let (key, local) = BrickKey::split(p);
            scratch.items.push(BatchItem { key, local, material: MaterialId(1), group: 0 });
        }
        scratch.scattered()
    }

    #[test]
    fn the_counting_sort_is_stable() {
        let keys = [3usize, 1, 3, 0, 1, 3];
        let mut out = [usize::MAX; 6];
        let mut counts = Vec::new();
        counting_sort(keys.len(), 4, |i| keys[i], &mut counts, |i, at| out[at] = i);
        assert_eq!(out, [3, 1, 4, 0, 2, 5]);
        assert_eq!(counts, [1, 3, 3, 6]);
    }

    #[test]
    fn the_shape_estimate_tells_scattered_batches_from_dense_ones() {
        // One write per brick, then two: scattered.
        let lone = (0..1000).map(|i| IVec3::new(i % 40, i / 40, 0) * 16);
        assert!(shape(lone.clone()));
        assert!(shape(lone.clone().chain(lone.map(|p| p + IVec3::ONE))));
        // Eight writes per brick, interleaved across bricks, or one brick filled: dense.
        let eight = (0..8).flat_map(|k| (0..125).map(move |i| IVec3::new(i * 16, 0, 0) + IVec3::splat(k)));
        assert!(!shape(eight));
        assert!(!shape((0..1000).map(|i| IVec3::new(i & 15, (i >> 4) & 15, i >> 8))));
    }
}
