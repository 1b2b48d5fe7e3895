//! Messages in and out of the plugin.

use crate::consolidation::ConsolidationReport;
use crate::coords::Aabb;
use crate::storage::ChangeBatch;
use bevy::prelude::*;
use std::ops::RangeInclusive;
use std::sync::Arc;

/// Consolidate every delta now, synchronously, in this frame's `Consolidate`
/// phase. A consolidation in flight is cancelled and its deltas included.
#[derive(Message, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlushDeltas;

/// Voxels changed this frame: written in the `Publish` phase of every frame in
/// which the storage accepted changes (from messages, channel batches
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

/// The changes the storage accepted since the previous frame's `Publish`,
/// drained from its change feed this frame (empty on a frame without changes).
/// Consumers that need every change (a save file, a network server, yours)
/// read it in [`DeltaOverlaySystems::Forward`](super::DeltaOverlaySystems::Forward);
/// it is shared by `Arc`, so handing it to a thread is free.
#[derive(Resource, Clone, Debug, Default)]
pub struct FrameChanges {
    /// The batch: sequence range and changes, in order.
    pub batch: Arc<ChangeBatch>,
}
