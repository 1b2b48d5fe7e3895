//! Uplift: a region of the crust rises at a set rate, so that erosion works
//! against relief over a long run instead of planing the world flat.
//!
//! A step raises every column of the region by one voxel: the column's terrain
//! (from just above its indestructible floor up to its surface, air gaps
//! included) moves up one, the fluid or air above the surface giving way, and
//! a voxel of new rock comes in from below, just above the floor. A column
//! whose surface is at the top of the world loses its top voxel: it is
//! clipped, and counted.
//!
//! # Invariants
//!
//! - `WHOLE`: the region rises a whole voxel at a time, every column of it in
//!   the same step, in a fixed order (x fastest, then z): the same settings
//!   give the same world everywhere, with no random numbers at all.
//! - `ACCOUNTED`: terrain voxels in the world change by exactly
//!   `added - clipped` (fluids displaced are not terrain).
//! - `BOUNDED`: at most `max_columns_per_frame` columns raised a frame: a
//!   step over a larger region goes on over the next frames, from where it
//!   stopped (the columns already raised stand one voxel proud meanwhile).
//!   The clock's backlog is at most `max_backlog` whole steps past the one
//!   under way; steps beyond it are dropped and counted (`dropped`), so a long
//!   pause does not queue hundreds.
//! - `INSIDE`: nothing is written outside the world: the region is clipped to
//!   it.
//!
//! Uplift moves whatever is in a column, molten magma too: the intrusion
//! process tracks its molten voxels by position, so a body uplifted before it
//! has cooled counts its shifted voxels as `lost`, and one voxel of magma a
//! column stays molten. Raise regions away from growing bodies, or let them
//! cool first.

use super::process::{GeologyProcess, GeologySystems};
use super::state::{StateError, StateReader, StateWriter};
use super::terrain::Terrain;
use crate::material::{MaterialId, materials};
use crate::storage::DeltaStorage;
#[cfg(feature = "plugin")]
use bevy::prelude::ReflectResource;
use glam::{IVec2, IVec3};
use std::time::Duration;

/// Which columns rise.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "plugin", derive(bevy::reflect::Reflect))]
pub enum UpliftRegion {
    /// The columns within `radius` of `center` (`(x, z)`, centre to centre).
    Disc {
        /// The column at the centre, `(x, z)`.
        center: IVec2,
        /// In voxels.
        radius: f32,
    },
    /// The columns `min..max` (`(x, z)`, `max` excluded).
    Box {
        /// The smallest column, `(x, z)`.
        min: IVec2,
        /// One past the largest column, `(x, z)`.
        max: IVec2,
    },
}

impl UpliftRegion {
    /// Whether column `c` is in the region.
    pub fn contains(&self, c: IVec2) -> bool {
        match *self {
            Self::Disc { center, radius } => {
                let d = c - center;
                (d.x * d.x + d.y * d.y) as f32 <= radius * radius
            }
            Self::Box { min, max } => c.x >= min.x && c.y >= min.y && c.x < max.x && c.y < max.y,
        }
    }

    /// The smallest box `(min, max)` of columns holding the region.
    fn bounding(&self) -> (IVec2, IVec2) {
        match *self {
            Self::Disc { center, radius } => {
                let r = radius.max(0.0).ceil() as i32;
                (center - IVec2::splat(r), center + IVec2::splat(r + 1))
            }
            Self::Box { min, max } => (min, max),
        }
    }
}

/// How the crust rises. A reflectable resource with the plugin.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "plugin", derive(bevy::prelude::Resource, bevy::reflect::Reflect))]
#[cfg_attr(feature = "plugin", reflect(Resource))]
pub struct UpliftSettings {
    /// The columns that rise; `None`: a disc at the world's centre, a quarter
    /// of its narrower side in radius. Default `None`.
    pub region: Option<UpliftRegion>,
    /// Voxels a second of the storage clock. Default 0.5.
    pub rate: f32,
    /// The rock that comes in from below. Default [`materials::GRANITE`].
    pub rock: MaterialId,
    /// Columns raised a frame, at most (see the module's `BOUNDED`). Default
    /// 4,096.
    pub max_columns_per_frame: u32,
    /// Whole steps owed, at most, past the one under way. Default 4.
    pub max_backlog: u32,
    /// Whether it runs. Default true.
    pub enabled: bool,
    /// Unused (uplift draws no random numbers); kept so that every process's
    /// settings have one. Default 0.
    pub seed: u64,
}

