//! Deposition and compaction: loose material under standing water slumps
//! down slopes steeper than its underwater angle of repose, sorted by grain
//! size, and loose material buried deep enough for long enough compacts into
//! rock, losing volume (`compacts_to`, `compacts_volume`: four voxels of
//! sediment into three of sandstone, two of silt into one of shale).
//!
//! Sorting: each grain class ([`Grain`]) rests at its own underwater angle,
//! `underwater_angle` (sand's) times its `grain_angle_scale`: gravel stands
//! steepest and stays where it was laid, fine silt and clay run on down the
//! bed into the deeps. A mixed load laid at a shore ends in strata: gravel
//! and sand near it, silt and clay further out and below.
//!
//! The slope rule is thermal erosion's (`slope.rs`), eight
//! directions over `reach` columns, with the underwater angles.
//!
//! Compaction needs depth and time: a column whose top rose (or a random
//! check) records its top and the storage's clock; `compaction_seconds`
//! later, the loose voxels that were buried `burial_depth` deep then, and
//! still are, compact. Whole groups of `compacts_volume.0` voxels become
//! `compacts_volume.1` of rock (what is left stays loose); the lost volume
//! collapses ([`Terrain::collapse`]): what stands above sinks, water
//! included, and air takes the top.
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
use super::slope::{Around, DEFAULT_REACH, ReposeTable, UphillQueue, shed};
use super::state::{StateError, StateReader, StateWriter};
use super::terrain::Terrain;
use crate::hash::{FastMap, fast_map};
use crate::material::{Form, Grain, tan_degrees};
use crate::storage::DeltaStorage;
use crate::surface::{Surface, SurfaceChanges, SurfaceCursor};
#[cfg(feature = "plugin")]
use bevy::prelude::ReflectResource;
use glam::{IVec2, IVec3};
use std::collections::VecDeque;
use std::time::Duration;

/// How sediment settles and compacts. A reflectable resource with the plugin.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "plugin", derive(bevy::prelude::Resource, bevy::reflect::Reflect))]
#[cfg_attr(feature = "plugin", reflect(Resource))]
pub struct DepositionSettings {
    /// Random columns checked per frame, besides the queued ones: a trickle.
    /// Default 32.
    pub columns_per_frame: u32,
    /// Columns queued for a check, and columns waiting to compact, at most
    /// (the oldest dropped past it, and counted). Default 65,536.
    pub queue_cap: usize,
    /// Queued columns checked per frame, at most: the frame's budget (and as
    /// many compactions). Default 2,000.
    pub checks_per_frame: u32,
    /// The steepest slope sand (and loose material of no other class) rests
    /// at under water, in degrees, taken in `0..=90` (90: every slope stands;
    /// NaN counts as 0). Default 30.
    pub underwater_angle: f32,
    /// Each grain class's underwater angle as a share of `underwater_angle`,
    /// by [`Grain::index`] (gravel, sand, silt, clay). Default `[1.2, 1.0,
    /// 0.45, 0.2]`: 36°, 30°, 13.5° and 6°.
    pub grain_angle_scale: [f32; 4],
    /// Columns over which an underwater slope is measured, `1..=8`. Default 4.
    pub reach: i32,
    /// Voxels one column may shed per check. Default 4.
    pub max_settles_per_column: u32,
    /// Voxels of terrain above a loose voxel that compact it. Default 12.
    pub burial_depth: i32,
    /// Voxels below the burial depth a compaction scans at least (a column
    /// whose top rose scans as deep as it rose). Default 8.
    pub compaction_scan: i32,
    /// Seconds of the storage's clock a voxel stays buried before it
    /// compacts. Default 60.
    pub compaction_seconds: f32,
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
            grain_angle_scale: [1.2, 1.0, 0.45, 0.2],
            reach: DEFAULT_REACH,
            max_settles_per_column: 4,
            burial_depth: 12,
            compaction_scan: 8,
            compaction_seconds: 60.0,
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
    /// Loose voxels compacted.
    pub compacted: u64,
    /// Rock voxels they became: `compacted - lithified` voxels of volume were
    /// lost (the column above sank, air took its top).
    pub lithified: u64,
    /// Columns waiting to compact now.
    pub burials: u64,
    /// Edits written.
    pub edits: u64,
    /// Columns queued for a check now.
    pub queued: u64,
    /// Queued checks and burials dropped because the queue was full.
    pub dropped: u64,
    /// Surface changes the process missed: dropped from the storage's log
    /// before it read them.
    pub missed: u64,
}

