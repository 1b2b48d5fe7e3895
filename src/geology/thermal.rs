//! Thermal erosion: loose material on a slope steeper than its angle of
//! repose slides down to the lower neighbouring column, one voxel at a time,
//! until the slope rests.
//!
//! Slopes are measured between column surfaces over `reach` columns in the
//! four axis directions: a loose top voxel at height `h` is unstable when a
//! column `d` away (`1 <= d <= reach`, with no column as high as `h` between)
//! lies lower by more than `tan(angle) * d + 1` voxels. It then slides to that
//! column (the nearest such), so it always lands lower and slides end. The
//! `+ 1` is the grid's resolution: a one-voxel step is 45° over one column
//! whatever the material, so a resting slope is its angle within one voxel,
//! measured over up to `reach` columns.
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
use super::slope::{Around, UphillQueue, least_repose_slope, slide_target};
use super::terrain::Terrain;
use crate::material::Form;
use crate::surface::SurfaceCursor;
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
    /// Columns over which a slope is measured. Default 3.
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
            reach: 3,
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
    let changes = terrain.surface_changes(&mut cursor);
    state.stats.missed += changes.missed;
    for change in changes {
        // A fallen top: what stands within reach may slide onto it now.
        let mark = if change.after < change.before { CHECK | FELL } else { CHECK };
        state.queue.push(change.column, mark, cap);
    }
    state.cursor = cursor;
    let least = least_repose_slope(terrain);
    for _ in 0..settings.checks_per_frame {
        let Some((c, mark)) = state.queue.pop() else { break };
        relax_column(terrain, settings, c, (mark & FELL != 0).then_some(least), state);
    }
    for _ in 0..settings.columns_per_frame {
        let c = state.rng.column(b);
        relax_column(terrain, settings, c, None, state);
    }
    state.stats.edits += (terrain.edit_count() - before) as u64;
    state.stats.queued = state.queue.len() as u64;
    state.stats.dropped = state.queue.dropped;
}

/// Checks column `c` and lets its top slide while it is steeper than its
/// angle of repose (at most `max_slides_per_column` voxels). With `uphill`
/// (its top fell), first queues the neighbours that may now slide onto it on
/// a slope of `uphill` or more, from the same reads.
fn relax_column(
    terrain: &mut Terrain<'_>,
    s: &ThermalSettings,
    c: IVec2,
    uphill: Option<f32>,
    state: &mut ThermalErosion,
) {
    state.stats.columns += 1;
    let Some(surface) = terrain.surface_of(c) else { return };
    let floor = terrain.bounds().min.y - 1;
    let props = terrain.properties(surface.material);
    let loose = props.form == Form::Loose && surface.top.is_some();
    let mut first = None;
    if let Some(least) = uphill {
        let around = Around::read(terrain, c, s.reach);
        let h = surface.top.unwrap_or(floor);
        let queue = UphillQueue { queue: &mut state.queue, mark: CHECK, cap: s.queue_cap };
        around.queue_uphill(terrain, h, least, false, queue);
        first = loose.then(|| around.slide_target(h, props.repose_slope)).flatten();
    } else if loose {
        first = slide_target(terrain, c, surface.top.unwrap_or(floor), props.repose_slope, s.reach);
    }
    let mut to = first;
    for _ in 0..s.max_slides_per_column {
        let Some(target) = to else { return };
        let Some(y) = terrain.surface(c) else { return };
        let m = terrain.remove_top(c, y);
        if !terrain.lay(target, m) {
            // Cannot happen (the neighbour is lower), but never lose a voxel.
            terrain.lay(c, m);
            return;
        }
        state.stats.slid += 1;
        to = steepest_unstable(terrain, c, s.reach);
    }
}

/// Where a loose top voxel of `c` slides to, if it is unstable (see the
/// module docs).
fn steepest_unstable(terrain: &mut Terrain<'_>, c: IVec2, reach: i32) -> Option<IVec2> {
    let surface = terrain.surface_of(c)?;
    let h = surface.top?;
    let props = terrain.properties(surface.material);
    if props.form != Form::Loose {
        return None;
    }
    slide_target(terrain, c, h, props.repose_slope, reach)
}

/// Whether every loose top in `area` (columns `lo..hi`) rests at or below its
/// angle of repose over `reach` columns, as [`ThermalErosion`] defines it.
pub fn slopes_at_rest(terrain: &mut Terrain<'_>, lo: IVec2, hi: IVec2, reach: i32) -> bool {
    (lo.x..hi.x).all(|x| (lo.y..hi.y).all(|z| steepest_unstable(terrain, IVec2::new(x, z), reach).is_none()))
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
    for _ in 0..max_sweeps {
        let slid = state.stats.slid;
        for x in lo.x..hi.x {
            for z in lo.y..hi.y {
                relax_column(terrain, settings, IVec2::new(x, z), None, state);
            }
        }
        state.queue.clear();
        if state.stats.slid == slid {
            return true;
        }
    }
    false
}
