//! What a paged world gives those who follow it by region (replication):
//! the edits accepted since the last time it was asked (a change log), and a
//! sector's edits as of now, read from the file on any thread and completed
//! from memory.
//!
//! A follower holding the same generator makes the rest: a sector is the
//! generator's voxels with its edits applied (`EXACT`), so its edits are all
//! it needs to be sent.
//!
//! # Invariants
//!
//! - `SHARED_EXACT`: a read's stored edits (the file's, as of some batch)
//!   followed by what [`PagedWorld::complete_read`] answers (memory's, the
//!   last per voxel) are a sector's every edit as of the call, the later
//!   winning; it refuses ([`ShareError::Stale`]) when memory let go of a
//!   batch touching the sector after the file was read (the pager's rule,
//!   `LATER_IN_MEMORY`). So that it seldom has to: while a read is under
//!   way memory lets go of no batch after the file's acknowledged one when
//!   it began (a read sees at least that one), and a sector being read
//!   keeps its acknowledgements until the read is completed or abandoned.
//! - `LOG_BOUNDED`: the change log holds at most the `most` it was started
//!   with; past it, it is emptied and says so once ([`ChangesLost`]): a
//!   follower must then be sent its sectors again.

use super::PagedWorld;
use super::sector::EditSource;
use crate::coords::Aabb;
use crate::error::VoxelError;
use crate::material::{MaterialId, MaterialUpdate};
use crate::worldgen::WorldGen;
use glam::{IVec2, IVec3};
use std::sync::Arc;

/// The edits accepted since the change log was last taken.
#[derive(Default)]
pub(super) struct ChangeLog {
    edits: Vec<MaterialUpdate>,
    most: usize,
    lost: bool,
}

/// The change log overflowed: edits were accepted that it no longer holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChangesLost {
    /// The log's cap.
    pub most: usize,
}

impl std::fmt::Display for ChangesLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the change log passed its {} edits: followers need their sectors again", self.most)
    }
}

impl std::error::Error for ChangesLost {}

/// Why a sector's edits could not be completed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShareError {
    /// The file was read before memory let go of a batch touching the
    /// sector: read it again.
    Stale,
    /// The file could not be read.
    Read(String),
}

impl std::fmt::Display for ShareError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Stale => write!(f, "the sector's edits were read before a batch memory has let go of: read again"),
            Self::Read(why) => write!(f, "the sector's edits could not be read: {why}"),
        }
    }
}

impl std::error::Error for ShareError {}

/// A read of one sector's stored edits, to run on any thread
/// ([`run`](Self::run)); from [`PagedWorld::begin_read`], and each one
/// completed or abandoned once.
pub struct SectorRead {
    key: IVec2,
    bounds: Aabb,
    source: Option<Arc<dyn EditSource>>,
}

impl std::fmt::Debug for SectorRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SectorRead").field("key", &self.key).field("file", &self.source.is_some()).finish()
    }
}

impl SectorRead {
    /// Whether running it reads a file (without one it returns at once).
    pub fn reads_file(&self) -> bool {
        self.source.is_some()
    }

    /// Reads the sector's stored edits (blocking on the file, if any).
    pub fn run(self) -> StoredEdits {
        let read = match &self.source {
            Some(source) => source.read(self.bounds),
            None => Ok((0, Vec::new())),
        };
        StoredEdits { key: self.key, read }
    }
}

/// A sector's stored edits as read; [`PagedWorld::complete_read`] makes
/// them the sector's every edit.
#[derive(Debug)]
pub struct StoredEdits {
    key: IVec2,
    read: Result<(u64, Vec<(IVec3, MaterialId)>), String>,
}

impl StoredEdits {
    /// The sector read.
    pub fn key(&self) -> IVec2 {
        self.key
    }

    /// The edits read, taken out (none after a failed read): encode them
    /// where the read ran, then complete it.
    pub fn take_edits(&mut self) -> Vec<(IVec3, MaterialId)> {
        match &mut self.read {
            Ok((_, edits)) => std::mem::take(edits),
            Err(_) => Vec::new(),
        }
    }
}

impl PagedWorld {
    /// The generator the world is made from (a follower makes the same
    /// voxels from it).
    pub fn generator(&self) -> &WorldGen {
        &self.generator
    }

    /// The sector holding `p` (`x` and `z` of the sector grid).
    ///
    /// # Errors
    /// [`VoxelError::OutOfBounds`] outside the world.
    pub fn sector_of(&self, p: IVec3) -> Result<IVec2, VoxelError> {
        self.grid.sector_of(p)
    }

