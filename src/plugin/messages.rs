//! Messages in and out of the plugin.

use crate::{MaterialId, VoxelError};
use bevy::prelude::*;

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
