//! Counters and figures of a [`DeltaStorage`](crate::DeltaStorage).
//!
//! Plain data: the storage owns its counters (writes take `&mut self`), and the
//! two read counters are relaxed atomics so `query(&self)` can count from any
//! thread without a lock.

use crate::consolidation::{AppliedStrategy, ConsolidationReport};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A snapshot of the storage's counters and figures; `O(1)` to take.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OverlayStats {
    /// Deltas in the overlay (active + frozen).
    pub delta_count: usize,
    /// Deltas in the frozen layer of the consolidation in flight.
    pub frozen_count: usize,
    /// True while a consolidation job is out.
    pub in_flight: bool,
    /// `delta_count / threshold`.
    pub utilization: f32,
    /// Heap bytes of both layers.
    pub overlay_bytes: usize,
    /// Mean time since the last write of the active deltas.
    pub mean_delta_age: Duration,
    /// Single-voxel reads (`query`) answered from the overlay.
    pub delta_hits: u64,
    /// Single-voxel reads answered from the base.
    pub base_hits: u64,
    /// Accepted updates (single and batched).
    pub updates: u64,
    /// Updates that returned a voxel to the material beneath and removed its delta.
    pub reverts: u64,
    /// Updates that wrote the material already there (no delta stored).
    pub unchanged: u64,
    /// Updates refused for a bad position.
    pub rejects: u64,
    /// Synchronous consolidations forced by the hard cap.
    pub forced_consolidations: u64,
    /// Consolidations finished, by strategy: lazy, spatial, time, flush, backpressure.
    pub consolidations: [u64; 5],
    /// How often `Adaptive` chose lazy, spatial, time.
    pub adaptive_choices: [u64; 3],
    /// Jobs abandoned by `flush`, `consolidate` or backpressure while in flight.
    pub cancelled_jobs: u64,
    /// Outputs refused by `finish_consolidation` (cancelled or foreign jobs).
    pub discarded_outputs: u64,
    /// Deltas merged into the base.
    pub deltas_consolidated: u64,
    /// The last finished consolidation.
    pub last_consolidation: Option<ConsolidationReport>,
    /// Mean of `run_time + finish_time` over finished consolidations.
    pub mean_consolidation_time: Duration,
    /// Largest `run_time + finish_time`.
    pub max_consolidation_time: Duration,
    /// Largest main-thread stall (`finish_time`).
    pub max_finish_time: Duration,
}

impl OverlayStats {
    /// Every single-voxel read.
    pub fn queries(&self) -> u64 {
        self.delta_hits + self.base_hits
    }

    /// Consolidations of every kind.
    pub fn total_consolidations(&self) -> u64 {
        self.consolidations.iter().sum()
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
    pub forced: u64,
    pub consolidations: [u64; 5],
    pub adaptive_choices: [u64; 3],
    pub cancelled: u64,
    pub discarded: u64,
    pub deltas_consolidated: u64,
    pub last: Option<ConsolidationReport>,
    pub total_time: Duration,
    pub max_time: Duration,
    pub max_finish: Duration,
}

impl Clone for Counters {
    fn clone(&self) -> Self {
        Self {
            delta_hits: AtomicU64::new(self.delta_hits.load(Ordering::Relaxed)),
            base_hits: AtomicU64::new(self.base_hits.load(Ordering::Relaxed)),
            last: self.last,
            consolidations: self.consolidations,
            adaptive_choices: self.adaptive_choices,
            ..*self
        }
    }
}

impl Counters {
    pub fn record(&mut self, report: &ConsolidationReport) {
        self.consolidations[report.strategy.index()] += 1;
        match report.strategy {
            AppliedStrategy::LazyThreshold { adaptive: true } => self.adaptive_choices[0] += 1,
            AppliedStrategy::SpatialClustering { adaptive: true } => self.adaptive_choices[1] += 1,
            AppliedStrategy::TimeBasedBatching { adaptive: true } => self.adaptive_choices[2] += 1,
            _ => {}
        }
        self.deltas_consolidated += report.deltas as u64;
        let t = report.run_time + report.finish_time;
        self.total_time += t;
        self.max_time = self.max_time.max(t);
        self.max_finish = self.max_finish.max(report.finish_time);
        self.last = Some(*report);
    }

    pub fn finished(&self) -> u64 {
        self.consolidations.iter().sum()
    }
}
