//! Snapshots and digests: the world as of a sequence number, overlay applied,
//! as a stream of nodes any thread can read.
//!
//! A file is the world at a sequence number plus the changes after it; so is a
//! network peer joining. [`WorldSnapshot`] is that world: taken in O(layers)
//! (the base tree and every layer, the active one included, are shared by
//! `Arc`; the storage's next write copies the active layer while a snapshot
//! holds it, or seals it past 16K deltas), then read on any thread: regions,
//! the deltas in a box, or node by node (uniform nodes at any level where no
//! delta falls, bricks with their deltas applied elsewhere).

use super::DeltaStorage;
use crate::base::{BaseSnapshot, BrickView, Region, for_each_brick_in};
use crate::coords::Aabb;
use crate::coords::brick::{BRICK_LOG2, BRICK_VOLUME, BrickKey, Clip};
use crate::error::VoxelError;
use crate::hash::{FastMap, fast_map};
use crate::material::MaterialId;
use crate::overlay::{BrickStack, Layer, apply_to_region};
use glam::IVec3;
use std::sync::Arc;

/// A node of a world, as [`WorldSnapshot::for_each_node`] gives them: the cube
/// of `2^level` voxels per axis at `min`, and what it holds.
#[derive(Clone, Copy, Debug)]
pub struct SnapshotNode<'a> {
    /// log2 of the cube's edge: [`BRICK_LOG2`](crate::coords::BRICK_LOG2) for a
    /// brick, more for a uniform node.
    pub level: u32,
    /// The cube's smallest corner, in world coordinates.
    pub min: IVec3,
    /// Its content: a material for every in-world voxel, or a brick's voxels
    /// (those outside the world, on a clipped face, are padding).
    pub content: BrickView<'a>,
}

/// The world of a [`DeltaStorage`] as of one sequence number, overlay applied,
/// readable on any thread while the storage goes on. Taken by
/// [`DeltaStorage::snapshot`] in O(layers).
///
/// ```
/// use bevy_delta_overlay::{Aabb, BaseIndex, DeltaConfig, DeltaStorage, MaterialId};
/// use glam::IVec3;
/// let base = BaseIndex::uniform(Aabb::new(IVec3::ZERO, IVec3::splat(64)), MaterialId(1))?;
/// let mut world = DeltaStorage::new(base, DeltaConfig::default());
/// world.update(IVec3::new(1, 2, 3), MaterialId(2))?;
/// let snapshot = world.snapshot();
/// world.update(IVec3::new(1, 2, 3), MaterialId(3))?; // after the snapshot
/// let mut bricks = 0;
/// snapshot.for_each_node(|node| {
///     if let Some(voxels) = node.content.voxels() {
///         bricks += 1;
///         assert_eq!(voxels[1 + 2 * 16 + 3 * 256], MaterialId(2));
///     }
/// });
/// assert_eq!((snapshot.sequence(), bricks), (1, 1));
/// assert_eq!(snapshot.digest(), {
///     let mut same = DeltaStorage::new(BaseIndex::uniform(world.bounds(), MaterialId(1))?, DeltaConfig::default());
///     same.update(IVec3::new(1, 2, 3), MaterialId(2))?;
///     same.digest()
/// });
/// # Ok::<(), bevy_delta_overlay::VoxelError>(())
/// ```
#[derive(Clone, Debug)]
pub struct WorldSnapshot {
    bounds: Aabb,
    sequence: u64,
    base: BaseSnapshot,
    /// Top first.
    layers: Vec<Arc<Layer>>,
}

impl DeltaStorage {
    /// The world as of now, for reading on another thread: O(layers). The
    /// layers and the base tree are shared by `Arc`; the next write to the
    /// active layer copies it (or, past 16K deltas, seals it), so a snapshot
    /// taken every frame adds no layer and holds no copy beyond its own life.
    pub fn snapshot(&self) -> WorldSnapshot {
        WorldSnapshot {
            bounds: self.bounds(),
            sequence: self.sequence(),
            base: self.base.snapshot(),
            layers: self.overlay.share(),
        }
    }

    /// A hash of every voxel's material in the world, and of its bounds: equal
    /// for equal worlds, however they were built (generated, loaded, replayed,
    /// consolidated or not). Costs a read of every dense brick and of every
    /// brick position in uniform nodes, `O(bricks in the world)`.
    pub fn digest(&self) -> u64 {
        let layers: Vec<&Layer> = self.overlay.layers().collect();
        digest(self.bounds(), &self.base.snapshot(), &layers)
    }
}

impl WorldSnapshot {
    /// The sequence number of the last change the snapshot holds.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// The world's bounds.
    pub fn bounds(&self) -> Aabb {
        self.bounds
    }

