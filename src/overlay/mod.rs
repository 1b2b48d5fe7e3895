//! The delta overlay: sparse per-voxel edits kept above the base index, in
//! layers, like the memtables of an LSM tree.
//!
//! # Layers
//!
//! The **active** layer takes every write. Below it lies a short stack of
//! **sealed** layers (newest first), immutable and shared through `Arc`: sealing
//! the active layer is O(1) (a pointer move), which is how a background job gets
//! a consistent copy of every delta without a copy on the calling thread. A read
//! looks in the active layer, then in each sealed layer, then in the base: the
//! first layer holding the voxel wins. The stack is short: each merge of the
//! layers (see the storage) replaces every layer it read by one.
//!
//! # Layout of a layer
//!
//! Deltas are grouped by the `16³` brick that holds them: a hash map (ahash,
//! fixed seeds so runs are reproducible) from a packed brick key to the brick's
//! deltas sorted by in-brick index, and a 64-bit mask with one bit per `4³`
//! block that holds a delta. One delta is 16 bytes (its write time is a full
//! 64-bit millisecond clock). A brick's first three deltas sit inline in its
//! 72-byte map entry, so the many bricks that hold a few (scattered edits) cost
//! no heap block, and a read of them no second cache miss.
//!
//! | operation | cost |
//! | --- | --- |
//! | read | per layer until found: one hash probe, a mask test, a binary search in the brick (at most 12 steps) |
//! | write | a read of the active layer, plus the layers below and the base when the voxel has no active delta; an insert shifts the brick's tail |
//! | seal | O(1) |
//! | region of `b` bricks | `min(b, bricks with deltas)` probes per layer |
//!
//! # Invariants
//!
//! - `SORTED`: a layer's brick holds its deltas sorted by in-brick index, at most
//!   one per voxel.
//! - `NO_EMPTY`: a brick key is present in a layer only while it holds a delta.
//! - `MASKED`: the block of every delta has its bit set in its brick's mask
//!   (bits may outlive their deltas until the brick's next merge: the mask is a
//!   filter).
//! - `COUNTED`: a layer's `len`, write-time sum and heap capacity are those of
//!   its deltas.
//! - `ELIDED`: no delta holds the material beneath its own layer (its
//!   `beneath`): a write of the value beneath removes the delta instead.

mod delta;
mod layer;

pub(crate) use delta::Delta;
pub(crate) use layer::{Layer, MergeCounts, TaggedWrite, WriteEffect};

use crate::base::{BrickView, Region};
use crate::coords::Aabb;
use crate::coords::brick::{BrickKey, brick_range};
use crate::material::MaterialId;
use delta::lookup;
use glam::IVec3;
use smallvec::SmallVec;
use std::sync::Arc;

/// Buffers a brick merge reuses: the merged deltas, and the value beneath the
/// active layer at each write.
#[derive(Clone, Debug, Default)]
pub(crate) struct MergeScratch {
    merged: Vec<Delta>,
    under: Vec<MaterialId>,
}

/// A shared active layer past this many deltas is sealed rather than copied
/// when it is written: a reader that takes a snapshot every frame costs at
/// most a copy of this size a frame, never an unbounded one.
const COPY_LIMIT: usize = 1 << 14;

/// The overlay: the active layer and the sealed layers below it.
///
/// The active layer is shared copy-on-write: a snapshot holds it by `Arc`,
/// and the next write copies it (below [`COPY_LIMIT`] deltas) or seals it
/// (above), so snapshots never pile up sealed layers.
#[derive(Clone, Debug, Default)]
pub(crate) struct Overlay {
    active: Arc<Layer>,
    /// Newest first.
    sealed: Vec<Arc<Layer>>,
}

