//! [`DeltaStorage`]: the facade users hold, a base index under a delta overlay.
//!
//! # Consistency
//!
//! Reads go active layer → frozen layer (deltas of the consolidation in flight) →
//! base. A delta stays readable in the frozen layer until the base holds it, and
//! updates made while a job is out land in the active layer above it, so
//! `query(p)` always equals the initial world plus every accepted update in order,
//! and never waits for a consolidation.

mod batch;
mod config;
mod consolidate;
mod reader;
mod spatial;

pub use config::DeltaConfig;
pub use reader::Reader;
pub use spatial::DeltaEntry;

use crate::metrics::{Counters, OverlayStats};
use crate::overlay::{BrickKey, Delta, Overlay, WriteEffect, brick_range};
use crate::{Aabb, BaseIndex, MaterialId, Region, VoxelError};
use batch::BatchScratch;
use glam::IVec3;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// An update refused by [`DeltaStorage::batch_update`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RejectedUpdate {
    /// The refused position.
    pub position: IVec3,
    /// The material it would have written.
    pub material: MaterialId,
    /// Why.
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

/// The consolidation in flight.
#[derive(Clone, Debug)]
struct InFlight {
    generation: u64,
    /// The bricks holding its frozen deltas.
    bricks: Vec<BrickKey>,
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
/// assert_eq!(world.delta_count(), 1);
///
/// // Consolidate off the main thread: begin, run anywhere, finish.
/// let job = world.begin_consolidation(world.config().strategy).unwrap();
/// world.update(p, MaterialId(6))?; // lands above the job; reads stay exact
/// let output = std::thread::spawn(move || job.run()).join().unwrap();
/// world.finish_consolidation(output);
/// assert_eq!(world.base().get(p)?, MaterialId(5));
/// assert_eq!(world.query(p)?, MaterialId(6));
///
/// world.update(p, MaterialId(5))?; // back to what the base holds: the delta goes
/// assert_eq!(world.delta_count(), 0);
/// # Ok::<(), bevy_delta_overlay::VoxelError>(())
/// ```
#[derive(Clone, Debug)]
pub struct DeltaStorage {
    base: BaseIndex,
    /// Active and frozen deltas; frozen ones exist exactly while a job is in flight.
    overlay: Overlay,
    in_flight: Option<InFlight>,
    config: DeltaConfig,
    /// Storage clock in milliseconds, advanced by the caller; saturates after
    /// 49.7 days.
    clock_ms: u32,
    /// Clock of the last automatic consolidation attempt.
    last_attempt_ms: u32,
    generation: u64,
    counters: Counters,
    /// Reused by the lazy strategy's selection.
    scratch_times: Vec<u32>,
    /// `batch_update`'s reused buffers.
    batch: BatchScratch,
}

impl DeltaStorage {
    /// A storage over `base` with no deltas.
    pub fn new(base: BaseIndex, config: DeltaConfig) -> Self {
        Self {
            base,
            overlay: Overlay::default(),
            in_flight: None,
            config: config.normalized(),
            clock_ms: 0,
            last_attempt_ms: 0,
            generation: 0,
            counters: Counters::default(),
            scratch_times: Vec::new(),
            batch: BatchScratch::default(),
        }
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
        Duration::from_millis(u64::from(self.clock_ms))
    }

    /// Advances the storage clock that delta ages are measured on. Milliseconds
    /// resolution; saturates after 49.7 days.
    pub fn advance_clock(&mut self, dt: Duration) {
        let ms = u32::try_from(dt.as_millis()).unwrap_or(u32::MAX);
        self.clock_ms = self.clock_ms.saturating_add(ms);
    }

    /// The material at `p`: active layer, then frozen layer, then base.
    ///
    /// # Errors
    /// [`VoxelError::OutOfBounds`] when `p` is outside the world.
    #[inline]
    pub fn query(&self, p: IVec3) -> Result<MaterialId, VoxelError> {
        self.base.check(p)?;
        let (key, local) = BrickKey::split(p);
        if let Some(d) = self.overlay_get(key, local) {
            self.counters.delta_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(d);
        }
        self.counters.base_hits.fetch_add(1, Ordering::Relaxed);
        Ok(self.base.get_unchecked(p))
    }

