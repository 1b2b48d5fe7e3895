//! What processes need of a paged world: the resident sector under a point,
//! a surface index on every sector, and one clock for all of them.

use super::PagedWorld;
use super::sector::Pager;
use crate::material::Palette;
use crate::storage::DeltaStorage;
use glam::IVec3;
use std::sync::Arc;
use std::time::Duration;

impl PagedWorld {
    /// The storage of the resident sector holding `p`, if it is resident:
    /// a world of the sector's bounds in the world's coordinates, for reads
    /// (a process's [`Terrain`](crate::geology::Terrain) is built on it);
    /// write through [`update`](Self::update), so the edit is kept.
    pub fn sector_storage(&self, p: IVec3) -> Option<&DeltaStorage> {
        let key = self.grid.sector_of(p).ok()?;
        self.sectors.get(&key).map(|s| &s.storage)
    }

    /// Keeps a surface index for `palette` on every sector: built on the
    /// pager thread for the sectors made from now on, here for the resident
    /// ones (the processes read surfaces through it).
    pub fn index_surfaces(&mut self, palette: &Palette) {
        self.maker.surfaces = Some(Arc::new(palette.clone()));
        self.pager = Pager::start(self.maker.clone());
        for s in self.sectors.values_mut() {
            s.storage.enable_surfaces(palette);
        }
    }

    /// Advances the clock every sector's storage shows (a sector made later
    /// starts at it): delta ages and the processes' time run on it.
    pub fn advance_clock(&mut self, dt: Duration) {
        self.clock = self.clock.saturating_add(dt);
        let now = self.now();
        for s in self.sectors.values_mut() {
            // A storage's clock counts whole milliseconds: each is set to the
            // world's, not advanced by `dt` (its fractions would be lost).
            s.storage.advance_clock(now.saturating_sub(s.storage.now()));
        }
    }

    /// The clock every sector shows, in whole milliseconds as a storage's
    /// (see [`advance_clock`](Self::advance_clock)).
    pub fn now(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.clock.as_millis()).unwrap_or(u64::MAX))
    }
}
