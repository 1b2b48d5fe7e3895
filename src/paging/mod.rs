//! Worlds larger than memory (feature `paging`): a world cut into sectors of
//! columns, each generated on demand from the world's [`WorldGen`] (which is
//! deterministic, so a sector nobody edited is never kept once it is out of
//! interest), kept resident around the interest points under a memory
//! budget, and read without ever waiting on the caller's thread.
//!
//! A sector comes from the generator and, with a file
//! ([`PagedWorld::open`], feature `persistence`), from the edits the file
//! keeps, both read and built on the pager thread; memory keeps only the
//! edits the file has not acknowledged (without a file, every edit), so an
//! edited sector can be evicted and comes back with its edits. A read that
//! finds its sector not resident gets a typed answer. Followers are fed by
//! region: a sector's edits and the change log (`share.rs`, used by the
//! replication's region plugins).
//!
//! # Model
//!
//! A sector is `sector_columns x sector_columns` columns, the world's whole
//! height, its corner on a grid from the world's minimum. Its voxels are the
//! generator's (a [`WorldGen`] with the sector's bounds and the world's seed
//! makes exactly the voxels the whole world's generator would there) with the
//! sector's edits applied.
//!
//! # Invariants
//!
//! - `EXACT`: a resident sector's voxels are the generator's with every edit
//!   of that sector applied, the last one per voxel; a read answers
//!   [`Paged::Resident`] only from such a sector.
//! - `EDITS_KEPT`: every accepted edit is in memory's edits until the file
//!   acknowledges it durable (forever without a file), whether its sector is
//!   resident or not; eviction drops a sector's voxels, never an edit that
//!   only they hold. A sector made from the file is given memory's edits of
//!   it at install, and is made again if the file was read before a batch
//!   memory has since let go of (`edits.rs`).
//! - `BOUNDED`: at most `max_edits` edited voxels are kept (an edit of a new
//!   voxel past it is refused, [`VoxelError::Backlogged`]); at most
//!   `max_in_flight` sectors are asked of the pager at once, at most
//!   `max_wanted` sectors wanted; the resident sectors are
//!   evicted, least recently wanted first, while their bytes pass
//!   `resident_budget` and a sector no interest wants remains.

#[cfg(feature = "persistence")]
mod durable;
mod edits;
#[cfg(feature = "persistence")]
mod file;
mod reads;
mod sector;
mod settings;
mod share;
mod stats;
mod surfaces;

use crate::consolidation::DeltaConfig;
use crate::coords::Aabb;
use crate::error::VoxelError;
use crate::hash::{FastMap, fast_map};
use crate::material::{MaterialId, MaterialUpdate};
use crate::storage::DeltaStorage;
use crate::worldgen::WorldGen;
use edits::Edits;
use glam::{IVec2, IVec3};
pub use reads::RegionRead;
use sector::{Generated, Maker, Pager, SectorGrid};
pub use settings::{Interest, PagingSettings};
pub use share::{ChangesLost, SectorRead, ShareError, StoredEdits};
pub use stats::PagingStats;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A read's answer: the value, the coarse value kept for a sector not
/// resident, or that its sector is not resident and nothing is kept of it
/// (it is brought in when an interest wants it; [`PagedWorld::get_blocking`]
/// generates it at once).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paged<T> {
    /// The sector is resident: the value.
    Resident(T),
    /// The sector is not resident: the material of the 16 x 16 x 16 brick
    /// holding the voxel at level 4 of its base's pyramid when it was
    /// evicted (a representative, not the voxel; see `reads.rs`).
    Coarse(T),
    /// The sector is not resident and no coarse value is kept for it.
    NotResident,
}

impl<T> Paged<T> {
    /// Whether it is a resident sector's exact value.
    pub fn is_resident(&self) -> bool {
        matches!(self, Paged::Resident(_))
    }
}

/// The most page-in times kept in the stats.
const PAGE_INS_KEPT: usize = 4096;

/// One resident sector.
struct Sector {
    storage: DeltaStorage,
    /// Its base index's bytes, measured when it came in and again after each
    /// consolidation (which grows the base).
    base_bytes: usize,
    /// Consolidations of its storage when `base_bytes` was measured.
    consolidations: u64,
    /// The tick an interest last wanted it.
    wanted: u64,
}

