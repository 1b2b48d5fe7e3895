//! The base index: a sparse octree whose leaves are dense bricks.
//!
//! # Structure
//!
//! The tree spans the world from its minimum corner (the *origin*) with the
//! fewest levels whose root cube holds the largest extent. Local coordinates are
//! world positions minus the origin. A node at level `L` covers `2^L` voxels per
//! axis and is one of:
//!
//! - **uniform**: one material for the whole cube, at any level (OpenVDB's tile);
//! - **branch**: eight children of half the edge, plus the cached LOD value;
//! - **leaf brick**: a dense `16³` array ([`Brick`]), only at level
//!   [`BRICK_LOG2`].
//!
//! Branches and bricks are shared copy-on-write through `Arc`, so a snapshot of
//! the whole tree is a pointer copy. A world of one material costs one node,
//! whatever its size.
//!
//! Any non-empty box inside the Morton range is a world: bricks sit on a grid
//! from the origin, and a world whose size is not a multiple of 16 has *clipped*
//! bricks along its largest faces, whose out-of-world voxels are padding.
//!
//! # Invariants
//!
//! - `LEVELS`: bricks sit at level [`BRICK_LOG2`] only; branches above it only.
//! - `PRUNED`: no branch has all its in-world children uniform with one material,
//!   and no brick holds a single material in its in-world voxels; such nodes
//!   collapse to uniform.
//! - `PYRAMID`: each brick's LOD pyramid is the majority rule over its in-world
//!   voxels, each branch's LOD value the majority of its in-world children's.
//! - `BOUNDED`: voxels outside the bounds are never read; their stored value is
//!   unspecified (pruning treats them as wildcards).
//!
//! [`BaseIndex::apply_batch`] and the crate's brick installs may split uniform
//! nodes and restore all of them on the way out; debug builds check them after
//! every call.
//!
//! # Level of detail
//!
//! Level `L` reads cells of `2^L` voxels per axis, aligned to the origin. A cell's
//! value is the majority of its in-world children at `L - 1`, ties broken to the
//! smallest id. Levels 2 to 4 are stored in each brick, level 1 is computed from 8
//! voxels when read, levels above 4 are cached in the branches.
//!
//! # Costs
//!
//! | operation | cost |
//! | --- | --- |
//! | `get`, `get_lod` | one brick-table index, or one descent: `root_level - 4` steps at most |
//! | `apply_batch(n)` | `O(n log n)` sort by brick, then each touched node once |
//! | `region` | each overlapping node once; row copies in bricks, fills for uniform nodes |
//! | snapshot of the tree | an `Arc` clone |

mod brick;
mod build;
#[cfg(debug_assertions)]
mod check;
mod content;
mod node;
mod region;
mod snapshot;
mod stats;
mod table;

pub use brick::{Brick, majority};
pub use content::{BrickContent, BrickView};
pub use region::Region;
pub use stats::BaseStats;

#[cfg(feature = "codec")]
pub(crate) use brick::PYRAMID_CELLS;
pub(crate) use brick::{BrickWrite, rebuild};
pub(crate) use node::for_each_brick_in;
pub(crate) use snapshot::BaseSnapshot;

use crate::coords::Aabb;
use crate::coords::brick::{BRICK_LOG2, BRICK_MASK, BrickKey, Clip, local_index};
use crate::error::VoxelError;
use crate::material::{MaterialId, MaterialUpdate};
use glam::IVec3;
use node::{BrickAddressed, Node, edit};
use table::BrickTable;

/// The hybrid octree + brick store of every voxel's material. See the
/// [module docs](self) for structure, invariants and costs.
///
/// ```
/// use bevy_delta_overlay::{Aabb, BaseIndex, MaterialId, MaterialUpdate};
/// use glam::IVec3;
/// let bounds = Aabb::new(IVec3::new(-40, 0, 0), IVec3::new(60, 32, 70));
/// let mut base = BaseIndex::uniform(bounds, MaterialId(1))?;
/// assert_eq!(base.stats().nodes(), 1);
/// base.apply_batch(&[MaterialUpdate::new(IVec3::new(3, 4, 5), MaterialId(2))])?;
/// assert_eq!(base.get(IVec3::new(3, 4, 5))?, MaterialId(2));
/// base.apply_batch(&[MaterialUpdate::new(IVec3::new(3, 4, 5), MaterialId(1))])?;
/// assert_eq!(base.stats().nodes(), 1, "pruned back to one uniform node");
/// assert!(base.get(IVec3::new(60, 0, 0)).is_err(), "outside the world");
/// # Ok::<(), bevy_delta_overlay::VoxelError>(())
/// ```
#[derive(Clone, Debug)]
pub struct BaseIndex {
    bounds: Aabb,
    root_level: u32,
    root: Node,
    /// Brick-level mirror of the tree for point reads: `None` while the root is
    /// uniform or when the bounds hold too many bricks.
    table: Option<BrickTable>,
    /// Reused by `apply_batch` so repeated batches do not allocate.
    scratch: Vec<AddressedWrite>,
}

