//! Intrusion and cooling: a magma body grows from a source in the crust,
//! melting the rock in its way (a rising stock, a dike rising as a thin
//! vertical sheet, or a sill spreading along a bedding plane; see
//! [`IntrusionShape`]). When it stops growing it bakes the rock around it (the
//! contact aureole) and cools from its margins in, thin bodies first, into the
//! fine- and coarse-grained rocks of its [`Composition`] (see the `cooling`
//! module). Time is the storage's clock
//! ([`DeltaStorage::now`](crate::storage::DeltaStorage::now)), so the overlay holds
//! deltas of every age: the workload time-based consolidation is for.
//!
//! # Invariants
//!
//! - `ACCOUNTED`: `melted = cooled + molten + lost` at the end of every
//!   frame, `molten` being the growing body's voxels plus the queue's.
//! - `BOUNDED`: at most `max_molten` molten voxels are tracked: past it the
//!   earliest queued voxel solidifies at once, or, with none queued, the
//!   growing body stops growing.
//! - Molten magma has hardness 1 in the shipped palette: rain does not wash
//!   it into sediment before it cools.

use super::bodies::{Body, Geometry, IntrusionShape, Kind};
use super::cooling::{self, Composition, Cooling, CoolingQueue};
use super::process::{GeologyProcess, GeologySystems};
use super::rng::Rng;
use super::state::{StateError, StateReader, StateWriter};
use super::terrain::Terrain;
use crate::material::{MaterialId, materials};
use crate::storage::DeltaStorage;
#[cfg(feature = "plugin")]
use bevy::prelude::ReflectResource;
use glam::{IVec2, IVec3};
use std::time::Duration;

/// How magma intrudes and cools. A reflectable resource with the plugin.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "plugin", derive(bevy::prelude::Resource, bevy::reflect::Reflect))]
#[cfg_attr(feature = "plugin", reflect(Resource))]
pub struct IntrusionSettings {
    /// Where the first body starts; `None`: under the world's centre, an
    /// eighth of its height above the bottom. Default `None`.
    pub source: Option<IVec3>,
    /// What the bodies are: stocks, dikes, sills, or a seeded mix. Default
    /// [`IntrusionShape::Mixed`].
    pub shape: IntrusionShape,
    /// A stock's radius (each layer varies by ±20%), half a dike's length
    /// along its strike, a sill's radius; in voxels. Default 10.
    pub radius: f32,
    /// A dike's and a sill's thickness (and the width of a sill's feeder), in
    /// voxels. Default 2.
    pub thickness: i32,
    /// A dike's direction `(x, z)`; `None` (or zero): one of eight, seeded,
    /// for each dike. Default `None`.
    pub strike: Option<IVec2>,
    /// How fast a body grows: layers a second of the storage clock for a
    /// stock, a dike or a sill's feeder, rings a second for a sill's sheet.
    /// Default 6.
    pub rise_per_second: f32,
    /// A body stops this many voxels below the surface above its source.
    /// Default 12.
    pub stop_below_surface: i32,
    /// What the magma is made of: which rocks its margin and core become.
    /// Default [`Composition::Mafic`].
    pub composition: Composition,
    /// Seconds from the end of a body's growth until its margin is rock; a
    /// voxel `d` voxels in from the margin takes `d²` times as long. Default 1.
    pub cooling_seconds: f32,
    /// Voxels from the margin in that cool into the fine-grained rock (the
    /// chilled margin; at least 1). Default 2.
    pub chilled_margin: u32,
    /// The contact aureole's thickness: rock within this many voxels of a body
    /// (face to face) becomes its palette's `metamorphoses_to`; 0: none.
    /// Default 3.
    pub aureole: u32,
    /// Voxels melted per frame, at most. Default 6,000.
    pub max_melt_per_frame: u32,
    /// Molten voxels tracked, at most (also the cap of a body, and of its
    /// aureole's search); see the module's `BOUNDED`. Default 2^20.
    pub max_molten: usize,
    /// When a body has grown, another starts at a random place. Default true.
    pub repeat: bool,
    /// What intrudes. Default [`materials::MAGMA`].
    pub magma: MaterialId,
    /// Whether it runs. Default true.
    pub enabled: bool,
    /// The seed of the bodies' places, shapes and strikes. Default 3.
    pub seed: u64,
}

impl Default for IntrusionSettings {
    fn default() -> Self {
        Self {
            source: None,
            shape: IntrusionShape::Mixed,
            radius: 10.0,
            thickness: 2,
            strike: None,
            rise_per_second: 6.0,
            stop_below_surface: 12,
            composition: Composition::Mafic,
            cooling_seconds: 1.0,
            chilled_margin: 2,
            aureole: 3,
            max_melt_per_frame: 6000,
            max_molten: 1 << 20,
            repeat: true,
            magma: materials::MAGMA,
            enabled: true,
            seed: 3,
        }
    }
}

