//! [`DeltaStorage`]: the facade users hold, a base index under a delta overlay.
//!
//! # Consistency
//!
//! Reads go active layer → sealed layers → base. A delta stays readable in a
//! sealed layer until the base holds it, and updates made while a consolidation
//! is out land in the active layer above it, so `query(p)` always equals the
//! initial world plus every accepted update in order, and never waits for a
//! consolidation.

mod batch;
mod changes;
mod consolidate;
mod feed;
mod reader;
mod snapshot;
mod spatial;
mod stats;
mod surface;
mod surface_build;

pub use feed::{ChangeBatch, FeedError, FinishedConsolidation};
pub use reader::Reader;
pub use snapshot::{SnapshotNode, WorldSnapshot};
pub use spatial::DeltaEntry;
pub use stats::OverlayStats;
pub use surface_build::SurfaceBuild;

use crate::base::{BaseIndex, Region};
use crate::consolidation::{Consolidator, DeltaConfig};
use crate::coords::Aabb;
use crate::coords::brick::BrickKey;
use crate::error::VoxelError;
use crate::material::{MaterialId, MaterialUpdate};
use crate::overlay::{Overlay, WriteEffect};
use crate::surface::SurfaceIndex;
use batch::BatchScratch;
use feed::Feed;
use glam::IVec3;
use stats::Counters;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// An update refused: by [`DeltaStorage::batch_update`], and (a message, with
/// the plugin) by the frame's ingest. Everything else in the same batch or
/// frame was applied.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "plugin", derive(bevy::prelude::Message))]
pub struct RejectedUpdate {
    /// The refused update.
    pub update: MaterialUpdate,
    /// Why it was refused.
    pub error: VoxelError,
}

/// What [`DeltaStorage::batch_update`] did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchOutcome {
    /// Updates accepted and applied.
    pub applied: usize,
    /// Updates refused, in input order (allocates only when something is refused).
    pub rejected: Vec<RejectedUpdate>,
}

/// A voxel world: a [`BaseIndex`] under an O(1) delta overlay, consolidated in bulk.
///
/// ```
/// use bevy_delta_overlay::{Aabb, BaseIndex, DeltaConfig, DeltaStorage, MaterialId};
/// use glam::IVec3;
///
/// let base = BaseIndex::uniform(Aabb::new(IVec3::ZERO, IVec3::splat(64)), MaterialId(1))?;
/// let mut world = DeltaStorage::new(base, DeltaConfig::default());
/// let p = IVec3::new(10, 20, 30);
/// world.update(p, MaterialId(5))?;
/// assert_eq!(world.query(p)?, MaterialId(5));
/// assert_eq!((world.delta_count(), world.sequence()), (1, 1));
///
/// // Consolidate off the main thread: begin, run anywhere, finish.
/// let job = world.begin_consolidation(world.config().strategy).unwrap();
/// world.update(p, MaterialId(6))?; // lands above the job; reads stay exact
/// let output = std::thread::spawn(move || job.run()).join().unwrap();
/// world.finish_consolidation(output).unwrap();
/// assert_eq!(world.base().get(p)?, MaterialId(5));
/// assert_eq!(world.query(p)?, MaterialId(6));
///
/// world.update(p, MaterialId(5))?; // back to what the base holds: the delta goes
/// assert_eq!(world.delta_count(), 0);
/// # Ok::<(), bevy_delta_overlay::VoxelError>(())
/// ```
#[derive(Clone, Debug)]
#[cfg_attr(feature = "plugin", derive(bevy::prelude::Resource))]
pub struct DeltaStorage {
    base: BaseIndex,
    overlay: Overlay,
    consolidator: Consolidator,
    config: DeltaConfig,
    /// Storage clock in milliseconds, advanced by the caller.
    clock_ms: u64,
    counters: Counters,
    feed: Feed,
    /// `batch_update`'s reused buffers.
    batch: BatchScratch,
    /// The surface index, when kept (see `surface.rs`).
    surfaces: Option<Box<SurfaceIndex>>,
    /// The surface log's next number while no index is kept.
    surface_log_next: u64,
    /// Changed positions of built surface columns, packed, to settle.
    surface_dirty: Vec<u64>,
    /// Which storage value this is (see [`world_id`](Self::world_id)).
    id: WorldId,
}

/// Identifies one storage value: a new number for every storage made, clones
/// included (a clone's history parts from the original's with its next write).
#[derive(Debug)]
struct WorldId(u64);

impl WorldId {
    fn fresh() -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Self(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
    }
}

impl Clone for WorldId {
    fn clone(&self) -> Self {
        Self::fresh()
    }
}

impl DeltaStorage {
    /// The recording capacity the plugin uses: 2^20 changes between drains.
    pub const DEFAULT_CHANGE_CAPACITY: usize = 1 << 20;

    /// A storage over `base` with no deltas; its first change will be number 1.
    pub fn new(base: BaseIndex, config: DeltaConfig) -> Self {
        Self::resume(base, config, 0)
    }

