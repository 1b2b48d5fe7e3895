//! Deposition and compaction: loose material under standing water slumps
//! down slopes steeper than its underwater angle of repose (lake and sea beds
//! level out, layer on layer, to that angle), and loose material buried deep
//! enough compacts into rock (`compacts_to`: sediment into sandstone).
//!
//! The slope rule is thermal erosion's, with the underwater angle: a loose top
//! at height `h` under water is unstable when a column `d` away (`1 <= d <=
//! reach`, with no column as high between) lies lower by more than
//! `tan(angle) * d + 1` voxels.
//!
//! Driven by change: the columns whose surface changed since the last frame
//! (from the storage's surface log: a column whose top rose, where what was
//! laid may settle and what it buried may compact; a column under water whose
//! top fell, and the columns within `reach` that may settle into it) are
//! queued, each once; a frame checks at most `checks_per_frame` of them,
//! oldest first, and a small random trickle.

use super::process::{GeologyProcess, GeologySystems};
use super::queue::ColumnQueue;
use super::rng::Rng;
use super::slope::{Around, UphillQueue, slide_target};
use super::terrain::Terrain;
use crate::material::Form;
use crate::surface::SurfaceCursor;
#[cfg(feature = "plugin")]
use bevy::prelude::ReflectResource;
use glam::{IVec2, IVec3};

/// How sediment settles and compacts. A reflectable resource with the plugin.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "plugin", derive(bevy::prelude::Resource, bevy::reflect::Reflect))]
#[cfg_attr(feature = "plugin", reflect(Resource))]
pub struct DepositionSettings {
    /// Random columns checked per frame, besides the queued ones: a trickle.
    /// Default 32.
    pub columns_per_frame: u32,
    /// Columns queued for a check, at most (the oldest dropped past it, and
    /// counted). Default 65,536.
    pub queue_cap: usize,
    /// Queued columns checked per frame, at most: the frame's budget. Default
    /// 2,000.
    pub checks_per_frame: u32,
    /// The steepest slope loose material rests at under water, in degrees,
    /// taken in `0..=90` (90: every slope stands; NaN counts as 0). Default 30.
    pub underwater_angle: f32,
    /// Columns over which an underwater slope is measured. Default 4.
    pub reach: i32,
    /// Voxels one column may shed per check. Default 4.
    pub max_settles_per_column: u32,
    /// Voxels of terrain above a loose voxel that compact it. Default 12.
    pub burial_depth: i32,
    /// Voxels below the burial depth a random check scans for compaction
    /// (a column whose top rose scans the voxels it newly buried). Default 8.
    pub compaction_scan: i32,
    /// Whether it runs. Default true.
    pub enabled: bool,
    /// The seed of the columns checked. Default 4.
    pub seed: u64,
}

impl Default for DepositionSettings {
    fn default() -> Self {
        Self {
            columns_per_frame: 32,
            queue_cap: 1 << 16,
            checks_per_frame: 2000,
            underwater_angle: 30.0,
            reach: 4,
            max_settles_per_column: 4,
            burial_depth: 12,
            compaction_scan: 8,
            enabled: true,
            seed: 4,
        }
    }
}

/// What deposition did, since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "plugin", derive(bevy::reflect::Reflect))]
pub struct DepositionStats {
    /// Columns checked.
    pub columns: u64,
    /// Voxels that settled into a deeper column (removed from one, laid on
    /// another: removed = deposited = `settled`).
    pub settled: u64,
    /// Voxels compacted into rock (changed in place).
    pub compacted: u64,
    /// Edits written.
    pub edits: u64,
    /// Columns queued for a check now.
    pub queued: u64,
    /// Queued checks dropped because the queue was full.
    pub dropped: u64,
    /// Surface changes the process missed: dropped from the storage's log
    /// before it read them.
    pub missed: u64,
}

/// Deposition and compaction, the process: the columns waiting for a check,
/// the random state and what it did. A frame of it ([`GeologyProcess::step`])
/// settles and compacts the queued columns, then random ones.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "plugin", derive(bevy::prelude::Resource, bevy::reflect::Reflect))]
#[cfg_attr(feature = "plugin", reflect(Resource))]
pub struct Deposition {
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
    pub stats: DepositionStats,
}

impl GeologyProcess for Deposition {
    type Settings = DepositionSettings;
    const NAME: &'static str = "deposition";
    const SET: GeologySystems = GeologySystems::Deposition;

    fn new(settings: &DepositionSettings) -> Self {
        Self {
            rng: Rng::new(settings.seed ^ 0x6465_706f),
            seed: settings.seed,
            queue: ColumnQueue::default(),
            cursor: SurfaceCursor::default(),
            stats: DepositionStats::default(),
        }
    }

    fn enabled(settings: &DepositionSettings) -> bool {
        settings.enabled
    }

    fn reseed(&mut self, settings: &DepositionSettings) {
        if settings.seed != self.seed {
            self.rng = Rng::new(settings.seed ^ 0x6465_706f);
            self.seed = settings.seed;
        }
    }

    fn step(&mut self, terrain: &mut Terrain<'_>, settings: &DepositionSettings) {
        if settings.enabled {
            settle(terrain, settings, self);
        }
    }
}