/// A column waiting to compact: when it was buried, its top then, and how
/// many voxels below the burial depth to scan.
#[derive(Clone, Copy, Debug)]
struct Burial {
    at: Duration,
    column: IVec2,
    top: i32,
    scan: i32,
}

/// Columns waiting to compact, oldest first, each once (`waiting` holds
/// the columns of `order`).
#[derive(Clone, Debug)]
struct Burials {
    order: VecDeque<Burial>,
    waiting: FastMap<IVec2, ()>,
    /// Burials dropped because the queue was full.
    dropped: u64,
}

impl Default for Burials {
    fn default() -> Self {
        Self { order: VecDeque::new(), waiting: fast_map(), dropped: 0 }
    }
}

/// Deposition and compaction, the process: the columns waiting for a check
/// or to compact, the random state and what it did. A frame of it
/// ([`GeologyProcess::step`]) settles the queued columns, then random ones,
/// and compacts the burials old enough.
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
    #[cfg_attr(feature = "plugin", reflect(ignore))]
    burials: Burials,
    /// The underwater angles as drops, by material, rebuilt each frame.
    #[cfg_attr(feature = "plugin", reflect(ignore))]
    repose: ReposeTable,
    /// Where it is in the storage's surface log.
    cursor: SurfaceCursor,
    /// What the process did, since it started.
    pub stats: DepositionStats,
}

impl Deposition {
    /// Settles the submerged loose top of column `c` and records it for
    /// compaction, as the random trickle does: for tools that know where
    /// sediment landed.
    pub fn check_column(&mut self, terrain: &mut Terrain<'_>, settings: &DepositionSettings, c: IVec2) {
        self.repose.refresh(terrain, |p| grain_slope(settings, p.grain));
        settle_column(terrain, settings, c, self);
        self.bury(terrain, settings, c, settings.compaction_scan);
    }

    /// Columns waiting to compact.
    pub fn burials(&self) -> usize {
        self.burials.order.len()
    }