    /// The overlay's value at a voxel, if it has one.
    #[inline]
    fn overlay_get(&self, key: BrickKey, local: u16) -> Option<MaterialId> {
        self.overlay.get(key, local).map(|d| d.material)
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

    /// True when `p` holds a delta (active or frozen).
    ///
    /// # Errors
    /// [`VoxelError::OutOfBounds`] when `p` is outside the world.
    pub fn has_delta(&self, p: IVec3) -> Result<bool, VoxelError> {
        self.base.check(p)?;
        let (key, local) = BrickKey::split(p);
        Ok(self.overlay_get(key, local).is_some())
    }

    /// Number of deltas: active plus frozen entries. Never a separate counter.
    pub fn delta_count(&self) -> usize {
        self.overlay.len()
    }

    /// Writes `m` at `p` through the overlay: `O(1)` expected.
    ///
    /// Writing the material beneath the active layer removes the voxel's delta
    /// instead of storing one (revert elision). Past the hard cap this
    /// consolidates synchronously before returning (backpressure).
    ///
    /// # Errors
    /// [`VoxelError::OutOfBounds`] when `p` is outside the world; counted in
    /// [`OverlayStats::rejects`], nothing else changes.
    #[inline]
    pub fn update(&mut self, p: IVec3, m: MaterialId) -> Result<(), VoxelError> {
        if let Err(e) = self.base.check(p) {
            self.counters.rejects += 1;
            return Err(e);
        }
        self.counters.updates += 1;
        let (key, local) = BrickKey::split(p);
        self.write(key, local, m);
        Ok(())
    }

    /// Writes a checked voxel, then enforces the cap (the caller counts the update).
    #[inline]
    fn write(&mut self, key: BrickKey, local: u16, m: MaterialId) {
        let base = &self.base;
        match self.overlay.write(key, local, m, self.clock_ms, || base.get_unchecked(key.position(local))) {
            WriteEffect::Reverted => self.counters.reverts += 1,
            WriteEffect::Unchanged => self.counters.unchanged += 1,
            WriteEffect::Inserted | WriteEffect::Overwritten => {}
        }
        self.enforce_cap();
    }

    /// Reads every cell at level `lod` overlapping `bounds`. At level 0 the overlay
    /// is applied and the result is exact, at a cost proportional to the deltas
    /// inside the region; coarser levels come from the base (see
    /// [`query_lod`](Self::query_lod)).
    ///
    /// # Errors
    /// As [`BaseIndex::region`].
    pub fn query_region(&self, bounds: Aabb, lod: u8) -> Result<Region, VoxelError> {
        let mut region = self.base.region(bounds, lod)?;
        if lod == 0 {
            for_bricks_in(&self.overlay, &bounds, |key, deltas| {
                for d in self.overlay.visible(deltas) {
                    if let Some(i) = region.index_of(key.position(d.local())) {
                        region.as_mut_slice()[i] = d.material;
                    }
                }
            });
        }
        Ok(region)
    }

    /// A snapshot of the counters and figures: `O(1)`.
    pub fn stats(&self) -> OverlayStats {
        let c = &self.counters;
        let finished = c.finished();
        OverlayStats {
            delta_count: self.delta_count(),
            frozen_count: self.overlay.frozen_len(),
            in_flight: self.in_flight.is_some(),
            utilization: self.delta_count() as f32 / self.config.threshold as f32,
            overlay_bytes: self.overlay.bytes(),
            mean_delta_age: self
                .overlay
                .mean_written_at()
                .map_or(Duration::ZERO, |t| Duration::from_millis(u64::from(self.clock_ms) - t)),
            delta_hits: c.delta_hits.load(Ordering::Relaxed),
            base_hits: c.base_hits.load(Ordering::Relaxed),
            updates: c.updates,
            reverts: c.reverts,
            unchanged: c.unchanged,
            rejects: c.rejects,
            forced_consolidations: c.forced,
            consolidations: c.consolidations,
            adaptive_choices: c.adaptive_choices,
            cancelled_jobs: c.cancelled,
            discarded_outputs: c.discarded,
            deltas_consolidated: c.deltas_consolidated,
            last_consolidation: c.last,
            mean_consolidation_time: if finished == 0 { Duration::ZERO } else { c.total_time / finished as u32 },
            max_consolidation_time: c.max_time,
            max_finish_time: c.max_finish,
        }
    }

    /// Checks the overlay's invariants (debug builds).
    fn debug_check(&self) {
        #[cfg(debug_assertions)]
        {
            self.overlay.check();
            debug_assert_eq!(
                self.overlay.frozen_len() > 0,
                self.in_flight.is_some(),
                "frozen deltas exist exactly while a job is in flight"
            );
        }
    }
}

/// Calls `f` for every brick of `layer` that overlaps `bounds`, probing the
/// bricks of the box or scanning the layer, whichever is fewer.
pub(crate) fn for_bricks_in(layer: &Overlay, bounds: &Aabb, mut f: impl FnMut(BrickKey, &[Delta])) {
    if layer.len() == 0 || bounds.is_empty() {
        return;
    }
    let range = brick_range(bounds);
    if range.volume() <= layer.brick_count() as u64 {
        for z in range.min.z..range.max.z {
            for y in range.min.y..range.max.y {
                for x in range.min.x..range.max.x {
                    let key = BrickKey::of_brick(IVec3::new(x, y, z));
                    if let Some((deltas, _)) = layer.brick(key) {
                        f(key, deltas);
                    }
                }
            }
        }
    } else {
        for (key, deltas) in layer.iter() {
            if range.contains(key.brick()) {
                f(key, deltas);
            }
        }
    }
}
