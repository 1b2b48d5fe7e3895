//! Thermal erosion: loose material on a slope steeper than its angle of
//! repose slides down to lower neighbouring columns, one voxel at a time,
//! until the slope rests.
//!
//! The rule is `slope.rs`'s: slopes are measured in the eight
//! directions (diagonals over runs of `sqrt(2)` a step) over up to `reach`
//! columns, against integer drops precomputed from each material's angle
//! once a frame; an unstable top sheds towards the lower neighbours in
//! proportion to how far each is too steep. At the default reach of 4 a pile
//! rests at its material's angle along axes and diagonals alike (a 34° pile
//! at 36° to 37° along the axes, 35° along the diagonals).
//!
//! Driven by change: the columns whose surface changed since the last frame
//! (from the storage's surface log: a column whose top rose, a column whose
//! top fell and the columns within `reach` that could now slide onto it) are
//! queued, each once; a frame checks at most `checks_per_frame` of them,
//! oldest first, and a small random trickle that finds what no change pointed
//! at (the log follows the tiles of the surface index that were read). A slide
//! changes two surfaces: the log brings their neighbours to the next frame's
//! queue, so a landslide spreads a ring a frame.

use super::process::{GeologyProcess, GeologySystems};
use super::queue::ColumnQueue;
use super::rng::Rng;
use super::slope::{Around, DEFAULT_REACH, ReposeTable, UphillQueue, shed};
use super::state::{StateError, StateReader, StateWriter};
use super::terrain::Terrain;
use crate::material::Form;
use crate::storage::DeltaStorage;
use crate::surface::{Surface, SurfaceChanges, SurfaceCursor};
#[cfg(feature = "plugin")]
use bevy::prelude::ReflectResource;
use glam::IVec2;

/// How loose slopes relax. A reflectable resource with the plugin.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "plugin", derive(bevy::prelude::Resource, bevy::reflect::Reflect))]
#[cfg_attr(feature = "plugin", reflect(Resource))]
pub struct ThermalSettings {
    /// Random columns checked per frame, besides the queued ones: a trickle.
    /// Default 32.
    pub columns_per_frame: u32,
    /// Columns queued for a check, at most (the oldest dropped past it, and
    /// counted). Default 65,536.
    pub queue_cap: usize,
    /// Queued columns checked per frame, at most: the frame's budget. Default
    /// 2,000.
    pub checks_per_frame: u32,
    /// Voxels one column may shed per check. Default 4.
    pub max_slides_per_column: u32,
    /// Columns over which a slope is measured, `1..=8` (more counts as 8): the
    /// angle is resolved to `atan(tan(angle) + 1 / reach)` at worst. Default 4.
    pub reach: i32,
    /// Whether it runs. Default true.
    pub enabled: bool,
    /// The seed of the columns checked. Default 2.
    pub seed: u64,
}

impl Default for ThermalSettings {
    fn default() -> Self {
        Self {
            columns_per_frame: 32,
            queue_cap: 1 << 16,
            checks_per_frame: 2000,
            max_slides_per_column: 4,
            reach: DEFAULT_REACH,
            enabled: true,
            seed: 2,
        }
    }
}

/// What thermal erosion did, since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "plugin", derive(bevy::reflect::Reflect))]
pub struct ThermalStats {
    /// Columns checked.
    pub columns: u64,
    /// Voxels that slid (each removed from one column and laid on another:
    /// removed = deposited = `slid`).
    pub slid: u64,
    /// Queued checks dropped because the queue was full.
    pub dropped: u64,
    /// Surface changes the process missed: dropped from the storage's log
    /// before it read them (the process was disabled, or fell behind).
    pub missed: u64,
    /// Columns queued for a check now.
    pub queued: u64,
    /// Edits written.
    pub edits: u64,
}

/// Thermal erosion, the process: the columns waiting for a check, the random
/// state, and what it did. A frame of it ([`GeologyProcess::step`]) checks the
/// queued columns, then random ones.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "plugin", derive(bevy::prelude::Resource, bevy::reflect::Reflect))]
#[cfg_attr(feature = "plugin", reflect(Resource))]
pub struct ThermalErosion {
    #[cfg_attr(feature = "plugin", reflect(ignore))]
    rng: Rng,
    /// The seed its random numbers started from.
    #[cfg_attr(feature = "plugin", reflect(ignore))]
    seed: u64,
    #[cfg_attr(feature = "plugin", reflect(ignore))]
    queue: ColumnQueue,
    /// The palette's angles as drops, rebuilt each frame.
    #[cfg_attr(feature = "plugin", reflect(ignore))]
    repose: ReposeTable,
    /// Where it is in the storage's surface log.
    cursor: SurfaceCursor,
    /// What the process did, since it started.
    pub stats: ThermalStats,
}

impl ThermalErosion {
    /// Columns queued for a check.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Queues the columns of `changes` (read from the cursor on).
    fn queue_changes(&mut self, changes: SurfaceChanges<'_>, cap: usize) {
        self.stats.missed += changes.missed;
        for change in changes {
            // A fallen top: what stands within reach may slide onto it now.
            let mark = if change.after < change.before { CHECK | FELL } else { CHECK };
            self.queue.push(change.column, mark, cap);
        }
    }
}

impl GeologyProcess for ThermalErosion {
    type Settings = ThermalSettings;
    const NAME: &'static str = "thermal erosion";
    const SET: GeologySystems = GeologySystems::Thermal;

    fn new(settings: &ThermalSettings) -> Self {
        Self {
            rng: Rng::new(settings.seed ^ 0x7468_6572),
            seed: settings.seed,
            queue: ColumnQueue::default(),
            repose: ReposeTable::default(),
            cursor: SurfaceCursor::default(),
            stats: ThermalStats::default(),
        }
    }

