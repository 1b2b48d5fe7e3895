//! Hydraulic erosion: rain droplets that run downhill over the terrain's
//! surface, pick up material where they speed up and drop it where they slow
//! down, reach standing water, or dry up.
//!
//! This is the droplet method of Hans Theobald Beyer ("Implementation of a
//! method for hydraulic erosion", 2015), as popularised by Sebastian Lague's
//! implementation, adapted to voxel columns: heights are column surfaces,
//! interpolated bilinearly between column centres; material moves a whole
//! voxel at a time, with fractional amounts rounded at random so that their
//! expectation is the continuous method's. A droplet carries whole voxels, so
//! what it removes is exactly what it lays down, or carries out of the world.

use super::process::{GeologyProcess, GeologySystems};
use super::rng::Rng;
use super::terrain::Terrain;
use crate::material::{MaterialId, materials};
use crate::surface::Surface;
#[cfg(feature = "plugin")]
use bevy::prelude::ReflectResource;
use glam::{IVec2, Vec2};

/// How the rain falls and how droplets carry material. A reflectable
/// resource with the plugin: tune it live.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "plugin", derive(bevy::prelude::Resource, bevy::reflect::Reflect))]
#[cfg_attr(feature = "plugin", reflect(Resource))]
pub struct HydraulicSettings {
    /// Droplets per frame. Default 120.
    pub droplets_per_frame: u32,
    /// Steps a droplet lives at most. Default 40.
    pub max_steps: u32,
    /// How much a droplet keeps its direction (0: follows the slope at once,
    /// 1: never turns). Default 0.05.
    pub inertia: f32,
    /// Sediment capacity per unit of slope, speed and water. Default 4.
    pub capacity: f32,
    /// The least slope counted for capacity, so flats still carry. Default
    /// 0.01.
    pub min_slope: f32,
    /// Share of the free capacity picked up per step (times `1 - hardness`).
    /// Default 0.3.
    pub erode_rate: f32,
    /// Share of the excess load dropped per step. Default 0.3.
    pub deposit_rate: f32,
    /// Share of the water evaporating per step. Default 0.02.
    pub evaporation: f32,
    /// Speed gained per voxel of descent. Default 4.
    pub gravity: f32,
    /// What droplets lay down. Default [`materials::SEDIMENT`].
    pub deposit_as: MaterialId,
    /// Voxels a droplet may pick up in one step (keeps single steps from
    /// digging wells). Default 1.
    pub max_erode_per_step: u32,
    /// Where droplets fall, `(min x, min z)..(max x, max z)` of columns;
    /// `None`: anywhere in the world. Default `None`.
    pub area: Option<(IVec2, IVec2)>,
    /// Whether it runs. Default true.
    pub enabled: bool,
    /// The seed of the droplets' positions and roundings. Default 1.
    pub seed: u64,
}

impl Default for HydraulicSettings {
    fn default() -> Self {
        Self {
            droplets_per_frame: 120,
            max_steps: 40,
            inertia: 0.05,
            capacity: 4.0,
            min_slope: 0.01,
            erode_rate: 0.3,
            deposit_rate: 0.3,
            evaporation: 0.02,
            gravity: 4.0,
            deposit_as: materials::SEDIMENT,
            max_erode_per_step: 1,
            area: None,
            enabled: true,
            seed: 1,
        }
    }
}

/// What hydraulic erosion did, since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "plugin", derive(bevy::reflect::Reflect))]
pub struct HydraulicStats {
    /// Droplets that fell.
    pub droplets: u64,
    /// Voxels picked up.
    pub eroded: u64,
    /// Voxels laid down.
    pub deposited: u64,
    /// Voxels carried out of the world (over its side, or with no room left
    /// at the top). Always `eroded = deposited + carried_out`.
    pub carried_out: u64,
    /// Edits written.
    pub edits: u64,
}

/// Hydraulic erosion, the process: the droplets' random state and what they
/// did. A frame of it ([`GeologyProcess::step`]) is
/// `settings.droplets_per_frame` droplets, each run to its end.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "plugin", derive(bevy::prelude::Resource, bevy::reflect::Reflect))]
#[cfg_attr(feature = "plugin", reflect(Resource))]
pub struct HydraulicErosion {
    #[cfg_attr(feature = "plugin", reflect(ignore))]
    rng: Rng,
    /// The seed its random numbers started from.
    #[cfg_attr(feature = "plugin", reflect(ignore))]
    seed: u64,
    /// What the process did, since it started.
    pub stats: HydraulicStats,
}

impl GeologyProcess for HydraulicErosion {
    type Settings = HydraulicSettings;
    const NAME: &'static str = "hydraulic erosion";
    const SET: GeologySystems = GeologySystems::Hydraulic;

