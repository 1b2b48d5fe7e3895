//! Sectors: where they are (the grid) and how they are made (the pager, a
//! thread that runs the generator for the sectors asked for).

use crate::consolidation::DeltaConfig;
use crate::coords::Aabb;
use crate::coords::brick::BRICK_SIZE;
use crate::error::VoxelError;
use crate::hash::{FastSet, fast_set};
use crate::material::{MaterialId, MaterialUpdate, Palette};
use crate::storage::DeltaStorage;
use crate::worldgen::WorldGen;
use glam::{IVec2, IVec3};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The world cut into sectors of `columns x columns` columns, from its
/// minimum corner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct SectorGrid {
    pub bounds: Aabb,
    pub columns: i32,
}

impl SectorGrid {
    /// The grid of `bounds` by `columns`, a positive multiple of the brick
    /// edge (a brick lies in one sector).
    pub fn new(bounds: Aabb, columns: i32) -> Result<Self, VoxelError> {
        if columns <= 0 || columns % BRICK_SIZE != 0 {
            let size = IVec3::new(columns, bounds.size().y, columns);
            return Err(VoxelError::InvalidBounds { bounds: Aabb::from_min_size(bounds.min, size) });
        }
        Ok(Self { bounds, columns })
    }

    /// The sector holding `p`.
    pub fn sector_of(&self, p: IVec3) -> Result<IVec2, VoxelError> {
        if !self.bounds.contains(p) {
            return Err(VoxelError::OutOfBounds { position: p, bounds: self.bounds });
        }
        let q = p - self.bounds.min;
        Ok(IVec2::new(q.x / self.columns, q.z / self.columns))
    }

    /// The bounds of sector `key` (clipped to the world).
    pub fn sector_bounds(&self, key: IVec2) -> Aabb {
        let min = self.bounds.min + IVec3::new(key.x * self.columns, 0, key.y * self.columns);
        let size = IVec3::new(self.columns, self.bounds.size().y, self.columns);
        Aabb::from_min_size(min, size).intersection(&self.bounds)
    }

    /// The sectors of the world with a column within `radius` of `centre`'s
    /// (a square around it, clipped to the world), nearest rings first, at
    /// most `most` of them: the work is bounded by `most`, not by the radius.
    /// Any `centre` and `radius`: the arithmetic is in `i64`.
    pub fn sectors_around(&self, centre: IVec3, radius: i32, most: usize, out: &mut Vec<IVec2>) {
        let (min, size) = (self.bounds.min.as_i64vec3(), self.bounds.size().as_i64vec3());
        let c = i64::from(self.columns);
        let q = centre.as_i64vec3() - min;
        let r = i64::from(radius.max(0)).min(size.x.max(size.z));
        // The box of sectors the square touches, clipped to the world.
        let (lo_x, hi_x) = ((q.x - r).max(0), (q.x + r).min(size.x - 1));
        let (lo_z, hi_z) = ((q.z - r).max(0), (q.z + r).min(size.z - 1));
        if lo_x > hi_x || lo_z > hi_z {
            return;
        }
        let (lo, hi) =
            (IVec2::new((lo_x / c) as i32, (lo_z / c) as i32), IVec2::new((hi_x / c) as i32, (hi_z / c) as i32));
        let at = IVec2::new((q.x.clamp(lo_x, hi_x) / c) as i32, (q.z.clamp(lo_z, hi_z) / c) as i32);
        let start = out.len();
        // Square rings around the nearest sector, until the box is covered
        // or `most` are found.
        for ring in 0.. {
            let (a, b) = (at - IVec2::splat(ring), at + IVec2::splat(ring));
            if a.x < lo.x && a.y < lo.y && b.x > hi.x && b.y > hi.y {
                return;
            }
            for z in a.y.max(lo.y)..=b.y.min(hi.y) {
                for x in a.x.max(lo.x)..=b.x.min(hi.x) {
                    let on_ring = x == a.x || x == b.x || z == a.y || z == b.y;
                    if on_ring {
                        if out.len() - start >= most {
                            return;
                        }
                        out.push(IVec2::new(x, z));
                    }
                }
            }
        }
    }

    /// The squared distance in columns from `p`'s column to sector `key`'s
    /// centre: what "nearest first" orders by (in `i64`: any `p`).
    pub fn distance2(&self, key: IVec2, p: IVec3) -> i64 {
        let b = self.sector_bounds(key);
        let c = (b.min.as_i64vec3() + b.max.as_i64vec3()) / 2;
        let (dx, dz) = (c.x - i64::from(p.x), c.z - i64::from(p.z));
        dx.saturating_mul(dx).saturating_add(dz.saturating_mul(dz))
    }
}

/// Where the edits of a sector come from besides memory: the world's file.
pub(super) trait EditSource: Send + Sync {
    /// The edits stored for `sector`, and the number of the last batch the
    /// source held when they were read.
    fn read(&self, sector: Aabb) -> Result<(u64, Vec<(IVec3, MaterialId)>), String>;
}

/// A sector made: the generator's voxels with the stored edits applied.
pub(super) struct Made {
    pub storage: DeltaStorage,
    /// Its base index's bytes (measured where it was made: a walk of the
    /// tree the frame does not pay for).
    pub base_bytes: usize,
    /// The source's last batch when its edits were read (0 without one).
    pub read_at: u64,
}

/// A sector the pager made, or why not.
pub(super) struct Generated {
    pub key: IVec2,
    pub made: Result<Made, String>,
    /// When it was asked for.
    pub requested: Instant,
}

