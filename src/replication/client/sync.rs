//! The client's state machine: what each server message does to its world.
//! Plain methods over a [`DeltaStorage`], tested without an `App`.
//!
//! ```text
//!  Waiting ──begin──► Joining ──chunks──► … ──end──► Synced ──changes──► Synced
//!     ▲                  │  (more than announced, undecodable)  │ (gap, damage, local write)
//!     └── Resyncing ◄────┴──────────────────────────────────────┘
//! ```

use super::{EditsRefused, ReplicationStatus, WorldReceived};
use crate::consolidation::DeltaConfig;
use crate::coords::Aabb;
use crate::replication::wire::{self, Downlink};
use crate::storage::{ChangeBatch, DeltaStorage};
use bevy::prelude::*;

/// The largest change batch a client accepts (a bigger one is damage).
const MAX_BATCH: usize = 1 << 24;

/// The largest snapshot a client assembles, in record bytes (the default
/// world's is 9 MB; a 1024³ world of geology about 100 MB).
const MAX_SNAPSHOT_BYTES: u64 = 4 << 30;

/// A snapshot being assembled.
#[derive(Default)]
struct Assembly {
    sequence: u64,
    bounds: Aabb,
    total: u64,
    /// Record bytes announced, and held so far (never more than announced).
    bytes: u64,
    held: u64,
    records: Vec<(u64, Vec<u8>)>,
}

/// What a message asks of the app, beyond the client's own state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Ask the server for a new snapshot: the stream cannot be trusted.
    Resync,
    /// Tell the app some of its edits were refused.
    Refused(EditsRefused),
    /// Tell the app the whole world was (re)received.
    Received(WorldReceived),
}

/// The client's replication state.
#[derive(Resource, Default)]
pub(crate) struct ClientSync {
    assembly: Option<Assembly>,
    /// The world's bounds once received.
    bounds: Option<Aabb>,
    /// The highest sequence number heard from the server.
    server: u64,
    /// Bytes of server messages received since connecting (for the server's
    /// flow control).
    pub received: u64,
    /// What was last reported to the server: sequence and bytes received.
    reported: (u64, u64),
    /// The sequence the storage is at by what was received: a storage at
    /// another one was written locally, behind the server's back.
    applied: u64,
    /// Where the client is.
    pub status: ReplicationStatus,
}

impl ClientSync {
    /// True once the world is the server's and follows it.
    pub fn is_synced(&self) -> bool {
        matches!(self.status, ReplicationStatus::Synced { .. })
    }

    /// A synced world at another sequence than received was written locally:
    /// it cannot be trusted.
    pub fn check_local_writes(&mut self, storage: &DeltaStorage) -> Option<Effect> {
        if self.is_synced() && storage.sequence() != self.applied {
            warn!("replication: this client's world was written directly (write through MaterialUpdate); resyncing");
            return Some(self.resync());
        }
        None
    }

    /// Applies one server message.
    pub fn on_message(&mut self, bytes: &[u8], storage: &mut DeltaStorage, config: &DeltaConfig) -> Option<Effect> {
        self.received += bytes.len() as u64;
        let message = match wire::decode_from_server(bytes) {
            Ok(m) => m,
            Err(e) => {
                // Ordered and reliable: a damaged message means the stream
                // cannot be trusted from here. Start over from a snapshot.
                warn!("replication: a server message did not decode ({e}); asking for a resync");
                return Some(self.resync());
            }
        };
        match message {
            Downlink::SnapshotBegin { sequence, bounds, nodes, bytes } => self.begin(sequence, bounds, nodes, bytes),
            Downlink::SnapshotChunk(records) => self.chunk(records),
            Downlink::SnapshotEnd { sequence } => self.end(sequence, storage, config),
            Downlink::Changes(record) => self.changes(&record, storage),
            Downlink::Refused { reason, count, first } => Some(Effect::Refused(EditsRefused { reason, count, first })),
        }
    }

