//! Hydraulic erosion: rain droplets that run downhill over the terrain's
//! surface, pick up material where they speed up and drop it where they slow
//! down, reach standing water, or dry up.
//!
//! This is the droplet method of Hans Theobald Beyer ("Implementation of a
//! method for hydraulic erosion", 2015), as popularised by Sebastian Lague's
//! implementation, adapted to voxel columns, with the flow memory of Nick
//! McDonald's SimpleHydrology:
//!
//! - **Heights** are column surfaces, interpolated bilinearly between
//!   column centres. A droplet moves one column's width a step, its heading
//!   the downhill gradient plus its inertia and the remembered flow's
//!   momentum.
//! - **Capacity** is `max(drop, min_slope) · speed · water · capacity`.
//!   Below it a droplet erodes `(capacity - load) · erode_rate`, more where
//!   the remembered discharge is high (at most the drop ahead), over a
//!   **brush** of `brush_radius` columns weighted `∝ radius - distance` and
//!   scaled by each column's `1 - hardness`: valleys widen into a V instead
//!   of a slot. Above capacity it lays `(load - capacity) · deposit_rate`
//!   over the brush; going uphill it fills the pit behind (the four columns
//!   around it, bilinearly, as Lague's).
//! - **Whole voxels.** The brush's continuous amounts become whole voxels
//!   at random: an amount `a` is `floor(a)` voxels, one more with the chance
//!   of its fraction, each taken from (or laid on) a column of the brush
//!   drawn by its weight, and taken with the chance `1 - hardness` of that
//!   column's top. In expectation every column gets the continuous model's
//!   share (`tests/geology_hydraulic.rs` compares with a heightmap
//!   implementation), and a step reads only the columns it changes. Eroded
//!   rock enters the droplet's bag as its palette's `erodes_to` (sandstone as
//!   sand, granite as gravel; a loose material as itself; anything else as
//!   `deposit_as`), and is laid as that.
//! - **Standing water**: a droplet that reaches it goes on `water_steps` more
//!   steps with no capacity, laying a share of its load over the brush at
//!   each: a fan or delta, not a heap.
//! - **Flow memory**: each column remembers the water that ran through it and
//!   its heading, decaying by `flow_decay` a frame, in tiles of 16 x 16
//!   columns made where water runs (`memory_columns` at most, the tiles
//!   written least recently dropped first).
//!
//! # Invariants
//!
//! - `CONSERVATION`: a voxel leaves the terrain only into a droplet's bag,
//!   and a bag is emptied (laid, or carried out over the edge or above the
//!   top of the world) before the droplet ends. So at the end of every
//!   droplet, and of every frame, `eroded = deposited + carried_out`, and per
//!   material ([`HydraulicErosion::ledger`]) `became = laid + carried_out`.
//! - `DETERMINISM`: the world depends on the seed, the settings and the
//!   world only: the random numbers are splitmix64, headings come from no
//!   platform `cos`/`sin` (see `brush.rs`), the maths is IEEE `+ - · / sqrt`,
//!   and the memory never depends on its hash map's iteration order (see
//!   `flow.rs`).

mod brush;
mod droplet;
mod flow;

use super::process::{GeologyProcess, GeologySystems};
use super::rng::Rng;
use super::state::{StateError, StateReader, StateWriter};
use super::terrain::Terrain;
use crate::material::{MaterialId, materials};
use crate::storage::DeltaStorage;
#[cfg(feature = "plugin")]
use bevy::prelude::ReflectResource;
use brush::Brush;
use flow::FlowMemory;
use glam::IVec2;

