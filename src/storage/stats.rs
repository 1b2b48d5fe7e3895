//! Figures of a [`DeltaStorage`](super::DeltaStorage).
//!
//! Plain data: the storage owns its counters (writes take `&mut self`), and the
//! two read counters are relaxed atomics so `query(&self)` can count from any
//! thread without a lock.

use crate::consolidation::ConsolidationStats;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// A snapshot of the storage's counters and figures; `O(layers)` to take.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OverlayStats {
    /// Deltas in the overlay, every layer
    /// ([`DeltaStorage::delta_count`](super::DeltaStorage::delta_count)).
    pub delta_count: usize,
    /// Sealed layers under the active one: the layers a consolidation merges
    /// (usually one or two).
    pub sealed_layers: usize,
    /// Deltas in the sealed layers.
    pub sealed_deltas: usize,
    /// True while a consolidation job is out.
    pub in_flight: bool,
    /// `delta_count / threshold`.
    pub utilization: f32,
    /// Heap bytes of every layer.
    pub overlay_bytes: usize,
    /// Mean time since the last write of the deltas.
    pub mean_delta_age: Duration,
    /// Number of the last accepted change.
    pub sequence: u64,
    /// Changes numbered but not kept because the recording was full.
    pub changes_dropped: u64,
    /// Single-voxel reads (`query`) answered from the overlay.
    pub delta_hits: u64,
    /// Single-voxel reads answered from the base.
    pub base_hits: u64,
    /// Accepted updates (single and batched), changes or not.
    pub updates: u64,
    /// Updates that returned a voxel to the material beneath and removed its delta.
    pub reverts: u64,
    /// Updates that wrote the material already there (no change).
    pub unchanged: u64,
    /// Updates refused for a bad position.
    pub rejects: u64,
    /// Figures of the consolidations.
    pub consolidation: ConsolidationStats,
}

impl OverlayStats {
    /// Every single-voxel read.
    pub fn queries(&self) -> u64 {
        self.delta_hits + self.base_hits
    }
}

/// Counters the storage updates; read through [`OverlayStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub delta_hits: AtomicU64,
    pub base_hits: AtomicU64,
    pub updates: u64,
    pub reverts: u64,
    pub unchanged: u64,
    pub rejects: u64,
}

impl Clone for Counters {
    fn clone(&self) -> Self {
        use std::sync::atomic::Ordering::Relaxed;
        Self {
            delta_hits: AtomicU64::new(self.delta_hits.load(Relaxed)),
            base_hits: AtomicU64::new(self.base_hits.load(Relaxed)),
            ..*self
        }
    }
}