/// A world paged through memory by sectors; see the [module docs](self).
///
/// ```
/// use bevy_delta_overlay::paging::{Interest, Paged, PagedWorld, PagingSettings};
/// use bevy_delta_overlay::{DeltaConfig, WorldGen, materials};
/// use glam::IVec3;
/// let generator = WorldGen { size: IVec3::new(4096, 64, 4096), sea_level: 30, ..WorldGen::default() };
/// let settings = PagingSettings { sector_columns: 64, ..PagingSettings::default() };
/// let mut world = PagedWorld::new(generator, settings, DeltaConfig::default())?;
/// let here = IVec3::new(2000, 10, 3000);
/// assert_eq!(world.get(here)?, Paged::NotResident);
/// world.update(here, materials::MAGMA)?; // kept for when it comes in
/// world.set_interest(&[Interest { center: here, radius: 32, ..Default::default() }]);
/// world.tick_until_resident();
/// assert_eq!(world.get(here)?, Paged::Resident(materials::MAGMA));
/// assert!(world.stats().resident_sectors <= 4);
/// # Ok::<(), bevy_delta_overlay::VoxelError>(())
/// ```
pub struct PagedWorld {
    generator: WorldGen,
    grid: SectorGrid,
    settings: PagingSettings,
    sectors: FastMap<IVec2, Sector>,
    /// The edits in memory (`EDITS_KEPT`).
    edits: Edits,
    /// The coarse values of sectors evicted.
    coarse: reads::Coarse,
    #[cfg(feature = "persistence")]
    file: Option<file::SectorFile>,
    maker: Maker,
    interest: Vec<Interest>,
    /// What the interest wanted at the last tick, nearest first.
    wanted: Vec<IVec2>,
    pager: Pager,
    page_ins: std::collections::VecDeque<Duration>,
    tick: u64,
    /// The clock every resident sector's storage shows.
    clock: Duration,
    reads: AtomicU64,
    reads_not_resident: AtomicU64,
    stats: PagingStats,
    /// The change log, when followers are fed (`share.rs`).
    changes: Option<share::ChangeLog>,
    /// Sectors whose edits are being read for followers: how many reads of
    /// each, and the file's acknowledged batch when the first began
    /// (`SHARED_EXACT`).
    reading: FastMap<IVec2, (u32, u64)>,
}

impl std::fmt::Debug for PagedWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PagedWorld").field("bounds", &self.grid.bounds).field("stats", &self.stats).finish()
    }
}

impl Drop for PagedWorld {
    /// With a file, hands it the edits not flushed yet and waits until they
    /// are durable; then the pager and the writer are joined.
    fn drop(&mut self) {
        #[cfg(feature = "persistence")]
        self.close();
    }
}

impl PagedWorld {
    /// The world `generator` makes, paged by `settings`; each sector's
    /// storage made with `config`. Nothing is generated yet.
    ///
    /// # Errors
    /// [`VoxelError::InvalidBounds`] (or what the base index refuses) for a
    /// world the generator cannot make; a sector size that is not a positive
    /// multiple of 16 is refused the same way.
    pub fn new(generator: WorldGen, settings: PagingSettings, config: DeltaConfig) -> Result<Self, VoxelError> {
        let grid = SectorGrid::new(generator.bounds(), settings.sector_columns)?;
        crate::base::BaseIndex::check_bounds(grid.bounds)?;
        let maker = Maker { config, source: None, surfaces: None };
        Ok(Self {
            generator,
            grid,
            settings,
            sectors: fast_map(),
            edits: Edits::default(),
            coarse: reads::Coarse::default(),
            #[cfg(feature = "persistence")]
            file: None,
            pager: Pager::start(maker.clone()),
            maker,
            interest: Vec::new(),
            wanted: Vec::new(),
            page_ins: std::collections::VecDeque::new(),
            tick: 0,
            clock: Duration::ZERO,
            reads: AtomicU64::new(0),
            reads_not_resident: AtomicU64::new(0),
            stats: PagingStats::default(),
            changes: None,
            reading: fast_map(),
        })
    }

    /// The whole world's bounds.
    pub fn bounds(&self) -> Aabb {
        self.grid.bounds
    }

    /// How it pages.
    pub fn settings(&self) -> &PagingSettings {
        &self.settings
    }

    /// The material at `p`, if its sector is resident: never waits.
    ///
    /// # Errors
    /// [`VoxelError::OutOfBounds`] outside the world.
    pub fn get(&self, p: IVec3) -> Result<Paged<MaterialId>, VoxelError> {
        let key = self.grid.sector_of(p)?;
        self.reads.fetch_add(1, Ordering::Relaxed);
        match self.sectors.get(&key) {
            Some(s) => s.storage.query(p).map(Paged::Resident),
            None => {
                self.reads_not_resident.fetch_add(1, Ordering::Relaxed);
                Ok(self.not_resident(key, p))
            }
        }
    }