/// What intrusion did, since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "plugin", derive(bevy::reflect::Reflect))]
pub struct IntrusionStats {
    /// Bodies started.
    pub bodies: u64,
    /// Of them, stocks.
    pub stocks: u64,
    /// Of them, dikes.
    pub dikes: u64,
    /// Of them, sills.
    pub sills: u64,
    /// Voxels of rock melted into magma.
    pub melted: u64,
    /// Voxels of magma cooled into rock.
    pub cooled: u64,
    /// Voxels of its magma another process changed before they cooled.
    /// Always `melted = cooled + molten + lost`.
    pub lost: u64,
    /// Voxels cooled early because `max_molten` was reached.
    pub cooled_early: u64,
    /// Voxels of magma waiting to cool now (the growing body's and the
    /// settled bodies').
    pub molten: u64,
    /// Voxels of rock baked in contact aureoles.
    pub metamorphosed: u64,
    /// Edits written.
    pub edits: u64,
}

/// Intrusion and cooling, the process: the body growing, the voxels cooling,
/// and what it did. A frame of it ([`GeologyProcess::step`]) grows the body by
/// the clock's advance (at most `max_melt_per_frame` voxels melted); a body
/// done growing bakes its aureole and is queued to cool; the queued voxels due
/// solidify.
#[derive(Clone, Debug)]
#[cfg_attr(feature = "plugin", derive(bevy::prelude::Resource, bevy::reflect::Reflect))]
#[cfg_attr(feature = "plugin", reflect(Resource))]
pub struct Intrusion {
    #[cfg_attr(feature = "plugin", reflect(ignore))]
    rng: Rng,
    /// The seed its random numbers started from.
    #[cfg_attr(feature = "plugin", reflect(ignore))]
    seed: u64,
    #[cfg_attr(feature = "plugin", reflect(ignore))]
    body: Option<Body>,
    /// The settled bodies' molten voxels, earliest to solidify first.
    #[cfg_attr(feature = "plugin", reflect(ignore))]
    queue: CoolingQueue,
    /// Voxels queued so far: the queue's tie-break.
    #[cfg_attr(feature = "plugin", reflect(ignore))]
    order: u64,
    #[cfg_attr(feature = "plugin", reflect(ignore))]
    last: Option<Duration>,
    /// What the process did, since it started.
    pub stats: IntrusionStats,
}

impl Intrusion {
    /// Voxels of magma waiting to cool (the growing body's included).
    pub fn molten(&self) -> usize {
        self.queue.len() + self.body.as_ref().map_or(0, |b| b.voxels.len())
    }

    /// Where the growing body has got to, if one grows: the top of a rising
    /// stock or dike, the centre of a sill.
    pub fn front(&self) -> Option<IVec3> {
        self.body.as_ref().map(Body::front)
    }

    /// Whether a body is growing (not yet queued to cool).
    pub fn growing(&self) -> bool {
        self.body.is_some()
    }
}

impl GeologyProcess for Intrusion {
    type Settings = IntrusionSettings;
    const NAME: &'static str = "intrusion";
    const SET: GeologySystems = GeologySystems::Intrusion;

    fn new(settings: &IntrusionSettings) -> Self {
        Self {
            rng: Rng::new(settings.seed ^ 0x696e_7472),
            seed: settings.seed,
            body: None,
            queue: CoolingQueue::new(),
            order: 0,
            last: None,
            stats: IntrusionStats::default(),
        }
    }

    fn enabled(settings: &IntrusionSettings) -> bool {
        settings.enabled
    }

    fn reseed(&mut self, settings: &IntrusionSettings) {
        if settings.seed != self.seed {
            self.rng = Rng::new(settings.seed ^ 0x696e_7472);
            self.seed = settings.seed;
        }
    }

    fn step(&mut self, terrain: &mut Terrain<'_>, settings: &IntrusionSettings) {
        if settings.enabled {
            intrude(terrain, settings, self);
        }
    }

    fn save(&mut self, _: &DeltaStorage, _: &IntrusionSettings, out: &mut StateWriter) {
        out.u8(1);
        out.u64(self.rng.state());
        out.u64(self.seed);
        out.option(self.body.as_ref(), |out, b| b.save(out));
        cooling::save(&self.queue, out);
        out.u64(self.order);
        out.option(self.last, StateWriter::duration);
        // The first body rises at the settings' source, later ones elsewhere.
        out.u64(self.stats.bodies);
    }

    fn restore(&mut self, storage: &DeltaStorage, input: &mut StateReader<'_>) -> Result<(), StateError> {
        input.version(1)?;
        self.rng = Rng::new(input.u64()?);
        self.seed = input.u64()?;
        let bounds = storage.bounds();
        self.body = input.option(|input| Body::restore(input, bounds))?;
        self.queue = cooling::restore(input)?;
        self.order = input.u64()?;
        self.last = input.option(StateReader::duration)?;
        self.stats.bodies = input.u64()?;
        Ok(())
    }
}

