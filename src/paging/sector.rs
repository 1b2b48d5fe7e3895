//! Sectors: where they are (the grid) and how they are made (the pager, a
//! thread that runs the generator for the sectors asked for).

use crate::base::BaseIndex;
use crate::coords::Aabb;
use crate::coords::brick::BRICK_SIZE;
use crate::error::VoxelError;
use crate::hash::{FastSet, fast_set};
use crate::worldgen::WorldGen;
use glam::{IVec2, IVec3};
use std::sync::mpsc::{Receiver, Sender, channel};
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
    /// (a square around it; clipped to the world).
    pub fn sectors_around(&self, centre: IVec3, radius: i32) -> impl Iterator<Item = IVec2> + use<> {
        let q = centre - self.bounds.min;
        let size = self.bounds.size();
        let last = IVec2::new((size.x - 1) / self.columns, (size.z - 1) / self.columns);
        let lo = IVec2::new((q.x - radius).max(0) / self.columns, (q.z - radius).max(0) / self.columns);
        let hi = IVec2::new(
            ((q.x + radius).min(size.x - 1).max(0) / self.columns).min(last.x),
            ((q.z + radius).min(size.z - 1).max(0) / self.columns).min(last.y),
        );
        let inside = q.x + radius >= 0 && q.z + radius >= 0 && q.x - radius < size.x && q.z - radius < size.z;
        let (lo, hi) = if inside { (lo, hi) } else { (IVec2::ONE, IVec2::ZERO) };
        (lo.y..=hi.y).flat_map(move |z| (lo.x..=hi.x).map(move |x| IVec2::new(x, z)))
    }

    /// The squared distance in columns from `p`'s column to sector `key`'s
    /// centre: what "nearest first" orders by.
    pub fn distance2(&self, key: IVec2, p: IVec3) -> i64 {
        let b = self.sector_bounds(key);
        let c = (b.min + b.max) / 2;
        let d = IVec2::new(c.x - p.x, c.z - p.z).as_i64vec2();
        d.x * d.x + d.y * d.y
    }
}

/// A sector the generator made.
pub(super) struct Generated {
    pub key: IVec2,
    /// The sector's base index and its bytes (measured where it was made:
    /// a walk of the tree the frame does not pay for).
    pub base: Result<(BaseIndex, usize), VoxelError>,
    /// When it was asked for.
    pub requested: Instant,
}

/// Sector `key` of the world `generator` makes: the generator with the
/// sector's bounds (the same seed makes the same voxels there).
pub(super) fn generate(generator: &WorldGen, grid: &SectorGrid, key: IVec2, requested: Instant) -> Generated {
    let b = grid.sector_bounds(key);
    let sector = WorldGen { min: b.min, size: b.size(), ..generator.clone() };
    Generated { key, base: build(&sector), requested }
}

/// The base index `generator` makes, and its bytes.
fn build(generator: &WorldGen) -> Result<(BaseIndex, usize), VoxelError> {
    let base = generator.build()?;
    let bytes = base.stats().bytes;
    Ok((base, bytes))
}

/// A thread generating the sectors asked for, one at a time.
pub(super) struct Pager {
    jobs: Sender<(IVec2, WorldGen, Instant)>,
    done: Receiver<Generated>,
    asked: FastSet<IVec2>,
}

impl Pager {
    /// Starts the thread (it ends when the pager is dropped, after the
    /// sector under way).
    pub fn start() -> Self {
        let (jobs, rx) = channel::<(IVec2, WorldGen, Instant)>();
        let (tx, done) = channel();
        // A thread that cannot start leaves the requests unanswered: reads
        // say not resident, and `get_blocking` still generates.
        let _ = std::thread::Builder::new().name("delta_overlay pager".into()).spawn(move || {
            while let Ok((key, generator, requested)) = rx.recv() {
                let made = Generated { key, base: build(&generator), requested };
                if tx.send(made).is_err() {
                    return;
                }
            }
        });
        Self { jobs, done, asked: fast_set() }
    }

    /// Asks for sector `key` (once while it is under way).
    pub fn request(&mut self, generator: &WorldGen, grid: &SectorGrid, key: IVec2) {
        if self.asked.insert(key) {
            let b = grid.sector_bounds(key);
            let sector = WorldGen { min: b.min, size: b.size(), ..generator.clone() };
            if self.jobs.send((key, sector, Instant::now())).is_err() {
                self.asked.remove(&key);
            }
        }
    }

    /// Sectors asked for and not collected yet.
    pub fn in_flight(&self) -> usize {
        self.asked.len()
    }

    /// A sector made, if one is ready.
    pub fn try_done(&mut self) -> Option<Generated> {
        let made = self.done.try_recv().ok()?;
        self.asked.remove(&made.key);
        Some(made)
    }

    /// The next sector made, waiting for it (`None` when none is under way).
    pub fn wait_done(&mut self) -> Option<Generated> {
        if self.asked.is_empty() {
            return None;
        }
        let made = self.done.recv().ok()?;
        self.asked.remove(&made.key);
        Some(made)
    }
}