/// How the rain falls and how droplets carry material. A reflectable
/// resource with the plugin: tune it live.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "plugin", derive(bevy::prelude::Resource, bevy::reflect::Reflect))]
#[cfg_attr(feature = "plugin", reflect(Resource))]
pub struct HydraulicSettings {
    /// Droplets per frame. Default 120.
    pub droplets_per_frame: u32,
    /// Steps a droplet lives at most on land. Default 40.
    pub max_steps: u32,
    /// How much a droplet keeps its direction (0: follows the slope at once,
    /// 1: never turns). Default 0.05.
    pub inertia: f32,
    /// Sediment capacity per unit of slope, speed and water. Default 4.
    pub capacity: f32,
    /// The least slope counted for capacity, so flats still carry. Default
    /// 0.01.
    pub min_slope: f32,
    /// Share of the free capacity picked up per step (times `1 - hardness`
    /// of each column of the brush). Default 0.3.
    pub erode_rate: f32,
    /// Share of the excess load dropped per step (and of the whole load in
    /// standing water). Default 0.3.
    pub deposit_rate: f32,
    /// Share of the water evaporating per step. Default 0.02.
    pub evaporation: f32,
    /// Speed gained per voxel of descent. Default 4.
    pub gravity: f32,
    /// What droplets lay down for an eroded material whose palette entry has
    /// no `erodes_to` and that is not loose (a loose one stays itself).
    /// Default [`materials::SEDIMENT`].
    pub deposit_as: MaterialId,
    /// The radius, in columns, of the brush a droplet erodes and deposits
    /// over (Lague's `erosionRadius`): 3 covers 25 columns; 0 or 1 is the
    /// column under the droplet alone; at most 8. Default 3.
    pub brush_radius: u32,
    /// Share of every column's remembered discharge and momentum lost per
    /// frame (0: never forgets, 1: no memory). Default 0.02.
    pub flow_decay: f32,
    /// How strongly the remembered flow turns a droplet: its momentum, per
    /// unit of discharge, added to the downhill gradient times this (0: not
    /// at all). Default 0.3.
    pub flow_steering: f32,
    /// Extra erosion where water has flowed: the rate is multiplied by
    /// `1 + flow_erosion · discharge / (discharge + flow_half)` (0: none).
    /// Default 1.
    pub flow_erosion: f32,
    /// The discharge (water that ran through a column, decaying) at which
    /// half of `flow_erosion` applies. Default 4.
    pub flow_half: f32,
    /// Steps a droplet goes on in standing water, laying its load. Default 8.
    pub water_steps: u32,
    /// Columns the flow memory holds at most (in tiles of 256); making room
    /// drops the quarter of the tiles written least recently. Default
    /// 1,048,576 (12 MiB at most: the default world's every column).
    pub memory_columns: usize,
    /// Where droplets fall, `(min x, min z)..(max x, max z)` of columns;
    /// `None`: anywhere in the world. Default `None`.
    pub area: Option<(IVec2, IVec2)>,
    /// Whether it runs. Default true.
    pub enabled: bool,
    /// The seed of the droplets' positions and headings. Default 1.
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
            brush_radius: 3,
            flow_decay: 0.02,
            flow_steering: 0.3,
            flow_erosion: 1.0,
            flow_half: 4.0,
            water_steps: 8,
            memory_columns: 1 << 20,
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
    /// Columns the flow memory dropped to stay within `memory_columns`.
    pub forgotten: u64,
    /// Columns the flow memory holds now (whole tiles of 256).
    pub remembered: u64,
}

/// What hydraulic erosion did with one material, since it started (see
/// [`HydraulicErosion::ledger`]). Always `became = laid + carried_out`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "plugin", derive(bevy::reflect::Reflect))]
pub struct HydraulicLedger {
    /// Voxels of this material taken from the terrain.
    pub taken: u64,
    /// Voxels taken (of any material) that became this one: what droplets
    /// carried as it.
    pub became: u64,
    /// Voxels of it laid down.
    pub laid: u64,
    /// Voxels of it carried out of the world.
    pub carried_out: u64,
}