impl Default for UpliftSettings {
    fn default() -> Self {
        Self {
            region: None,
            rate: 0.5,
            rock: materials::GRANITE,
            max_columns_per_frame: 4096,
            max_backlog: 4,
            enabled: true,
            seed: 0,
        }
    }
}

/// What uplift did, since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "plugin", derive(bevy::reflect::Reflect))]
pub struct UpliftStats {
    /// Steps completed (the region rose one voxel each).
    pub steps: u64,
    /// Columns raised (a column each step).
    pub columns: u64,
    /// Voxels of new rock that came in from below.
    pub added: u64,
    /// Terrain voxels pushed out of the top of the world. Always: terrain in
    /// the world changed by `added - clipped`.
    pub clipped: u64,
    /// Steps the clock asked for beyond `max_backlog`, not taken.
    pub dropped: u64,
    /// Edits written.
    pub edits: u64,
}

/// The most steps a restored uplift may owe.
const MAX_OWED: f32 = (1u32 << 20) as f32;

/// Uplift, the process: how much the clock owes, the step under way and what
/// it did. A frame of it ([`GeologyProcess::step`]) raises columns of the
/// steps the clock's advance times `rate` makes, at most
/// `max_columns_per_frame`.
#[derive(Clone, Debug, Default)]
#[cfg_attr(feature = "plugin", derive(bevy::prelude::Resource, bevy::reflect::Reflect))]
#[cfg_attr(feature = "plugin", reflect(Resource))]
pub struct Uplift {
    /// The fraction of a step owed.
    #[cfg_attr(feature = "plugin", reflect(ignore))]
    owed: f32,
    /// The step under way: the next cell of the region's bounding box to
    /// visit, x fastest.
    #[cfg_attr(feature = "plugin", reflect(ignore))]
    cursor: Option<usize>,
    #[cfg_attr(feature = "plugin", reflect(ignore))]
    last: Option<Duration>,
    /// What the process did, since it started.
    pub stats: UpliftStats,
}

impl GeologyProcess for Uplift {
    type Settings = UpliftSettings;
    const NAME: &'static str = "uplift";
    /// In the set of your own processes, after the crate's four: this
    /// frame's erosion sees last frame's relief.
    const SET: GeologySystems = GeologySystems::Uplift;

    fn new(_: &UpliftSettings) -> Self {
        Self::default()
    }

    fn enabled(settings: &UpliftSettings) -> bool {
        settings.enabled
    }

    fn reseed(&mut self, _: &UpliftSettings) {}

    fn step(&mut self, terrain: &mut Terrain<'_>, settings: &UpliftSettings) {
        if settings.enabled {
            uplift(terrain, settings, self);
        }
    }

    fn save(&mut self, _: &DeltaStorage, _: &UpliftSettings, out: &mut StateWriter) {
        out.u8(1);
        out.f32(self.owed);
        out.option(self.cursor, |out, at| out.u64(at as u64));
        out.option(self.last, StateWriter::duration);
    }

    fn restore(&mut self, _: &DeltaStorage, input: &mut StateReader<'_>) -> Result<(), StateError> {
        input.version(1)?;
        self.owed = input.f32()?;
        // What `step` leaves: finite, never negative, far from 2^24 steps.
        if !(0.0..=MAX_OWED).contains(&self.owed) {
            return Err(StateError::Invalid("uplift owed"));
        }
        let cursor = input.option(StateReader::u64)?;
        self.cursor = cursor.map(|at| usize::try_from(at).map_err(|_| StateError::Invalid("cursor"))).transpose()?;
        self.last = input.option(StateReader::duration)?;
        Ok(())
    }
}