    fn new(settings: &HydraulicSettings) -> Self {
        Self { rng: Rng::new(settings.seed ^ 0x4879_6472), seed: settings.seed, stats: HydraulicStats::default() }
    }

    fn enabled(settings: &HydraulicSettings) -> bool {
        settings.enabled
    }

    fn reseed(&mut self, settings: &HydraulicSettings) {
        if settings.seed != self.seed {
            self.rng = Rng::new(settings.seed ^ 0x4879_6472);
            self.seed = settings.seed;
        }
    }

    fn step(&mut self, terrain: &mut Terrain<'_>, settings: &HydraulicSettings) {
        if settings.enabled {
            rain(terrain, settings, self);
        }
    }
}

/// One frame of rain. Reads and writes go through `terrain`.
fn rain(terrain: &mut Terrain<'_>, settings: &HydraulicSettings, state: &mut HydraulicErosion) {
    let b = terrain.bounds();
    let (lo, hi) = match settings.area {
        Some((lo, hi)) => (lo.max(IVec2::new(b.min.x, b.min.z)), hi.min(IVec2::new(b.max.x, b.max.z))),
        None => (IVec2::new(b.min.x, b.min.z), IVec2::new(b.max.x, b.max.z)),
    };
    if lo.x >= hi.x || lo.y >= hi.y {
        return;
    }
    for _ in 0..settings.droplets_per_frame {
        let start = IVec2::new(state.rng.range(lo.x, hi.x), state.rng.range(lo.y, hi.y));
        droplet(terrain, settings, start, &mut state.rng, &mut state.stats);
        state.stats.droplets += 1;
    }
}

/// `v.floor().as_ivec2()` without a call to the C library's `floorf` (the
/// default x86-64 target has no rounding instruction): the same for every
/// position a droplet takes (well inside `i32`, NaN giving 0 either way).
#[inline]
fn floor(v: Vec2) -> IVec2 {
    let whole = |x: f32| {
        let t = x as i32;
        t - i32::from((t as f32) > x)
    };
    IVec2::new(whole(v.x), whole(v.y))
}

/// The surfaces of the four columns around a position (column centres at
/// `+0.5`): what a droplet's height and slope are interpolated from.
#[derive(Clone, Copy)]
struct Corners {
    /// The corner with the smallest coordinates.
    min: IVec2,
    /// `(0, 0), (1, 0), (0, 1), (1, 1)` from `min`; `None` outside the world.
    surfaces: [Option<Surface>; 4],
    /// Which of `surfaces` were read (an edit drops a column's).
    read: [bool; 4],
}

const OFFSETS: [IVec2; 4] = [IVec2::new(0, 0), IVec2::new(1, 0), IVec2::new(0, 1), IVec2::new(1, 1)];

impl Corners {
    const NONE: Self = Self { min: IVec2::ZERO, surfaces: [None; 4], read: [false; 4] };

    /// The corners around `pos`, taking what `known` read of them (the
    /// droplet's last corners: the next ones share columns with them).
    fn around(terrain: &mut Terrain<'_>, pos: Vec2, known: &Corners) -> Self {
        let min = floor(pos - Vec2::splat(0.5));
        let mut out = Self { min, ..Self::NONE };
        for (k, offset) in OFFSETS.into_iter().enumerate() {
            let c = min + offset;
            out.surfaces[k] = match known.find(c) {
                Some(s) => s,
                None => terrain.surface_of(c),
            };
            out.read[k] = true;
        }
        out
    }

    /// Column `c`'s surface, if read here.
    fn find(&self, c: IVec2) -> Option<Option<Surface>> {
        let d = c - self.min;
        if !(0..=1).contains(&d.x) || !(0..=1).contains(&d.y) {
            return None;
        }
        let k = (d.x + 2 * d.y) as usize;
        self.read[k].then_some(self.surfaces[k])
    }

    /// Forgets column `c` (an edit changed it).
    fn forget(&mut self, c: IVec2) {
        let d = c - self.min;
        if (0..=1).contains(&d.x) && (0..=1).contains(&d.y) {
            self.read[(d.x + 2 * d.y) as usize] = false;
        }
    }

    /// The height and its gradient at `pos` (inside these corners), a column
    /// outside the world or without terrain taking the height `fallback`.
    fn height_and_gradient(&self, pos: Vec2, fallback: f32) -> (f32, Vec2) {
        let p = pos - Vec2::splat(0.5) - self.min.as_vec2();
        let (u, v) = (p.x, p.y);
        let h = |k: usize| self.surfaces[k].and_then(|s| s.top).map_or(fallback, |y| y as f32);
        let (h00, h10, h01, h11) = (h(0), h(1), h(2), h(3));
        let height = h00 * (1.0 - u) * (1.0 - v) + h10 * u * (1.0 - v) + h01 * (1.0 - u) * v + h11 * u * v;
        let grad = Vec2::new((h10 - h00) * (1.0 - v) + (h11 - h01) * v, (h01 - h00) * (1.0 - u) + (h11 - h10) * u);
        (height, grad)
    }
}