/// Hydraulic erosion, the process: the droplets' random state, the columns'
/// flow memory and what it did. A frame of it ([`GeologyProcess::step`]) is
/// the memory's decay, then `settings.droplets_per_frame` droplets, each run
/// to its end.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "plugin", derive(bevy::prelude::Resource, bevy::reflect::Reflect))]
#[cfg_attr(feature = "plugin", reflect(Resource))]
pub struct HydraulicErosion {
    #[cfg_attr(feature = "plugin", reflect(ignore))]
    rng: Rng,
    /// The seed its random numbers started from.
    #[cfg_attr(feature = "plugin", reflect(ignore))]
    seed: u64,
    /// The brush of the settings' radius (rebuilt when it changes).
    #[cfg_attr(feature = "plugin", reflect(ignore))]
    brush: Brush,
    /// The columns' flow.
    #[cfg_attr(feature = "plugin", reflect(ignore))]
    memory: FlowMemory,
    /// Per material id: what became of it.
    #[cfg_attr(feature = "plugin", reflect(ignore))]
    ledger: Vec<HydraulicLedger>,
    /// A brush's columns brought to a whole voxel (reused each step).
    #[cfg_attr(feature = "plugin", reflect(ignore))]
    crossed: Vec<IVec2>,
    /// What the process did, since it started.
    pub stats: HydraulicStats,
}

impl HydraulicErosion {
    /// What it did with material `m`, since it started (zeros for one it
    /// never touched).
    ///
    /// ```
    /// use bevy_delta_overlay::geology::{GeologyProcess, HydraulicErosion, HydraulicSettings};
    /// use bevy_delta_overlay::materials;
    /// let rain = HydraulicErosion::new(&HydraulicSettings::default());
    /// assert_eq!(rain.ledger(materials::SAND).became, 0);
    /// ```
    pub fn ledger(&self, m: MaterialId) -> HydraulicLedger {
        self.ledger.get(usize::from(m.0)).copied().unwrap_or_default()
    }

    /// Columns the flow memory holds now (at most the settings'
    /// `memory_columns`).
    pub fn remembered_columns(&self) -> usize {
        self.memory.len()
    }
}

impl GeologyProcess for HydraulicErosion {
    type Settings = HydraulicSettings;
    const NAME: &'static str = "hydraulic erosion";
    const SET: GeologySystems = GeologySystems::Hydraulic;

    fn new(settings: &HydraulicSettings) -> Self {
        Self {
            rng: Rng::new(settings.seed ^ 0x4879_6472),
            seed: settings.seed,
            brush: Brush::new(settings.brush_radius),
            memory: FlowMemory::default(),
            ledger: Vec::new(),
            crossed: Vec::new(),
            stats: HydraulicStats::default(),
        }
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

    fn save(&mut self, _: &DeltaStorage, _: &HydraulicSettings, out: &mut StateWriter) {
        out.u8(1);
        out.u64(self.rng.state());
        out.u64(self.seed);
        self.memory.save(out);
    }

    fn restore(&mut self, _: &DeltaStorage, input: &mut StateReader<'_>) -> Result<(), StateError> {
        input.version(1)?;
        self.rng = Rng::new(input.u64()?);
        self.seed = input.u64()?;
        self.memory = FlowMemory::restore(input)?;
        Ok(())
    }
}

/// One frame of rain. Reads and writes go through `terrain`.
fn rain(terrain: &mut Terrain<'_>, settings: &HydraulicSettings, state: &mut HydraulicErosion) {
    let b = terrain.bounds();
    let (lo, hi) = match settings.area {
        Some((lo, hi)) => (lo.max(IVec2::new(b.min.x, b.min.z)), hi.min(IVec2::new(b.max.x, b.max.z))),
        None => (IVec2::new(b.min.x, b.min.z), IVec2::new(b.max.x, b.max.z)),
    };
    if !state.brush.fits(settings.brush_radius) {
        state.brush = Brush::new(settings.brush_radius);
    }
    state.memory.decay(settings.flow_decay);
    if lo.x >= hi.x || lo.y >= hi.y {
        return;
    }
    let mut rain = droplet::Rain {
        terrain,
        s: settings,
        brush: &state.brush,
        memory: &mut state.memory,
        rng: &mut state.rng,
        stats: &mut state.stats,
        ledger: &mut state.ledger,
        crossed: &mut state.crossed,
    };
    for _ in 0..settings.droplets_per_frame {
        let start = IVec2::new(rain.rng.range(lo.x, hi.x), rain.rng.range(lo.y, hi.y));
        rain.droplet(start);
        rain.stats.droplets += 1;
    }
    state.stats.forgotten = state.memory.evicted;
    state.stats.remembered = state.memory.len() as u64;
}