/// One write, addressed for the tree walk by its brick's Morton code.
#[derive(Clone, Copy, Debug)]
struct AddressedWrite {
    brick_code: u64,
    write: BrickWrite,
}

impl BrickAddressed for AddressedWrite {
    fn brick_code(&self) -> u64 {
        self.brick_code
    }
}

/// A brick replacement, addressed for the tree walk. Whoever built the brick
/// also made `mirror`, a second reference to it for the brick table, and read
/// its LOD value: the installing thread moves both in and touches nothing of a
/// brick another thread just wrote.
#[derive(Clone, Debug)]
pub(crate) struct BrickInstall {
    pub brick_code: u64,
    pub content: BrickContent,
    pub mirror: BrickContent,
    pub lod: MaterialId,
}

impl BrickInstall {
    /// An install of `content` at brick `code`, with its mirror reference.
    pub fn new(brick_code: u64, content: BrickContent) -> Self {
        let lod = match &content {
            BrickContent::Uniform(m) => *m,
            BrickContent::Dense(b) => b.coarsest(),
        };
        Self { brick_code, mirror: content.clone(), content, lod }
    }
}

impl BrickAddressed for BrickInstall {
    fn brick_code(&self) -> u64 {
        self.brick_code
    }
}

#[cfg(feature = "codec")]
/// A node of a stored or transmitted world: its level, its local minimum
/// corner, and its content (a uniform node at any level, or a brick's voxels
/// and pyramid as stored).
#[derive(Clone, Debug)]
pub(crate) struct StoredNode {
    pub level: u32,
    pub min: IVec3,
    pub content: BrickContent,
}

impl BaseIndex {
    /// The world's bounds.
    pub fn bounds(&self) -> Aabb {
        self.bounds
    }

    /// The coarsest level of detail: the root's level.
    pub fn max_lod(&self) -> u8 {
        self.root_level as u8
    }

    /// The material at `p`.
    ///
    /// # Errors
    /// [`VoxelError::OutOfBounds`] when `p` is outside the world.
    #[inline]
    pub fn get(&self, p: IVec3) -> Result<MaterialId, VoxelError> {
        self.check(p)?;
        Ok(self.get_local(p - self.bounds.min))
    }

    /// Bounds check shared by every position-taking call.
    #[inline]
    pub(crate) fn check(&self, p: IVec3) -> Result<(), VoxelError> {
        if self.bounds.contains(p) { Ok(()) } else { Err(VoxelError::OutOfBounds { position: p, bounds: self.bounds }) }
    }

    /// The material at local position `q`, which the caller has checked is in
    /// the world.
    #[inline]
    pub(crate) fn get_local(&self, q: IVec3) -> MaterialId {
        self.brick_local(q).get(local_index(q))
    }

