//! The snapshot joiners are served from, and the change messages since it.
//!
//! One snapshot at a time is built (on the async pool) and shared by every
//! client joining while it is current; the frames' change messages after its
//! sequence are kept for them, up to a byte budget past which replaying would
//! cost more than a new snapshot.
//!
//! # Invariants
//!
//! - `AFTER`: the history holds exactly the changes after the snapshot's
//!   sequence, in order. A snapshot is taken at the storage's sequence, which
//!   a direct write after the frame's feed was drained may have moved past
//!   the last broadcast batch: the next batch then overlaps the snapshot, and
//!   its history entry is re-encoded from the changes after the snapshot (a
//!   batch is encoded sorted by voxel, so a receiver could not cut it).
//! - `CONTIGUOUS`: batches are broadcast gaplessly; a gap (frames the server
//!   did not run, a replaced world) forgets the snapshot and its history.

use super::ReplicationStats;
use super::settings::ReplicationSettings;
use crate::coords::Aabb;
use crate::replication::wire;
use crate::storage::{ChangeBatch, DeltaStorage, WorldSnapshot};
use bevy::prelude::*;
use bevy::tasks::{AsyncComputeTaskPool, Task, futures::check_ready};
use bevy_replicon::bytes::Bytes;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A snapshot encoded as the messages of a join: begin, chunks, end.
pub(crate) struct EncodedSnapshot {
    pub messages: Vec<Bytes>,
    /// The messages' total size.
    pub bytes: usize,
    /// The time it took to encode.
    pub took: Duration,
    /// The sequence of the last change it holds.
    pub sequence: u64,
}

/// A frame's changes, encoded once for every peer.
pub(crate) struct FrameBatch {
    /// The whole batch, for synced peers.
    pub bytes: Bytes,
    /// The changes it carries.
    pub changes: u64,
    first: u64,
    last: u64,
    /// When the batch overlaps the cached snapshot (at `.0`): its changes
    /// after it.
    after_snapshot: Option<(u64, Bytes)>,
}

impl FrameBatch {
    /// What a peer joining from a snapshot at `sequence` needs of the batch:
    /// all of it, nothing (the snapshot holds it), or the changes after the
    /// snapshot. `None` when that part was not encoded (the peer must join
    /// again).
    pub fn after(&self, sequence: u64) -> Option<Option<Bytes>> {
        if self.last <= sequence {
            Some(None)
        } else if self.first > sequence {
            Some(Some(self.bytes.clone()))
        } else {
            let (_, bytes) = self.after_snapshot.as_ref().filter(|(at, _)| *at == sequence)?;
            Some(Some(bytes.clone()))
        }
    }
}

/// What a frame's changes became, for the peers.
pub(crate) enum Broadcast {
    /// No new changes this frame.
    Nothing,
    /// The frame's changes.
    Changes(FrameBatch),
    /// The feed overflowed: the frame cannot be replayed, every client needs a
    /// new snapshot.
    Overflow,
}

/// The snapshot joiners are served from, and the changes since it.
#[derive(Resource, Default)]
pub(crate) struct SnapshotCache {
    pub latest: Option<Arc<EncodedSnapshot>>,
    pub(super) building: Option<Task<EncodedSnapshot>>,
    /// Encoded change messages after the snapshot's sequence.
    pub history: VecDeque<Bytes>,
    pub history_bytes: usize,
    /// The last sequence number broadcast.
    pub(super) broadcast: u64,
    /// The sequence of the snapshot built or served (`None` without one).
    pub(super) snapshot_sequence: Option<u64>,
    /// The storage value the cache and the peers' worlds come from
    /// (`DeltaStorage::world_id`).
    pub(super) world: Option<u64>,
    /// Bytes of refusals sent by `receive` this frame (added to the frame's
    /// figure by `send`).
    pub refusal_bytes: u64,
}

impl SnapshotCache {
    /// Forgets the snapshot and its history: the next joiner gets a new one.
    pub fn invalidate(&mut self) {
        self.latest = None;
        self.building = None;
        self.snapshot_sequence = None;
        self.history.clear();
        self.history_bytes = 0;
    }

    /// Forgets everything, the last broadcast sequence included: the server
    /// stopped, or its world was replaced.
    pub fn reset(&mut self) {
        self.invalidate();
        self.broadcast = 0;
    }