/// One frame: the steps the clock owes, as far as the frame's budget goes.
fn uplift(terrain: &mut Terrain<'_>, s: &UpliftSettings, state: &mut Uplift) {
    let before = terrain.edit_count();
    let now = terrain.now();
    let dt = now.saturating_sub(state.last.unwrap_or(now)).as_secs_f32();
    state.last = Some(now);
    state.owed += dt * s.rate.max(0.0);
    let b = terrain.bounds();
    let size = b.size();
    let region = s.region.unwrap_or(UpliftRegion::Disc {
        center: IVec2::new(b.min.x + size.x / 2, b.min.z + size.z / 2),
        radius: (size.x.min(size.z) / 8) as f32,
    });
    let (lo, hi) = region.bounding();
    let lo = lo.max(IVec2::new(b.min.x, b.min.z));
    let hi = hi.min(IVec2::new(b.max.x, b.max.z)).max(lo);
    let width = (hi.x - lo.x) as usize;
    let cells = width * (hi.y - lo.y) as usize;
    let mut budget = s.max_columns_per_frame;
    let mut column = Vec::new();
    while budget > 0 {
        let mut at = match state.cursor {
            Some(at) => at,
            None if state.owed >= 1.0 => {
                state.owed -= 1.0;
                0
            }
            None => break,
        };
        while at < cells && budget > 0 {
            let c = lo + IVec2::new((at % width) as i32, (at / width) as i32);
            if region.contains(c) {
                raise(terrain, s.rock, c, &mut column, &mut state.stats);
                budget -= 1;
            }
            at += 1;
        }
        state.cursor = (at < cells).then_some(at);
        if at >= cells {
            state.stats.steps += 1;
        }
    }
    // Past the backlog: the whole steps over it are dropped at once (a
    // loop of single steps would never end on an owed beyond 2^24).
    let most = s.max_backlog as f32;
    if state.owed >= most + 1.0 {
        let over = (state.owed - most).floor();
        state.owed -= over;
        state.stats.dropped = state.stats.dropped.saturating_add(over as u64);
    }
    state.stats.edits += (terrain.edit_count() - before) as u64;
}

/// Raises column `c` (in the world) by one voxel; `column` is scratch space.
fn raise(terrain: &mut Terrain<'_>, rock: MaterialId, c: IVec2, column: &mut Vec<MaterialId>, stats: &mut UpliftStats) {
    let b = terrain.bounds();
    let at = |y: i32| IVec3::new(c.x, y, c.y);
    // New rock comes in above the indestructible floor (bedrock stays put).
    let mut floor = b.min.y;
    while floor < b.max.y && is_floor(terrain, at(floor)) {
        floor += 1;
    }
    if floor >= b.max.y {
        return;
    }
    let surface = terrain.surface(c).unwrap_or(floor - 1).max(floor - 1);
    if surface >= b.max.y - 1 {
        stats.clipped += 1;
    }
    // Read the voxels that move (`floor..=surface`, the top one clipped at the
    // ceiling), then write the ones that change, top down.
    let top = surface.min(b.max.y - 2);
    column.clear();
    column.extend((floor..=top).map(|y| terrain.get(at(y))));
    let mut above = terrain.get(at(top + 1));
    for (i, &m) in column.iter().enumerate().rev() {
        let y = floor + i as i32;
        if m != above {
            terrain.set(at(y + 1), m);
        }
        above = m;
    }
    if above != rock {
        terrain.set(at(floor), rock);
    }
    stats.added += 1;
    stats.columns += 1;
}

/// Whether the voxel at `p` is part of the indestructible floor: solid rock
/// of hardness 1 (bedrock).
fn is_floor(terrain: &mut Terrain<'_>, p: IVec3) -> bool {
    let m = terrain.get(p);
    let props = terrain.properties(m);
    props.form == crate::material::Form::Solid && props.hardness >= 1.0
}
