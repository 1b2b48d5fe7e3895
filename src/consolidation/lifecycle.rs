//! The lifecycle of consolidations: when one is due, begin (seal and hand out a
//! job), finish (install and swap layers), cancel, and the synchronous path.

use super::job::{ConsolidationJob, ConsolidationOutput};
use super::selection::{SelectionParams, remainder, select};
use super::stats::Counters;
use super::strategy::{AdaptiveInputs, resolve};
use super::{
    AppliedStrategy, ConsolidationError, ConsolidationReport, ConsolidationStats, ConsolidationStrategy, DeltaConfig,
};
use crate::base::{BaseIndex, BrickContent};
use crate::coords::BRICK_SIZE;
use crate::coords::brick::BrickKey;
use crate::overlay::{Layer, Overlay};
use crate::parallel::Sequential;
use glam::IVec3;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Storage ids, unique in the process: a job's output is matched to the storage
/// that made it by id and generation, so one storage never installs another's.
static NEXT_STORAGE_ID: AtomicU64 = AtomicU64::new(1);

/// Which storage made a job, and which of its jobs it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct JobId {
    pub storage: u64,
    pub generation: u64,
}

/// The storage's parts a consolidation works on.
pub(crate) struct Parts<'a> {
    pub overlay: &'a mut Overlay,
    pub base: &'a mut BaseIndex,
    pub config: &'a DeltaConfig,
    /// Storage clock, ms.
    pub now: u64,
}

/// A finished consolidation: its report and the local brick coordinates of the
/// bricks it installed.
#[derive(Debug)]
pub(crate) struct Finished {
    pub report: ConsolidationReport,
    pub bricks: Vec<IVec3>,
}

/// What a finished consolidation leaves to free: its input layers and the
/// bricks it displaced. The next job drops it on its own thread.
#[derive(Debug, Default)]
pub(crate) struct Retired {
    pub layers: Vec<Arc<Layer>>,
    pub bricks: Vec<BrickContent>,
}

#[derive(Clone, Copy, Debug)]
struct InFlight {
    generation: u64,
}

/// Consolidation state of one storage.
#[derive(Debug)]
pub(crate) struct Consolidator {
    id: u64,
    generation: u64,
    in_flight: Option<InFlight>,
    /// Input layers of the last finished job and the bricks its install
    /// displaced, dropped by the next job (freeing them is not free).
    retired: Retired,
    /// Clock of the last consolidation attempt.
    last_attempt_ms: u64,
    counters: Counters,
}

impl Default for Consolidator {
    fn default() -> Self {
        Self {
            id: NEXT_STORAGE_ID.fetch_add(1, Ordering::Relaxed),
            generation: 0,
            in_flight: None,
            retired: Retired::default(),
            last_attempt_ms: 0,
            counters: Counters::default(),
        }
    }
}

impl Clone for Consolidator {
    /// A clone is another storage: a new id, so no job of the original can be
    /// finished on it, and nothing in flight (the layers of a job in flight stay
    /// in its overlay, readable, and the next consolidation merges them).
    fn clone(&self) -> Self {
        Self { counters: self.counters.clone(), last_attempt_ms: self.last_attempt_ms, ..Self::default() }
    }
}

impl Consolidator {
    /// True while a job is out.
    pub fn in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Figures of the consolidations so far.
    pub fn stats(&self) -> ConsolidationStats {
        self.counters.stats()
    }

    /// What `Adaptive` decides from.
    fn adaptive_inputs(overlay: &Overlay, config: &DeltaConfig, now: u64) -> AdaptiveInputs {
        AdaptiveInputs {
            deltas: overlay.len(),
            mean_age_ms: overlay.mean_written_at().map_or(0, |t| now.saturating_sub(t)),
            spatial_above: config.adaptive_spatial_above,
            age_ms: millis(config.adaptive_age),
        }
    }

    /// True when the configured strategy says a consolidation is due and none is
    /// in flight: the delta count reached the threshold, or (time-based and
    /// adaptive strategies) `max_age` has passed on the storage clock since the
    /// last attempt.
    pub fn due(&self, overlay: &Overlay, config: &DeltaConfig, now: u64) -> bool {
        if self.in_flight.is_some() || overlay.len() == 0 {
            return false;
        }
        if overlay.len() >= config.threshold {
            return true;
        }
        let timed =
            matches!(config.strategy, ConsolidationStrategy::TimeBasedBatching | ConsolidationStrategy::Adaptive);
        timed && now.saturating_sub(self.last_attempt_ms) >= millis(config.max_age)
    }

    /// The concrete strategy `strategy` stands for now.
    pub fn resolve(
        &self,
        strategy: ConsolidationStrategy,
        overlay: &Overlay,
        config: &DeltaConfig,
        now: u64,
    ) -> AppliedStrategy {
        resolve(strategy, Self::adaptive_inputs(overlay, config, now))
    }

    fn params(strategy: AppliedStrategy, config: &DeltaConfig, now: u64) -> SelectionParams {
        SelectionParams {
            strategy,
            now,
            max_age_ms: millis(config.max_age),
            chunk_bricks: (config.chunk_size / BRICK_SIZE as u32) as i32,
            spatial_share: config.spatial_share,
            keep: config.hard_cap / 2,
        }
    }

