//! The brick table: a dense array from brick coordinates to the brick-level
//! content of the tree, so a point read costs one index instead of a descent.
//!
//! # Invariants
//!
//! - `MIRRORED`: slot `i` holds what the tree holds at brick `i`: the material of
//!   the uniform node covering it, or the same `Arc` as the leaf.
//!
//! The table shares the leaves' `Arc`s. A writer must [`release`](BrickTable::release)
//! a slot before it writes its brick in place, or the second reference would make
//! every write copy the brick, and [`set`](BrickTable::set) it afterwards.
//!
//! # Cost
//!
//! 16 bytes per brick of the bounds (1 MiB for a 1024 x 256 x 1024 world), built
//! only when the bounds hold at most [`BrickTable::MAX_BRICKS`] bricks; larger
//! worlds read by descending the tree.

use super::content::{BrickContent, BrickView};
use super::node::Node;
use crate::coords::brick::{BRICK_LOG2, bricks_per_axis};
use crate::material::MaterialId;
use glam::IVec3;
use std::sync::Arc;

/// Dense brick table of a base index; see the module docs.
#[derive(Clone, Debug)]
pub(crate) struct BrickTable {
    /// Bricks per axis.
    dims: IVec3,
    slots: Vec<BrickContent>,
}

impl BrickTable {
    /// The largest table built: 2²¹ bricks, 32 MiB (a 2048 x 512 x 2048 world).
    pub const MAX_BRICKS: u64 = 1 << 21;

    /// A table mirroring `root`, or `None` when the bounds hold too many bricks.
    pub fn build(root: &Node, root_level: u32, size: IVec3) -> Option<Self> {
        // Bricks overlapping the world: a clipped brick on a largest face counts.
        let dims = bricks_per_axis(size);
        let count = dims.as_u64vec3().element_product();
        if count > Self::MAX_BRICKS {
            return None;
        }
        let mut table = Self { dims, slots: vec![BrickContent::Uniform(MaterialId::AIR); count as usize] };
        table.mirror(root, root_level, IVec3::ZERO, size);
        Some(table)
    }

    fn mirror(&mut self, node: &Node, level: u32, min: IVec3, size: IVec3) {
        match node {
            Node::Uniform(m) => {
                let lo = min >> BRICK_LOG2 as i32;
                let hi = ((min + IVec3::splat(1 << level)) >> BRICK_LOG2 as i32).min(self.dims);
                for z in lo.z..hi.z {
                    for y in lo.y..hi.y {
                        for x in lo.x..hi.x {
                            let i = self.index(IVec3::new(x, y, z));
                            self.slots[i] = BrickContent::Uniform(*m);
                        }
                    }
                }
            }
            Node::Leaf(b) => {
                let i = self.index(min >> BRICK_LOG2 as i32);
                self.slots[i] = BrickContent::Dense(Arc::clone(b));
            }
            Node::Branch(b) => {
                for (_, cmin, child) in b.children_in(level, min, size) {
                    self.mirror(child, level - 1, cmin, size);
                }
            }
        }
    }

    /// Slot of the brick with local brick coordinates `b` (in bounds).
    #[inline]
    fn index(&self, b: IVec3) -> usize {
        (b.x + self.dims.x * (b.y + self.dims.y * b.z)) as usize
    }

    /// The brick holding local voxel position `q` (in bounds).
    #[inline]
    pub fn get(&self, q: IVec3) -> BrickView<'_> {
        self.slots[self.index(q >> BRICK_LOG2 as i32)].view()
    }

    /// Drops the table's reference to the brick at local brick coordinates `b`,
    /// so the tree holds the only one and can write it in place.
    #[inline]
    pub fn release(&mut self, b: IVec3) {
        let i = self.index(b);
        self.slots[i] = BrickContent::Uniform(MaterialId::AIR);
    }

    /// Mirrors the brick-level node `node` at local brick coordinates `b`; the
    /// slot's previous content is dropped (the tree holds it too, if anyone).
    #[inline]
    pub fn set(&mut self, b: IVec3, node: &Node) {
        let i = self.index(b);
        self.slots[i] = node.content();
    }

    /// Puts `content` (the tree's content of the brick, as a second reference)
    /// at local brick coordinates `b` and returns what was there.
    #[inline]
    pub fn replace(&mut self, b: IVec3, content: BrickContent) -> BrickContent {
        let i = self.index(b);
        std::mem::replace(&mut self.slots[i], content)
    }

    /// Heap bytes of the slots.
    pub fn bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<BrickContent>()
    }

    /// Checks `MIRRORED` against a fresh mirror of `root` (debug builds; tables
    /// of up to 2¹⁴ bricks, so debug builds stay usable on full-size worlds).
    #[cfg(debug_assertions)]
    pub fn check(&self, root: &Node, root_level: u32, size: IVec3) {
        if self.slots.len() > 1 << 14 {
            return;
        }
        let Some(fresh) = Self::build(root, root_level, size) else {
            return;
        };
        let same = self.slots.iter().zip(&fresh.slots).all(|pair| match pair {
            (BrickContent::Uniform(a), BrickContent::Uniform(b)) => a == b,
            (BrickContent::Dense(a), BrickContent::Dense(b)) => Arc::ptr_eq(a, b),
            _ => false,
        });
        debug_assert!(same, "MIRRORED: the brick table matches the tree");
    }
}

#[cfg(test)]
mod tests {
    use crate::base::{BaseIndex, BrickView};
    use crate::coords::Aabb;
    use crate::material::{MaterialId, MaterialUpdate};
    use glam::IVec3;

    fn brick_ptr(base: &BaseIndex, p: IVec3) -> *const crate::base::Brick {
        match base.brick_local(p) {
            BrickView::Brick(b) => b as *const _,
            _ => std::ptr::null(),
        }
    }

    #[test]
    fn an_unshared_brick_is_written_in_place_despite_the_table() {
        let mut base = BaseIndex::uniform(Aabb::new(IVec3::ZERO, IVec3::splat(64)), MaterialId(1)).unwrap();
        let brick_ptr = |base: &BaseIndex, p: IVec3| brick_ptr(base, p - base.bounds().min);
        assert!(base.table.is_none(), "a uniform world keeps no table");
        base.apply_batch(&[MaterialUpdate::new(IVec3::new(1, 2, 3), MaterialId(2))]).unwrap();
        assert!(base.table.is_some());
        let before = brick_ptr(&base, IVec3::new(1, 2, 3));
        base.apply_batch(&[MaterialUpdate::new(IVec3::new(4, 5, 6), MaterialId(3))]).unwrap();
        assert_eq!(brick_ptr(&base, IVec3::new(1, 2, 3)), before, "no copy-on-write copy");
        assert_eq!(base.get(IVec3::new(4, 5, 6)), Ok(MaterialId(3)));
        base.apply_batch(&[
            MaterialUpdate::new(IVec3::new(1, 2, 3), MaterialId(1)),
            MaterialUpdate::new(IVec3::new(4, 5, 6), MaterialId(1)),
        ])
        .unwrap();
        assert!(base.table.is_none(), "pruned back to one node, the table goes");
    }
}
