//! Tunables of a [`DeltaStorage`](crate::storage::DeltaStorage).

use super::ConsolidationStrategy;
use crate::coords::BRICK_SIZE;
use std::time::Duration;

/// Tunables of the overlay. Changing them with
/// [`DeltaStorage::set_config`](crate::storage::DeltaStorage::set_config) takes effect at
/// once (a lowered hard cap consolidates immediately).
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "plugin", derive(bevy::reflect::Reflect))]
pub struct DeltaConfig {
    /// Delta count ([`DeltaStorage::delta_count`](crate::storage::DeltaStorage::delta_count))
    /// at which a consolidation is due (seed default: 1000).
    pub threshold: usize,
    /// Delta count past which `update` consolidates synchronously before it
    /// returns (backpressure, counted in metrics): the overlay never holds more.
    /// Raised to `threshold` when lower.
    pub hard_cap: usize,
    /// How consolidations choose their deltas.
    pub strategy: ConsolidationStrategy,
    /// Edge of a spatial-clustering chunk in voxels; rounded up to a multiple of
    /// the brick edge (16). Default 128.
    pub chunk_size: u32,
    /// Share of the deltas a spatial consolidation takes, `(0, 1]`. Default 0.5.
    pub spatial_share: f32,
    /// Deltas older than this are taken by time-based batching (seed: 5 minutes).
    pub max_age: Duration,
    /// `Adaptive` goes spatial above this many deltas (seed: 10,000).
    pub adaptive_spatial_above: usize,
    /// `Adaptive` goes time-based when the mean delta age exceeds this (seed: 10
    /// minutes).
    pub adaptive_age: Duration,
}

impl Default for DeltaConfig {
    fn default() -> Self {
        Self {
            threshold: 1000,
            hard_cap: 1 << 20,
            strategy: ConsolidationStrategy::Adaptive,
            chunk_size: 128,
            spatial_share: 0.5,
            max_age: Duration::from_secs(5 * 60),
            adaptive_spatial_above: 10_000,
            adaptive_age: Duration::from_secs(10 * 60),
        }
    }
}

impl DeltaConfig {
    /// The same settings brought into range: `threshold >= 1`,
    /// `hard_cap >= threshold`, `chunk_size` a positive multiple of 16,
    /// `spatial_share` in `(0, 1]` (NaN becomes the default 0.5).
    pub fn normalized(mut self) -> Self {
        self.threshold = self.threshold.max(1);
        self.hard_cap = self.hard_cap.max(self.threshold);
        let b = BRICK_SIZE as u32;
        self.chunk_size = self.chunk_size.clamp(b, 1 << 20).div_ceil(b) * b;
        self.spatial_share =
            if self.spatial_share.is_nan() { 0.5 } else { self.spatial_share.clamp(f32::EPSILON, 1.0) };
        self
    }
}
