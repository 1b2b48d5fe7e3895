//! The base index: a sparse octree whose leaves are dense bricks.
//!
//! # Structure
//!
//! The tree spans the world's bounds from their minimum corner (the *origin*) with
//! the fewest levels whose root cube holds the largest extent. A node at level `L`
//! covers `2^L` voxels per axis and is one of:
//!
//! - **uniform**: one material for the whole cube, at any level (OpenVDB's tile);
//! - **branch**: eight children of half the edge, plus the cached LOD value;
//! - **leaf brick**: a dense `16³` array ([`Brick`]), only at level
//!   [`BRICK_LOG2`], shared copy-on-write through an `Arc`.
//!
//! A world of one material costs one node, whatever its size.
//!
//! # Invariants
//!
//! - `LEVELS`: bricks sit at level [`BRICK_LOG2`] only; branches above it only.
//! - `PRUNED`: no branch has all its in-bounds children uniform with one material,
//!   and no brick holds a single material; such nodes collapse to uniform.
//! - `PYRAMID`: each brick's LOD pyramid matches its voxels, each branch's LOD value
//!   is the majority of its in-bounds children's LOD values.
//! - `BOUNDED`: voxels outside the bounds are never read; their stored value is
//!   unspecified (pruning treats them as wildcards).
//!
//! [`BaseIndex::apply_batch`] and [`BaseIndex::install`] may split uniform nodes
//! and restore all three on the way out; debug builds check them after every call.
//!
//! # Level of detail
//!
//! Level `L` reads cells of `2^L` voxels per axis, aligned to the origin. A cell's
//! value is the majority of its (in-bounds) children at `L - 1`, ties broken to the
//! smallest id. Levels 2 to 4 are stored in each brick, level 1 is computed from 8
//! voxels when read, levels above 4 are cached in the branches.
//!
//! # Costs
//!
//! | operation | cost |
//! | --- | --- |
//! | `get`, `get_lod` | one descent: `root_level - 4` steps at most |
//! | `apply_batch(n)` | `O(n log n)` sort by brick, then each touched node once |
//! | `region` | each overlapping node once; row copies in bricks, fills for uniform nodes |
//! | snapshot of a brick | an `Arc` clone |

mod brick;
mod node;
mod region;
mod stats;
mod table;

pub use brick::{BRICK_LOG2, BRICK_SIZE, BRICK_VOLUME, Brick, majority};
pub use region::Region;
pub use stats::BaseStats;

pub(crate) use brick::{BRICK_MASK, l2_cell_of, local_index};
use node::{BrickAddressed, Extent, Node, child_index, edit};
use table::BrickTable;

use crate::coords::morton;
use crate::{Aabb, MaterialId, VoxelError};
use glam::IVec3;
use std::sync::Arc;

/// The content of one brick, as produced by a generator or a consolidation job.
#[derive(Clone, Debug)]
pub enum BrickContent {
    /// Every voxel holds this material.
    Uniform(MaterialId),
    /// A dense brick.
    Dense(Arc<Brick>),
}

/// The hybrid octree + brick store of every voxel's material. See the
/// [module docs](self) for structure, invariants and costs.
///
/// ```
/// use bevy_delta_overlay::{Aabb, BaseIndex, MaterialId};
/// use glam::IVec3;
/// let bounds = Aabb::new(IVec3::ZERO, IVec3::new(64, 32, 64));
/// let mut base = BaseIndex::uniform(bounds, MaterialId(1))?;
/// assert_eq!(base.stats().nodes(), 1);
/// base.apply_batch(&[(IVec3::new(3, 4, 5), MaterialId(2))])?;
/// assert_eq!(base.get(IVec3::new(3, 4, 5))?, MaterialId(2));
/// base.apply_batch(&[(IVec3::new(3, 4, 5), MaterialId(1))])?;
/// assert_eq!(base.stats().nodes(), 1, "pruned back to one uniform node");
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
    scratch: Vec<VoxelWrite>,
}

/// A borrowed view of the brick-level node holding a voxel.
#[derive(Clone, Copy, Debug)]
pub(crate) enum BrickRef<'a> {
    /// The whole brick (or a larger uniform node) is one material.
    Uniform(MaterialId),
    /// A dense brick.
    Dense(&'a Arc<Brick>),
}

impl BrickRef<'_> {
    /// The voxel at in-brick index `i`.
    #[inline]
    pub fn get(self, i: usize) -> MaterialId {
        match self {
            BrickRef::Uniform(m) => m,
            BrickRef::Dense(b) => b.get(i),
        }
    }
}

/// One write addressed within its brick: what the overlay hands a consolidation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BrickWrite {
    /// In-brick index.
    pub local: u16,
    /// The material written.
    pub material: MaterialId,
}