    fn enabled(settings: &ThermalSettings) -> bool {
        settings.enabled
    }

    fn reseed(&mut self, settings: &ThermalSettings) {
        if settings.seed != self.seed {
            self.rng = Rng::new(settings.seed ^ 0x7468_6572);
            self.seed = settings.seed;
        }
    }

    fn step(&mut self, terrain: &mut Terrain<'_>, settings: &ThermalSettings) {
        if settings.enabled {
            slides(terrain, settings, self);
        }
    }

    fn save(&mut self, storage: &DeltaStorage, settings: &ThermalSettings, out: &mut StateWriter) {
        let mut cursor = self.cursor;
        self.queue_changes(storage.surface_changes(&mut cursor), settings.queue_cap);
        self.cursor = cursor;
        out.u8(1);
        out.u64(self.rng.state());
        out.u64(self.seed);
        self.queue.save(out);
    }

    fn restore(&mut self, storage: &DeltaStorage, input: &mut StateReader<'_>) -> Result<(), StateError> {
        input.version(1)?;
        self.rng = Rng::new(input.u64()?);
        self.seed = input.u64()?;
        self.queue = ColumnQueue::restore(input)?;
        self.cursor = storage.surface_cursor();
        Ok(())
    }
}

/// A queued column's check: whether its top slides.
const CHECK: u8 = 1;
/// ... and whether a neighbour's slides onto it (its top fell).
const FELL: u8 = 2;

/// One frame of slides: the changed columns queued, then the queue's oldest
/// checked (up to the budget), then random ones.
fn slides(terrain: &mut Terrain<'_>, settings: &ThermalSettings, state: &mut ThermalErosion) {
    let before = terrain.edit_count();
    let b = terrain.bounds();
    let cap = settings.queue_cap;
    let mut cursor = state.cursor;
    state.queue_changes(terrain.surface_changes(&mut cursor), cap);
    state.cursor = cursor;
    state.repose.refresh(terrain, |p| p.repose_slope);
    for _ in 0..settings.checks_per_frame {
        let Some((c, mark)) = state.queue.pop() else { break };
        relax_column(terrain, settings, c, mark & FELL != 0, state);
    }
    for _ in 0..settings.columns_per_frame {
        let c = state.rng.column(b);
        relax_column(terrain, settings, c, false, state);
    }
    state.stats.edits += (terrain.edit_count() - before) as u64;
    state.stats.queued = state.queue.len() as u64;
    state.stats.dropped = state.queue.dropped;
}

/// Checks column `c` and lets its top slide while it is steeper than its
/// angle of repose (at most `max_slides_per_column` voxels). With `fell` (its
/// top fell), first queues the neighbours that may now slide onto it, from
/// the same reads.
fn relax_column(terrain: &mut Terrain<'_>, s: &ThermalSettings, c: IVec2, fell: bool, state: &mut ThermalErosion) {
    state.stats.columns += 1;
    let Some(surface) = terrain.surface_of(c) else { return };
    let loose = terrain.properties(surface.material).form == Form::Loose && surface.top.is_some();
    let least = state.repose.least.filter(|_| fell);
    if !loose && least.is_none() {
        return;
    }
    // Fallen: every column around, to find those above; else only what
    // the rule needs below the top.
    let below = if least.is_some() { None } else { surface.top };
    let mut around = Around::read(terrain, c, s.reach, below);
    if let Some(least) = least {
        let h = surface.top.unwrap_or(terrain.bounds().min.y - 1);
        let queue = UphillQueue { queue: &mut state.queue, mark: CHECK, cap: s.queue_cap };
        around.queue_uphill(terrain, h, &least, false, queue);
    }
    if loose {
        let table = &state.repose;
        let repose = |top: &Surface| Some(table.of(top.material));
        state.stats.slid += u64::from(shed(terrain, &mut around, s.max_slides_per_column, &mut state.rng, repose));
    }
}

/// Whether every loose top in `area` (columns `lo..hi`) rests at or below its
/// angle of repose over `reach` columns, as [`ThermalErosion`] defines it.
pub fn slopes_at_rest(terrain: &mut Terrain<'_>, lo: IVec2, hi: IVec2, reach: i32) -> bool {
    let mut table = ReposeTable::default();
    table.refresh(terrain, |p| p.repose_slope);
    for x in lo.x..hi.x {
        for z in lo.y..hi.y {
            let c = IVec2::new(x, z);
            let Some(Surface { top: Some(h), material, .. }) = terrain.surface_of(c) else { continue };
            if terrain.properties(material).form == Form::Loose
                && Around::read(terrain, c, reach, Some(h)).unstable(h, &table.of(material))
            {
                return false;
            }
        }
    }
    true
}

/// Relaxes every column of `lo..hi` until none slides or `max_sweeps`
/// sweeps ran; returns whether it came to rest. For tests and for settling a
/// region at once (a landslide after a big edit).
pub fn relax_area(
    terrain: &mut Terrain<'_>,
    settings: &ThermalSettings,
    state: &mut ThermalErosion,
    lo: IVec2,
    hi: IVec2,
    max_sweeps: u32,
) -> bool {
    state.repose.refresh(terrain, |p| p.repose_slope);
    for _ in 0..max_sweeps {
        let slid = state.stats.slid;
        for x in lo.x..hi.x {
            for z in lo.y..hi.y {
                relax_column(terrain, settings, IVec2::new(x, z), false, state);
            }
        }
        state.queue.clear();
        if state.stats.slid == slid {
            return true;
        }
    }
    false
}