/// One frame: the body grows, melting; a grown body settles; magma cools.
fn intrude(terrain: &mut Terrain<'_>, settings: &IntrusionSettings, state: &mut Intrusion) {
    let before = terrain.edit_count();
    let now = terrain.now();
    let dt = now.saturating_sub(state.last.unwrap_or(now)).as_secs_f32();
    state.last = Some(now);
    if state.body.is_none() && (state.stats.bodies == 0 || settings.repeat) {
        state.body = start(terrain, settings, state);
    }
    if let Some(body) = &mut state.body {
        body.front = (body.front + dt * settings.rise_per_second).min(body.last as f32);
    }
    grow(terrain, settings, state);
    if state.body.as_ref().is_some_and(Body::grown) {
        settle(terrain, settings, state, now);
    }
    let (cooled, lost) = cooling::solidify(terrain, settings.magma, &mut state.queue, now);
    state.stats.cooled += cooled;
    state.stats.lost += lost;
    state.stats.edits += (terrain.edit_count() - before) as u64;
    state.stats.molten = state.molten() as u64;
}

/// A new body: the configured source first, then random places.
fn start(terrain: &mut Terrain<'_>, s: &IntrusionSettings, state: &mut Intrusion) -> Option<Body> {
    let b = terrain.bounds();
    let size = b.size();
    let margin = (s.radius.ceil() as i32).min(size.x / 2).min(size.z / 2);
    let source = match s.source.filter(|_| state.stats.bodies == 0) {
        Some(p) => p.clamp(b.min, b.max - IVec3::ONE),
        None if state.stats.bodies == 0 => IVec3::new(b.min.x + size.x / 2, b.min.y + size.y / 8, b.min.z + size.z / 2),
        None => IVec3::new(
            state.rng.range(b.min.x + margin, b.max.x - margin),
            b.min.y + size.y / 8,
            state.rng.range(b.min.z + margin, b.max.z - margin),
        ),
    };
    let surface = terrain.surface(IVec2::new(source.x, source.z)).unwrap_or(b.min.y);
    state.stats.bodies += 1;
    let top = (surface - s.stop_below_surface).min(b.max.y - 1);
    if top <= source.y {
        return None;
    }
    let geometry = Geometry { radius: s.radius, thickness: s.thickness };
    let body = Body::new(terrain, (s.shape, s.strike), geometry, (source, top), &mut state.rng);
    match body.kind {
        Kind::Stock => state.stats.stocks += 1,
        Kind::Dike { .. } => state.stats.dikes += 1,
        Kind::Sill { .. } => state.stats.sills += 1,
    }
    Some(body)
}

/// Melts the steps the front has passed.
fn grow(terrain: &mut Terrain<'_>, s: &IntrusionSettings, state: &mut Intrusion) {
    let Some(mut body) = state.body.take() else { return };
    let geometry = Geometry { radius: s.radius, thickness: s.thickness };
    let mut melted = 0u32;
    let mut step = Vec::new();
    while body.next as f32 <= body.front && !body.grown() && melted < s.max_melt_per_frame {
        step.clear();
        body.step(body.next, geometry, &mut state.rng, &mut step);
        for &p in &step {
            if !terrain.bounds().contains(p) {
                continue;
            }
            let m = terrain.get(p);
            let props = terrain.properties(m);
            if !props.is_matter() || props.hardness >= 1.0 || m == s.magma {
                continue;
            }
            if !make_room(terrain, s, state, &body) {
                // Full: the body stops growing here.
                body.next = body.last;
                break;
            }
            terrain.set(p, s.magma);
            body.voxels.push(p);
            state.stats.melted += 1;
            melted += 1;
        }
        body.next += 1;
    }
    state.body = Some(body);
}

/// Keeps the molten voxels under `max_molten` before one more melts: the
/// earliest queued solidifies now. `false` when none is queued (the growing
/// body holds them all).
fn make_room(terrain: &mut Terrain<'_>, s: &IntrusionSettings, state: &mut Intrusion, body: &Body) -> bool {
    while state.queue.len() + body.voxels.len() >= s.max_molten.max(1) {
        match cooling::solidify_one(terrain, s.magma, &mut state.queue) {
            Some(true) => {
                state.stats.cooled += 1;
                state.stats.cooled_early += 1;
            }
            Some(false) => state.stats.lost += 1,
            None => return false,
        }
    }
    true
}

/// The grown body bakes its aureole and is queued to cool.
fn settle(terrain: &mut Terrain<'_>, s: &IntrusionSettings, state: &mut Intrusion, now: Duration) {
    let Some(body) = state.body.take() else { return };
    let c = Cooling {
        magma: s.magma,
        composition: s.composition,
        cooling_seconds: s.cooling_seconds,
        chilled_margin: s.chilled_margin,
        aureole: s.aureole,
        max_molten: s.max_molten,
    };
    let (baked, lost) = cooling::settle(terrain, &c, &body.voxels, now, (&mut state.queue, &mut state.order));
    state.stats.metamorphosed += baked;
    state.stats.lost += lost;
}
