//! The region client's state machine: what each server message does to its
//! paged world, and what it tells the server. Plain methods over a
//! [`PagedWorld`], tested without an `App`.
//!
//! # Invariants
//!
//! - `RECEIVED_EXACT`: a sector is marked received only by the last part of
//!   its edits answering a region at least as new as the one it entered
//!   with; from then on every change in it reaches this world (the server's
//!   `CHANGES_AFTER_SECTOR`), so a received sector's voxels are the server's
//!   as of the last message applied.
//! - A message that does not decode loses what it held: every sector is
//!   asked for again (an empty region, then the region). When the server
//!   lost changes (its log overflowed) it says so, and sends every sector
//!   again: none is received until then.

use super::wire::{self, Down};
use super::{RegionClientStats, RegionStatus};
use crate::hash::{FastMap, fast_map};
use crate::material::MaterialUpdate;
use crate::paging::PagedWorld;
use crate::worldgen::WorldGen;
use bevy_replicon::bytes::Bytes;
use glam::IVec2;

/// Voxels of one sector a client makes at most (2^28: 512 x 1024 x 512); a
/// server's world of larger sectors is refused.
pub(crate) const MAX_SECTOR_VOXELS: i64 = 1 << 28;

/// What the caller must do after a message.
#[derive(Debug, PartialEq)]
pub(crate) enum Effect {
    /// Make the world the server described (there is none yet).
    MakeWorld(WorldGen, i32),
}

/// A sector of the region.
#[derive(Clone, Copy, Debug)]
struct Entry {
    /// The region it entered with.
    since: u64,
    received: bool,
    /// This world refused an edit of it (its `max_edits`): not received
    /// until it leaves the region and comes back.
    refused: bool,
}

/// The client's side of region replication; see the [module docs](self).
pub(crate) struct RegionFollow {
    epoch: u64,
    /// The region last sent, nearest first.
    order: Vec<IVec2>,
    region: FastMap<IVec2, Entry>,
    /// The server's world, once described and accepted.
    world: bool,
    /// The server's world differs from this client's own: nothing is applied.
    refused: bool,
    /// Every sector must be asked for again.
    ask_again: bool,
    /// Messages received and not applied yet, in order (bounded by the
    /// server's window: what is acknowledged is what was applied).
    queue: std::collections::VecDeque<Bytes>,
    received_bytes: u64,
    reported: u64,
    pub stats: RegionClientStats,
}

impl Default for RegionFollow {
    fn default() -> Self {
        Self {
            epoch: 0,
            order: Vec::new(),
            region: fast_map(),
            world: false,
            refused: false,
            ask_again: false,
            queue: std::collections::VecDeque::new(),
            received_bytes: 0,
            reported: 0,
            stats: RegionClientStats::default(),
        }
    }
}

impl RegionFollow {
    /// Keeps a server message to apply.
    pub fn receive(&mut self, bytes: Bytes) {
        self.queue.push_back(bytes);
    }

    /// Applies the messages kept, in order, while `budget` (edits) lasts,
    /// taking what each applied from it (at least one message when it is not
    /// zero); stops after one that needs the world made (`None` until it is).
    pub fn apply(&mut self, mut world: Option<&mut PagedWorld>, budget: &mut usize) -> Option<Effect> {
        while *budget > 0 {
            let Some(bytes) = self.queue.pop_front() else { break };
            let before = self.stats.changes_applied + self.stats.sector_edits;
            let effect = self.on_message(&bytes, world.as_deref_mut());
            let applied = self.stats.changes_applied + self.stats.sector_edits - before;
            *budget = budget.saturating_sub(applied as usize);
            if effect.is_some() {
                return effect;
            }
        }
        None
    }

