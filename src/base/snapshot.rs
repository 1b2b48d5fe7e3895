//! A read-only snapshot of a base index: any thread reads it while the index
//! goes on.

use super::content::{BrickContent, BrickView};
use super::node::{Node, for_each_leaf};
use super::region::{Region, fill_region};
use crate::coords::Aabb;
use crate::coords::brick::{BRICK_LOG2, Clip};
use crate::error::VoxelError;
use glam::IVec3;

/// The tree's root (an `Arc` clone), so taking it costs O(1). Edits to the
/// index copy the nodes on their path that the snapshot holds.
#[derive(Clone, Debug)]
pub(crate) struct BaseSnapshot {
    root: Node,
    root_level: u32,
    size: IVec3,
}

impl BaseSnapshot {
    pub(super) fn new(root: Node, root_level: u32, size: IVec3) -> Self {
        Self { root, root_level, size }
    }

    /// The content of the brick at local brick coordinates `b` (in the world).
    pub fn brick(&self, b: IVec3) -> BrickContent {
        self.root.descend(self.root_level, b << BRICK_LOG2 as i32).0.content()
    }

    /// The clip of the brick at local brick coordinates `b`.
    pub fn clip(&self, b: IVec3) -> Clip {
        Clip::of(b << BRICK_LOG2 as i32, self.size)
    }

    /// The world's size in voxels.
    pub fn size(&self) -> IVec3 {
        self.size
    }

    /// Reads the cells at level `lod` overlapping `bounds` of the snapshot of
    /// the world `world` into `out` (as [`BaseIndex::read_region`](super::BaseIndex::read_region)).
    pub fn read_region(&self, world: Aabb, bounds: Aabb, lod: u8, out: &mut Region) -> Result<(), VoxelError> {
        fill_region(&self.root, self.root_level, world, bounds, lod, out)
    }

    /// Calls `f` for every node that is uniform at or above the brick level and
    /// for every brick, with its level and local minimum corner, in Morton order.
    /// Cost: one visit per node.
    pub fn for_each_node(&self, mut f: impl FnMut(u32, IVec3, BrickView<'_>)) {
        for_each_leaf(&self.root, self.root_level, IVec3::ZERO, self.size, &mut f);
    }
}
