//! Figures of consolidations, with a named field for each count.

use super::{AppliedStrategy, ConsolidationReport};
use std::time::Duration;

/// Consolidations finished, by the strategy that picked their deltas.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "plugin", derive(bevy::reflect::Reflect))]
pub struct StrategyCounts {
    /// [`AppliedStrategy::LazyThreshold`], asked for or chosen.
    pub lazy: u64,
    /// [`AppliedStrategy::SpatialClustering`], asked for or chosen.
    pub spatial: u64,
    /// [`AppliedStrategy::TimeBasedBatching`], asked for or chosen.
    pub time: u64,
    /// [`AppliedStrategy::Flush`].
    pub flush: u64,
    /// [`AppliedStrategy::Backpressure`]: the hard cap forced a synchronous one.
    pub backpressure: u64,
}

impl StrategyCounts {
    /// Every consolidation.
    pub fn total(&self) -> u64 {
        self.lazy + self.spatial + self.time + self.flush + self.backpressure
    }

    /// The counts with their names, for logs and panels.
    pub fn named(&self) -> [(&'static str, u64); 5] {
        [
            ("lazy", self.lazy),
            ("spatial", self.spatial),
            ("time", self.time),
            ("flush", self.flush),
            ("backpressure", self.backpressure),
        ]
    }
}

/// How often `Adaptive` chose each strategy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "plugin", derive(bevy::reflect::Reflect))]
pub struct AdaptiveChoices {
    /// Chose lazy.
    pub lazy: u64,
    /// Chose spatial.
    pub spatial: u64,
    /// Chose time-based.
    pub time: u64,
}

/// Figures of a storage's consolidations; `O(1)` to take.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ConsolidationStats {
    /// Consolidations finished, by strategy.
    pub finished: StrategyCounts,
    /// What `Adaptive` chose.
    pub adaptive: AdaptiveChoices,
    /// Jobs abandoned by `flush`, `consolidate` or backpressure while in flight.
    pub cancelled: u64,
    /// Outputs refused by `finish_consolidation` (cancelled or foreign jobs).
    pub discarded: u64,
    /// Deltas merged into the base.
    pub deltas_merged: u64,
    /// The last finished consolidation.
    pub last: Option<ConsolidationReport>,
    /// Mean of `begin + run + finish` over finished consolidations.
    pub mean_time: Duration,
    /// Largest `begin + run + finish`.
    pub max_time: Duration,
    /// Largest main-thread stall, `begin + finish`.
    pub max_stall: Duration,
}

/// Counters a consolidator updates; read through [`ConsolidationStats`].
#[derive(Clone, Debug, Default)]
pub(crate) struct Counters {
    pub cancelled: u64,
    pub discarded: u64,
    finished: StrategyCounts,
    adaptive: AdaptiveChoices,
    deltas_merged: u64,
    last: Option<ConsolidationReport>,
    total_time: Duration,
    max_time: Duration,
    max_stall: Duration,
}

impl Counters {
    pub fn record(&mut self, report: &ConsolidationReport) {
        let f = &mut self.finished;
        match report.strategy {
            AppliedStrategy::LazyThreshold { adaptive } => {
                f.lazy += 1;
                self.adaptive.lazy += u64::from(adaptive);
            }
            AppliedStrategy::SpatialClustering { adaptive } => {
                f.spatial += 1;
                self.adaptive.spatial += u64::from(adaptive);
            }
            AppliedStrategy::TimeBasedBatching { adaptive } => {
                f.time += 1;
                self.adaptive.time += u64::from(adaptive);
            }
            AppliedStrategy::Flush => f.flush += 1,
            AppliedStrategy::Backpressure => f.backpressure += 1,
        }
        self.deltas_merged += report.deltas as u64;
        let t = report.total_time();
        self.total_time += t;
        self.max_time = self.max_time.max(t);
        self.max_stall = self.max_stall.max(report.stall());
        self.last = Some(*report);
    }

    pub fn stats(&self) -> ConsolidationStats {
        let n = self.finished.total();
        ConsolidationStats {
            finished: self.finished,
            adaptive: self.adaptive,
            cancelled: self.cancelled,
            discarded: self.discarded,
            deltas_merged: self.deltas_merged,
            last: self.last,
            mean_time: if n == 0 { Duration::ZERO } else { self.total_time.div_f64(n as f64) },
            max_time: self.max_time,
            max_stall: self.max_stall,
        }
    }
}