    /// Seals the active layer and hands out a job over every sealed layer and a
    /// snapshot of the base: O(1) on the calling thread. `None` when a job is in
    /// flight or the overlay is empty.
    pub fn begin(&mut self, parts: Parts<'_>, strategy: ConsolidationStrategy) -> Option<ConsolidationJob> {
        if self.in_flight.is_some() || parts.overlay.len() == 0 {
            return None;
        }
        let start = Instant::now();
        self.last_attempt_ms = parts.now;
        let applied = self.resolve(strategy, parts.overlay, parts.config, parts.now);
        parts.overlay.seal();
        let layers: Vec<Arc<Layer>> = parts.overlay.sealed().to_vec();
        self.generation += 1;
        self.in_flight = Some(InFlight { generation: self.generation });
        Some(ConsolidationJob {
            id: JobId { storage: self.id, generation: self.generation },
            params: Self::params(applied, parts.config, parts.now),
            layers,
            base: parts.base.snapshot(),
            retired: std::mem::take(&mut self.retired),
            begin_time: start.elapsed(),
        })
    }

    /// Installs a job's output: swaps the new bricks into the base and its layer
    /// in for the layers it merged. `O(bricks * depth)`; the old layers are
    /// dropped later, by the next job.
    pub fn finish(&mut self, parts: Parts<'_>, output: ConsolidationOutput) -> Result<Finished, ConsolidationError> {
        if output.id.storage != self.id {
            self.counters.discarded += 1;
            return Err(ConsolidationError::ForeignJob);
        }
        match self.in_flight {
            Some(f) if f.generation == output.id.generation => {}
            _ => {
                self.counters.discarded += 1;
                return Err(ConsolidationError::Cancelled { generation: output.id.generation });
            }
        }
        let start = Instant::now();
        let bricks: Vec<IVec3> = output.installs.iter().map(|i| BrickKey::of_code(i.brick_code).brick()).collect();
        let mut retired = Retired { layers: Vec::new(), bricks: Vec::with_capacity(2 * bricks.len()) };
        parts.base.install(output.installs, &mut retired.bricks);
        let kept = output.remainder.len();
        retired.layers = parts.overlay.replace_oldest(output.layers, output.remainder);
        // Anything left from before (no job began since) is freed here.
        self.retired = retired;
        self.in_flight = None;
        let report = ConsolidationReport {
            strategy: output.strategy,
            deltas: output.deltas,
            bricks: bricks.len(),
            kept,
            begin_time: output.begin_time,
            run_time: output.run_time,
            finish_time: start.elapsed(),
        };
        self.counters.record(&report);
        Ok(Finished { report, bricks })
    }

    /// Abandons the job in flight, if any: its output will be refused. Its input
    /// layers stay in the overlay, so nothing reads differently. Returns true
    /// when a job was cancelled.
    pub fn cancel(&mut self) -> bool {
        if self.in_flight.take().is_none() {
            return false;
        }
        self.counters.cancelled += 1;
        true
    }

    /// Consolidates synchronously on the calling thread: a job in flight is
    /// cancelled, every layer merged, the picked deltas written into the base in
    /// place (a brick no snapshot shares is not copied), and the rest becomes the
    /// active layer. `None`, and no consolidation counted, when the strategy
    /// picked nothing (the layers are merged all the same).
    pub fn run_now(&mut self, parts: Parts<'_>, applied: AppliedStrategy) -> Option<Finished> {
        self.cancel();
        if parts.overlay.len() == 0 {
            return None;
        }
        let start = Instant::now();
        self.last_attempt_ms = parts.now;
        self.retired = Retired::default();
        let splits = {
            let layers: Vec<&Layer> = parts.overlay.layers().collect();
            select(&layers, &Self::params(applied, parts.config, parts.now), &Sequential)
        };
        // The pieces' writes, one after another, for one in-place write of the base.
        let (mut bricks, mut writes) = (Vec::new(), Vec::new());
        for s in &splits {
            let offset = writes.len();
            bricks.extend(s.bricks.iter().map(|(b, r)| (*b, r.start + offset..r.end + offset)));
            writes.extend_from_slice(&s.writes);
        }
        parts.base.write_bricks(&bricks, &writes);
        let layer = remainder(&splits);
        let kept = layer.len();
        parts.overlay.reset(layer);
        if writes.is_empty() {
            return None;
        }
        let report = ConsolidationReport {
            strategy: applied,
            deltas: writes.len(),
            bricks: bricks.len(),
            kept,
            begin_time: Duration::ZERO,
            run_time: Duration::ZERO,
            finish_time: start.elapsed(),
        };
        self.counters.record(&report);
        Some(Finished { report, bricks: bricks.into_iter().map(|(b, _)| b.brick()).collect() })
    }

    /// Synchronously, with the configured strategy, if one is due.
    pub fn if_due(&mut self, parts: Parts<'_>) -> Option<Finished> {
        if !self.due(parts.overlay, parts.config, parts.now) {
            return None;
        }
        let applied = self.resolve(parts.config.strategy, parts.overlay, parts.config, parts.now);
        self.run_now(parts, applied)
    }

    /// Backpressure: past the hard cap, cancels any job in flight and merges the
    /// oldest deltas synchronously, down to half the cap, so the overlay never
    /// holds more than the cap.
    pub fn enforce_cap(&mut self, parts: Parts<'_>) -> Option<Finished> {
        if parts.overlay.len() <= parts.config.hard_cap {
            return None;
        }
        self.run_now(parts, AppliedStrategy::Backpressure)
    }
}

/// A duration in whole milliseconds, saturating.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
