//! The tree's invariants, checked in debug builds (see the module docs of
//! [`super`]).

use super::brick::majority;
use super::node::Node;
use crate::coords::brick::{BRICK_LOG2, Clip};
use glam::IVec3;

pub(super) fn check_node(node: &Node, level: u32, min: IVec3, size: IVec3, budget: &mut usize) {
    if *budget == 0 {
        return;
    }
    *budget -= 1;
    match node {
        Node::Uniform(_) => {}
        Node::Leaf(b) => {
            let clip = Clip::of(min, size);
            debug_assert_eq!(level, BRICK_LOG2, "LEVELS: bricks sit at the brick level");
            debug_assert!(b.uniform_within(clip).is_none(), "PRUNED: a uniform brick collapses");
            debug_assert!(b.pyramid_is_fresh(clip), "PYRAMID: brick pyramid matches its voxels");
        }
        Node::Branch(branch) => {
            debug_assert!(level > BRICK_LOG2, "LEVELS: no branch at or below the brick level");
            let mut values = Vec::new();
            let mut uniform = std::collections::HashSet::new();
            let mut all_uniform = true;
            for (i, cmin, c) in branch.children_in(level, min, size) {
                check_node(c, level - 1, cmin, size, budget);
                debug_assert_eq!(branch.lods[i], c.lod_value(), "PYRAMID: a branch caches its children's values");
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
