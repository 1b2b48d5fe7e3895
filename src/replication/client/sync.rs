//! The client's state machine: what each server message does to its world.
//! Plain methods over a [`DeltaStorage`], tested without an `App`.
//!
//! ```text
//!  Waiting ──begin──► Joining ──chunks──► … ──end──► Synced ──changes──► Synced
//!     ▲                  │  (more than announced, undecodable)  │ (gap, damage, local write)
//!     └── Resyncing ◄────┴──────────────────────────────────────┘
//! ```

use super::{EditsRefused, ReplicationClientStats, ReplicationStatus, WorldReceived};
use crate::base::Region;
use crate::consolidation::DeltaConfig;
use crate::coords::Aabb;
use crate::coords::brick::BRICK_LOG2;
use crate::hash::{FastSet, fast_set};
use crate::replication::audit;
use crate::replication::wire::{self, Downlink};
use crate::storage::DeltaStorage;
use bevy::prelude::*;

/// The largest change batch a client accepts (a bigger one is damage).
const MAX_BATCH: usize = 1 << 24;

/// The largest snapshot a client assembles, in record bytes (the default
/// world's is 9 MB; a 1024³ world of geology about 100 MB).
const MAX_SNAPSHOT_BYTES: u64 = 4 << 30;

/// The largest world a client accepts, in bricks (16³ voxels): 4G voxels,
/// 8 GiB if every brick held many materials. What a snapshot's records may
/// decode to is bounded by the world they describe (each key names a
/// distinct node inside it), so this bounds the client's memory whatever the
/// server sends.
pub(crate) const MAX_WORLD_BRICKS: u64 = 1 << 20;

/// Sequence numbers past this are refused: counting on from them must not
/// overflow.
const MAX_SEQUENCE: u64 = 1 << 62;

/// A snapshot being assembled.
struct Assembly {
    sequence: u64,
    bounds: Aabb,
    total: u64,
    /// Record bytes announced, and held so far (never more than announced).
    bytes: u64,
    held: u64,
    records: Vec<(u64, Vec<u8>)>,
    /// The keys received: each names a distinct node inside the world.
    keys: FastSet<u64>,
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
    /// What it detected and asked for.
    pub stats: ReplicationClientStats,
    /// The buffer audits read regions into.
    scratch: Region,
}

impl ClientSync {
    /// Node records held by the snapshot being assembled.
    pub fn records_held(&self) -> usize {
        self.assembly.as_ref().map_or(0, |a| a.records.len())
    }

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
            Downlink::SnapshotEnd { sequence, digest } => self.end(sequence, digest, storage, config),
            Downlink::Changes(record) => self.changes(&record, storage),
            Downlink::Audit { sequence, region, digest } => self.audit(sequence, region, digest, storage),
            Downlink::Refused { reason, count, first } => Some(Effect::Refused(EditsRefused { reason, count, first })),
        }
    }

    fn begin(&mut self, sequence: u64, bounds: Aabb, nodes: u64, bytes: u64) -> Option<Effect> {
        let bricks = (bounds.size().as_u64vec3() >> BRICK_LOG2 as u64) + 1;
        let bricks = bricks.x.saturating_mul(bricks.y).saturating_mul(bricks.z);
        // Every node is a brick or holds several: at most two per brick.
        let most_nodes = bricks.saturating_mul(2).saturating_add(64);
        let most_bytes = MAX_SNAPSHOT_BYTES.min(nodes.saturating_mul(wire::MAX_RECORD as u64));
        if sequence > MAX_SEQUENCE
            || bricks > MAX_WORLD_BRICKS
            || nodes > most_nodes
            || bytes > most_bytes
            || nodes > bytes
        {
            warn!("replication: the server announced a snapshot beyond this client's caps; asking again");
            return Some(self.resync());
        }
        let assembly =
            Assembly { sequence, bounds, total: nodes, bytes, held: 0, records: Vec::new(), keys: fast_set() };
        self.assembly = Some(assembly);
        self.status = ReplicationStatus::Joining { nodes: 0, total: nodes };
        None
    }

    fn chunk(&mut self, records: Vec<(u64, Vec<u8>)>) -> Option<Effect> {
        let a = self.assembly.as_mut()?;
        let size = a.bounds.size();
        for (key, record) in records {
            // Checked before it is kept: a node inside the world, at or above
            // the brick level, named once.
            let (level, _, min) = crate::codec::world::node_of_key(key);
            let inside = (BRICK_LOG2..32).contains(&level) && min.cmplt(size).all();
            a.held += record.len() as u64;
            if !inside || !a.keys.insert(key) || a.held > a.bytes || a.records.len() as u64 >= a.total {
                // Not what was announced: the stream cannot be trusted.
                warn!("replication: a snapshot held a node outside its world, twice, or past its announcement");
                return Some(self.resync());
            }
            a.records.push((key, record));
        }
        self.status = ReplicationStatus::Joining { nodes: a.records.len() as u64, total: a.total };
        None
    }

    fn end(&mut self, sequence: u64, digest: u64, storage: &mut DeltaStorage, config: &DeltaConfig) -> Option<Effect> {
        let a = self.assembly.take().filter(|a| a.sequence == sequence)?;
        match crate::codec::world::build(a.bounds, &a.records) {
            Ok(base) => {
                let recording = storage.is_recording_changes();
                let mut world = DeltaStorage::resume(base, config.clone(), sequence);
                if world.digest() != digest {
                    warn!("replication: the snapshot's world is not the server's (digest); asking again");
                    self.stats.divergences += 1;
                    return Some(self.resync());
                }
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
            Err(e) => {
                warn!("replication: the snapshot did not decode ({e:?}); asking for a resync");
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
        let expected = storage.sequence().saturating_add(1);
        let result = if batch.last_sequence() < expected {
            // Already held (the server sent what the snapshot holds).
            Ok(())
        } else if batch.first_sequence() < expected {
            // A batch overlapping the world: the server sends joiners only the
            // changes after their snapshot, and a batch is sorted by voxel, so
            // it cannot be cut here. The stream is not what it should be.
            Err("a change batch overlaps the world already held".to_string())
        } else {
            storage.apply_changes(&batch).map_err(|e| e.to_string())
        };
        if let Err(e) = result {
            warn!("replication: {e}; asking for a resync");
            return Some(self.resync());
        }
        self.applied = storage.sequence();
        self.status = ReplicationStatus::Synced { sequence: storage.sequence(), lag: self.server - storage.sequence() };
        None
    }

    /// A region's digest from the server, as of `sequence`: a synced world at
    /// that sequence must match it.
    fn audit(&mut self, sequence: u64, region: Aabb, digest: u64, storage: &DeltaStorage) -> Option<Effect> {
        if !self.is_synced() || storage.sequence() != sequence {
            return None;
        }
        self.stats.audits += 1;
        if audit::digest(storage, region, &mut self.scratch) == Some(digest) {
            return None;
        }
        warn!("replication: this client's world differs from the server's in {region:?}; asking for the world again");
        self.stats.divergences += 1;
        Some(self.resync())
    }

    /// Drops what was being assembled and asks for a snapshot.
    fn resync(&mut self) -> Effect {
        self.stats.resyncs += 1;
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
#[path = "sync_tests.rs"]
mod tests;
