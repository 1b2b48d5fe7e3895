//! Building a base index: one material, a generator's nodes, or stored nodes
//! (a file's, a snapshot's). Bounds are validated before any arithmetic.

use super::BaseIndex;
use super::brick::Brick;
use super::node::{self, Node};
use super::table::BrickTable;
#[cfg(feature = "codec")]
use super::{BrickContent, StoredNode};
use crate::coords::brick::{BRICK_LOG2, BRICK_VOLUME, Clip, children};
#[cfg(feature = "codec")]
use crate::coords::brick::{child_index, child_offset};
use crate::coords::{Aabb, morton};
use crate::error::VoxelError;
use crate::material::MaterialId;
use glam::IVec3;
use std::sync::Arc;

impl BaseIndex {
    /// A world of one material.
    ///
    /// # Errors
    /// [`VoxelError::InvalidBounds`] when `bounds` is empty or leaves the Morton
    /// range.
    pub fn uniform(bounds: Aabb, material: MaterialId) -> Result<Self, VoxelError> {
        let root_level = Self::check_bounds(bounds)?;
        Ok(Self::from_root(bounds, root_level, Node::Uniform(material)))
    }

    /// Builds a world brick by brick, in one pass, without ever holding a brick
    /// that could be a uniform node.
    ///
    /// `fill(brick_min, voxels)` is called once per brick overlapping the bounds
    /// with the brick's smallest world corner; it returns `Some(m)` when the whole
    /// brick is `m` (and may leave `voxels` untouched), or writes the brick's
    /// voxels (x fastest, then y, then z) and returns `None`. Voxels of a brick
    /// that lie outside the bounds are ignored. Dense results that turn out
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
        let root = Self::generate_node(root_level, IVec3::ZERO, bounds.min, bounds.size(), &mut fill, &mut buffer);
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
    pub(super) fn fit_table(&mut self) {
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
        size: IVec3,
        fill: &mut impl FnMut(IVec3, &mut [MaterialId; BRICK_VOLUME]) -> Option<MaterialId>,
        buffer: &mut [MaterialId; BRICK_VOLUME],
    ) -> Node {
        if level == BRICK_LOG2 {
            if let Some(m) = fill(origin + min, buffer) {
                return Node::Uniform(m);
            }
            let clip = Clip::of(min, size);
            let brick = Brick::from_voxels_clipped(buffer, clip);
            return match brick.uniform_within(clip) {
                Some(m) => Node::Uniform(m),
                None => Node::Leaf(Arc::new(brick)),
            };
        }
        let mut branch = node::Branch::filled(MaterialId::AIR);
        for (i, child_min) in children(level, min, size) {
            branch.children[i] = Self::generate_node(level - 1, child_min, origin, size, fill, buffer);
            branch.lods[i] = branch.children[i].lod_value();
        }
        let mut node = Node::Branch(Arc::new(branch));
        node::settle(&mut node, level, min, size);
        node
    }

    /// Root level for `bounds`, or why they are refused. Validates before any
    /// arithmetic that could overflow.
    pub(crate) fn check_bounds(bounds: Aabb) -> Result<u32, VoxelError> {
        if bounds.is_empty() || !morton::in_range(bounds.min) || !morton::in_range(bounds.max - IVec3::ONE) {
            return Err(VoxelError::InvalidBounds { bounds });
        }
        // Both corners are in the 21-bit range, so the extent fits an i32.
        let extent = bounds.size().max_element() as u32;
        Ok(extent.next_power_of_two().trailing_zeros().max(BRICK_LOG2))
    }

    #[cfg(feature = "codec")]
    /// Builds a world from stored nodes: coarser nodes first, finer ones
    /// overriding what they cover (so a brick written after a uniform node that
    /// covered it wins). Every node must be aligned to its level, at or above the
    /// brick level and at or below the root, and start inside the world.
    ///
    /// # Errors
    /// [`VoxelError::InvalidBounds`] for bad bounds; [`VoxelError::InvalidRegion`]
    /// naming the node's box for a node that breaks those rules.
    pub(crate) fn from_nodes(bounds: Aabb, mut nodes: Vec<StoredNode>) -> Result<Self, VoxelError> {
        let root_level = Self::check_bounds(bounds)?;
        let size = bounds.size();
        for n in &nodes {
            let edge = 1i32.checked_shl(n.level).unwrap_or(0);
            let aligned = edge > 0 && (n.min & IVec3::splat(edge - 1)) == IVec3::ZERO;
            if n.level < BRICK_LOG2
                || n.level > root_level
                || !aligned
                || n.min.min_element() < 0
                || !n.min.cmplt(size).all()
            {
                let min = bounds.min.saturating_add(n.min);
                return Err(VoxelError::InvalidRegion { region: Aabb::from_min_size(min, IVec3::splat(edge)), bounds });
            }
        }
        // Stable: among nodes of one level, the later wins.
        nodes.sort_by_key(|n| std::cmp::Reverse(n.level));
        let mut root = Node::Uniform(MaterialId::AIR);
        for n in nodes {
            let node = match n.content {
                BrickContent::Uniform(m) => Node::Uniform(m),
                // A stored brick whose in-world voxels are one material collapses
                // (invariant `PRUNED`).
                BrickContent::Dense(brick) if n.level == BRICK_LOG2 => {
                    match brick.uniform_within(Clip::of(n.min, size)) {
                        Some(m) => Node::Uniform(m),
                        None => Node::Leaf(brick),
                    }
                }
                _ => {
                    let region = Aabb::from_min_size(bounds.min.saturating_add(n.min), IVec3::splat(1 << n.level));
                    return Err(VoxelError::InvalidRegion { region, bounds });
                }
            };
            place(&mut root, root_level, IVec3::ZERO, n.level, n.min, node);
        }
        settle_all(&mut root, root_level, IVec3::ZERO, size);
        let index = Self::from_root(bounds, root_level, root);
        index.debug_check();
        Ok(index)
    }
}

#[cfg(feature = "codec")]
/// Puts `new` where the node of `target` level at local `target_min` is, below
/// `node`, splitting uniform nodes on the way (their LOD values are settled
/// afterwards by [`settle_all`]).
fn place(node: &mut Node, level: u32, min: IVec3, target: u32, target_min: IVec3, new: Node) {
    if level == target {
        *node = new;
        return;
    }
    if let Node::Uniform(m) = *node {
        *node = Node::Branch(Arc::new(node::Branch::filled(m)));
    }
    let Node::Branch(branch) = node else {
        unreachable!("LEVELS: only branches lie above the brick level");
    };
    let i = child_index(target_min, level);
    let child_min = min + child_offset(i) * (1 << (level - 1));
    place(&mut Arc::make_mut(branch).children[i], level - 1, child_min, target, target_min, new);
}

#[cfg(feature = "codec")]
/// Recomputes every branch's cached values and prunes, bottom up.
fn settle_all(node: &mut Node, level: u32, min: IVec3, size: IVec3) {
    let Node::Branch(branch) = node else {
        return;
    };
    let branch = Arc::make_mut(branch);
    for (i, cmin) in children(level, min, size) {
        settle_all(&mut branch.children[i], level - 1, cmin, size);
        branch.lods[i] = branch.children[i].lod_value();
    }
    node::settle(node, level, min, size);
}