    /// A storage over `base`, which holds the world as of change `sequence`:
    /// its next change will be number `sequence + 1`. How a world loaded from a
    /// file or a network snapshot goes on numbering.
    pub fn resume(base: BaseIndex, config: DeltaConfig, sequence: u64) -> Self {
        let feed = Feed::new(base.bounds(), sequence);
        Self {
            base,
            overlay: Overlay::default(),
            consolidator: Consolidator::default(),
            config: config.normalized(),
            clock_ms: 0,
            counters: Counters::default(),
            feed,
            batch: BatchScratch::default(),
            surfaces: None,
            surface_log_next: 0,
            surface_dirty: Vec::new(),
            id: WorldId::fresh(),
        }
    }

    /// A number naming this storage value, unique in the process: a storage
    /// made by `new`, `resume` or `clone` gets a new one, writes keep it. A
    /// consumer of the change feed that sees it change knows the world was
    /// replaced (a new game, a load), not changed: replication sends every
    /// client the new world.
    pub fn world_id(&self) -> u64 {
        self.id.0
    }

    /// The consolidated world under the overlay. Coarse LOD reads come from here.
    pub fn base(&self) -> &BaseIndex {
        &self.base
    }

    /// The world's bounds.
    pub fn bounds(&self) -> Aabb {
        self.base.bounds()
    }

    /// The current configuration (normalized).
    pub fn config(&self) -> &DeltaConfig {
        &self.config
    }

    /// Replaces the configuration; it takes effect at once: if the overlay now
    /// holds more than the new hard cap, it consolidates before returning.
    pub fn set_config(&mut self, config: DeltaConfig) {
        self.config = config.normalized();
        self.enforce_cap();
    }

    /// The storage clock: time as the caller has advanced it.
    pub fn now(&self) -> Duration {
        Duration::from_millis(self.clock_ms)
    }

    /// Advances the storage clock that delta ages are measured on: millisecond
    /// resolution, 64 bits (584 million years; it saturates there).
    pub fn advance_clock(&mut self, dt: Duration) {
        let ms = u64::try_from(dt.as_millis()).unwrap_or(u64::MAX);
        self.clock_ms = self.clock_ms.saturating_add(ms);
    }

    /// Local position of `p`, or why it is refused.
    #[inline]
    fn local(&self, p: IVec3) -> Result<IVec3, VoxelError> {
        self.base.check(p)?;
        Ok(p - self.base.bounds().min)
    }

    /// The material at `p`: active layer, then sealed layers, then base.
    ///
    /// # Errors
    /// [`VoxelError::OutOfBounds`] when `p` is outside the world.
    #[inline]
    pub fn query(&self, p: IVec3) -> Result<MaterialId, VoxelError> {
        let q = self.local(p)?;
        let (key, local) = BrickKey::split(q);
        if let Some(d) = self.overlay.get(key, local) {
            self.counters.delta_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(d.material);
        }
        self.counters.base_hits.fetch_add(1, Ordering::Relaxed);
        Ok(self.base.get_local(q))
    }

    /// The value of the level-`lod` cell holding `p`. Level 0 is exact
    /// ([`query`](Self::query)); coarser levels come from the base and show
    /// deltas once they are consolidated.
    ///
    /// # Errors
    /// As [`BaseIndex::get_lod`].
    pub fn query_lod(&self, p: IVec3, lod: u8) -> Result<MaterialId, VoxelError> {
        if lod == 0 {
            return self.query(p);
        }
        self.base.get_lod(p, lod)
    }

    /// True when the overlay holds a value for `p` (in any layer).
    ///
    /// # Errors
    /// [`VoxelError::OutOfBounds`] when `p` is outside the world.
    pub fn has_delta(&self, p: IVec3) -> Result<bool, VoxelError> {
        let (key, local) = BrickKey::split(self.local(p)?);
        Ok(self.overlay.get(key, local).is_some())
    }

    /// Number of deltas the overlay holds, over all its layers: each layer holds
    /// at most one per voxel, so this is the number of voxels the overlay holds a
    /// value for, plus the voxels written again after the last consolidation
    /// began, which hold one in an older layer too until the next consolidation
    /// merges them. The threshold and the hard cap count in these units (they
    /// are what memory holds). With one layer, it is exactly the number of
    /// voxels that differ from the base.
    pub fn delta_count(&self) -> usize {
        self.overlay.len()
    }

    /// Writes `m` at `p` through the overlay: `O(1)` expected.
    ///
    /// Writing the material beneath the active layer removes the voxel's delta
    /// instead of storing one (revert elision); writing the material the voxel
    /// already reads as is no change at all. Past the hard cap this consolidates
    /// synchronously before returning (backpressure).
    ///
    /// # Errors
    /// [`VoxelError::OutOfBounds`] when `p` is outside the world; counted in
    /// [`OverlayStats::rejects`], nothing else changes.
    #[inline]
    pub fn update(&mut self, p: IVec3, m: MaterialId) -> Result<(), VoxelError> {
        let q = match self.local(p) {
            Ok(q) => q,
            Err(e) => {
                self.counters.rejects += 1;
                return Err(e);
            }
        };
        self.counters.updates += 1;
        self.build_surface_tiles_of(std::iter::once(q));
        let (key, local) = BrickKey::split(q);
        if self.write(key, local, m).changed() {
            self.feed.push(p, m);
            self.note_surface(q);
            self.settle_surfaces();
        }
        self.enforce_cap();
        Ok(())
    }

