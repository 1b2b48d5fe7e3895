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
}

impl Default for DeltaOverlaySettings {
    fn default() -> Self {
        Self::from_config(DeltaConfig::default())
    }
}

impl DeltaOverlaySettings {
    /// Settings carrying `config`, with the plugin defaults for the rest.
    pub fn from_config(config: DeltaConfig) -> Self {
        Self { config, auto_consolidate: true, max_batches_per_frame: 64 }
    }
}
