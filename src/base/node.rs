//! Tree nodes and the one recursive walk that edits them.
//!
//! Branches and bricks are shared through `Arc`: cloning a node is a pointer
//! copy, so a snapshot of the whole tree costs O(1), and an edit copies only the
//! nodes on its path that a snapshot still holds (`Arc::make_mut`).

use super::brick::{Brick, majority};
use super::content::{BrickContent, BrickView};
use crate::coords::brick::{BRICK_LOG2, child_index, child_offset, children};
use crate::material::MaterialId;
use glam::IVec3;
use std::sync::Arc;

/// A node of the base index covering a cube of `2^level` voxels per axis.
#[derive(Clone, Debug)]
pub(crate) enum Node {
    /// One material for the whole cube, at any level (OpenVDB's tile).
    Uniform(MaterialId),
    /// A dense brick; only at level [`BRICK_LOG2`].
    Leaf(Arc<Brick>),
    /// Eight children of half the edge; only above level [`BRICK_LOG2`].
    Branch(Arc<Branch>),
}

/// Eight children, their LOD values, and the majority of the in-bounds ones.
#[derive(Clone, Debug)]
pub(crate) struct Branch {
    /// Child `i` covers the octant `x = i & 1, y = (i >> 1) & 1, z = i >> 2`.
    pub children: [Node; 8],
    /// Each child's LOD value, cached so settling a branch reads no child (a
    /// brick's value sits at the end of 8 KiB nobody else has touched lately).
    pub lods: [MaterialId; 8],
    /// Majority of the LOD values of the children that intersect the world.
    pub lod: MaterialId,
}

impl Branch {
    /// A branch of eight copies of a uniform node.
    pub fn filled(m: MaterialId) -> Self {
        Self { children: std::array::from_fn(|_| Node::Uniform(m)), lods: [m; 8], lod: m }
    }

    /// The children of this branch (at `level`, local corner `min`) that hold a
    /// voxel of a world of `size`: `(index, corner, node)`, in Morton order.
    #[inline]
    pub fn children_in(&self, level: u32, min: IVec3, size: IVec3) -> impl Iterator<Item = (usize, IVec3, &Node)> {
        children(level, min, size).map(|(i, c)| (i, c, &self.children[i]))
    }
}

impl Node {
    /// The value of this node read at its own level.
    #[inline]
    pub fn lod_value(&self) -> MaterialId {
        match self {
            Node::Uniform(m) => *m,
            Node::Leaf(b) => b.coarsest(),
            Node::Branch(b) => b.lod,
        }
    }

    /// A brick-level node as brick content (an `Arc` clone for a leaf).
    pub fn content(&self) -> BrickContent {
        match self {
            Node::Leaf(b) => BrickContent::Dense(Arc::clone(b)),
            other => BrickContent::Uniform(other.lod_value()),
        }
    }

    /// A brick-level (or uniform) node, borrowed.
    #[inline]
    pub fn view(&self) -> BrickView<'_> {
        match self {
            Node::Leaf(b) => BrickView::Brick(b),
            other => BrickView::Uniform(other.lod_value()),
        }
    }

    /// A brick-level node turned into brick content without touching a
    /// reference count (a branch, which never sits at the brick level, gives its
    /// LOD value).
    pub fn content_moved(self) -> BrickContent {
        match self {
            Node::Leaf(b) => BrickContent::Dense(b),
            other => BrickContent::Uniform(other.lod_value()),
        }
    }

    /// Brick content as a brick-level node.
    pub fn from_content(content: BrickContent) -> Node {
        match content {
            BrickContent::Uniform(m) => Node::Uniform(m),
            BrickContent::Dense(b) => Node::Leaf(b),
        }
    }

    /// The node at or above the brick level holding local position `q`, and its
    /// level: one step per level from `level` down.
    #[inline]
    pub fn descend(&self, level: u32, q: IVec3) -> (&Node, u32) {
        let (mut node, mut level) = (self, level);
        while let Node::Branch(b) = node {
            node = &b.children[child_index(q, level)];
            level -= 1;
        }
        (node, level)
    }
}