    /// Encodes the frame's batch once for every client and keeps it for
    /// joiners while a snapshot is built or served.
    pub fn broadcast(&mut self, batch: &ChangeBatch, bounds: Aabb, settings: &ReplicationSettings) -> Broadcast {
        if batch.is_empty() || batch.last_sequence() <= self.broadcast {
            return Broadcast::Nothing;
        }
        if self.broadcast != 0 && batch.first_sequence() != self.broadcast + 1 {
            // CONTIGUOUS: the history would have a hole.
            self.invalidate();
        }
        self.broadcast = batch.last_sequence();
        if !batch.is_complete() {
            self.invalidate();
            return Broadcast::Overflow;
        }
        let (first, last) = (batch.first_sequence(), batch.last_sequence());
        let after_snapshot = self.snapshot_sequence.filter(|&s| first <= s && s < last).map(|s| {
            let after = ChangeBatch::new(s + 1, batch.changes()[(s + 1 - first) as usize..].to_vec());
            (s, Bytes::from(crate::codec::encode_batch(&after, bounds)))
        });
        let bytes = Bytes::from(crate::codec::encode_batch(batch, bounds));
        let frame = FrameBatch { bytes, changes: batch.len() as u64, first, last, after_snapshot };
        if let Some(Some(Some(kept))) = self.snapshot_sequence.map(|s| frame.after(s)) {
            self.history_bytes += kept.len();
            self.history.push_back(kept);
            let replay_limit = self.latest.as_ref().map_or(usize::MAX, |s| s.bytes);
            if self.history_bytes > settings.max_join_backlog.min(replay_limit) {
                // Replaying would cost more than a new snapshot.
                self.invalidate();
            }
        }
        Broadcast::Changes(frame)
    }

    /// Lands a snapshot being built, and starts one when a peer waits and none
    /// is there. The feed was drained just before, so the storage is at a batch
    /// boundary.
    pub fn refresh(&mut self, waiting: bool, storage: &mut DeltaStorage, stats: &mut ReplicationStats) {
        if let Some(done) = self.building.as_mut().and_then(check_ready) {
            self.building = None;
            stats.snapshot_bytes = done.bytes as u64;
            stats.snapshot_encode = done.took;
            self.latest = Some(Arc::new(done));
        }
        if waiting && self.latest.is_none() && self.building.is_none() {
            let snapshot = storage.snapshot();
            self.snapshot_sequence = Some(snapshot.sequence());
            stats.snapshots += 1;
            self.history.clear();
            self.history_bytes = 0;
            self.building = Some(AsyncComputeTaskPool::get().spawn(async move { encode(snapshot) }));
        }
    }
}

/// Encodes a snapshot as the messages of a join (on a task: it reads and
/// encodes every node of the world).
pub(crate) fn encode(snapshot: WorldSnapshot) -> EncodedSnapshot {
    /// A chunk's size: small enough to interleave with other traffic.
    const CHUNK: usize = 16 << 10;
    let start = Instant::now();
    let sequence = snapshot.sequence();
    let bounds = snapshot.bounds();
    let digest = snapshot.digest();
    let mut chunks = Vec::new();
    let (mut records, mut size, mut nodes, mut bytes) = (Vec::new(), 0, 0u64, 0u64);
    crate::codec::world::for_each_record(&snapshot, |key, record| {
        size += record.len() + 12;
        nodes += 1;
        bytes += record.len() as u64;
        records.push((key, record));
        if size >= CHUNK {
            chunks.push(Bytes::from(wire::snapshot_chunk(&records)));
            records.clear();
            size = 0;
        }
    });
    if !records.is_empty() {
        chunks.push(Bytes::from(wire::snapshot_chunk(&records)));
    }
    let mut messages = Vec::with_capacity(chunks.len() + 2);
    messages.push(Bytes::from(wire::snapshot_begin(sequence, bounds, nodes, bytes)));
    messages.extend(chunks);
    messages.push(Bytes::from(wire::snapshot_end(sequence, digest)));
    let bytes = messages.iter().map(Bytes::len).sum();
    EncodedSnapshot { messages, bytes, took: start.elapsed(), sequence }
}
