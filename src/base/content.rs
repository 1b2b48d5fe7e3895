//! What one brick-level node holds: owned ([`BrickContent`], shared by `Arc`)
//! or borrowed ([`BrickView`]). The crate's one vocabulary for "one material,
//! or voxels".

use super::brick::Brick;
use crate::coords::brick::BRICK_VOLUME;
use crate::material::MaterialId;
use std::sync::Arc;

/// The content of one brick, owned: one material, or a dense brick shared
/// copy-on-write.
#[derive(Clone, Debug)]
pub enum BrickContent {
    /// Every voxel holds this material.
    Uniform(MaterialId),
    /// A dense brick.
    Dense(Arc<Brick>),
}

impl BrickContent {
    /// The material of in-brick voxel `i` (x fastest, then y, then z).
    #[inline]
    pub fn get(&self, i: usize) -> MaterialId {
        self.view().get(i)
    }

    /// The content, borrowed.
    #[inline]
    pub fn view(&self) -> BrickView<'_> {
        match self {
            BrickContent::Uniform(m) => BrickView::Uniform(*m),
            BrickContent::Dense(b) => BrickView::Brick(b),
        }
    }
}

/// A borrowed view of one node's voxels: what a read of them needs, whether
/// they come from the base index, a stored record or a snapshot with its
/// deltas applied.
#[derive(Clone, Copy, Debug)]
pub enum BrickView<'a> {
    /// Every in-world voxel holds this material.
    Uniform(MaterialId),
    /// A brick of the base, its LOD pyramid included.
    Brick(&'a Brick),
    /// A brick's voxels, x fastest, then y, then z (a brick with deltas applied:
    /// no pyramid).
    Voxels(&'a [MaterialId; BRICK_VOLUME]),
}

impl<'a> BrickView<'a> {
    /// The material of in-brick voxel `i` (x fastest, then y, then z).
    #[inline]
    pub fn get(self, i: usize) -> MaterialId {
        match self {
            BrickView::Uniform(m) => m,
            BrickView::Brick(b) => b.get(i),
            BrickView::Voxels(v) => v[i],
        }
    }

    /// The voxels, when the view has them one by one (`None` for a uniform node).
    #[inline]
    pub fn voxels(self) -> Option<&'a [MaterialId; BRICK_VOLUME]> {
        match self {
            BrickView::Uniform(_) => None,
            BrickView::Brick(b) => Some(b.voxels()),
            BrickView::Voxels(v) => Some(v),
        }
    }
}
