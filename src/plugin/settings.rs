//! Live configuration as a reflectable resource.

use crate::{CompactionStrategy, DeltaConfig};
use bevy::prelude::*;
use bevy::reflect::reflect_remote;
use std::time::Duration;

/// Reflection of [`CompactionStrategy`] (a core type, which knows nothing of Bevy).
#[reflect_remote(CompactionStrategy)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs, reason = "mirrors CompactionStrategy, documented there")]
pub enum CompactionStrategyReflect {
    LazyThreshold,
    SpatialClustering,
    TimeBasedBatching,
    #[default]
    Adaptive,
}

/// Reflection of [`DeltaConfig`]; compile-checked against its fields.
#[reflect_remote(DeltaConfig)]
#[derive(Clone, Debug, PartialEq)]
#[allow(missing_docs, reason = "mirrors DeltaConfig, documented there")]
pub struct DeltaConfigReflect {
    pub threshold: usize,
    pub hard_cap: usize,
    #[reflect(remote = CompactionStrategyReflect)]
    pub strategy: CompactionStrategy,
    pub chunk_size: u32,
    pub spatial_share: f32,
    pub max_age: Duration,
    pub adaptive_spatial_above: usize,
    pub adaptive_age: Duration,
}

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
    #[reflect(remote = DeltaConfigReflect)]
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