    /// Queues the columns of `changes` (read from the cursor on).
    fn queue_changes(&mut self, changes: SurfaceChanges<'_>, cap: usize) {
        self.stats.missed += changes.missed;
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
            self.queue.push(change.column, mark, cap);
        }
    }

    /// Writes the burials in order.
    fn save_burials(&self, out: &mut StateWriter) {
        out.len_of(self.burials.order.len());
        for b in &self.burials.order {
            out.duration(b.at);
            out.ivec2(b.column);
            out.i32(b.top);
            out.i32(b.scan);
        }
    }

    /// Reads what [`save_burials`](Self::save_burials) wrote.
    fn restore_burials(input: &mut StateReader<'_>) -> Result<Burials, StateError> {
        let mut burials = Burials::default();
        for _ in 0..input.len_of(24)? {
            let b = Burial { at: input.duration()?, column: input.ivec2()?, top: input.i32()?, scan: input.i32()? };
            if burials.waiting.insert(b.column, ()).is_some() {
                return Err(StateError::Invalid("burials (a column twice)"));
            }
            burials.order.push_back(b);
        }
        Ok(burials)
    }

    /// Records column `c`'s top now, for a compaction `compaction_seconds`
    /// later (unless it waits already).
    fn bury(&mut self, terrain: &mut Terrain<'_>, s: &DepositionSettings, c: IVec2, scan: i32) {
        let Some(top) = terrain.surface(c) else { return };
        let burials = &mut self.burials;
        if burials.waiting.contains_key(&c) || !compactable(terrain, s, c, top, scan) {
            return;
        }
        while burials.order.len() >= s.queue_cap.max(1) {
            let Some(old) = burials.order.pop_front() else { break };
            burials.waiting.remove(&old.column);
            burials.dropped += 1;
        }
        burials.waiting.insert(c, ());
        burials.order.push_back(Burial { at: terrain.now(), column: c, top, scan: scan.max(1) });
    }
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
            burials: Burials::default(),
            repose: ReposeTable::default(),
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
            compact(terrain, settings, self);
            self.stats.burials = self.burials.order.len() as u64;
        }
    }

    fn save(&mut self, storage: &DeltaStorage, settings: &DepositionSettings, out: &mut StateWriter) {
        let mut cursor = self.cursor;
        self.queue_changes(storage.surface_changes(&mut cursor), settings.queue_cap);
        self.cursor = cursor;
        out.u8(1);
        out.u64(self.rng.state());
        out.u64(self.seed);
        self.queue.save(out);
        self.save_burials(out);
    }

    fn restore(&mut self, storage: &DeltaStorage, input: &mut StateReader<'_>) -> Result<(), StateError> {
        input.version(1)?;
        self.rng = Rng::new(input.u64()?);
        self.seed = input.u64()?;
        self.queue = ColumnQueue::restore(input)?;
        self.burials = Self::restore_burials(input)?;
        self.cursor = storage.surface_cursor();
        Ok(())
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

/// The underwater slope (rise over run) of a grain class: its angle in
/// degrees taken in `0..=90`, 90 and above standing vertical (infinite), NaN
/// and below 0 lying flat.
fn grain_slope(s: &DepositionSettings, grain: Grain) -> f32 {
    let degrees = s.underwater_angle * s.grain_angle_scale[grain.index()];
    if degrees >= 90.0 {
        f32::INFINITY
    } else if degrees > 0.0 {
        tan_degrees(f64::from(degrees)) as f32
    } else {
        0.0
    }
}

/// One frame of settling: the changed columns queued, then the queue's oldest
/// checked (up to the budget), then random ones.
fn settle(terrain: &mut Terrain<'_>, settings: &DepositionSettings, state: &mut Deposition) {
    let before = terrain.edit_count();
    let b = terrain.bounds();
    let (cap, reach) = (settings.queue_cap, settings.reach.max(1));
    state.repose.refresh(terrain, |p| grain_slope(settings, p.grain));
    let mut cursor = state.cursor;
    state.queue_changes(terrain.surface_changes(&mut cursor), cap);
    state.cursor = cursor;
    for _ in 0..settings.checks_per_frame {
        let Some((c, mark)) = state.queue.pop() else { break };
        if mark & FELL != 0
            && let Some(least) = state.repose.least
            && let Some(surface) = terrain.surface_of(c)
            && surface.liquid.is_some()
        {
            let around = Around::read(terrain, c, reach, None);
            let h = surface.top.unwrap_or(terrain.bounds().min.y - 1);
            let queue = UphillQueue { queue: &mut state.queue, mark: SETTLE, cap };
            around.queue_uphill(terrain, h, &least, true, queue);
        }
        settle_column(terrain, settings, c, state);
        if mark & COMPACT != 0 {
            let rise = i32::from(mark >> RISE_SHIFT).max(1);
            state.bury(terrain, settings, c, rise.max(settings.compaction_scan));
        }
    }
    for _ in 0..settings.columns_per_frame {
        let c = state.rng.column(b);
        settle_column(terrain, settings, c, state);
        state.bury(terrain, settings, c, settings.compaction_scan);
    }
    state.stats.edits += (terrain.edit_count() - before) as u64;
    state.stats.queued = state.queue.len() as u64;
    state.stats.dropped = state.queue.dropped + state.burials.dropped;
}

/// Moves the loose top of column `c`, while it is under water and steeper
/// than its grain's underwater angle, down the slope.
fn settle_column(terrain: &mut Terrain<'_>, s: &DepositionSettings, c: IVec2, state: &mut Deposition) {
    state.stats.columns += 1;
    let Some(surface) = terrain.surface_of(c) else { return };
    if surface.top.is_none() || surface.liquid.is_none() || terrain.properties(surface.material).form != Form::Loose {
        return;
    }
    let mut around = Around::read(terrain, c, s.reach.max(1), surface.top);
    let table = &state.repose;
    let repose = |top: &Surface| top.liquid.map(|_| table.of(top.material));
    state.stats.settled += u64::from(shed(terrain, &mut around, s.max_settles_per_column, &mut state.rng, repose));
}

/// Compacts the burials old enough (at most `checks_per_frame` of them).
fn compact(terrain: &mut Terrain<'_>, s: &DepositionSettings, state: &mut Deposition) {
    let before = terrain.edit_count();
    let wait = Duration::from_secs_f32(if s.compaction_seconds > 0.0 { s.compaction_seconds.min(1e9) } else { 0.0 });
    let now = terrain.now();
    for _ in 0..s.checks_per_frame {
        let Some(&burial) = state.burials.order.front() else { break };
        if burial.at + wait > now {
            break;
        }
        state.burials.order.pop_front();
        state.burials.waiting.remove(&burial.column);
        compact_column(terrain, s, burial, &mut state.stats);
        // Buried further since: that compacts `compaction_seconds` from now.
        if terrain.surface(burial.column).is_some_and(|h| h > burial.top) {
            state.bury(terrain, s, burial.column, s.compaction_scan);
        }
    }
    state.stats.edits += (terrain.edit_count() - before) as u64;
}

/// Compacts the loose voxels of a burial: those `burial_depth` under the
/// column's top when it was recorded and now, scanning `scan` voxels down
/// from there. A run of one loose material compacts in whole groups of
/// `compacts_volume.0`, the lowest first; the volume lost collapses.
fn compact_column(terrain: &mut Terrain<'_>, s: &DepositionSettings, burial: Burial, stats: &mut DepositionStats) {
    let c = burial.column;
    let Some(h) = terrain.surface(c) else { return };
    let (mut y, lowest) = window(terrain, s, burial.top.min(h), burial.scan);
    while y >= lowest {
        let p = IVec3::new(c.x, y, c.y);
        let m = terrain.get(p);
        let props = *terrain.properties(m);
        if !props.is_matter() {
            // A hollow: what is below is not buried by this column.
            break;
        }
        let Some(rock) = props.compacts_to.filter(|_| props.form == Form::Loose) else {
            y -= 1;
            continue;
        };
        // The run of `m` down from `y`.
        let mut bottom = y;
        while bottom > lowest && terrain.get(IVec3::new(c.x, bottom - 1, c.y)) == m {
            bottom -= 1;
        }
        let (loose, made) = (i32::from(props.compacts_volume.0), i32::from(props.compacts_volume.1));
        let groups = (y - bottom + 1) / loose;
        for at in bottom..bottom + groups * made {
            terrain.set(IVec3::new(c.x, at, c.y), rock);
        }
        terrain.collapse(c, bottom + groups * made, groups * (loose - made));
        stats.compacted += (groups * loose) as u64;
        stats.lithified += (groups * made) as u64;
        y = bottom - 1;
    }
}

/// The heights a compaction scans under a top at `top`: from `burial_depth`
/// under it down `scan` voxels, clamped to the world (both settings are live
/// and any size). Empty (`from < lowest`) when nothing is that deep.
fn window(terrain: &Terrain<'_>, s: &DepositionSettings, top: i32, scan: i32) -> (i32, i32) {
    let from = top.saturating_sub(s.burial_depth.max(1));
    (from, from.saturating_sub(scan.max(1) - 1).max(terrain.bounds().min.y))
}

/// Whether a compaction under column `c`'s top `top` would find a loose voxel
/// that compacts (above any hollow): a burial worth waiting for.
fn compactable(terrain: &mut Terrain<'_>, s: &DepositionSettings, c: IVec2, top: i32, scan: i32) -> bool {
    let (from, lowest) = window(terrain, s, top, scan);
    for y in (lowest..=from).rev() {
        let m = terrain.get(IVec3::new(c.x, y, c.y));
        let props = terrain.properties(m);
        if !props.is_matter() {
            return false;
        }
        if props.form == Form::Loose && props.compacts_to.is_some() {
            return true;
        }
    }
    false
}