    /// Applies one server message to `world` (`None` before the world is made).
    fn on_message(&mut self, bytes: &[u8], world: Option<&mut PagedWorld>) -> Option<Effect> {
        self.received_bytes += bytes.len() as u64;
        if self.refused {
            return None;
        }
        let message = match wire::decode_down(bytes) {
            Ok(m) => m,
            Err(_) => {
                self.damaged();
                return None;
            }
        };
        match (message, world) {
            (Down::World { generator, sector_columns }, world) => self.on_world(generator, sector_columns, world),
            (Down::Sector { epoch, key, last, edits }, Some(world)) => {
                self.on_sector(epoch, key, last, &edits, world);
                None
            }
            (Down::Changes(edits), Some(world)) => {
                self.on_changes(&edits, world);
                None
            }
            (Down::Again, _) => {
                self.region.values_mut().for_each(|e| e.received = false);
                None
            }
            // Sectors or changes before the world: out of order, damage.
            (_, None) => {
                self.damaged();
                None
            }
        }
    }

    fn on_world(&mut self, generator: WorldGen, columns: i32, world: Option<&mut PagedWorld>) -> Option<Effect> {
        let size = generator.size.as_i64vec3();
        let sector_voxels = i64::from(columns.max(0)).pow(2).saturating_mul(size.y);
        if columns <= 0 || sector_voxels > MAX_SECTOR_VOXELS {
            self.refuse(&format!("the server's sectors are too large ({columns} columns, {} high)", size.y));
            return None;
        }
        match world {
            Some(w) if w.generator() == &generator && w.settings().sector_columns == columns => {
                self.world = true;
                None
            }
            Some(_) => {
                self.refuse("the server's world is not this client's paged world");
                None
            }
            None => Some(Effect::MakeWorld(generator, columns)),
        }
    }

    /// The world the server described was made (or could not be).
    pub fn world_made(&mut self, made: Result<(), String>) {
        match made {
            Ok(()) => self.world = true,
            Err(why) => self.refuse(&why),
        }
    }

    fn refuse(&mut self, why: &str) {
        bevy::log::error!("region replication: {why}; nothing it sends is applied");
        self.refused = true;
        self.stats.refused_worlds += 1;
    }

    fn on_sector(&mut self, epoch: u64, key: IVec2, last: bool, edits: &[MaterialUpdate], world: &mut PagedWorld) {
        let Some(bounds) = world.sector_bounds(key) else {
            self.damaged();
            return;
        };
        if edits.iter().any(|e| !bounds.contains(e.position)) {
            self.damaged();
            return;
        }
        // A sector no longer in the region: it was forgotten, and is sent
        // again if it comes back.
        if !self.region.contains_key(&key) {
            return;
        }
        let refused = self.write(edits, world);
        self.stats.sector_edits += edits.len() as u64;
        if let Some(entry) = self.region.get_mut(&key) {
            // An answer to an older region, or edits this world could not
            // take: not the server's sector.
            entry.refused |= refused > 0 && epoch >= entry.since;
            if last && epoch >= entry.since && !entry.refused {
                entry.received = true;
                self.stats.sectors_received += 1;
            }
        }
    }

    /// Changes, in the sectors of the region only (a sector that left it
    /// was forgotten); a sector whose change this world refused is no
    /// longer received.
    fn on_changes(&mut self, edits: &[MaterialUpdate], world: &mut PagedWorld) {
        for e in edits {
            let Ok(key) = world.sector_of(e.position) else {
                self.stats.edits_refused += 1;
                continue;
            };
            let Some(entry) = self.region.get_mut(&key) else { continue };
            if world.update(e.position, e.material).is_err() {
                self.stats.edits_refused += 1;
                entry.received = false;
                entry.refused = true;
            }
            self.stats.changes_applied += 1;
        }
    }

    /// Writes `edits`; how many this world refused (past its `max_edits`:
    /// those voxels are not the server's).
    fn write(&mut self, edits: &[MaterialUpdate], world: &mut PagedWorld) -> usize {
        let refused = edits.iter().filter(|e| world.update(e.position, e.material).is_err()).count();
        self.stats.edits_refused += refused as u64;
        refused
    }

    fn damaged(&mut self) {
        self.stats.malformed += 1;
        self.ask_again = true;
        for e in self.region.values_mut() {
            e.received = false;
        }
    }