/// One brick's deltas in every layer that holds the brick, top layer first:
/// what a read of the brick needs.
#[derive(Clone, Debug, Default)]
pub(crate) struct BrickStack<'a> {
    layers: SmallVec<[(&'a [Delta], u64); 3]>,
}

impl<'a> BrickStack<'a> {
    /// Brick `key` in `layers` (top first).
    pub fn of(layers: &[&'a Layer], key: BrickKey) -> Self {
        BrickStack { layers: layers.iter().filter_map(|l| l.brick(key)).collect() }
    }

    /// The delta a read of voxel `local` sees: the top layer's.
    #[inline]
    pub fn get(&self, local: u16) -> Option<&'a Delta> {
        self.layers.iter().find_map(|&(deltas, mask)| lookup(deltas, mask, local))
    }

    /// True when no layer holds the brick.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// Every voxel's visible delta (the top layer's), by voxel: a merge of the
    /// layers' sorted slices.
    pub fn visible(&self) -> impl Iterator<Item = &'a Delta> + '_ {
        let mut heads: SmallVec<[usize; 3]> = SmallVec::from_elem(0, self.layers.len());
        std::iter::from_fn(move || {
            let next =
                self.layers.iter().zip(heads.iter()).filter_map(|(&(d, _), &h)| d.get(h).map(|x| x.local)).min()?;
            let mut top = None;
            for ((d, _), h) in self.layers.iter().zip(heads.iter_mut()) {
                if let Some(x) = d.get(*h).filter(|x| x.local == next) {
                    top.get_or_insert(x);
                    *h += 1;
                }
            }
            top
        })
    }
}

impl Overlay {
    /// Number of deltas in every layer: a voxel written both before and after
    /// the last seal holds one in each until the layers are merged.
    #[inline]
    pub fn len(&self) -> usize {
        self.active.len() + self.sealed.iter().map(|l| l.len()).sum::<usize>()
    }

    /// The sealed layers, newest first.
    pub fn sealed(&self) -> &[Arc<Layer>] {
        &self.sealed
    }

    /// Every layer, top first.
    pub fn layers(&self) -> impl Iterator<Item = &Layer> {
        std::iter::once(&*self.active).chain(self.sealed.iter().map(|l| &**l))
    }

    /// Every layer, top first, shared: what a snapshot holds. O(layers).
    pub fn share(&self) -> Vec<Arc<Layer>> {
        std::iter::once(&self.active).chain(&self.sealed).filter(|l| l.len() > 0).cloned().collect()
    }

    /// Before a write: a large active layer a snapshot shares is sealed (an
    /// empty one takes the writes); a small one is copied by the write
    /// (`Arc::make_mut`). Called before the layers beneath are read: sealing
    /// moves the active layer beneath.
    #[inline]
    fn prepare_write(&mut self) {
        if Arc::strong_count(&self.active) > 1 && self.active.len() > COPY_LIMIT {
            self.seal();
        }
    }

    /// Heap bytes of every layer (shared layers counted once per overlay).
    pub fn bytes(&self) -> usize {
        self.layers().map(Layer::bytes).sum()
    }

    /// Mean write time (storage clock, ms) of every delta, if any.
    pub fn mean_written_at(&self) -> Option<u64> {
        let len = self.len();
        (len > 0).then(|| (self.layers().map(Layer::time_sum).sum::<u128>() / len as u128) as u64)
    }

    /// The delta a read of (`key`, `local`) sees.
    #[inline]
    pub fn get(&self, key: BrickKey, local: u16) -> Option<&Delta> {
        if let Some(d) = self.active.get(key, local) {
            return Some(d);
        }
        self.sealed.iter().find_map(|l| l.get(key, local))
    }

    /// Brick `key` in every layer.
    #[inline]
    pub fn stack(&self, key: BrickKey) -> BrickStack<'_> {
        BrickStack { layers: self.layers().filter_map(|l| l.brick(key)).collect() }
    }

    /// Writes `material` at (`key`, `local`) in the active layer. The layers below
    /// and then `base` are asked for the material beneath only when the voxel has
    /// no active delta.
    #[inline]
    pub fn write(
        &mut self,
        key: BrickKey,
        local: u16,
        material: MaterialId,
        now: u64,
        base: impl FnOnce() -> MaterialId,
    ) -> WriteEffect {
        self.prepare_write();
        let sealed = &self.sealed;
        Arc::make_mut(&mut self.active).write(key, local, material, now, || {
            sealed.iter().find_map(|l| l.get(key, local)).map_or_else(base, |d| d.material)
        })
    }

    /// Merges a brick's share of a batch into the active layer (see
    /// [`Layer::merge_brick`]); `base` is the base's brick.
    pub fn merge_brick(
        &mut self,
        key: BrickKey,
        writes: &[TaggedWrite],
        now: u64,
        base: BrickView<'_>,
        scratch: &mut MergeScratch,
        changed: &mut impl FnMut(u32),
    ) -> MergeCounts {
        self.prepare_write();
        let MergeScratch { merged, under } = scratch;
        // The value beneath the active layer at every write, gathered first in a
        // loop of independent loads: the base's voxels are mostly cache misses,
        // and gathered they overlap instead of waiting on each other inside the
        // merge. Voxels that turn out to hold an active delta waste one read.
        let below = BrickStack { layers: self.sealed.iter().filter_map(|l| l.brick(key)).collect() };
        under.clear();
        if below.is_empty() {
            under.extend(writes.iter().map(|w| base.get(usize::from(w.local))));
        } else {
            under.extend(
                writes
                    .iter()
                    .map(|w| below.get(w.local).map_or_else(|| base.get(usize::from(w.local)), |d| d.material)),
            );
        }
        Arc::make_mut(&mut self.active).merge_brick(key, writes, now, under, merged, changed)
    }

    /// Seals the active layer: it joins the sealed layers, immutable, and a new
    /// active layer with the same room takes the writes. O(1) but for the new
    /// map's allocation. Nothing happens when the active layer is empty.
    pub fn seal(&mut self) {
        if self.active.len() == 0 {
            return;
        }
        let fresh = Layer::with_capacity(self.active.brick_capacity());
        self.sealed.insert(0, std::mem::replace(&mut self.active, Arc::new(fresh)));
    }

    /// Replaces the `n` oldest sealed layers by `merged` (dropped when empty) and
    /// returns them. `merged` must read as the `n` layers read.
    pub fn replace_oldest(&mut self, n: usize, merged: Layer) -> Vec<Arc<Layer>> {
        let old = self.sealed.split_off(self.sealed.len() - n);
        if merged.len() > 0 {
            self.sealed.push(Arc::new(merged));
        }
        old
    }

    /// Makes `layer` the only layer: every other is dropped. `layer` must read as
    /// the whole overlay reads, relative to the base.
    pub fn reset(&mut self, layer: Layer) {
        self.sealed.clear();
        self.active = Arc::new(layer);
    }

    /// Calls `f` for every brick of the local box `bounds` (non-empty, in the
    /// world) that some layer holds, with its stack (see [`bricks_in`]).
    pub fn for_each_brick_in(&self, bounds: &Aabb, f: impl FnMut(BrickKey, &BrickStack<'_>)) {
        if self.len() > 0 {
            let layers: SmallVec<[&Layer; 4]> = self.layers().collect();
            bricks_in(&layers, bounds, f);
        }
    }

    /// Checks every layer's invariants (debug builds; `O(deltas)`, so only for
    /// overlays small enough that tests check them whole).
    pub fn check(&self) {
        #[cfg(debug_assertions)]
        if self.len() <= 1 << 14 {
            for layer in self.layers() {
                layer.check();
            }
        }
    }
}

/// Calls `f` for every brick of the local box `bounds` (non-empty, in the
/// world) that some of `layers` (top first) holds, with its stack, probing the
/// box's bricks or scanning the layers, whichever is fewer.
pub(crate) fn bricks_in(layers: &[&Layer], bounds: &Aabb, mut f: impl FnMut(BrickKey, &BrickStack<'_>)) {
    let range = brick_range(bounds);
    let bricks: usize = layers.iter().map(|l| l.brick_count()).sum();
    if bricks == 0 {
        return;
    }
    if range.volume() <= bricks as u64 {
        for z in range.min.z..range.max.z {
            for y in range.min.y..range.max.y {
                for x in range.min.x..range.max.x {
                    let key = BrickKey::of_brick(IVec3::new(x, y, z));
                    let stack = BrickStack::of(layers, key);
                    if !stack.is_empty() {
                        f(key, &stack);
                    }
                }
            }
        }
    } else if let [only] = layers {
        for (key, deltas) in only.iter() {
            if range.contains(key.brick()) {
                let mask = only.brick(key).map_or(0, |b| b.1);
                f(key, &BrickStack { layers: std::iter::once((deltas, mask)).collect() });
            }
        }
    } else {
        let mut keys: Vec<BrickKey> =
            layers.iter().flat_map(|l| l.iter().map(|(k, _)| k)).filter(|k| range.contains(k.brick())).collect();
        keys.sort_unstable();
        keys.dedup();
        for key in keys {
            f(key, &BrickStack::of(layers, key));
        }
    }
}

/// Writes the visible delta of every voxel of the world box `bounds` (inside
/// the world of corner `origin`) that `layers` (top first) hold into `region`
/// (a level-0 read of `bounds`).
pub(crate) fn apply_to_region(layers: &[&Layer], origin: IVec3, bounds: Aabb, region: &mut Region) {
    let local = Aabb::new(bounds.min - origin, bounds.max - origin);
    bricks_in(layers, &local, |key, stack| {
        for d in stack.visible() {
            if let Some(i) = region.index_of(origin + key.position(d.local)) {
                region.as_mut_slice()[i] = d.material;
            }
        }
    });
}