    /// The bounds of sector `key`; `None` for a key outside the world.
    pub fn sector_bounds(&self, key: IVec2) -> Option<Aabb> {
        let size = self.grid.bounds.size();
        let c = self.grid.columns;
        let inside = key.x >= 0 && key.y >= 0 && key.x <= (size.x - 1) / c && key.y <= (size.z - 1) / c;
        inside.then(|| self.grid.sector_bounds(key))
    }

    /// The sectors the interest wanted at the last tick, nearest first (a
    /// follower asks its server for them).
    pub fn wanted_sectors(&self) -> &[IVec2] {
        &self.wanted
    }

    /// Drops sector `key`: its voxels if resident, its coarse values, and
    /// the edits memory keeps of it that were not handed to a file. For a
    /// follower, whose edits come from its server (a region client forgets
    /// the sectors that leave its region, and all of them when it loses its
    /// server); in any other world it loses those edits.
    pub fn forget_sector(&mut self, key: IVec2) {
        self.sectors.remove(&key);
        self.coarse.forget(key);
        self.edits.forget(key);
    }

    /// Whether sector `key` is resident.
    pub fn is_sector_resident(&self, key: IVec2) -> bool {
        self.sectors.contains_key(&key)
    }

    /// Starts (or resizes) the change log: every accepted edit from now on
    /// is kept until [`take_changes`](Self::take_changes), at most `most`
    /// (`LOG_BOUNDED`).
    pub fn log_changes(&mut self, most: usize) {
        self.changes.get_or_insert_with(Default::default).most = most;
    }

    /// Moves the edits accepted since the last call into `out`, in the order
    /// they were accepted.
    ///
    /// # Errors
    /// [`ChangesLost`] once after the log overflowed (it was emptied: the
    /// edits since the last call are not in `out`).
    pub fn take_changes(&mut self, out: &mut Vec<MaterialUpdate>) -> Result<(), ChangesLost> {
        let Some(log) = &mut self.changes else { return Ok(()) };
        if std::mem::take(&mut log.lost) {
            return Err(ChangesLost { most: log.most });
        }
        out.append(&mut log.edits);
        Ok(())
    }

    /// Keeps an accepted edit in the change log, if one is kept.
    pub(super) fn log_change(&mut self, p: IVec3, m: MaterialId) {
        let Some(log) = &mut self.changes else { return };
        if log.lost {
            return;
        }
        if log.edits.len() >= log.most {
            log.edits = Vec::new();
            log.lost = true;
            return;
        }
        log.edits.push(MaterialUpdate::new(p, m));
    }

    /// Begins reading sector `key`'s edits: run the read on any thread, then
    /// give its answer to [`complete_read`](Self::complete_read) (or call
    /// [`abandon_read`](Self::abandon_read)). `None` for a key outside the
    /// world.
    pub fn begin_read(&mut self, key: IVec2) -> Option<SectorRead> {
        let bounds = self.sector_bounds(key)?;
        // The file holds at least what it acknowledged when the read begins.
        let durable = self.stats.durable;
        let entry = self.reading.entry(key).or_insert((0, durable));
        entry.0 += 1;
        entry.1 = entry.1.min(durable);
        Some(SectorRead { key, bounds, source: self.maker.source.clone() })
    }

    /// Completes a read: the sector's edits memory holds, which come after
    /// the stored ones (`SHARED_EXACT`: the stored edits, then these, the
    /// later winning, are the sector's every edit as of now). The stored
    /// edits may be taken out first ([`StoredEdits::take_edits`], where the
    /// read ran) and need not be here.
    ///
    /// # Errors
    /// [`ShareError::Stale`] when the read must be made again;
    /// [`ShareError::Read`] when the file could not be read.
    pub fn complete_read(&mut self, stored: &StoredEdits) -> Result<Vec<(IVec3, MaterialId)>, ShareError> {
        self.abandon_read(stored.key);
        let read_at = match &stored.read {
            Ok((read_at, _)) => *read_at,
            Err(why) => return Err(ShareError::Read(why.clone())),
        };
        if self.edits.stale(stored.key, read_at) {
            return Err(ShareError::Stale);
        }
        Ok(self.edits.for_sector(stored.key))
    }

    /// Ends a read begun and not completed (its acknowledgements need not
    /// be kept for it any more).
    pub fn abandon_read(&mut self, key: IVec2) {
        if let Some((n, _)) = self.reading.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                self.reading.remove(&key);
            }
        }
    }
}