    /// The messages for the server: its region when it changed (or must be
    /// asked for again), and what was received when it grew.
    pub fn outgoing(&mut self, world: Option<&mut PagedWorld>, out: &mut Vec<Vec<u8>>) {
        if let Some(world) = world.filter(|_| self.world && !self.refused) {
            if std::mem::take(&mut self.ask_again) {
                self.epoch += 1;
                out.push(wire::region(self.epoch, &[]));
                self.forget_region(world);
            }
            let wanted = world.wanted_sectors();
            // A region names at most MAX_REGION sectors: the nearest.
            let wanted = &wanted[..wanted.len().min(wire::MAX_REGION)];
            if wanted != self.order.as_slice() {
                let wanted = wanted.to_vec();
                self.epoch += 1;
                out.push(wire::region(self.epoch, &wanted));
                let fresh = Entry { since: self.epoch, received: false, refused: false };
                let mut region = fast_map();
                for &k in &wanted {
                    region.insert(k, self.region.remove(&k).unwrap_or(fresh));
                }
                // What left the region is forgotten: sent whole if it comes back.
                for (&k, _) in self.region.iter() {
                    world.forget_sector(k);
                }
                self.region = region;
                self.order = wanted;
            }
        }
        if self.received_bytes != self.reported {
            self.reported = self.received_bytes;
            out.push(wire::received(self.received_bytes));
        }
    }

    /// Forgets every sector of the region: their edits were the server's.
    fn forget_region(&mut self, world: &mut PagedWorld) {
        for (&k, _) in self.region.iter() {
            world.forget_sector(k);
        }
        self.region.clear();
        self.order.clear();
    }

    /// Whether sector `key` is in the region and its edits were received.
    pub fn is_received(&self, key: IVec2) -> bool {
        self.region.get(&key).is_some_and(|e| e.received)
    }

    /// Where the client is, as the status resource shows it.
    pub fn status(&self, world: Option<&PagedWorld>) -> RegionStatus {
        let received = self.region.values().filter(|e| e.received).count();
        let resident =
            world.map_or(0, |w| self.region.iter().filter(|(k, e)| e.received && w.is_sector_resident(**k)).count());
        RegionStatus {
            world: self.world,
            refused: self.refused,
            sectors: self.region.len(),
            received,
            resident,
            queued: self.queue.len(),
        }
    }

