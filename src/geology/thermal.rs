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
//! Driven by change: a frame checks the columns whose surface changed since
//! the last (from the storage's surface log: a column whose top fell, and the
//! columns within `reach` that could now slide onto it; a column whose top
//! rose), the columns next to this process's own slides, and a small random
//! trickle that finds what no change pointed at.

use super::process::{GeologyProcess, GeologySystems};
use super::rng::Rng;
use super::terrain::{DIRECTIONS, Terrain};
use crate::material::Form;
use crate::surface::SurfaceCursor;
#[cfg(feature = "plugin")]
use bevy::prelude::ReflectResource;
use glam::IVec2;
use std::collections::VecDeque;

/// How loose slopes relax. A reflectable resource with the plugin.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "plugin", derive(bevy::prelude::Resource, bevy::reflect::Reflect))]
#[cfg_attr(feature = "plugin", reflect(Resource))]
pub struct ThermalSettings {
    /// Random columns checked per frame, besides the changed ones and those
    /// queued by slides: a trickle. Default 32.
    pub columns_per_frame: u32,
    /// Columns queued for a check because a neighbour changed, at most
    /// (oldest dropped past it). Default 65,536.
    pub queue_cap: usize,
    /// Queued columns checked per frame, at most. Default 4,000.
    pub queued_per_frame: u32,
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
            queued_per_frame: 4000,
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
    queue: VecDeque<IVec2>,
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
            queue: VecDeque::new(),
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

/// One frame of slides: the changed columns, the queued ones, then random ones.
fn slides(terrain: &mut Terrain<'_>, settings: &ThermalSettings, state: &mut ThermalErosion) {
    let before = terrain.edit_count();
    let b = terrain.bounds();
    let mut cursor = state.cursor;
    for change in terrain.surface_changes(&mut cursor) {
        let c = change.column;
        relax_column(terrain, settings, c, state);
        if change.after < change.before {
            // A fallen top: what stood within reach may slide onto it now.
            for d in DIRECTIONS {
                for k in 1..=settings.reach.max(1) {
                    relax_column(terrain, settings, c + d * k, state);
                }
            }
        }
    }
    state.cursor = cursor;
    for _ in 0..settings.queued_per_frame {
        let Some(c) = state.queue.pop_front() else { break };
        relax_column(terrain, settings, c, state);
    }
    for _ in 0..settings.columns_per_frame {
        let c = state.rng.column(b);
        relax_column(terrain, settings, c, state);
    }
    state.stats.edits += (terrain.edit_count() - before) as u64;
    state.stats.queued = state.queue.len() as u64;
}

/// Checks column `c` and lets its top slide while it is steeper than its
/// angle of repose; queues the neighbours of every slide.
fn relax_column(terrain: &mut Terrain<'_>, s: &ThermalSettings, c: IVec2, state: &mut ThermalErosion) {
    state.stats.columns += 1;
    for _ in 0..s.max_slides_per_column {
        let Some(to) = steepest_unstable(terrain, c, s.reach) else { return };
        let Some(y) = terrain.surface(c) else { return };
        let m = terrain.remove_top(c, y);
        if !terrain.lay(to, m) {
            // Cannot happen (the neighbour is lower), but never lose a voxel.
            terrain.lay(c, m);
            return;
        }
        state.stats.slid += 1;
        for n in [c, to].into_iter().flat_map(|p| DIRECTIONS.map(|d| p + d)) {
            if state.queue.len() >= s.queue_cap {
                state.queue.pop_front();
                state.stats.dropped += 1;
            }
            state.queue.push_back(n);
        }
    }
}

/// Where a loose top voxel of `c` slides to, if it is unstable: along the
/// direction where the slope exceeds the angle the most, to the nearest column
/// where it does (the voxel passes over the lower columns between; a column as
/// high as `c` blocks the way). It lands lower than it was, so slides end.
fn steepest_unstable(terrain: &mut Terrain<'_>, c: IVec2, reach: i32) -> Option<IVec2> {
    let surface = terrain.surface_of(c)?;
    let h = surface.top?;
    let props = terrain.properties(surface.material);
    if props.form != Form::Loose {
        return None;
    }
    let mut best: Option<(f32, IVec2)> = None;
    let repose = props.repose_slope;
    terrain.downhill(c, h, reach, |k, n, hn| {
        let excess = (h - hn) as f32 - (repose * k as f32 + 1.0);
        if excess > 0.0 && best.is_none_or(|(e, _)| excess > e) {
            best = Some((excess, n));
        }
        excess > 0.0
    });
    best.map(|(_, to)| to)
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
                relax_column(terrain, settings, IVec2::new(x, z), state);
            }
        }
        state.queue.clear();
        if state.stats.slid == slid {
            return true;
        }
    }
    false
}