/// What a queued column's check looks at.
const SETTLE: u8 = 1;
/// ... and below it, for compaction (its top rose: more is buried).
const COMPACT: u8 = 2;
/// ... and its neighbours, which may settle into it (its top fell).
const FELL: u8 = 4;
/// The high four bits: how far the top rose (at least; marks merge by `|`,
/// which never gives less than either), the voxels newly buried.
const RISE_SHIFT: u32 = 4;

/// One frame: the changed columns queued, then the queue's oldest checked (up
/// to the budget), then random ones.
fn settle(terrain: &mut Terrain<'_>, settings: &DepositionSettings, state: &mut Deposition) {
    let before = terrain.edit_count();
    let b = terrain.bounds();
    let (cap, reach) = (settings.queue_cap, settings.reach.max(1));
    let slope = slope_of(settings.underwater_angle);
    let mut cursor = state.cursor;
    let changes = terrain.surface_changes(&mut cursor);
    state.stats.missed += changes.missed;
    for change in changes {
        let mark = if change.after > change.before {
            // A risen bed: what was laid may settle, what it newly buried
            // (as deep as it rose) compact.
            let rise = change.after.unwrap_or(0) - change.before.unwrap_or(change.after.unwrap_or(0) - 1);
            SETTLE | COMPACT | (rise.clamp(1, 15) as u8) << RISE_SHIFT
        } else if change.after < change.before {
            // A fallen bed: what lies within reach may settle into it.
            SETTLE | FELL
        } else {
            SETTLE
        };
        state.queue.push(change.column, mark, cap);
    }
    state.cursor = cursor;
    for _ in 0..settings.checks_per_frame {
        let Some((c, mark)) = state.queue.pop() else { break };
        if mark & FELL != 0
            && let Some(surface) = terrain.surface_of(c)
            && surface.liquid.is_some()
        {
            let around = Around::read(terrain, c, reach);
            let h = surface.top.unwrap_or(terrain.bounds().min.y - 1);
            around.queue_uphill(terrain, h, slope, true, UphillQueue { queue: &mut state.queue, mark: SETTLE, cap });
        }
        settle_column(terrain, settings, slope, c, &mut state.stats);
        if mark & COMPACT != 0 {
            let rise = i32::from(mark >> RISE_SHIFT).max(1);
            compact_column(terrain, settings, c, rise, &mut state.stats);
        }
    }
    for _ in 0..settings.columns_per_frame {
        let c = state.rng.column(b);
        settle_and_compact(terrain, settings, c, &mut state.stats);
    }
    state.stats.edits += (terrain.edit_count() - before) as u64;
    state.stats.queued = state.queue.len() as u64;
    state.stats.dropped = state.queue.dropped;
}

/// Settles the submerged loose top of column `c`, then compacts what is
/// buried in it.
pub fn settle_and_compact(terrain: &mut Terrain<'_>, s: &DepositionSettings, c: IVec2, stats: &mut DepositionStats) {
    settle_column(terrain, s, slope_of(s.underwater_angle), c, stats);
    compact_column(terrain, s, c, s.compaction_scan.max(0).saturating_add(1), stats);
}

/// The slope (rise over run) of an angle of repose in degrees, the angle taken
/// in `0..=90`: 90 and above stand vertical (infinite), NaN and below 0 lie
/// flat.
fn slope_of(degrees: f32) -> f32 {
    if degrees >= 90.0 {
        f32::INFINITY
    } else if degrees > 0.0 {
        degrees.to_radians().tan()
    } else {
        0.0
    }
}

/// Moves the loose top of column `c`, while it is under water and steeper
/// than `slope` (rise over run), down the slope.
fn settle_column(terrain: &mut Terrain<'_>, s: &DepositionSettings, slope: f32, c: IVec2, stats: &mut DepositionStats) {
    stats.columns += 1;
    for _ in 0..s.max_settles_per_column {
        let Some(surface) = terrain.surface_of(c) else { return };
        let Some(h) = surface.top else { return };
        if terrain.properties(surface.material).form != Form::Loose || surface.liquid.is_none() {
            break;
        }
        let Some(to) = slide_target(terrain, c, h, slope, s.reach) else { break };
        let m = terrain.remove_top(c, h);
        if !terrain.lay(to, m) {
            terrain.lay(c, m);
            break;
        }
        stats.settled += 1;
    }
}

/// Compacts the loose voxels buried `burial_depth` under column `c`'s top:
/// a scan of `depth` voxels down from there.
fn compact_column(
    terrain: &mut Terrain<'_>,
    s: &DepositionSettings,
    c: IVec2,
    depth: i32,
    stats: &mut DepositionStats,
) {
    let Some(h) = terrain.surface(c) else { return };
    // Both settings are live and any size: clamp to the world's height.
    let floor = terrain.bounds().min.y;
    let from = h.saturating_sub(s.burial_depth.max(1));
    if from < floor {
        return;
    }
    let lowest = from.saturating_sub(depth.max(1) - 1).max(floor);
    for y in (lowest..=from).rev() {
        let p = IVec3::new(c.x, y, c.y);
        if !terrain.bounds().contains(p) {
            break;
        }
        let m = terrain.get(p);
        let props = terrain.properties(m);
        if !props.is_matter() {
            // A hollow: what is below is not buried by this column.
            break;
        }
        if props.form == Form::Loose
            && let Some(rock) = props.compacts_to
        {
            terrain.set(p, rock);
            stats.compacted += 1;
        }
    }
}