    /// Calls `f` for every node of the world, in Morton order of their corners:
    /// uniform nodes where no delta falls (at any level), base bricks where no
    /// delta falls ([`BrickView::Brick`], pyramid included), and every other
    /// brick with its deltas applied ([`BrickView::Voxels`]). Costs one visit
    /// per node, plus a 8 KiB copy per brick holding deltas.
    pub fn for_each_node(&self, f: impl FnMut(SnapshotNode<'_>)) {
        let layers: Vec<&Layer> = self.layers.iter().map(|l| &**l).collect();
        for_each_node(self.bounds, &self.base, &layers, f);
    }

    /// Reads every voxel of `bounds` into `out`, exactly (deltas applied), as
    /// [`DeltaStorage::read_region`] does; on any thread.
    ///
    /// # Errors
    /// As [`BaseIndex::region`](crate::BaseIndex::region) at level 0.
    pub fn read_region(&self, bounds: Aabb, out: &mut Region) -> Result<(), VoxelError> {
        self.base.read_region(self.bounds, bounds, 0, out)?;
        let layers: Vec<&Layer> = self.layers.iter().map(|l| &**l).collect();
        apply_to_region(&layers, self.bounds.min, bounds, out);
        Ok(())
    }

    /// Every delta inside `bounds` (clipped to the world) that the snapshot's
    /// overlay holds (voxels written and not yet consolidated when it was
    /// taken), as [`DeltaStorage::deltas_in`] lists them; on any thread.
    pub fn deltas_in(&self, bounds: Aabb) -> Vec<super::DeltaEntry> {
        let clipped = bounds.intersection(&self.bounds);
        let mut out = Vec::new();
        if clipped.is_empty() {
            return out;
        }
        let local = Aabb::new(clipped.min - self.bounds.min, clipped.max - self.bounds.min);
        let layers: smallvec::SmallVec<[&Layer; 4]> = self.layers().collect();
        crate::overlay::bricks_in(&layers, &local, |key, stack| {
            for d in stack.visible() {
                let position = self.bounds.min + key.position(d.local);
                if clipped.contains(position) {
                    out.push(super::DeltaEntry::new(position, d));
                }
            }
        });
        out
    }

    /// The overlay's layers, top first.
    pub(crate) fn layers(&self) -> impl Iterator<Item = &Layer> {
        self.layers.iter().map(|l| &**l)
    }

    /// The base's content of the brick at local brick coordinates `b`.
    pub(crate) fn base_brick(&self, b: IVec3) -> crate::base::BrickContent {
        self.base.brick(b)
    }

    /// The world's digest, as [`DeltaStorage::digest`] gives it.
    pub fn digest(&self) -> u64 {
        let layers: Vec<&Layer> = self.layers.iter().map(|l| &**l).collect();
        digest(self.bounds, &self.base, &layers)
    }
}

/// Walks the world of `base` under `layers` (top first): see
/// [`WorldSnapshot::for_each_node`].
fn for_each_node(bounds: Aabb, base: &BaseSnapshot, layers: &[&Layer], mut f: impl FnMut(SnapshotNode<'_>)) {
    let mut codes: Vec<u64> = layers.iter().flat_map(|l| l.iter().map(|(k, _)| k.code())).collect();
    codes.sort_unstable();
    codes.dedup();
    let size = base.size();
    let mut buffer = Box::new([MaterialId::AIR; BRICK_VOLUME]);
    let mut brick = |min: IVec3, content: BrickView<'_>, f: &mut dyn FnMut(SnapshotNode<'_>)| {
        let stack = BrickStack::of(layers, BrickKey::of_brick(min >> BRICK_LOG2 as i32));
        let min_world = bounds.min + min;
        if stack.is_empty() {
            return f(SnapshotNode { level: BRICK_LOG2, min: min_world, content });
        }
        match content.voxels() {
            Some(v) => buffer.copy_from_slice(v),
            None => buffer.fill(content.get(0)),
        }
        for d in stack.visible() {
            buffer[usize::from(d.local)] = d.material;
        }
        f(SnapshotNode { level: BRICK_LOG2, min: min_world, content: BrickView::Voxels(&buffer) });
    };
    base.for_each_node(|level, min, content| {
        if level == BRICK_LOG2 {
            return brick(min, content, &mut f);
        }
        // A uniform node: whole unless a delta falls in its Morton range of bricks.
        let first = BrickKey::of_brick(min >> BRICK_LOG2 as i32).code();
        let end = first + (1u64 << (3 * (level - BRICK_LOG2)));
        let i = codes.partition_point(|&c| c < first);
        if codes.get(i).is_none_or(|&c| c >= end) {
            f(SnapshotNode { level, min: bounds.min + min, content });
        } else {
            for_each_brick_in(level, min, size, &mut |b| brick(b, content, &mut f));
        }
    });
}

/// The digest of the world of `base` under `layers`: a hash of each brick's
/// in-world voxels (little-endian `u16`, x fastest), streamed in Morton order of
/// the bricks, then the bounds.
fn digest(bounds: Aabb, base: &BaseSnapshot, layers: &[&Layer]) -> u64 {
    use xxhash_rust::xxh3::{Xxh3, xxh3_64};
    let size = bounds.size();
    let mut out = Xxh3::new();
    let mut bytes = vec![0u8; 2 * BRICK_VOLUME];
    // The in-world voxels of a brick, as little-endian bytes, rows of x.
    let mut hash_voxels = |voxels: &[MaterialId; BRICK_VOLUME], clip: Clip| -> u64 {
        let e = clip.extent();
        let mut n = 0;
        for z in 0..e.z as usize {
            for y in 0..e.y as usize {
                let row = y << 4 | z << 8;
                for v in &voxels[row..row + e.x as usize] {
                    bytes[n..n + 2].copy_from_slice(&v.0.to_le_bytes());
                    n += 2;
                }
            }
        }
        xxh3_64(&bytes[..n])
    };
    let mut uniform: FastMap<(MaterialId, IVec3), u64> = fast_map();
    for_each_node(bounds, base, layers, |node| match node.content.voxels() {
        None => {
            let material = node.content.get(0);
            for_each_brick_in(node.level, node.min - bounds.min, size, &mut |b| {
                let clip = Clip::of(b, size);
                let h = *uniform
                    .entry((material, clip.extent()))
                    .or_insert_with(|| hash_voxels(&[material; BRICK_VOLUME], clip));
                out.update(&h.to_le_bytes());
            });
        }
        Some(voxels) => {
            let h = hash_voxels(voxels, Clip::of(node.min - bounds.min, size));
            out.update(&h.to_le_bytes());
        }
    });
    for v in [bounds.min, bounds.max] {
        for c in v.to_array() {
            out.update(&c.to_le_bytes());
        }
    }
    out.digest()
}
