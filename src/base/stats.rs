//! Measured figures of a base index.

use super::BaseIndex;
use super::brick::Brick;
use super::node::Node;
use crate::coords::brick::BRICK_LOG2;
use glam::IVec3;

/// Node counts and memory of a [`BaseIndex`], measured by walking the tree.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BaseStats {
    /// Uniform nodes (tiles) that hold world voxels.
    pub uniform_nodes: usize,
    /// Branch nodes.
    pub branch_nodes: usize,
    /// Dense leaf bricks.
    pub bricks: usize,
    /// Share of the world's voxels held by uniform nodes, `0.0..=1.0`.
    pub uniform_fraction: f64,
    /// Bytes the tree owns: the index itself, its brick table, every branch
    /// allocation and every brick allocation (an `Arc` a snapshot shares is counted
    /// here too). The sort buffer `apply_batch` reuses (16 bytes per write of the
    /// largest batch so far) is not included.
    pub bytes: usize,
}

impl BaseStats {
    /// Every node: uniform, branch and brick.
    pub fn nodes(&self) -> usize {
        self.uniform_nodes + self.branch_nodes + self.bricks
    }
}

/// Bytes of one brick allocation: the brick plus the `Arc`'s two counters.
pub(crate) const BRICK_ALLOCATION: usize = std::mem::size_of::<Brick>() + 2 * std::mem::size_of::<usize>();

impl BaseIndex {
    /// Counts nodes and bytes by walking the tree: `O(nodes)`.
    pub fn stats(&self) -> BaseStats {
        let mut stats = BaseStats::default();
        let mut uniform_volume = 0u64;
        walk(&self.root, self.root_level, IVec3::ZERO, self.bounds.size(), &mut stats, &mut uniform_volume);
        stats.uniform_fraction = uniform_volume as f64 / self.bounds.volume() as f64;
        stats.bytes += std::mem::size_of::<Self>() + self.table.as_ref().map_or(0, |t| t.bytes());
        stats
    }
}

fn walk(node: &Node, level: u32, min: IVec3, size: IVec3, stats: &mut BaseStats, uniform_volume: &mut u64) {
    match node {
        Node::Uniform(_) => {
            stats.uniform_nodes += 1;
            let max = (min + IVec3::splat(1 << level)).min(size);
            let s = (max - min).as_u64vec3();
            *uniform_volume += s.x * s.y * s.z;
        }
        Node::Leaf(_) => {
            debug_assert_eq!(level, BRICK_LOG2);
            stats.bricks += 1;
            stats.bytes += BRICK_ALLOCATION;
        }
        Node::Branch(b) => {
            stats.branch_nodes += 1;
            stats.bytes += std::mem::size_of::<super::node::Branch>();
            for (_, cmin, child) in b.children_in(level, min, size) {
                walk(child, level - 1, cmin, size, stats, uniform_volume);
            }
        }
    }
}