    /// The material at local position `q` (in the world), exactly, without
    /// counting the read.
    #[inline]
    pub(crate) fn read_local(&self, q: IVec3) -> MaterialId {
        let (key, local) = BrickKey::split(q);
        match self.overlay.get(key, local) {
            Some(d) => d.material,
            None => self.base.get_local(q),
        }
    }

    /// Writes a checked voxel into the active layer and counts what it did (the
    /// caller numbers the change and enforces the cap).
    #[inline]
    fn write(&mut self, key: BrickKey, local: u16, m: MaterialId) -> WriteEffect {
        let base = &self.base;
        let effect = self.overlay.write(key, local, m, self.clock_ms, || base.get_local(key.position(local)));
        match effect {
            WriteEffect::Reverted => self.counters.reverts += 1,
            WriteEffect::Unchanged => self.counters.unchanged += 1,
            WriteEffect::Inserted | WriteEffect::Overwritten => {}
        }
        effect
    }

    /// Reads every cell at level `lod` overlapping `bounds`. At level 0 the overlay
    /// is applied and the result is exact, at a cost proportional to the deltas
    /// inside the region; coarser levels come from the base (see
    /// [`query_lod`](Self::query_lod)).
    ///
    /// # Errors
    /// As [`BaseIndex::region`].
    pub fn query_region(&self, bounds: Aabb, lod: u8) -> Result<Region, VoxelError> {
        let mut region = Region::default();
        if lod == 0 {
            self.read_region(bounds, &mut region)?;
        } else {
            self.base.read_region(bounds, lod, &mut region)?;
        }
        Ok(region)
    }

    /// Reads every voxel of `bounds` into `out`, exactly (the overlay applied),
    /// reusing `out`'s memory: uniform nodes filled, bricks copied row by row,
    /// then each delta in the box written. A reader going box after box (a
    /// mesher, a tool) allocates only when a box is larger than any before.
    /// [`WorldSnapshot::read_region`] does the same on any thread.
    ///
    /// ```
    /// use bevy_delta_overlay::{Aabb, BaseIndex, DeltaConfig, DeltaStorage, MaterialId, base::Region};
    /// use glam::IVec3;
    /// let base = BaseIndex::uniform(Aabb::new(IVec3::ZERO, IVec3::splat(64)), MaterialId(1))?;
    /// let mut world = DeltaStorage::new(base, DeltaConfig::default());
    /// world.update(IVec3::new(3, 4, 5), MaterialId(2))?;
    /// let mut cells = Region::default();
    /// world.read_region(Aabb::new(IVec3::ZERO, IVec3::splat(8)), &mut cells)?;
    /// assert_eq!(cells.get(IVec3::new(3, 4, 5)), Some(MaterialId(2)));
    /// assert_eq!(cells.as_slice().len(), 512);
    /// # Ok::<(), bevy_delta_overlay::VoxelError>(())
    /// ```
    ///
    /// # Errors
    /// As [`BaseIndex::region`] at level 0; `out` is then unchanged.
    pub fn read_region(&self, bounds: Aabb, out: &mut Region) -> Result<(), VoxelError> {
        self.base.read_region(bounds, 0, out)?;
        let layers: smallvec::SmallVec<[&crate::overlay::Layer; 4]> = self.overlay.layers().collect();
        crate::overlay::apply_to_region(&layers, self.bounds().min, bounds, out);
        Ok(())
    }

    /// A snapshot of the counters and figures: `O(layers)`.
    pub fn stats(&self) -> OverlayStats {
        let c = &self.counters;
        let deltas = self.delta_count();
        OverlayStats {
            delta_count: deltas,
            sealed_layers: self.overlay.sealed().len(),
            sealed_deltas: self.overlay.sealed().iter().map(|l| l.len()).sum(),
            in_flight: self.consolidator.in_flight(),
            utilization: deltas as f32 / self.config.threshold as f32,
            overlay_bytes: self.overlay.bytes(),
            mean_delta_age: self
                .overlay
                .mean_written_at()
                .map_or(Duration::ZERO, |t| Duration::from_millis(self.clock_ms.saturating_sub(t))),
            sequence: self.feed.sequence,
            changes_dropped: self.feed.dropped,
            delta_hits: c.delta_hits.load(Ordering::Relaxed),
            base_hits: c.base_hits.load(Ordering::Relaxed),
            updates: c.updates,
            reverts: c.reverts,
            unchanged: c.unchanged,
            rejects: c.rejects,
            consolidation: self.consolidator.stats(),
        }
    }
}