    /// Connection lost: the next one starts over. The world stays, its
    /// region's sectors forgotten (the next server sends them whole: it may
    /// not hold what this one did); what was not applied is dropped.
    pub fn disconnected(&mut self, world: Option<&mut PagedWorld>) {
        if let Some(world) = world {
            self.forget_region(world);
        }
        let stats = self.stats;
        *self = Self { stats, ..Self::default() };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consolidation::DeltaConfig;
    use crate::material::MaterialId;
    use crate::paging::{Interest, PagingSettings};
    use glam::IVec3;

    fn generator() -> WorldGen {
        WorldGen { size: IVec3::new(256, 32, 256), sea_level: 16, ..WorldGen::default() }
    }

    /// A follower with its world made and a region sent: the world's
    /// interest wants the sectors around (40, 40).
    fn follower() -> (RegionFollow, PagedWorld, Vec<Vec<u8>>) {
        let mut follow = RegionFollow::default();
        let settings = PagingSettings { sector_columns: 64, ..PagingSettings::default() };
        let mut world = PagedWorld::new(generator(), settings, DeltaConfig::default()).unwrap();
        assert_eq!(feed(&mut follow, &wire::world(&generator(), 64), None), Some(Effect::MakeWorld(generator(), 64)));
        follow.world_made(Ok(()));
        world.set_interest(&[Interest { center: IVec3::new(40, 10, 40), radius: 8, ..Interest::default() }]);
        world.tick();
        let mut out = Vec::new();
        follow.outgoing(Some(&mut world), &mut out);
        (follow, world, out)
    }

    fn feed(follow: &mut RegionFollow, message: &[u8], world: Option<&mut PagedWorld>) -> Option<Effect> {
        follow.receive(Bytes::copy_from_slice(message));
        follow.apply(world, &mut { usize::MAX })
    }

    fn edit(x: i32, z: i32) -> MaterialUpdate {
        MaterialUpdate::new(IVec3::new(x, 5, z), MaterialId(3))
    }

    #[test]
    fn a_sector_is_received_by_the_last_part_answering_its_region() {
        let (mut follow, mut world, out) = follower();
        assert_eq!(wire::decode_up(&out[0]), Ok(wire::Up::Region { epoch: 1, sectors: vec![IVec2::ZERO] }));
        let key = IVec2::ZERO;
        feed(&mut follow, &wire::sector(1, key, false, &[edit(1, 1)]), Some(&mut world));
        assert!(!follow.is_received(key), "not before its last part");
        feed(&mut follow, &wire::sector(0, key, true, &[]), Some(&mut world));
        assert!(!follow.is_received(key), "not by an answer to an older region");
        feed(&mut follow, &wire::sector(1, key, true, &[edit(2, 2)]), Some(&mut world));
        assert!(follow.is_received(key));
        assert_eq!(world.get_blocking(IVec3::new(1, 5, 1)), Ok(MaterialId(3)));
        assert_eq!(follow.stats.malformed, 0);
    }

    #[test]
    fn damage_or_edits_outside_their_sector_ask_for_the_region_again() {
        let (mut follow, mut world, _) = follower();
        feed(&mut follow, &wire::sector(1, IVec2::ZERO, true, &[]), Some(&mut world));
        assert!(follow.is_received(IVec2::ZERO));
        // An edit of sector (1, 0) in a message for sector (0, 0).
        feed(&mut follow, &wire::sector(1, IVec2::ZERO, true, &[edit(100, 1)]), Some(&mut world));
        assert_eq!(world.get(IVec3::new(100, 5, 1)), Ok(crate::paging::Paged::NotResident));
        assert_eq!(world.stats().edits, 0, "nothing of the message applied");
        let mut damaged = wire::changes(&[edit(3, 3)]);
        damaged[3] ^= 1;
        feed(&mut follow, &damaged, Some(&mut world));
        assert_eq!(follow.stats.malformed, 2);
        assert!(!follow.is_received(IVec2::ZERO));
        let mut out = Vec::new();
        follow.outgoing(Some(&mut world), &mut out);
        let asked: Vec<_> = out.iter().map(|m| wire::decode_up(m).unwrap()).collect();
        assert_eq!(asked[0], wire::Up::Region { epoch: 2, sectors: vec![] });
        assert_eq!(asked[1], wire::Up::Region { epoch: 3, sectors: vec![IVec2::ZERO] });
    }

    #[test]
    fn changes_lost_make_every_sector_wait_for_its_edits_again() {
        let (mut follow, mut world, _) = follower();
        feed(&mut follow, &wire::sector(1, IVec2::ZERO, true, &[]), Some(&mut world));
        assert!(follow.is_received(IVec2::ZERO));
        feed(&mut follow, &wire::again(), Some(&mut world));
        assert!(!follow.is_received(IVec2::ZERO));
        feed(&mut follow, &wire::sector(1, IVec2::ZERO, true, &[edit(4, 4)]), Some(&mut world));
        assert!(follow.is_received(IVec2::ZERO));
        assert_eq!(follow.stats.malformed, 0);
    }

    #[test]
    fn a_world_of_huge_sectors_or_another_world_is_refused() {
        let mut follow = RegionFollow::default();
        let tall = WorldGen { size: IVec3::new(1 << 16, 1 << 12, 1 << 16), ..generator() };
        assert_eq!(feed(&mut follow, &wire::world(&tall, 1 << 12), None), None);
        assert!(follow.status(None).refused);
        let (mut follow, mut world, _) = follower();
        follow.disconnected(Some(&mut world));
        let other = WorldGen { seed: 1, ..generator() };
        feed(&mut follow, &wire::world(&other, 64), Some(&mut world));
        assert!(follow.status(Some(&world)).refused);
        feed(&mut follow, &wire::changes(&[edit(1, 1)]), Some(&mut world));
        assert_eq!(world.stats().edits, 0, "nothing applied to a world refused");
    }
}
