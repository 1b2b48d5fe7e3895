//! Geology on a paged world (features `geology` and `paging`): the
//! processes step on the resident sector under a point (an interest), with
//! its surface index, and their edits go to the paged world, which keeps
//! them as it keeps any edit.
//!
//! A sector is the processes' world for the frame: at its edges they stop
//! as at the world's (a droplet that leaves it is carried out, a slope is
//! not read across it). Their state is in the world's coordinates, so a
//! process that moves on to the next sector keeps its random numbers and
//! its memory; what it held of the last sector is read as outside the world
//! until the interest comes back.

use super::{GeologyProcess, Terrain, Workspace};
use crate::material::Palette;
use crate::paging::PagedWorld;
use glam::IVec3;
use std::time::{Duration, Instant};

/// What [`PagedGeology`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PagedGeologyStats {
    /// Frames the processes ran.
    pub frames: u64,
    /// Frames skipped: the sector under the point was not resident.
    pub not_resident: u64,
    /// Edits the processes made, and those the paged world refused (its
    /// `max_edits` reached).
    pub edits: u64,
    /// See `edits`.
    pub refused: u64,
    /// The processes' time in the last frame they ran.
    pub last_time: Duration,
}

/// One process and its settings, behind a trait object so processes of
/// every type run in one list.
trait Step: Send + Sync {
    fn step(&mut self, terrain: &mut Terrain<'_>);
}

struct Entry<P: GeologyProcess> {
    process: P,
    settings: P::Settings,
}

impl<P: GeologyProcess> Step for Entry<P> {
    fn step(&mut self, terrain: &mut Terrain<'_>) {
        if P::enabled(&self.settings) {
            self.process.step(terrain, &self.settings);
        }
    }
}

/// The processes of a paged world, stepped in the order they were added.
///
/// ```
/// use bevy_delta_overlay::geology::{HydraulicErosion, HydraulicSettings, PagedGeology, ThermalErosion};
/// use bevy_delta_overlay::paging::{Interest, PagedWorld, PagingSettings};
/// use bevy_delta_overlay::{DeltaConfig, Palette, WorldGen};
/// use glam::IVec3;
/// let generator = WorldGen { size: IVec3::new(1024, 64, 1024), sea_level: 30, ..WorldGen::default() };
/// let settings = PagingSettings { sector_columns: 64, ..PagingSettings::default() };
/// let mut world = PagedWorld::new(generator, settings, DeltaConfig::default())?;
/// let mut geology = PagedGeology::new(Palette::shipped())
///     .with::<HydraulicErosion>(HydraulicSettings { droplets_per_frame: 50, ..Default::default() })
///     .with::<ThermalErosion>(Default::default());
/// world.index_surfaces(geology.palette());
/// let here = IVec3::new(500, 40, 500);
/// world.set_interest(&[Interest { center: here, radius: 32, ..Default::default() }]);
/// world.tick_until_resident();
/// for _ in 0..10 {
///     world.advance_clock(std::time::Duration::from_millis(16));
///     geology.step(&mut world, here);
/// }
/// assert_eq!(geology.stats().frames, 10);
/// # Ok::<(), bevy_delta_overlay::VoxelError>(())
/// ```
pub struct PagedGeology {
    palette: Palette,
    workspace: Workspace,
    processes: Vec<Box<dyn Step>>,
    stats: PagedGeologyStats,
    /// The last frame's edits, as written.
    last: Vec<crate::material::MaterialUpdate>,
    /// Each process's time over the frames it ran, and its edits.
    totals: Vec<ProcessTotals>,
}

/// What one process of a [`PagedGeology`] took and made, over every frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessTotals {
    /// Its name.
    pub name: &'static str,
    /// Its time.
    pub time: Duration,
    /// The edits it wrote (before the next process's).
    pub edits: u64,
}

impl std::fmt::Debug for PagedGeology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PagedGeology").field("processes", &self.processes.len()).field("stats", &self.stats).finish()
    }
}

impl PagedGeology {
    /// No process yet; materials behave as `palette` says (index the paged
    /// world's surfaces for it: [`PagedWorld::index_surfaces`]).
    pub fn new(palette: Palette) -> Self {
        Self {
            palette,
            workspace: Workspace::new(),
            processes: Vec::new(),
            stats: PagedGeologyStats::default(),
            last: Vec::new(),
            totals: Vec::new(),
        }
    }

    /// Adds process `P` with `settings`, after the ones added before.
    pub fn with<P: GeologyProcess>(mut self, settings: P::Settings) -> Self {
        self.processes.push(Box::new(Entry { process: P::new(&settings), settings }));
        self.totals.push(ProcessTotals { name: P::NAME, time: Duration::ZERO, edits: 0 });
        self
    }

    /// The palette.
    pub fn palette(&self) -> &Palette {
        &self.palette
    }

    /// What it did.
    pub fn stats(&self) -> PagedGeologyStats {
        self.stats
    }

    /// Each process's time and edits over every frame, in the order they
    /// run.
    pub fn totals(&self) -> &[ProcessTotals] {
        &self.totals
    }

    /// The edits of the last frame the processes ran, in order (a shadow
    /// copy's feed).
    pub fn last_edits(&self) -> &[crate::material::MaterialUpdate] {
        &self.last
    }

    /// One frame of every process on the sector under `at`, when it is
    /// resident (never waits for it); their edits written to `world`.
    /// Whether they ran.
    pub fn step(&mut self, world: &mut PagedWorld, at: IVec3) -> bool {
        let start = Instant::now();
        {
            let Some(storage) = world.sector_storage(at) else {
                self.stats.not_resident += 1;
                self.last.clear();
                return false;
            };
            let mut terrain = Terrain::new(storage, &self.palette, &mut self.workspace);
            for (p, total) in self.processes.iter_mut().zip(&mut self.totals) {
                let (t, before) = (Instant::now(), terrain.edit_count());
                p.step(&mut terrain);
                total.time += t.elapsed();
                total.edits += (terrain.edit_count() - before) as u64;
            }
        }
        self.last = self.workspace.take_edits();
        for u in &self.last {
            match world.update(u.position, u.material) {
                Ok(()) => self.stats.edits += 1,
                Err(_) => self.stats.refused += 1,
            }
        }
        self.stats.frames += 1;
        self.stats.last_time = start.elapsed();
        true
    }
}