/// Recomputes a branch's LOD value and collapses it when every in-bounds child is
/// the same uniform material (invariant `PRUNED`). Children that lie wholly outside
/// the world are wildcards: nothing can read them.
pub(crate) fn settle(node: &mut Node, level: u32, min: IVec3, size: IVec3) {
    let Node::Branch(branch) = node else {
        return;
    };
    let mut values = [MaterialId::AIR; 8];
    let mut n = 0;
    let mut uniform: Option<Option<MaterialId>> = None;
    for (i, _, child) in branch.children_in(level, min, size) {
        values[n] = branch.lods[i];
        n += 1;
        let this = match child {
            Node::Uniform(m) => Some(*m),
            _ => None,
        };
        uniform = Some(match uniform {
            None => this,
            Some(prev) if prev == this => prev,
            Some(_) => None,
        });
    }
    debug_assert!(n > 0, "PRUNED: a branch is only built where the world is");
    if let Some(Some(m)) = uniform {
        *node = Node::Uniform(m);
    } else {
        let lod = majority(&values[..n]);
        if branch.lod != lod {
            Arc::make_mut(branch).lod = lod;
        }
    }
}

/// An edit addressed to one brick: its Morton code in local brick coordinates.
pub(crate) trait BrickAddressed {
    /// Morton code of the brick's local brick coordinates.
    fn brick_code(&self) -> u64;
}

/// Applies `items` (sorted by brick code, so every subtree's items are contiguous)
/// below `node`, calling `leaf` once per touched brick node with the brick's local
/// minimum corner and its items (it returns the node's new LOD value), then
/// settling every branch on the way back up: each touched branch is visited once
/// per call, whatever the number of items. A branch a snapshot shares is copied
/// before it is written. Returns the node's LOD value (`None` when untouched).
pub(crate) fn edit<T: BrickAddressed>(
    node: &mut Node,
    level: u32,
    min: IVec3,
    size: IVec3,
    items: &mut [T],
    leaf: &mut impl FnMut(&mut Node, IVec3, &mut [T]) -> MaterialId,
) -> Option<MaterialId> {
    if items.is_empty() {
        return None;
    }
    if level == BRICK_LOG2 {
        return Some(leaf(node, min, items));
    }
    if let Node::Uniform(m) = *node {
        *node = Node::Branch(Arc::new(Branch::filled(m)));
    }
    let Node::Branch(branch) = node else {
        unreachable!("LEVELS: a leaf brick sits only at the brick level");
    };
    let branch = Arc::make_mut(branch);
    let shift = 3 * (level - 1 - BRICK_LOG2);
    let child_of = |t: &T| ((t.brick_code() >> shift) & 7) as usize;
    let half = 1 << (level - 1);
    let mut start = 0;
    while start < items.len() {
        let child = child_of(&items[start]);
        let len = items[start..].partition_point(|t| child_of(t) == child);
        let child_min = min + child_offset(child) * half;
        if let Some(lod) =
            edit(&mut branch.children[child], level - 1, child_min, size, &mut items[start..start + len], leaf)
        {
            branch.lods[child] = lod;
        }
        start += len;
    }
    settle(node, level, min, size);
    Some(node.lod_value())
}

/// Calls `f` with every node that is uniform at or above the brick level and
/// every brick below `node` (at `level`, local corner `min`), with its level and
/// local corner, in Morton order: one visit per node.
pub(crate) fn for_each_leaf<'a>(
    node: &'a Node,
    level: u32,
    min: IVec3,
    size: IVec3,
    f: &mut impl FnMut(u32, IVec3, BrickView<'a>),
) {
    match node {
        Node::Branch(b) => {
            for (_, cmin, child) in b.children_in(level, min, size) {
                for_each_leaf(child, level - 1, cmin, size, f);
            }
        }
        other => f(level, min, other.view()),
    }
}

/// Calls `f` with the local corner of every brick of the cube of `2^level`
/// voxels at local `min` that holds a voxel of a world of `size`, in Morton order.
pub(crate) fn for_each_brick_in(level: u32, min: IVec3, size: IVec3, f: &mut impl FnMut(IVec3)) {
    if level == BRICK_LOG2 {
        f(min);
        return;
    }
    for (_, cmin) in children(level, min, size) {
        for_each_brick_in(level - 1, cmin, size, f);
    }
}