/// One voxel write, addressed for the tree walk.
#[derive(Clone, Copy, Debug)]
struct VoxelWrite {
    brick_code: u64,
    index: u16,
    material: MaterialId,
}

impl BrickAddressed for VoxelWrite {
    fn brick_code(&self) -> u64 {
        self.brick_code
    }
}

/// A brick replacement, addressed for the tree walk.
#[derive(Clone, Debug)]
pub(crate) struct BrickInstall {
    pub brick_code: u64,
    pub content: BrickContent,
}

impl BrickAddressed for BrickInstall {
    fn brick_code(&self) -> u64 {
        self.brick_code
    }
}

impl BaseIndex {
    /// A world of one material.
    ///
    /// # Errors
    /// [`VoxelError::InvalidBounds`] when `bounds` is empty, its corners are not
    /// multiples of [`BRICK_SIZE`], or it leaves the Morton range.
    pub fn uniform(bounds: Aabb, material: MaterialId) -> Result<Self, VoxelError> {
        let root_level = Self::check_bounds(bounds)?;
        Ok(Self::from_root(bounds, root_level, Node::Uniform(material)))
    }

    /// Builds a world brick by brick, in one pass, without ever holding a brick
    /// that could be a uniform node.
    ///
    /// `fill(brick_min, voxels)` is called once per brick inside the bounds with
    /// the brick's smallest world corner; it returns `Some(m)` when the whole brick
    /// is `m` (and may leave `voxels` untouched), or writes the brick's voxels
    /// (x fastest, then y, then z) and returns `None`. Dense results that turn out
    /// uniform are still collapsed.
    ///
    /// # Errors
    /// As [`BaseIndex::uniform`].
    pub fn generate(
        bounds: Aabb,
        mut fill: impl FnMut(IVec3, &mut [MaterialId; BRICK_VOLUME]) -> Option<MaterialId>,
    ) -> Result<Self, VoxelError> {
        let root_level = Self::check_bounds(bounds)?;
        let mut buffer = Box::new([MaterialId::AIR; BRICK_VOLUME]);
        let extent = Extent(bounds.size());
        let root = Self::generate_node(root_level, IVec3::ZERO, bounds.min, extent, &mut fill, &mut buffer);
        let index = Self::from_root(bounds, root_level, root);
        index.debug_check();
        Ok(index)
    }

    fn from_root(bounds: Aabb, root_level: u32, root: Node) -> Self {
        let mut index = Self { bounds, root_level, root, table: None, scratch: Vec::new() };
        index.fit_table();
        index
    }

    /// Builds the brick table when the tree has detail and drops it when the tree
    /// is one uniform node (a read of that costs one step, and a uniform world
    /// keeps costing one node). Edits keep an existing table current themselves.
    fn fit_table(&mut self) {
        match (&self.root, &self.table) {
            (Node::Uniform(_), Some(_)) => self.table = None,
            (Node::Branch(_) | Node::Leaf(_), None) => {
                self.table = BrickTable::build(&self.root, self.root_level, self.bounds.size());
            }
            _ => {}
        }
    }

    fn generate_node(
        level: u32,
        min: IVec3,
        origin: IVec3,
        extent: Extent,
        fill: &mut impl FnMut(IVec3, &mut [MaterialId; BRICK_VOLUME]) -> Option<MaterialId>,
        buffer: &mut [MaterialId; BRICK_VOLUME],
    ) -> Node {
        if level == BRICK_LOG2 {
            if let Some(m) = fill(origin + min, buffer) {
                return Node::Uniform(m);
            }
            let first = buffer[0];
            if buffer.iter().all(|&v| v == first) {
                return Node::Uniform(first);
            }
            return Node::Leaf(Arc::new(Brick::from_voxels(buffer)));
        }
        let half = 1 << (level - 1);
        let mut filler = None;
        let children = std::array::from_fn(|i| {
            let child_min = min + node::child_offset(i) * half;
            if extent.intersects(child_min) {
                let child = Self::generate_node(level - 1, child_min, origin, extent, fill, buffer);
                filler.get_or_insert(child.lod_value());
                child
            } else {
                Node::Uniform(MaterialId::AIR)
            }
        });
        let mut node = Node::Branch(Box::new(node::Branch { children, lod: filler.unwrap_or_default() }));
        node::settle(&mut node, level, min, extent);
        node
    }

