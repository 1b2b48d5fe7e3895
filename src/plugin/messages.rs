//! Messages in and out of the plugin.

use crate::{Aabb, ChangeBatch, ConsolidationReport, MaterialId, VoxelError};
use bevy::prelude::*;
use std::ops::RangeInclusive;
use std::sync::Arc;

/// Write `material` at `position`. Send with `MessageWriter<MaterialUpdate>` from a
/// system ordered `.before(DeltaOverlaySystems::Ingest)`; the update is readable
/// through `Res<DeltaStorage>` after that frame's ingest.
#[derive(Message, Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaterialUpdate {
    /// The voxel.
    pub position: IVec3,
    /// Its new material.
    pub material: MaterialId,
}

/// An update the overlay refused (bad position). Everything else in the same
/// frame or batch was applied.
#[derive(Message, Clone, Copy, Debug, PartialEq)]
pub struct MaterialUpdateRejected {
    /// The refused update.
    pub update: MaterialUpdate,
    /// Why it was refused.
    pub error: VoxelError,
}

/// Consolidate every delta now, synchronously, in this frame's `Consolidate`
/// phase. A consolidation in flight is cancelled and its deltas included.
#[derive(Message, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlushDeltas;

/// Voxels changed this frame: written at the end of the `Ingest` phase of every
/// frame in which the storage accepted changes (from messages, channel batches
/// or any system writing the storage since the last frame's). Subscribe to it
/// instead of diffing the world: a mesher remeshes the bricks named here.
#[derive(Message, Clone, Debug, PartialEq, Eq)]
pub struct VoxelsChanged {
    /// The box of every brick (16³ cell from the world's minimum corner, clipped
    /// to the world) holding a changed voxel, each once. No other brick changed.
    pub bricks: Vec<Aabb>,
    /// The change numbers of the frame's changes; see [`FrameChanges`] for the
    /// changes themselves.
    pub sequences: RangeInclusive<u64>,
}

/// A consolidation finished (asynchronous, flushed, or forced by the hard cap):
/// no voxel reads differently, but coarse LOD reads (`query_lod`, `query_region`
/// at `lod > 0`), which come from the base, changed in these bricks.
#[derive(Message, Clone, Debug, PartialEq)]
pub struct ConsolidationFinished {
    /// What it did.
    pub report: ConsolidationReport,
    /// The boxes of the bricks it installed, clipped to the world.
    pub bricks: Vec<Aabb>,
}

/// The changes the storage accepted since the previous frame's `Ingest`,
/// drained from its change feed this frame (empty on a frame without changes).
/// Consumers that need every change (a save file, a network server) read it
/// after `Ingest`; it is shared by `Arc`, so handing it to a thread is free.
#[derive(Resource, Clone, Debug, Default)]
pub struct FrameChanges {
    /// The batch: sequence range and changes, in order.
    pub batch: Arc<ChangeBatch>,
}

/// Updates written while [`DeltaOverlaySettings::apply_updates`] is false, in
/// order, for whoever has authority over the world (a replication client sends
/// and drains them every frame). Bounded: past [`Self::CAPACITY`] updates, newer
/// ones are dropped and counted in [`dropped`](Self::dropped).
///
/// [`DeltaOverlaySettings::apply_updates`]: crate::DeltaOverlaySettings::apply_updates
#[derive(Resource, Clone, Debug, Default)]
pub struct PendingUpdates {
    /// The queued updates, oldest first.
    pub updates: Vec<(IVec3, MaterialId)>,
    /// Updates dropped because the queue was full.
    pub dropped: u64,
}

impl PendingUpdates {
    /// The most updates the queue holds.
    pub const CAPACITY: usize = 1 << 20;

    /// Queues updates, dropping what does not fit.
    pub fn extend(&mut self, updates: impl IntoIterator<Item = (IVec3, MaterialId)>) {
        for u in updates {
            if self.updates.len() < Self::CAPACITY {
                self.updates.push(u);
            } else {
                self.dropped += 1;
            }
        }
    }
}
