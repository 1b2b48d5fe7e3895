//! Intrusion and cooling: a magma body rises through the crust from a source,
//! melting the rock in its way, and each molten voxel cools into igneous rock
//! a while after it melted: `cools_deep_to` (granite) deep in the crust,
//! `cools_to` (basalt) near the surface. Time is the storage's clock
//! ([`DeltaStorage::now`](crate::storage::DeltaStorage::now)), so the overlay holds
//! deltas of every age: the workload time-based consolidation is for.

use super::process::{GeologyProcess, GeologySystems};
use super::rng::Rng;
use super::terrain::Terrain;
use crate::material::{MaterialId, materials};
#[cfg(feature = "plugin")]
use bevy::prelude::ReflectResource;
use glam::{IVec2, IVec3};
use std::collections::VecDeque;
use std::time::Duration;

/// How magma rises and cools. A reflectable resource with the plugin.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "plugin", derive(bevy::prelude::Resource, bevy::reflect::Reflect))]
#[cfg_attr(feature = "plugin", reflect(Resource))]
pub struct IntrusionSettings {
    /// Where the first body starts; `None`: under the world's centre, an
    /// eighth of its height above the bottom. Default `None`.
    pub source: Option<IVec3>,
    /// The body's radius in voxels (each layer varies by ±20%). Default 10.
    pub radius: f32,
    /// How fast the body's top rises, voxels per second of the storage
    /// clock. Default 6.
    pub rise_per_second: f32,
    /// The body stops this many voxels below the surface above its source.
    /// Default 12.
    pub stop_below_surface: i32,
    /// Seconds from melting to rock. Default 30.
    pub cooling_seconds: f32,
    /// Voxels under the surface from which magma cools into the deep rock.
    /// Default 24.
    pub deep_below_surface: i32,
    /// Voxels melted per frame, at most. Default 6,000.
    pub max_melt_per_frame: u32,
    /// Molten voxels waiting to cool, at most; past it the oldest cool at
    /// once. Default 2^20.
    pub max_molten: usize,
    /// When a body has risen, another starts at a random place. Default true.
    pub repeat: bool,
    /// What rises. Default [`materials::MAGMA`].
    pub magma: MaterialId,
    /// Whether it runs. Default true.
    pub enabled: bool,
    /// The seed of the bodies' places and shapes. Default 3.
    pub seed: u64,
}

impl Default for IntrusionSettings {
    fn default() -> Self {
        Self {
            source: None,
            radius: 10.0,
            rise_per_second: 6.0,
            stop_below_surface: 12,
            cooling_seconds: 30.0,
            deep_below_surface: 24,
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
    /// Voxels of rock melted into magma.
    pub melted: u64,
    /// Voxels of magma cooled into rock.
    pub cooled: u64,
    /// Voxels of its magma another process changed before they cooled.
    /// Always `melted = cooled + molten + lost`.
    pub lost: u64,
    /// Voxels cooled early because `max_molten` was reached.
    pub cooled_early: u64,
    /// Voxels of magma waiting to cool now.
    pub molten: u64,
    /// Edits written.
    pub edits: u64,
}

/// A body rising.
#[derive(Clone, Debug)]
struct Body {
    source: IVec3,
    /// The next layer to melt.
    next: i32,
    /// Where the rising top is (fractional: the clock moves it).
    front: f32,
    /// Where it stops.
    top: i32,
}

/// Intrusion and cooling, the process: the body rising, the voxels cooling,
/// and what it did. A frame of it ([`GeologyProcess::step`]) raises the body by
/// the clock's advance, melting layer by layer (at most `max_melt_per_frame`
/// voxels), and cools the magma that melted `cooling_seconds` ago.
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
    /// Molten voxels, oldest first, with when they melted.
    #[cfg_attr(feature = "plugin", reflect(ignore))]
    molten: VecDeque<(Duration, IVec3)>,
    #[cfg_attr(feature = "plugin", reflect(ignore))]
    last: Option<Duration>,
    /// What the process did, since it started.
    pub stats: IntrusionStats,
}

impl Intrusion {
    /// Voxels of magma waiting to cool.
    pub fn molten(&self) -> usize {
        self.molten.len()
    }