/// What the pager needs to make a sector.
#[derive(Clone)]
pub(super) struct Maker {
    pub config: DeltaConfig,
    pub source: Option<Arc<dyn EditSource>>,
    /// The palette a surface index is kept for on every sector, if any.
    pub surfaces: Option<Arc<Palette>>,
}

impl Maker {
    /// Sector `key` of the world `generator` makes (the generator with the
    /// sector's bounds: the same seed makes the same voxels there), with its
    /// stored edits applied.
    pub fn make(&self, generator: &WorldGen, grid: &SectorGrid, key: IVec2, requested: Instant) -> Generated {
        let b = grid.sector_bounds(key);
        let sector = WorldGen { min: b.min, size: b.size(), ..generator.clone() };
        Generated { key, made: self.build(&sector), requested }
    }

    fn build(&self, sector: &WorldGen) -> Result<Made, String> {
        let (read_at, edits) = match &self.source {
            Some(source) => source.read(sector.bounds())?,
            None => (0, Vec::new()),
        };
        let base = sector.build().map_err(|e| e.to_string())?;
        let base_bytes = base.stats().bytes;
        let mut storage = DeltaStorage::new(base, self.config.clone());
        storage.batch_update(edits.into_iter().map(|(p, m)| MaterialUpdate::new(p, m)));
        if let Some(palette) = &self.surfaces {
            storage.enable_surfaces(palette);
        }
        Ok(Made { storage, base_bytes, read_at })
    }
}

/// A thread making the sectors asked for, one at a time, skipping those
/// no longer wanted when their turn comes (a moved interest does not wait
/// behind stale work).
pub(super) struct Pager {
    /// `None` once dropping.
    jobs: Option<Sender<(IVec2, WorldGen, Instant)>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Behind a lock only so the world is `Sync` (a Bevy resource): one
    /// owner, never contended.
    done: Mutex<Receiver<Generated>>,
    asked: FastSet<IVec2>,
    /// The sectors wanted as of the last tick, shared with the thread.
    wanted: Arc<Mutex<FastSet<IVec2>>>,
}

impl Pager {
    /// Starts the thread (it ends when the pager is dropped, after the
    /// sector under way).
    pub fn start(maker: Maker) -> Self {
        let (jobs, rx) = channel::<(IVec2, WorldGen, Instant)>();
        let (tx, done) = channel();
        let wanted: Arc<Mutex<FastSet<IVec2>>> = Arc::new(Mutex::new(fast_set()));
        let still = Arc::clone(&wanted);
        // A thread that cannot start leaves the requests unanswered: reads
        // say not resident, and `get_blocking` still generates.
        let thread = std::thread::Builder::new().name("delta_overlay pager".into()).spawn(move || {
            while let Ok((key, generator, requested)) = rx.recv() {
                let skip = still.lock().map(|w| !w.contains(&key)).unwrap_or(false);
                // A generator that panicked is an error for its sector, not
                // a key asked for forever; so is a sector skipped.
                let made = match skip {
                    true => Err("no longer wanted".to_string()),
                    false => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| maker.build(&generator)))
                        .unwrap_or_else(|_| Err("the generator panicked".to_string())),
                };
                let made = Generated { key, made, requested };
                if tx.send(made).is_err() {
                    return;
                }
            }
        });
        Self { jobs: Some(jobs), thread: thread.ok(), done: Mutex::new(done), asked: fast_set(), wanted }
    }

    /// Tells the thread what is wanted now (`wanted`, and what is asked of
    /// it by a wait).
    pub fn set_wanted(&mut self, wanted: &[IVec2]) {
        if let Ok(mut w) = self.wanted.lock() {
            w.clear();
            w.extend(wanted.iter().copied());
        }
    }

    /// Asks for sector `key` (once while it is under way).
    pub fn request(&mut self, generator: &WorldGen, grid: &SectorGrid, key: IVec2) {
        if self.asked.insert(key) {
            let b = grid.sector_bounds(key);
            let sector = WorldGen { min: b.min, size: b.size(), ..generator.clone() };
            let sent = self.jobs.as_ref().is_some_and(|j| j.send((key, sector, Instant::now())).is_ok());
            if !sent {
                self.asked.remove(&key);
            }
        }
    }

    /// Whether `key` is asked for and not collected yet.
    pub fn is_asked(&self, key: IVec2) -> bool {
        self.asked.contains(&key)
    }

    /// Sectors asked for and not collected yet.
    pub fn in_flight(&self) -> usize {
        self.asked.len()
    }

    /// A sector made, if one is ready.
    pub fn try_done(&mut self) -> Option<Generated> {
        let made = self.done.get_mut().ok()?.try_recv().ok()?;
        self.asked.remove(&made.key);
        Some(made)
    }

    /// The next sector made, waiting for it (`None` when none is under way).
    pub fn wait_done(&mut self) -> Option<Generated> {
        if self.asked.is_empty() {
            return None;
        }
        let made = self.done.get_mut().ok()?.recv().ok()?;
        self.asked.remove(&made.key);
        Some(made)
    }
}

impl Drop for Pager {
    /// Stops the thread: the jobs left are skipped (nothing is wanted any
    /// more), the sector under way finishes, and the thread is joined, so no
    /// generation outlives its world.
    fn drop(&mut self) {
        if let Ok(mut w) = self.wanted.lock() {
            w.clear();
        }
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