    /// Root level for `bounds`, or why they are refused.
    fn check_bounds(bounds: Aabb) -> Result<u32, VoxelError> {
        let aligned = (bounds.min & IVec3::splat(BRICK_MASK)) == IVec3::ZERO
            && (bounds.max & IVec3::splat(BRICK_MASK)) == IVec3::ZERO;
        let in_range = morton::in_range(bounds.min) && morton::in_range(bounds.max - IVec3::ONE);
        if bounds.is_empty() || !aligned || !in_range {
            return Err(VoxelError::InvalidBounds { bounds });
        }
        let extent = bounds.size().max_element() as u32;
        Ok(extent.next_power_of_two().trailing_zeros().max(BRICK_LOG2))
    }

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
        Ok(self.get_unchecked(p))
    }

    /// Bounds check shared by every position-taking call.
    #[inline]
    pub(crate) fn check(&self, p: IVec3) -> Result<(), VoxelError> {
        if self.bounds.contains(p) { Ok(()) } else { Err(VoxelError::OutOfBounds { position: p, bounds: self.bounds }) }
    }

    /// The material at `p`, which the caller has checked is in bounds.
    #[inline]
    pub(crate) fn get_unchecked(&self, p: IVec3) -> MaterialId {
        let q = p - self.bounds.min;
        if let Some(table) = &self.table {
            return table.get(q).get(local_index(q));
        }
        let mut node = &self.root;
        let mut level = self.root_level;
        loop {
            match node {
                Node::Uniform(m) => return *m,
                Node::Leaf(b) => return b.get(local_index(q)),
                Node::Branch(b) => {
                    node = &b.children[child_index(q, level)];
                    level -= 1;
                }
            }
        }
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
                Node::Leaf(b) => return Ok(b.lod(q & IVec3::splat(BRICK_MASK), lod)),
                Node::Branch(b) => {
                    node = &b.children[child_index(q, level)];
                    level -= 1;
                }
            }
        }
    }

    /// Morton code of the brick holding world position `p` (in bounds), in local
    /// brick coordinates: the sort key of every tree walk.
    #[inline]
    pub(crate) fn brick_code(&self, p: IVec3) -> u64 {
        let b = ((p - self.bounds.min) >> BRICK_LOG2 as i32).as_uvec3();
        morton::interleave(b.x, b.y, b.z)
    }

    /// Writes a batch of voxels, in order (a later write to the same voxel wins).
    ///
    /// Every position is validated first: one bad position rejects the whole batch
    /// and nothing is applied. Writes are grouped by brick in Morton order, uniform
    /// nodes split only where a write differs, and bricks or subtrees left holding a
    /// single material collapse back to uniform nodes.
    ///
    /// # Errors
    /// [`VoxelError::OutOfBounds`] for the first position outside the world.
    pub fn apply_batch(&mut self, writes: &[(IVec3, MaterialId)]) -> Result<(), VoxelError> {
        for &(p, _) in writes {
            self.check(p)?;
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.extend(writes.iter().map(|&(p, material)| VoxelWrite {
            brick_code: self.brick_code(p),
            index: local_index(p) as u16,
            material,
        }));
        // Stable: writes to one voxel keep their order, so the last one wins.
        scratch.sort_by_key(|w| w.brick_code);
        self.write_sorted(&scratch);
        self.scratch = scratch;
        self.debug_check();
        Ok(())
    }

    /// Writes whole groups of voxels, brick by brick, in place where a brick is not
    /// shared: `bricks` holds each brick's smallest world corner (in bounds, each
    /// brick once) and the range of its writes in `writes`. A synchronous
    /// consolidation's path: no snapshot and no sort of the writes, only of the
    /// bricks.
    pub(crate) fn write_bricks(&mut self, bricks: &[(IVec3, std::ops::Range<usize>)], writes: &[BrickWrite]) {
        let mut order: Vec<(u64, usize)> = bricks.iter().enumerate().map(|(i, b)| (self.brick_code(b.0), i)).collect();
        order.sort_unstable();
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        for (brick_code, i) in order {
            scratch.extend(writes[bricks[i].1.clone()].iter().map(|w| VoxelWrite {
                brick_code,
                index: w.local,
                material: w.material,
            }));
        }
        self.write_sorted(&scratch);
        self.scratch = scratch;
        self.debug_check();
    }

    /// Applies writes sorted by brick code, then fits the table.
    fn write_sorted(&mut self, writes: &[VoxelWrite]) {
        let extent = Extent(self.bounds.size());
        let table = &mut self.table;
        edit(&mut self.root, self.root_level, IVec3::ZERO, extent, writes, &mut |node, min, writes: &[VoxelWrite]| {
            let brick = min >> BRICK_LOG2 as i32;
            // The table lets go first, so an unshared brick is written in place.
            if let Some(t) = table.as_mut() {
                t.release(brick);
            }
            write_brick(node, writes);
            if let Some(t) = table.as_mut() {
                t.set(brick, node);
            }
        });
        self.fit_table();
    }

    /// The content of the brick holding `p` (in bounds): a pointer copy.
    pub(crate) fn brick_content(&self, p: IVec3) -> BrickContent {
        match self.brick_ref(p) {
            BrickRef::Uniform(m) => BrickContent::Uniform(m),
            BrickRef::Dense(b) => BrickContent::Dense(Arc::clone(b)),
        }
    }

    /// The brick node holding `p` (in bounds), borrowed: what a [`Reader`](crate::Reader)
    /// caches.
    pub(crate) fn brick_ref(&self, p: IVec3) -> BrickRef<'_> {
        let q = p - self.bounds.min;
        if let Some(table) = &self.table {
            return table.get(q);
        }
        let mut node = &self.root;
        let mut level = self.root_level;
        loop {
            match node {
                Node::Uniform(m) => return BrickRef::Uniform(*m),
                Node::Leaf(b) => return BrickRef::Dense(b),
                Node::Branch(b) => {
                    node = &b.children[child_index(q, level)];
                    level -= 1;
                }
            }
        }
    }

    /// Replaces whole bricks (sorted by brick code), settling LOD and pruning on
    /// the way up. The consolidation's main-thread step.
    pub(crate) fn install(&mut self, bricks: &[BrickInstall]) {
        let extent = Extent(self.bounds.size());
        let table = &mut self.table;
        edit(&mut self.root, self.root_level, IVec3::ZERO, extent, bricks, &mut |node, min, items: &[BrickInstall]| {
            // One install per brick: the job built it from every delta at once.
            if let Some(last) = items.last() {
                *node = match &last.content {
                    BrickContent::Uniform(m) => Node::Uniform(*m),
                    BrickContent::Dense(b) => Node::Leaf(Arc::clone(b)),
                };
                if let Some(t) = table.as_mut() {
                    t.set(min >> BRICK_LOG2 as i32, node);
                }
            }
        });
        self.fit_table();
        self.debug_check();
    }

    /// Checks `LEVELS`, `PRUNED` and `PYRAMID` over the tree (debug builds only).
    fn debug_check(&self) {
        #[cfg(debug_assertions)]
        {
            let extent = Extent(self.bounds.size());
            // Bounded so debug builds stay usable on full-size worlds; the property
            // tests' worlds are far below the budget and are checked whole.
            let mut budget = 4096;
            check_node(&self.root, self.root_level, IVec3::ZERO, extent, &mut budget);
            if let Some(table) = &self.table {
                table.check(&self.root, self.root_level, self.bounds.size());
            }
        }
    }
}