    /// The brick-level node holding local position `q` (in the world), borrowed:
    /// what a [`Reader`](crate::storage::Reader) caches.
    #[inline]
    pub(crate) fn brick_local(&self, q: IVec3) -> BrickView<'_> {
        if let Some(table) = &self.table {
            return table.get(q);
        }
        self.root.descend(self.root_level, q).0.view()
    }

    /// The value of the level-`lod` cell holding `p`; `lod == 0` is [`get`](Self::get).
    ///
    /// # Errors
    /// [`VoxelError::OutOfBounds`] for `p`, [`VoxelError::LodOutOfRange`] when `lod`
    /// exceeds [`max_lod`](Self::max_lod).
    pub fn get_lod(&self, p: IVec3, lod: u8) -> Result<MaterialId, VoxelError> {
        self.check(p)?;
        if lod > self.max_lod() {
            return Err(VoxelError::LodOutOfRange { lod, max: self.max_lod() });
        }
        let lod = u32::from(lod);
        let q = p - self.bounds.min;
        let mut node = &self.root;
        let mut level = self.root_level;
        loop {
            if level == lod {
                return Ok(node.lod_value());
            }
            match node {
                Node::Uniform(m) => return Ok(*m),
                Node::Leaf(b) => {
                    let clip = Clip::of(q & IVec3::splat(!BRICK_MASK), self.bounds.size());
                    return Ok(b.lod_clipped(q & IVec3::splat(BRICK_MASK), lod, clip));
                }
                Node::Branch(b) => {
                    node = &b.children[crate::coords::brick::child_index(q, level)];
                    level -= 1;
                }
            }
        }
    }

    /// An O(1) snapshot of the tree for reading on another thread.
    pub(crate) fn snapshot(&self) -> BaseSnapshot {
        BaseSnapshot::new(self.root.clone(), self.root_level, self.bounds.size())
    }

    /// Writes a batch of voxels (`MaterialUpdate`s, or `(position, material)`
    /// pairs), in order (a later write to the same voxel wins).
    ///
    /// Every position is validated first: one bad position rejects the whole batch
    /// and nothing is applied. Writes are grouped by brick in Morton order, uniform
    /// nodes split only where a write differs, and bricks or subtrees left holding a
    /// single material collapse back to uniform nodes.
    ///
    /// # Errors
    /// [`VoxelError::OutOfBounds`] for the first position outside the world.
    pub fn apply_batch<W: Copy + Into<MaterialUpdate>>(&mut self, writes: &[W]) -> Result<(), VoxelError> {
        for &w in writes {
            self.check(w.into().position)?;
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let origin = self.bounds.min;
        scratch.extend(writes.iter().map(|&w| {
            let w: MaterialUpdate = w.into();
            let (key, local) = BrickKey::split(w.position - origin);
            AddressedWrite { brick_code: key.code(), write: BrickWrite { local, material: w.material } }
        }));
        // Stable: writes to one voxel keep their order, so the last one wins.
        scratch.sort_by_key(|w| w.brick_code);
        self.write_sorted(&mut scratch);
        self.scratch = scratch;
        self.debug_check();
        Ok(())
    }

    /// Writes whole groups of voxels, brick by brick, in place where a brick is not
    /// shared: `bricks` holds each brick's key (in the world, each brick once) and
    /// the range of its writes in `writes`. A synchronous install's path: no
    /// snapshot and no sort of the writes, only of the bricks.
    pub(crate) fn write_bricks(&mut self, bricks: &[(BrickKey, std::ops::Range<usize>)], writes: &[BrickWrite]) {
        let mut order: Vec<(u64, usize)> = bricks.iter().enumerate().map(|(i, b)| (b.0.code(), i)).collect();
        order.sort_unstable();
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        for (brick_code, i) in order {
            scratch.extend(writes[bricks[i].1.clone()].iter().map(|&write| AddressedWrite { brick_code, write }));
        }
        self.write_sorted(&mut scratch);
        self.scratch = scratch;
        self.debug_check();
    }

    /// Applies writes sorted by brick code, then fits the table.
    fn write_sorted(&mut self, writes: &mut [AddressedWrite]) {
        let size = self.bounds.size();
        let table = &mut self.table;
        edit(
            &mut self.root,
            self.root_level,
            IVec3::ZERO,
            size,
            writes,
            &mut |node, min, writes: &mut [AddressedWrite]| {
                let brick = min >> BRICK_LOG2 as i32;
                // The table lets go first, so an unshared brick is written in place.
                if let Some(t) = table.as_mut() {
                    t.release(brick);
                }
                let content = std::mem::replace(node, Node::Uniform(MaterialId::AIR)).content_moved();
                *node = Node::from_content(rebuild(content, writes.iter().map(|w| w.write), Clip::of(min, size)));
                if let Some(t) = table.as_mut() {
                    t.set(brick, node);
                }
                node.lod_value()
            },
        );
        self.fit_table();
    }

    /// Replaces whole bricks (sorted by brick code), settling LOD and pruning on
    /// the way up. Everything it lets go of (the displaced bricks, the tree's and
    /// the table's references, unused mirrors) is moved onto `displaced`, so the
    /// caller decides which thread pays for freeing it; no reference count is
    /// touched here.
    pub(crate) fn install(&mut self, mut bricks: Vec<BrickInstall>, displaced: &mut Vec<BrickContent>) {
        let size = self.bounds.size();
        let table = &mut self.table;
        let air = || BrickContent::Uniform(MaterialId::AIR);
        edit(&mut self.root, self.root_level, IVec3::ZERO, size, &mut bricks, &mut |node, min, items| {
            // One install per brick: the job built it from every write at once.
            if let Some(last) = items.last_mut() {
                let content = std::mem::replace(&mut last.content, air());
                displaced.push(std::mem::replace(node, Node::from_content(content)).content_moved());
                let mirror = std::mem::replace(&mut last.mirror, air());
                match table.as_mut() {
                    Some(t) => displaced.push(t.replace(min >> BRICK_LOG2 as i32, mirror)),
                    None => displaced.push(mirror),
                }
                last.lod
            } else {
                node.lod_value()
            }
        });
        self.fit_table();
        self.debug_check();
    }

    /// Checks `LEVELS`, `PRUNED` and `PYRAMID` over the tree (debug builds only).
    fn debug_check(&self) {
        #[cfg(debug_assertions)]
        {
            // Bounded so debug builds stay usable on full-size worlds; the property
            // tests' worlds are far below the budget and are checked whole.
            let mut budget = 4096;
            check::check_node(&self.root, self.root_level, IVec3::ZERO, self.bounds.size(), &mut budget);
            if let Some(table) = &self.table {
                table.check(&self.root, self.root_level, self.bounds.size());
            }
        }
    }
}