    /// The material at `p`, generating its sector on this thread first when
    /// it is not resident: for tools and tests.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn get_blocking(&mut self, p: IVec3) -> Result<MaterialId, VoxelError> {
        let key = self.grid.sector_of(p)?;
        if !self.sectors.contains_key(&key) {
            let generated = self.maker.make(&self.generator, &self.grid, key, std::time::Instant::now());
            self.install(generated, true);
            self.refresh_stats();
        }
        match self.sectors.get(&key) {
            Some(s) => s.storage.query(p),
            None => Err(VoxelError::InvalidBounds { bounds: self.grid.sector_bounds(key) }),
        }
    }

    /// Writes `m` at `p`: applied now when its sector is resident, kept in
    /// the sector's edits either way (`EDITS_KEPT`), so a sector not
    /// resident comes in with it.
    ///
    /// # Errors
    /// [`VoxelError::OutOfBounds`] outside the world;
    /// [`VoxelError::Backlogged`] for a voxel not edited before when
    /// `max_edits` voxels are kept already.
    pub fn update(&mut self, p: IVec3, m: MaterialId) -> Result<(), VoxelError> {
        let key = self.grid.sector_of(p)?;
        self.edits
            .record(key, p, m, self.settings.max_edits)
            .map_err(|capacity| VoxelError::Backlogged { capacity })?;
        if let Some(s) = self.sectors.get_mut(&key) {
            s.storage.update(p, m)?;
        }
        self.log_change(p, m);
        Ok(())
    }

    /// Says where the world must be resident from the next tick on.
    pub fn set_interest(&mut self, interest: &[Interest]) {
        self.interest.clear();
        self.interest.extend_from_slice(interest);
    }

    /// One round of residency: installs the sectors generated since the last
    /// tick, asks for the ones the interest wants (nearest first, at most
    /// `max_in_flight` at once), and evicts the least recently wanted ones
    /// while over the budget. Never waits.
    pub fn tick(&mut self) {
        self.tick += 1;
        #[cfg(feature = "persistence")]
        self.note_acknowledged();
        self.wanted = self.wanted();
        self.pager.set_wanted(&self.wanted);
        while let Some(generated) = self.pager.try_done() {
            self.install(generated, false);
        }
        let tick = self.tick;
        for k in 0..self.wanted.len() {
            let key = self.wanted[k];
            if let Some(s) = self.sectors.get_mut(&key) {
                s.wanted = tick;
            } else if self.pager.in_flight() < self.settings.max_in_flight.max(1) {
                self.pager.request(&self.generator, &self.grid, key);
            }
        }
        self.evict();
        let (pager, reading) = (&self.pager, &self.reading);
        self.edits.prune_acknowledged(|k| pager.is_asked(k) || reading.contains_key(&k));
        self.refresh_stats();
    }

    /// Ticks, waiting for the generation each time, until every sector the
    /// interest wants is resident: for tools and tests.
    pub fn tick_until_resident(&mut self) {
        loop {
            self.tick();
            if self.wanted.iter().all(|k| self.sectors.contains_key(k)) {
                return;
            }
            match self.pager.wait_done() {
                Some(generated) => self.install(generated, true),
                // No pager thread: generate here.
                None => {
                    for k in 0..self.wanted.len() {
                        let key = self.wanted[k];
                        if !self.sectors.contains_key(&key) {
                            let now = std::time::Instant::now();
                            self.install(self.maker.make(&self.generator, &self.grid, key, now), true);
                        }
                    }
                }
            }
        }
    }

    /// What it holds and did.
    pub fn stats(&self) -> PagingStats {
        #[cfg(feature = "persistence")]
        let file_bytes = self.file.as_ref().map_or(0, |f| f.bytes());
        #[cfg(not(feature = "persistence"))]
        let file_bytes = 0;
        PagingStats { file_bytes, edits: self.edits.count(), ..self.stats.clone() }
    }

    /// The time each of the last 4,096 page-ins took, from its request to
    /// its install, oldest first.
    pub fn page_in_times(&self) -> Vec<Duration> {
        self.page_ins.iter().copied().collect()
    }

    /// Reads so far, and those that found their sector not resident.
    pub fn reads(&self) -> (u64, u64) {
        (self.reads.load(Ordering::Relaxed), self.reads_not_resident.load(Ordering::Relaxed))
    }

    /// The sectors the interest wants, nearest first (then by key: the same
    /// order on every run), at most `max_wanted`.
    fn wanted(&self) -> Vec<IVec2> {
        let most = self.settings.max_wanted.max(1);
        let mut keys = Vec::new();
        for i in &self.interest {
            self.grid.sectors_around(i.center, i.radius, most, &mut keys);
            // Where its motion takes it; none for a velocity or time that is
            // not finite (a cast saturates: any finite value is a place).
            let ahead = i.velocity * self.settings.prefetch_seconds.max(0.0);
            if ahead.is_finite() {
                let to = |c: i32, d: f32| (f64::from(c) + f64::from(d)) as i32;
                let ahead = IVec3::new(to(i.center.x, ahead.x), i.center.y, to(i.center.z, ahead.z));
                self.grid.sectors_around(ahead, i.radius, most, &mut keys);
            }
        }
        let mut wanted: Vec<(i64, IVec2)> = keys
            .into_iter()
            .map(|k| (self.interest.iter().map(|i| self.grid.distance2(k, i.center)).min().unwrap_or(0), k))
            .collect();
        wanted.sort_by_key(|&(d, k)| (d, k.x, k.y));
        let mut seen = crate::hash::fast_set();
        wanted.into_iter().filter(|(_, k)| seen.insert(*k)).map(|(_, k)| k).take(most).collect()
    }

    /// Makes a sector made by the pager resident, the edits memory keeps
    /// applied (`EXACT`); unless `asked` (a blocking read or a wait), not one
    /// the interest has stopped wanting while the budget has no room for it.
    fn install(&mut self, generated: Generated, asked: bool) {
        let Generated { key, made, requested } = generated;
        let made = match made {
            Ok(made) => made,
            Err(why) => {
                self.stats.failed += 1;
                self.stats.last_failure = Some(why);
                return;
            }
        };
        // Made from the file before a batch memory has since let go of:
        // asked for again.
        if self.sectors.contains_key(&key) {
            return;
        }
        if self.edits.stale(key, made.read_at) {
            self.stats.made_again += 1;
            return;
        }
        let stale = !asked && !self.wanted.contains(&key);
        if stale && self.resident_bytes() + made.base_bytes > self.settings.resident_budget {
            return;
        }
        let mut storage = made.storage;
        storage.advance_clock(self.now().saturating_sub(storage.now()));
        let edits = self.edits.for_sector(key);
        if !edits.is_empty() {
            storage.batch_update(edits.into_iter().map(|(p, m)| MaterialUpdate::new(p, m)));
        }
        let consolidations = storage.stats().consolidation.finished.total();
        let sector = Sector { storage, base_bytes: made.base_bytes, consolidations, wanted: self.tick };
        self.sectors.insert(key, sector);
        self.coarse.forget(key);
        self.stats.generated += 1;
        if self.page_ins.len() == PAGE_INS_KEPT {
            self.page_ins.pop_front();
        }
        self.page_ins.push_back(requested.elapsed());
    }

    /// Evicts the least recently wanted sectors not in `wanted` while the
    /// resident bytes pass the budget (`BOUNDED`).
    fn evict(&mut self) {
        let mut bytes = self.resident_bytes();
        if bytes <= self.settings.resident_budget {
            return;
        }
        // Wanted this tick: not a candidate (the stamp says it, no search).
        let tick = self.tick;
        let mut candidates: Vec<(u64, IVec2)> =
            self.sectors.iter().filter(|(_, s)| s.wanted != tick).map(|(k, s)| (s.wanted, *k)).collect();
        candidates.sort_by_key(|&(t, k)| (t, k.x, k.y));
        for (_, key) in candidates {
            if bytes <= self.settings.resident_budget {
                break;
            }
            if let Some(s) = self.sectors.remove(&key) {
                bytes = bytes.saturating_sub(Self::bytes_of(&s));
                self.stats.evicted += 1;
                let sector = self.grid.sector_bounds(key);
                if let Ok(coarse) = s.storage.base().region(sector, reads::COARSE_LOD) {
                    self.coarse.keep(key, coarse, self.settings.max_coarse);
                }
            }
        }
        if bytes > self.settings.resident_budget {
            self.stats.over_budget += 1;
        }
    }

    fn bytes_of(s: &Sector) -> usize {
        s.base_bytes + s.storage.stats().overlay_bytes + s.storage.surface_bytes()
    }

    fn resident_bytes(&self) -> usize {
        self.sectors.values().map(Self::bytes_of).sum()
    }

    /// Measures again the base of every sector whose storage consolidated
    /// since it was last measured (a walk of its tree: rare).
    fn remeasure(&mut self) {
        for s in self.sectors.values_mut() {
            let done = s.storage.stats().consolidation.finished.total();
            if done != s.consolidations {
                s.consolidations = done;
                s.base_bytes = s.storage.base().stats().bytes;
            }
        }
    }

    fn refresh_stats(&mut self) {
        self.remeasure();
        let bytes = self.resident_bytes();
        self.stats.resident_sectors = self.sectors.len();
        self.stats.resident_bytes = bytes;
        self.stats.peak_resident_bytes = self.stats.peak_resident_bytes.max(bytes);
        self.stats.edits = self.edits.count();
        self.stats.edit_bytes = self.edits.bytes();
        self.stats.coarse_sectors = self.coarse.len();
        self.stats.coarse_bytes = self.coarse.bytes();
        self.stats.in_flight = self.pager.in_flight();
        self.stats.flushing = self.edits.flushing();
    }
}
