//! Live configuration as a reflectable resource.

use crate::consolidation::DeltaConfig;
use bevy::prelude::*;

/// The plugin's live settings. Change them from any system (or the debug panel,
/// or an inspector through reflection); the storage picks them up in the next
/// `Ingest` phase.
///
/// Inserted by the plugin unless the app inserted one first, in which case the
/// app's wins.
#[derive(Resource, Reflect, Clone, Debug, PartialEq)]
#[reflect(Resource)]
pub struct DeltaOverlaySettings {
    /// The overlay's tunables: threshold, hard cap, strategy and its parameters.
    pub config: DeltaConfig,
    /// When false, no consolidation starts on its own (flushes and the hard cap's
    /// backpressure still work). Default true.
    pub auto_consolidate: bool,
    /// Channel batches the ingest system drains per frame, at most; the rest wait
    /// in the bounded channel. Default 64.
    pub max_batches_per_frame: usize,
    /// Main-thread time a frame's ingest may take: updates past it wait in the
    /// backlog, in order, and are applied first in the next frames (so are
    /// updates that would take the overlay past its hard cap while a
    /// consolidation catches up). Default 4 ms.
    pub ingest_budget: std::time::Duration,
    /// Updates the backlog holds at most (16 bytes each). A frame's messages
    /// arriving at a full backlog are refused (`RejectedUpdate` with
    /// `VoxelError::Backlogged`); channel batches wait in the channel instead.
    /// Default 4,194,304 (64 MiB).
    pub max_backlog: usize,
}

impl Default for DeltaOverlaySettings {
    fn default() -> Self {
        Self::from_config(DeltaConfig::default())
    }
}

impl DeltaOverlaySettings {
    /// Settings carrying `config`, with the plugin defaults for the rest.
    pub fn from_config(config: DeltaConfig) -> Self {
        Self {
            config,
            auto_consolidate: true,
            max_batches_per_frame: 64,
            ingest_budget: std::time::Duration::from_millis(4),
            max_backlog: 1 << 22,
        }
    }
}
