//! The tree's invariants, checked in debug builds (see the module docs of
//! [`super`]).

use super::node::{self, Extent, Node};
use super::{BRICK_LOG2, Clip, majority};
use glam::IVec3;

pub(super) fn check_node(node: &Node, level: u32, min: IVec3, extent: Extent, budget: &mut usize) {
    if *budget == 0 {
        return;
    }
    *budget -= 1;
    match node {
        Node::Uniform(_) => {}
        Node::Leaf(b) => {
            let clip = Clip::of(min, extent.0);
            debug_assert_eq!(level, BRICK_LOG2, "LEVELS: bricks sit at the brick level");
            debug_assert!(b.uniform_within(clip).is_none(), "PRUNED: a uniform brick collapses");
            debug_assert!(b.pyramid_is_fresh(clip), "PYRAMID: brick pyramid matches its voxels");
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
            for (i, c) in branch.children.iter().enumerate() {
                if extent.intersects(min + node::child_offset(i) * half) {
                    debug_assert_eq!(branch.lods[i], c.lod_value(), "PYRAMID: a branch caches its children's values");
                }
            }
            debug_assert_eq!(branch.lod, majority(&values), "PYRAMID: a branch caches the majority of its children");
        }
    }
}