    fn begin(&mut self, sequence: u64, bounds: Aabb, nodes: u64, bytes: u64) -> Option<Effect> {
        if bytes > MAX_SNAPSHOT_BYTES || nodes > bytes {
            warn!("replication: the server announced a snapshot of {bytes} bytes, over the cap; asking again");
            return Some(self.resync());
        }
        self.assembly = Some(Assembly { sequence, bounds, total: nodes, bytes, records: Vec::new(), held: 0 });
        self.status = ReplicationStatus::Joining { nodes: 0, total: nodes };
        None
    }

    fn chunk(&mut self, records: Vec<(u64, Vec<u8>)>) -> Option<Effect> {
        let a = self.assembly.as_mut()?;
        a.held += records.iter().map(|(_, r)| r.len() as u64).sum::<u64>();
        a.records.extend(records);
        if a.held > a.bytes || a.records.len() as u64 > a.total {
            // More than announced: the stream is not what it says.
            warn!("replication: a snapshot held more than it announced; asking again");
            return Some(self.resync());
        }
        self.status = ReplicationStatus::Joining { nodes: a.records.len() as u64, total: a.total };
        None
    }

    fn end(&mut self, sequence: u64, storage: &mut DeltaStorage, config: &DeltaConfig) -> Option<Effect> {
        let a = self.assembly.take().filter(|a| a.sequence == sequence)?;
        match crate::codec::world::build(a.bounds, &a.records) {
            Ok(base) => {
                let recording = storage.is_recording_changes();
                let mut world = DeltaStorage::resume(base, config.clone(), sequence);
                if recording {
                    world.record_changes(DeltaStorage::DEFAULT_CHANGE_CAPACITY);
                }
                storage.carry_surfaces_to(&mut world);
                *storage = world;
                self.applied = sequence;
                self.bounds = Some(a.bounds);
                self.server = self.server.max(sequence);
                self.status = ReplicationStatus::Synced { sequence, lag: self.server - sequence };
                Some(Effect::Received(WorldReceived { bounds: a.bounds, sequence }))
            }
            Err((_, _, e)) => {
                warn!("replication: the snapshot did not decode ({e}); asking for a resync");
                Some(self.resync())
            }
        }
    }

    fn changes(&mut self, record: &[u8], storage: &mut DeltaStorage) -> Option<Effect> {
        let bounds = self.bounds.filter(|_| self.is_synced())?;
        let batch = match crate::codec::decode_batch(record, bounds, MAX_BATCH) {
            Ok(b) => b,
            Err(e) => {
                warn!("replication: a change batch did not decode ({e}); asking for a resync");
                return Some(self.resync());
            }
        };
        self.server = self.server.max(batch.last_sequence());
        // A batch may overlap the snapshot it follows (changes the snapshot
        // already holds): apply only what is new.
        let expected = storage.sequence() + 1;
        let result = if batch.last_sequence() < expected {
            Ok(())
        } else if batch.first_sequence() < expected {
            let skip = (expected - batch.first_sequence()) as usize;
            storage.apply_changes(&ChangeBatch::new(expected, batch.changes()[skip..].to_vec()))
        } else {
            storage.apply_changes(&batch)
        };
        if let Err(e) = result {
            warn!("replication: {e}; asking for a resync");
            return Some(self.resync());
        }
        self.applied = storage.sequence();
        self.status = ReplicationStatus::Synced { sequence: storage.sequence(), lag: self.server - storage.sequence() };
        None
    }

    /// Drops what was being assembled and asks for a snapshot.
    fn resync(&mut self) -> Effect {
        self.assembly = None;
        self.status = ReplicationStatus::Resyncing;
        Effect::Resync
    }