/// Writes voxels into one brick node, splitting or collapsing it as needed.
fn write_brick(node: &mut Node, writes: &[VoxelWrite]) {
    if let Node::Uniform(m) = *node {
        if writes.iter().all(|w| w.material == m) {
            return;
        }
        *node = Node::Leaf(Arc::new(Brick::filled(m)));
    }
    let Node::Leaf(arc) = node else {
        unreachable!("LEVELS: brick-level nodes are uniform or leaves");
    };
    // Clones only when a consolidation snapshot still holds this brick.
    let brick = Arc::make_mut(arc);
    let mut dirty = 0;
    for w in writes {
        dirty |= brick.set(usize::from(w.index), w.material);
    }
    brick.update_pyramid(dirty);
    if let Some(m) = brick.uniform_material() {
        *node = Node::Uniform(m);
    }
}

#[cfg(debug_assertions)]
fn check_node(node: &Node, level: u32, min: IVec3, extent: Extent, budget: &mut usize) {
    if *budget == 0 {
        return;
    }
    *budget -= 1;
    match node {
        Node::Uniform(_) => {}
        Node::Leaf(b) => {
            debug_assert_eq!(level, BRICK_LOG2, "LEVELS: bricks sit at the brick level");
            debug_assert!(b.uniform_material().is_none(), "PRUNED: a uniform brick collapses");
            debug_assert!(b.pyramid_is_fresh(), "PYRAMID: brick pyramid matches its voxels");
        }
        Node::Branch(branch) => {
            debug_assert!(level > BRICK_LOG2, "LEVELS: no branch at or below the brick level");
            let half = 1 << (level - 1);
            let mut values = Vec::new();
            let mut uniform = std::collections::HashSet::new();
            let mut all_uniform = true;
            for (i, c) in branch.children.iter().enumerate() {
                let cmin = min + node::child_offset(i) * half;
                if !extent.intersects(cmin) {
                    continue;
                }
                check_node(c, level - 1, cmin, extent, budget);
                values.push(c.lod_value());
                match c {
                    Node::Uniform(m) => {
                        uniform.insert(*m);
                    }
                    _ => all_uniform = false,
                }
            }
            debug_assert!(!(all_uniform && uniform.len() == 1), "PRUNED: a branch of one uniform material collapses");
            debug_assert_eq!(branch.lod, majority(&values), "PYRAMID: a branch caches the majority of its children");
        }
    }
}
