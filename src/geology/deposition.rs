//! Deposition and compaction: loose material under standing water settles
//! into the deepest place nearby (lake and sea beds level out, layer on
//! layer), and loose material buried deep enough compacts into rock
//! (`compacts_to`: sediment into sandstone).
//!
//! Driven by change: a frame checks the columns whose surface changed since
//! the last (from the storage's surface log: a column whose top rose, where
//! what was laid may settle and what it buried may compact; a column whose top
//! fell, and the columns within `reach` that may settle into it), and a small
//! random trickle.

use super::process::{GeologyProcess, GeologySystems};
use super::rng::Rng;
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
    /// Random columns checked per frame, besides the changed ones: a
    /// trickle. Default 64.
    pub columns_per_frame: u32,
    /// Columns over which submerged sediment looks for a deeper place.
    /// Default 4.
    pub reach: i32,
    /// Voxels one column may shed per check. Default 4.
    pub max_settles_per_column: u32,
    /// Voxels of terrain above a loose voxel that compact it. Default 12.
    pub burial_depth: i32,
    /// Voxels below the burial depth checked for compaction per column.
    /// Default 8.
    pub compaction_scan: i32,
    /// Whether it runs. Default true.
    pub enabled: bool,
    /// The seed of the columns checked. Default 4.
    pub seed: u64,
}

impl Default for DepositionSettings {
    fn default() -> Self {
        Self {
            columns_per_frame: 64,
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
}

/// Deposition and compaction, the process: the random state and what it did.
/// A frame of it ([`GeologyProcess::step`]) settles and compacts random columns.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "plugin", derive(bevy::prelude::Resource, bevy::reflect::Reflect))]
#[cfg_attr(feature = "plugin", reflect(Resource))]
pub struct Deposition {
    #[cfg_attr(feature = "plugin", reflect(ignore))]
    rng: Rng,
    /// The seed its random numbers started from.
    #[cfg_attr(feature = "plugin", reflect(ignore))]
    seed: u64,
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

/// One frame: the changed columns, then random ones, settle and compact.
fn settle(terrain: &mut Terrain<'_>, settings: &DepositionSettings, state: &mut Deposition) {
    let before = terrain.edit_count();
    let b = terrain.bounds();
    let mut cursor = state.cursor;
    for change in terrain.surface_changes(&mut cursor) {
        let c = change.column;
        if change.after > change.before {
            // A risen bed: what was laid may settle, what it buried compact.
            settle_and_compact(terrain, settings, c, &mut state.stats);
        } else if terrain.surface_of(c).is_some_and(|s| s.liquid.is_some()) {
            // A fallen bed under water: what lies within reach may settle into it.
            settle_column(terrain, settings, c, &mut state.stats);
            for d in super::terrain::DIRECTIONS {
                for k in 1..=settings.reach.max(1) {
                    settle_column(terrain, settings, c + d * k, &mut state.stats);
                }
            }
        }
    }
    state.cursor = cursor;
    for _ in 0..settings.columns_per_frame {
        let c = state.rng.column(b);
        settle_and_compact(terrain, settings, c, &mut state.stats);
    }
    state.stats.edits += (terrain.edit_count() - before) as u64;
}

/// Settles the submerged loose top of column `c`, then compacts what is
/// buried in it.
pub fn settle_and_compact(terrain: &mut Terrain<'_>, s: &DepositionSettings, c: IVec2, stats: &mut DepositionStats) {
    settle_column(terrain, s, c, stats);
    compact_column(terrain, s, c, stats);
}

/// Moves the loose top of column `c`, while it is under water, to the deepest
/// column nearby.
fn settle_column(terrain: &mut Terrain<'_>, s: &DepositionSettings, c: IVec2, stats: &mut DepositionStats) {
    stats.columns += 1;
    for _ in 0..s.max_settles_per_column {
        let Some(surface) = terrain.surface_of(c) else { return };
        let Some(h) = surface.top else { return };
        if terrain.properties(surface.material).form != Form::Loose || surface.liquid.is_none() {
            break;
        }
        let Some(to) = deeper(terrain, c, h, s.reach) else { break };
        let m = terrain.remove_top(c, h);
        if !terrain.lay(to, m) {
            terrain.lay(c, m);
            break;
        }
        stats.settled += 1;
    }
}

/// Compacts the loose voxels buried `burial_depth` under column `c`'s top
/// (a scan of `compaction_scan` voxels there).
fn compact_column(terrain: &mut Terrain<'_>, s: &DepositionSettings, c: IVec2, stats: &mut DepositionStats) {
    let Some(h) = terrain.surface(c) else { return };
    let from = h - s.burial_depth.max(1);
    for y in (from - s.compaction_scan.max(0)..=from).rev() {
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

/// The deepest column within `reach` in the four directions that lies at
/// least two voxels lower than `h` (so a voxel moved there lands lower),
/// passing only over lower columns.
fn deeper(terrain: &mut Terrain<'_>, c: IVec2, h: i32, reach: i32) -> Option<IVec2> {
    let mut best: Option<(i32, IVec2)> = None;
    terrain.downhill(c, h, reach, |_, n, hn| {
        if hn <= h - 2 && best.is_none_or(|(bh, _)| hn < bh) {
            best = Some((hn, n));
        }
        false
    });
    best.map(|(_, n)| n)
}