    /// The progress report to send, when it moved since the last one: the
    /// sequence the world is at (0 before it is synced) and the bytes received.
    pub fn report(&mut self, storage: &DeltaStorage) -> Option<(u64, u64)> {
        let sequence = if self.is_synced() { storage.sequence() } else { 0 };
        let now = (sequence, self.received);
        (now != self.reported).then(|| {
            self.reported = now;
            now
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::material::{MaterialId, MaterialUpdate};
    use crate::replication::server::encode;
    use crate::worldgen::WorldGen;

    fn server() -> DeltaStorage {
        let generator = WorldGen { size: IVec3::new(48, 40, 40), sea_level: 20, ..WorldGen::default() };
        let mut world = DeltaStorage::new(generator.build().unwrap(), DeltaConfig::default());
        world.record_changes(1 << 16);
        world
    }

    fn client() -> (ClientSync, DeltaStorage) {
        (ClientSync::default(), crate::plugin::placeholder(&DeltaConfig::default()))
    }

    fn edit(x: i32, m: u16) -> MaterialUpdate {
        MaterialUpdate::new(IVec3::new(x, 30, 5), MaterialId(m))
    }

    /// Joins `client` to `server`'s world through the messages of a snapshot.
    fn join(server: &mut DeltaStorage, sync: &mut ClientSync, world: &mut DeltaStorage) -> Vec<Option<Effect>> {
        let snapshot = encode(server.snapshot());
        let config = DeltaConfig::default();
        snapshot.messages.iter().map(|m| sync.on_message(m, world, &config)).collect()
    }

    #[test]
    fn a_snapshot_then_changes_make_the_servers_world() {
        let (mut server, (mut sync, mut world)) = (server(), client());
        server.batch_update([edit(1, 9), edit(2, 9)]);
        server.take_changes();
        let effects = join(&mut server, &mut sync, &mut world);
        assert!(matches!(effects.last(), Some(Some(Effect::Received(r))) if r.sequence == 2));
        assert_eq!(world.digest(), server.digest());
        server.batch_update([edit(3, 8), edit(1, 7)]);
        let record = crate::codec::encode_batch(&server.take_changes(), server.bounds());
        assert_eq!(sync.on_message(&record, &mut world, &DeltaConfig::default()), None);
        assert_eq!((world.digest(), sync.status), (server.digest(), ReplicationStatus::Synced { sequence: 4, lag: 0 }));
        assert_eq!(sync.report(&world), Some((4, sync.received)));
        assert_eq!(sync.report(&world), None, "reported once");
    }

    #[test]
    fn a_gap_damage_or_a_local_write_asks_for_a_resync() {
        let (mut server, (mut sync, mut world)) = (server(), client());
        join(&mut server, &mut sync, &mut world);
        server.batch_update([edit(1, 9)]);
        server.take_changes();
        server.batch_update([edit(2, 9)]);
        let skipped = crate::codec::encode_batch(&server.take_changes(), server.bounds());
        assert_eq!(sync.on_message(&skipped, &mut world, &DeltaConfig::default()), Some(Effect::Resync));
        assert_eq!(sync.status, ReplicationStatus::Resyncing);
        let (mut sync, mut world) = client();
        join(&mut server, &mut sync, &mut world);
        let mut damaged = crate::codec::encode_batch(&ChangeBatch::new(3, vec![edit(4, 2)]), server.bounds());
        damaged[3] ^= 0x40;
        assert_eq!(sync.on_message(&damaged, &mut world, &DeltaConfig::default()), Some(Effect::Resync));
        let (mut sync, mut world) = client();
        join(&mut server, &mut sync, &mut world);
        world.update(IVec3::new(5, 5, 5), crate::material::materials::MAGMA).unwrap();
        assert_eq!(sync.check_local_writes(&world), Some(Effect::Resync));
    }

    #[test]
    fn a_snapshot_holding_more_than_it_announced_is_refused() {
        let (server, (mut sync, mut world)) = (server(), client());
        let snapshot = encode(server.snapshot());
        let config = DeltaConfig::default();
        assert_eq!(sync.on_message(&snapshot.messages[0], &mut world, &config), None);
        let chunk = &snapshot.messages[1];
        let mut effect = None;
        for _ in 0..1000 {
            effect = sync.on_message(chunk, &mut world, &config);
            if effect.is_some() {
                break;
            }
        }
        assert_eq!(effect, Some(Effect::Resync));
    }
}
