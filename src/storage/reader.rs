//! A read accessor that remembers the last brick (OpenVDB's ValueAccessor idea).

use super::DeltaStorage;
use crate::base::BrickRef;
use crate::overlay::{BrickKey, Delta};
use crate::{MaterialId, VoxelError};
use glam::IVec3;

/// Reads voxels of a [`DeltaStorage`], caching the last brick it touched: the
/// active and frozen deltas of that brick and the base node holding it.
///
/// # Cost model
///
/// The first read in a brick costs what [`DeltaStorage::query`] costs (two hash
/// probes and a tree descent). Further reads in the same `16³` brick skip all
/// three: a bounds check, a key compare and a binary search in the brick's
/// deltas. Reads that hop between bricks on every call gain nothing and pay one
/// compare more. A reader borrows the storage, so no write can invalidate it:
/// that is the borrow checker's job. Reads through a reader are not counted in
/// [`OverlayStats`](crate::OverlayStats)'s hit counters.
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
    active: &'a [Delta],
    frozen: &'a [Delta],
    base: BrickRef<'a>,
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
        s.base.check(p)?;
        let (key, local) = BrickKey::split(p);
        let brick = match &self.cached {
            Some(c) if c.key == key => c,
            _ => self.cached.insert(CachedBrick {
                key,
                active: s.active.brick(key).unwrap_or_default(),
                frozen: s.frozen.as_deref().and_then(|f| f.brick(key)).unwrap_or_default(),
                base: s.base.brick_ref(p),
            }),
        };
        let find = |ds: &[Delta]| ds.binary_search_by_key(&local, |d| d.local).ok().map(|i| ds[i].material);
        Ok(find(brick.active).or_else(|| find(brick.frozen)).unwrap_or_else(|| brick.base.get(usize::from(local))))
    }
}
