//! Region reads of a paged world, and the coarse values kept for sectors
//! that are not resident.
//!
//! A sector evicted leaves behind its base index's level-4 pyramid (one
//! material per 16 x 16 x 16 brick, 16 KiB for a sector of 256 x 512 x 256
//! columns), at most `max_coarse` sectors of them, the oldest dropped first.
//! A read there answers [`Paged::Coarse`]: not the voxel, the brick's
//! representative material as the base held it at eviction (the edits its
//! last consolidation had merged; later ones are in the sector's edits, not
//! in the pyramid).

use super::{Paged, PagedWorld};
use crate::base::Region;
use crate::coords::Aabb;
use crate::error::VoxelError;
use crate::material::MaterialId;
use glam::{IVec2, IVec3};

/// The level of the coarse values kept: a brick.
pub(super) const COARSE_LOD: u8 = 4;

/// What a [`PagedWorld::read_region`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegionRead {
    /// The parts of the box whose sectors were not resident, one box a
    /// sector: their cells hold the coarse value where one is kept, air
    /// otherwise.
    pub missing: Vec<Aabb>,
    /// Of `missing`, the boxes filled with coarse values.
    pub coarse: Vec<Aabb>,
}

impl RegionRead {
    /// Whether every cell was read exactly.
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty()
    }
}

impl PagedWorld {
    /// Reads every voxel of `bounds` into `out` (its memory reused): exactly
    /// where the sectors are resident, the coarse value or air where they
    /// are not, and says which parts were not resident. Never waits.
    ///
    /// ```
    /// use bevy_delta_overlay::paging::{Interest, PagedWorld, PagingSettings};
    /// use bevy_delta_overlay::{Aabb, DeltaConfig, WorldGen, base::Region};
    /// use glam::IVec3;
    /// let generator = WorldGen { size: IVec3::new(512, 64, 512), sea_level: 30, ..WorldGen::default() };
    /// let settings = PagingSettings { sector_columns: 64, ..PagingSettings::default() };
    /// let mut world = PagedWorld::new(generator, settings, DeltaConfig::default())?;
    /// world.set_interest(&[Interest { center: IVec3::new(32, 10, 32), radius: 8, ..Default::default() }]);
    /// world.tick_until_resident();
    /// let mut cells = Region::default();
    /// let read = world.read_region(Aabb::new(IVec3::new(40, 0, 40), IVec3::new(100, 8, 60)), &mut cells)?;
    /// assert_eq!(read.missing, vec![Aabb::new(IVec3::new(64, 0, 40), IVec3::new(100, 8, 60))]);
    /// # Ok::<(), bevy_delta_overlay::VoxelError>(())
    /// ```
    ///
    /// # Errors
    /// [`VoxelError::InvalidRegion`] when `bounds` is empty, not inside the
    /// world, or more than `max_region_voxels`; `out` is then unchanged.
    pub fn read_region(&self, bounds: Aabb, out: &mut Region) -> Result<RegionRead, VoxelError> {
        let world = self.grid.bounds;
        // A box larger than `max_region_voxels` is refused before anything
        // is allocated for it (a paged world's boxes can be worlds).
        if bounds.is_empty() || !world.contains_box(&bounds) || bounds.volume() > self.settings.max_region_voxels {
            return Err(VoxelError::InvalidRegion { region: bounds, bounds: world });
        }
        out.reset(bounds, MaterialId::AIR);
        let mut read = RegionRead::default();
        let (lo, hi) = (self.grid.sector_of(bounds.min)?, self.grid.sector_of(bounds.max - IVec3::ONE)?);
        let mut part = Region::default();
        for kz in lo.y..=hi.y {
            for kx in lo.x..=hi.x {
                let key = IVec2::new(kx, kz);
                let inter = bounds.intersection(&self.grid.sector_bounds(key));
                match self.sectors.get(&key) {
                    Some(s) => {
                        s.storage.read_region(inter, &mut part)?;
                        out.copy_from(&part);
                    }
                    None => {
                        if let Some(coarse) = self.coarse.get(key) {
                            out.fill_from_coarse(inter, coarse);
                            read.coarse.push(inter);
                        }
                        read.missing.push(inter);
                    }
                }
            }
        }
        self.reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if !read.missing.is_empty() {
            self.reads_not_resident.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(read)
    }

    /// The answer for `p` in sector `key`, which is not resident.
    pub(super) fn not_resident(&self, key: IVec2, p: IVec3) -> Paged<MaterialId> {
        match self.coarse.get(key).and_then(|c| c.get(p)) {
            Some(m) => Paged::Coarse(m),
            None => Paged::NotResident,
        }
    }
}

/// The coarse values of the sectors not resident, the oldest dropped first
/// past `most`.
pub(super) struct Coarse {
    by_sector: crate::hash::FastMap<IVec2, Region>,
    order: std::collections::VecDeque<IVec2>,
}

impl Default for Coarse {
    fn default() -> Self {
        Self { by_sector: crate::hash::fast_map(), order: std::collections::VecDeque::new() }
    }
}

impl Coarse {
    pub fn get(&self, key: IVec2) -> Option<&Region> {
        self.by_sector.get(&key)
    }

    /// Keeps `region` for `key` (evicted), dropping the oldest past `most`.
    pub fn keep(&mut self, key: IVec2, region: Region, most: usize) {
        if most == 0 {
            return;
        }
        if self.by_sector.insert(key, region).is_none() {
            self.order.push_back(key);
        }
        while self.by_sector.len() > most {
            let Some(old) = self.order.pop_front() else { break };
            self.by_sector.remove(&old);
        }
    }

    /// Forgets `key`'s (it is resident again).
    pub fn forget(&mut self, key: IVec2) {
        if self.by_sector.remove(&key).is_some() {
            self.order.retain(|k| *k != key);
        }
    }

    /// Their heap bytes.
    pub fn bytes(&self) -> usize {
        self.by_sector.values().map(|r| std::mem::size_of_val(r.as_slice())).sum::<usize>()
            + self.order.capacity() * std::mem::size_of::<IVec2>()
    }

    pub fn len(&self) -> usize {
        self.by_sector.len()
    }
}
