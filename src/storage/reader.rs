//! A read accessor that remembers the last brick (OpenVDB's ValueAccessor idea).

use super::DeltaStorage;
use crate::base::BrickView;
use crate::coords::brick::BrickKey;
use crate::error::VoxelError;
use crate::material::MaterialId;
use crate::overlay::BrickStack;
use glam::IVec3;

/// Reads voxels of a [`DeltaStorage`], caching the last brick it touched: the
/// brick's deltas in every layer and the base node holding it.
///
/// # Cost model
///
/// The first read in a brick costs what [`DeltaStorage::query`] costs (a hash
/// probe per layer and a brick-table read). Further reads in the same `16³`
/// brick skip both: a bounds check, a key compare, then per layer holding the
/// brick a mask test and, in blocks holding deltas, a binary search. Reads that
/// hop between bricks on every call gain nothing and pay one compare more. A
/// reader borrows the storage, so no write can invalidate it: that is the
/// borrow checker's job. Reads through a reader are not counted in
/// [`OverlayStats`](super::OverlayStats)'s hit counters.
///
/// ```
/// use bevy_delta_overlay::{Aabb, BaseIndex, DeltaConfig, DeltaStorage, MaterialId};
/// use glam::IVec3;
/// let base = BaseIndex::uniform(Aabb::new(IVec3::ZERO, IVec3::splat(32)), MaterialId(1))?;
/// let mut world = DeltaStorage::new(base, DeltaConfig::default());
/// world.update(IVec3::new(3, 7, 0), MaterialId(2))?;
/// let mut reader = world.reader();
/// let column: Vec<_> = (0..16).map(|y| reader.get(IVec3::new(3, y, 0))).collect::<Result<_, _>>()?;
/// assert_eq!(column[7], MaterialId(2));
/// assert_eq!(column[6], MaterialId(1));
/// # Ok::<(), bevy_delta_overlay::VoxelError>(())
/// ```
pub struct Reader<'a> {
    storage: &'a DeltaStorage,
    cached: Option<CachedBrick<'a>>,
}

struct CachedBrick<'a> {
    key: BrickKey,
    deltas: BrickStack<'a>,
    base: BrickView<'a>,
}

impl DeltaStorage {
    /// A reader for runs of nearby reads; see [`Reader`].
    pub fn reader(&self) -> Reader<'_> {
        Reader { storage: self, cached: None }
    }
}

impl Reader<'_> {
    /// The material at `p`, exactly as [`DeltaStorage::query`] returns it.
    ///
    /// # Errors
    /// [`VoxelError::OutOfBounds`] when `p` is outside the world.
    #[inline]
    pub fn get(&mut self, p: IVec3) -> Result<MaterialId, VoxelError> {
        let s = self.storage;
        let q = s.local(p)?;
        let (key, local) = BrickKey::split(q);
        let brick = match &self.cached {
            Some(c) if c.key == key => c,
            _ => self.cached.insert(CachedBrick { key, deltas: s.overlay.stack(key), base: s.base.brick_local(q) }),
        };
        match brick.deltas.get(local) {
            Some(d) => Ok(d.material),
            None => Ok(brick.base.get(usize::from(local))),
        }
    }
}