fn droplet(terrain: &mut Terrain<'_>, s: &HydraulicSettings, start: IVec2, rng: &mut Rng, stats: &mut HydraulicStats) {
    let mut pos = start.as_vec2() + Vec2::splat(0.5);
    let mut dir = Vec2::ZERO;
    let (mut speed, mut water) = (1.0f32, 1.0f32);
    let mut carried = 0u32;
    let before = terrain_edits(terrain);
    let mut last = start;
    // The corners read last: the next step's corners share columns with them.
    let mut known = Corners::NONE;
    for _ in 0..s.max_steps {
        let cell = floor(pos);
        last = cell;
        let here = Corners::around(terrain, pos, &known);
        // `cell` is one of the corners around `pos`, and inside the world.
        let Some(Some(surface)) = here.find(cell) else { break };
        let Some(top) = surface.top else { break };
        if surface.liquid.is_some() {
            // Standing water: the load settles here.
            break;
        }
        let (height, grad) = here.height_and_gradient(pos, top as f32);
        dir = dir * s.inertia - grad * (1.0 - s.inertia);
        let len = dir.length();
        if len.is_nan() || len <= 1e-6 {
            // A flat: a random heading.
            let a = rng.unit() * std::f32::consts::TAU;
            dir = Vec2::new(a.cos(), a.sin());
        } else {
            dir /= len;
        }
        let next = pos + dir;
        if !terrain.has_column(floor(next)) {
            // Over the edge of the world, load and all.
            stats.carried_out += u64::from(carried);
            carried = 0;
            break;
        }
        let mut ahead = Corners::around(terrain, next, &here);
        let (next_height, _) = ahead.height_and_gradient(next, top as f32);
        let edits = terrain_edits(terrain);
        let dh = next_height - height;
        let capacity = (-dh).max(s.min_slope) * speed * water * s.capacity;
        carried = exchange(terrain, s, (cell, surface), (dh, capacity), carried, rng, stats);
        if terrain_edits(terrain) != edits {
            // Only `cell` changed.
            ahead.forget(cell);
        }
        known = ahead;
        speed = (speed * speed - dh * s.gravity).max(0.0).sqrt();
        water *= 1.0 - s.evaporation;
        pos = next;
    }
    // Dried up, settled or ran out of steps: the load is laid where it is.
    for _ in 0..carried {
        lay(terrain, s, last, stats);
    }
    stats.edits += (terrain_edits(terrain) - before) as u64;
}

/// What a step of a droplet over `cell` (its surface as read) leaves or
/// takes, given the drop `dh` to the next position and the droplet's
/// `capacity`: returns its new load.
fn exchange(
    terrain: &mut Terrain<'_>,
    s: &HydraulicSettings,
    (cell, surface): (IVec2, Surface),
    (dh, capacity): (f32, f32),
    mut carried: u32,
    rng: &mut Rng,
    stats: &mut HydraulicStats,
) -> u32 {
    if carried as f32 > capacity || dh > 0.0 {
        // Uphill: fill the pit behind, at most what it takes; otherwise drop a
        // share of the excess.
        let amount = if dh > 0.0 { dh.min(carried as f32) } else { (carried as f32 - capacity) * s.deposit_rate };
        let n = rng.round(amount).min(carried);
        for _ in 0..n {
            carried -= 1;
            lay(terrain, s, cell, stats);
        }
    } else {
        let hardness = terrain.properties(surface.material).hardness;
        // Hardness scales what the step would take (after the per-step cap,
        // so that it matters at every speed).
        let amount = ((capacity - carried as f32) * s.erode_rate).min(-dh).min(s.max_erode_per_step as f32);
        let n = rng.round(amount * (1.0 - hardness)).min(s.max_erode_per_step);
        for _ in 0..n {
            let Some(Surface { top: Some(y), material: m, .. }) = terrain.surface_of(cell) else { break };
            if terrain.properties(m).hardness >= 1.0 {
                break;
            }
            terrain.remove_top(cell, y);
            carried += 1;
            stats.eroded += 1;
        }
    }
    carried
}

fn lay(terrain: &mut Terrain<'_>, s: &HydraulicSettings, cell: IVec2, stats: &mut HydraulicStats) {
    if terrain.lay(cell, s.deposit_as) {
        stats.deposited += 1;
    } else {
        stats.carried_out += 1;
    }
}

fn terrain_edits(terrain: &Terrain<'_>) -> usize {
    terrain.edit_count()
}