    /// The top of the body rising, if one is.
    pub fn front(&self) -> Option<IVec3> {
        self.body.as_ref().map(|b| IVec3::new(b.source.x, b.front as i32, b.source.z))
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
            molten: VecDeque::new(),
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
}

/// One frame: the body rises, melting, and magma cools.
fn intrude(terrain: &mut Terrain<'_>, settings: &IntrusionSettings, state: &mut Intrusion) {
    let before = terrain.edit_count();
    let now = terrain.now();
    let dt = now.saturating_sub(state.last.unwrap_or(now)).as_secs_f32();
    state.last = Some(now);
    if state.body.is_none() && (state.stats.bodies == 0 || settings.repeat) {
        state.body = start(terrain, settings, state);
    }
    if let Some(body) = &mut state.body {
        body.front = (body.front + dt * settings.rise_per_second).min(body.top as f32);
    }
    rise(terrain, settings, state, now);
    cool(terrain, settings, state, now);
    state.stats.edits += (terrain.edit_count() - before) as u64;
    state.stats.molten = state.molten.len() as u64;
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
    (top > source.y).then_some(Body { source, next: source.y, front: source.y as f32, top })
}

/// Melts the layers the front has passed.
fn rise(terrain: &mut Terrain<'_>, s: &IntrusionSettings, state: &mut Intrusion, now: Duration) {
    let Some(body) = state.body.clone() else { return };
    let mut next = body.next;
    let mut melted = 0u32;
    while next as f32 <= body.front && next <= body.top && melted < s.max_melt_per_frame {
        // Each layer a little wider or narrower: a body, not a cylinder.
        let r = s.radius.max(0.5) * (0.8 + 0.4 * state.rng.unit());
        let ri = r.ceil() as i32;
        for dz in -ri..=ri {
            for dx in -ri..=ri {
                if (dx * dx + dz * dz) as f32 > r * r {
                    continue;
                }
                let p = IVec3::new(body.source.x + dx, next, body.source.z + dz);
                if !terrain.bounds().contains(p) {
                    continue;
                }
                let m = terrain.get(p);
                let props = terrain.properties(m);
                if !props.is_matter() || props.hardness >= 1.0 || m == s.magma {
                    continue;
                }
                terrain.set(p, s.magma);
                if state.molten.len() >= s.max_molten {
                    state.stats.cooled_early += 1;
                    cool_one(terrain, s, state);
                }
                state.molten.push_back((now, p));
                state.stats.melted += 1;
                melted += 1;
            }
        }
        next += 1;
    }
    match &mut state.body {
        Some(b) if next > b.top => state.body = None,
        Some(b) => b.next = next,
        None => {}
    }
}

/// Cools the magma that melted long enough ago.
fn cool(terrain: &mut Terrain<'_>, s: &IntrusionSettings, state: &mut Intrusion, now: Duration) {
    let cooling = Duration::from_secs_f32(s.cooling_seconds.max(0.0));
    while state.molten.front().is_some_and(|&(t, _)| t + cooling <= now) {
        cool_one(terrain, s, state);
    }
}

/// Cools the oldest molten voxel.
fn cool_one(terrain: &mut Terrain<'_>, s: &IntrusionSettings, state: &mut Intrusion) {
    let Some((_, p)) = state.molten.pop_front() else { return };
    if terrain.get(p) != s.magma {
        state.stats.lost += 1;
        return;
    }
    let props = terrain.properties(s.magma);
    let surface = terrain.surface(IVec2::new(p.x, p.z)).unwrap_or(p.y);
    let into = if surface - p.y >= s.deep_below_surface { props.cools_deep_to } else { props.cools_to };
    match into {
        Some(rock) => {
            terrain.set(p, rock);
            state.stats.cooled += 1;
        }
        // A magma that cools into nothing stays magma: count it as cooled,
        // since it leaves the queue for good.
        None => state.stats.cooled += 1,
    }
}
