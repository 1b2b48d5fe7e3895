//! The storage's side of consolidation: choosing deltas, freezing them, handing
//! out jobs, installing their output, and cancelling.

use super::{DeltaStorage, InFlight};
use crate::BRICK_SIZE;
use crate::consolidation::{
    AppliedStrategy, CompactionStrategy, ConsolidationJob, ConsolidationOutput, ConsolidationReport,
};
use crate::overlay::{BrickKey, FastMap, FrozenDeltas, fixed_hasher};
use glam::IVec3;
use std::time::{Duration, Instant};

impl DeltaStorage {
    /// True while a job handed out by [`begin_consolidation`](Self::begin_consolidation)
    /// has not been finished or cancelled.
    pub fn in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// True when the configured strategy says a consolidation is due and none is in
    /// flight: the delta count reached the threshold, or (time-based and adaptive
    /// strategies) `max_age` has passed on the storage clock since the last attempt
    /// and there are deltas to age out.
    pub fn should_consolidate(&self) -> bool {
        if self.in_flight.is_some() || self.overlay.active_len() == 0 {
            return false;
        }
        if self.overlay.active_len() >= self.config.threshold {
            return true;
        }
        let timed =
            matches!(self.config.strategy, CompactionStrategy::TimeBasedBatching | CompactionStrategy::Adaptive);
        let since = Duration::from_millis(u64::from(self.clock_ms - self.last_attempt_ms));
        timed && since >= self.config.max_age
    }

    /// The concrete strategy `strategy` stands for now (`Adaptive` decides here).
    pub fn resolve_strategy(&self, strategy: CompactionStrategy) -> AppliedStrategy {
        let adaptive = strategy == CompactionStrategy::Adaptive;
        let concrete = if adaptive {
            if self.overlay.active_len() > self.config.adaptive_spatial_above {
                CompactionStrategy::SpatialClustering
            } else if self.stats().mean_delta_age > self.config.adaptive_age {
                CompactionStrategy::TimeBasedBatching
            } else {
                CompactionStrategy::LazyThreshold
            }
        } else {
            strategy
        };
        match concrete {
            CompactionStrategy::SpatialClustering => AppliedStrategy::SpatialClustering { adaptive },
            CompactionStrategy::TimeBasedBatching => AppliedStrategy::TimeBasedBatching { adaptive },
            _ => AppliedStrategy::LazyThreshold { adaptive },
        }
    }

    /// Starts a consolidation: `strategy` picks deltas from the active layer, they
    /// become frozen (still read by every query), the job gets a copy of them and
    /// snapshots of the bricks they touch. Costs `O(active deltas)` on the
    /// calling thread.
    ///
    /// Returns `None` when a job is already in flight (at most one at a time) or the
    /// strategy picks nothing (no deltas, or none old enough).
    pub fn begin_consolidation(&mut self, strategy: CompactionStrategy) -> Option<ConsolidationJob> {
        if self.in_flight.is_some() {
            return None;
        }
        self.last_attempt_ms = self.clock_ms;
        let applied = self.resolve_strategy(strategy);
        self.begin(applied)
    }

    /// Freezes the deltas `applied` picks and hands out the job.
    fn begin(&mut self, applied: AppliedStrategy) -> Option<ConsolidationJob> {
        let frozen = self.freeze(applied)?;
        let FrozenDeltas { bricks: frozen_bricks, writes } = frozen;
        let bricks = frozen_bricks
            .iter()
            .map(|(key, range)| {
                let corner = key.min_corner();
                (self.base.brick_code(corner), self.base.brick_content(corner), range.clone())
            })
            .collect();
        self.generation += 1;
        let keys = frozen_bricks.into_iter().map(|(key, _)| key).collect();
        self.in_flight = Some(InFlight { generation: self.generation, bricks: keys });
        self.debug_check();
        Some(ConsolidationJob { generation: self.generation, strategy: applied, bricks, writes })
    }

    /// Freezes the deltas `applied` picks; `None` when it picks none.
    fn freeze(&mut self, applied: AppliedStrategy) -> Option<FrozenDeltas> {
        debug_assert!(self.in_flight.is_none());
        let active = self.overlay.active_len();
        if active == 0 {
            return None;
        }
        let frozen = match applied {
            AppliedStrategy::Flush => self.overlay.freeze(|_| true, |_| true),
            AppliedStrategy::LazyThreshold { .. } => self.freeze_oldest(active.div_ceil(2)),
            // Down to half the cap: a lowered cap may need more than half.
            AppliedStrategy::Backpressure => {
                let keep = self.config.hard_cap / 2;
                self.freeze_oldest(active.saturating_sub(keep).max(1))
            }
            AppliedStrategy::SpatialClustering { .. } => self.freeze_densest_chunks(),
            AppliedStrategy::TimeBasedBatching { .. } => {
                let now = self.clock_ms;
                let age = u32::try_from(self.config.max_age.as_millis()).unwrap_or(u32::MAX);
                self.overlay.freeze(|_| true, |d| now - d.written_at >= age)
            }
        };
        (!frozen.writes.is_empty()).then_some(frozen)
    }

    /// Consolidates synchronously. Nothing can read the base in between, so
    /// there is no job: the picked deltas are written into the base in place (a
    /// brick no snapshot shares is not copied) and then dropped from their
    /// bricks, so later merges and the next freeze do not carry them. The whole
    /// time is the report's `finish_time`; `run_time` is zero.
    fn consolidate_now(&mut self, applied: AppliedStrategy) -> Option<ConsolidationReport> {
        debug_assert!(self.in_flight.is_none());
        let start = Instant::now();
        let frozen = self.freeze(applied)?;
        let corners: Vec<_> = frozen.bricks.iter().map(|(key, range)| (key.min_corner(), range.clone())).collect();
        self.base.write_bricks(&corners, &frozen.writes);
        self.overlay.drop_frozen(frozen.bricks.iter().map(|(key, _)| *key));
        let report = ConsolidationReport {
            strategy: applied,
            deltas: frozen.writes.len(),
            bricks: corners.len(),
            run_time: Duration::ZERO,
            finish_time: start.elapsed(),
        };
        self.counters.record(&report);
        self.debug_check();
        Some(report)
    }

    /// Installs a job's output: swaps the new bricks into the base, settles LOD and
    /// prunes, and drops the frozen deltas. `O(bricks * depth + their deltas)` on
    /// the calling thread: the only frame stall of a consolidation.
    ///
    /// Returns `None`, and changes nothing, for the output of a job that was
    /// cancelled (by [`flush`](Self::flush), [`consolidate`](Self::consolidate) or
    /// backpressure) or that another storage made; counted as discarded.
    pub fn finish_consolidation(&mut self, output: ConsolidationOutput) -> Option<ConsolidationReport> {
        match &self.in_flight {
            Some(f) if f.generation == output.generation => {}
            _ => {
                self.counters.discarded += 1;
                return None;
            }
        }
        let start = Instant::now();
        self.base.install(&output.installs);
        self.in_flight = None;
        self.overlay.spend_frozen();
        let report = ConsolidationReport {
            strategy: output.strategy,
            deltas: output.deltas,
            bricks: output.installs.len(),
            run_time: output.run_time,
            finish_time: start.elapsed(),
        };
        self.counters.record(&report);
        self.debug_check();
        Some(report)
    }

    /// Abandons the job in flight, if any: its frozen deltas return under the
    /// active layer (active deltas written since stay on top, and any that now
    /// equal the base are elided), and its output will be discarded. Returns true
    /// when a job was cancelled.
    pub fn cancel_consolidation(&mut self) -> bool {
        let Some(f) = self.in_flight.take() else {
            return false;
        };
        self.counters.reverts += self.overlay.thaw(&f.bricks);
        self.counters.cancelled += 1;
        self.debug_check();
        true
    }

    /// Consolidates synchronously with `strategy`, on this thread and in place: no
    /// snapshots, so bricks no job shares are not copied. A job in flight is
    /// cancelled first (its deltas are included).
    pub fn consolidate(&mut self, strategy: CompactionStrategy) -> Option<ConsolidationReport> {
        self.cancel_consolidation();
        self.last_attempt_ms = self.clock_ms;
        self.consolidate_now(self.resolve_strategy(strategy))
    }

    /// Consolidates everything synchronously: afterwards the base holds every
    /// update and the overlay is empty. A job in flight is cancelled first.
    pub fn flush(&mut self) -> Option<ConsolidationReport> {
        self.cancel_consolidation();
        self.consolidate_now(AppliedStrategy::Flush)
    }

    /// Consolidates if the strategy says so ([`should_consolidate`](Self::should_consolidate)),
    /// synchronously. For callers without a task pool; the Bevy plugin spawns jobs.
    pub fn consolidate_if_needed(&mut self) -> Option<ConsolidationReport> {
        if !self.should_consolidate() {
            return None;
        }
        self.last_attempt_ms = self.clock_ms;
        self.consolidate_now(self.resolve_strategy(self.config.strategy))
    }

    /// Backpressure: past the hard cap, cancel any job in flight and merge the
    /// oldest deltas synchronously, down to half the cap, so the overlay never
    /// holds more than the cap.
    pub(super) fn enforce_cap(&mut self) {
        if self.delta_count() <= self.config.hard_cap {
            return;
        }
        self.counters.forced += 1;
        self.cancel_consolidation();
        self.consolidate_now(AppliedStrategy::Backpressure);
    }

    /// Freezes the `want` oldest active deltas (by last write): `O(n)` with a
    /// selection, not a sort. Ties at the cut are taken in map order.
    fn freeze_oldest(&mut self, want: usize) -> FrozenDeltas {
        let want = want.clamp(1, self.overlay.active_len());
        let mut times = std::mem::take(&mut self.scratch_times);
        times.clear();
        times
            .extend(self.overlay.iter().flat_map(|(_, ds)| ds.iter().filter(|d| !d.is_frozen()).map(|d| d.written_at)));
        let (_, &mut cut, _) = times.select_nth_unstable(want - 1);
        let older = times.iter().filter(|&&t| t < cut).count();
        self.scratch_times = times;
        let mut at_cut = want - older;
        self.overlay.freeze(
            |_| true,
            |d| {
                if d.written_at < cut {
                    true
                } else if d.written_at == cut && at_cut > 0 {
                    at_cut -= 1;
                    true
                } else {
                    false
                }
            },
        )
    }

    /// Freezes whole chunks, densest first, until `spatial_share` of the active
    /// deltas is taken (at least one chunk).
    fn freeze_densest_chunks(&mut self) -> FrozenDeltas {
        let bricks_per_chunk = (self.config.chunk_size / BRICK_SIZE as u32) as i32;
        let chunk_of = |key: BrickKey| key.brick().div_euclid(IVec3::splat(bricks_per_chunk));
        let mut counts: FastMap<IVec3, usize> = FastMap::with_hasher(fixed_hasher());
        for (key, deltas) in self.overlay.iter() {
            *counts.entry(chunk_of(key)).or_default() += deltas.iter().filter(|d| !d.is_frozen()).count();
        }
        let mut chunks: Vec<(IVec3, usize)> = counts.into_iter().collect();
        // Densest first; ties by position so the choice is reproducible.
        chunks.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.to_array().cmp(&b.0.to_array())));
        let target = ((self.overlay.active_len() as f64) * f64::from(self.config.spatial_share)).ceil() as usize;
        let mut taken = 0;
        let mut chosen = std::collections::HashSet::with_hasher(fixed_hasher());
        for (chunk, count) in chunks {
            if taken >= target.max(1) {
                break;
            }
            chosen.insert(chunk);
            taken += count;
        }
        self.overlay.freeze(|key| chosen.contains(&chunk_of(key)), |_| true)
    }
}

#[cfg(test)]
mod tests {
    use crate::base::BrickRef;
    use crate::{Aabb, BaseIndex, DeltaConfig, DeltaStorage, MaterialId};
    use glam::IVec3;

    fn brick_ptr(s: &DeltaStorage, p: IVec3) -> *const crate::Brick {
        match s.base.brick_ref(p) {
            BrickRef::Dense(b) => std::sync::Arc::as_ptr(b),
            BrickRef::Uniform(_) => std::ptr::null(),
        }
    }

    #[test]
    fn a_synchronous_consolidation_writes_unshared_bricks_in_place() {
        let mut base = BaseIndex::uniform(Aabb::new(IVec3::ZERO, IVec3::splat(32)), MaterialId(1)).unwrap();
        base.apply_batch(&[(IVec3::new(1, 1, 1), MaterialId(2))]).unwrap();
        let mut s = DeltaStorage::new(base, DeltaConfig::default());
        let before = brick_ptr(&s, IVec3::ZERO);
        s.update(IVec3::new(2, 2, 2), MaterialId(3)).unwrap();
        let report = s.flush().unwrap();
        assert_eq!((report.deltas, report.bricks), (1, 1));
        assert_eq!(brick_ptr(&s, IVec3::ZERO), before, "written in place, not copied");
        assert_eq!(s.base().get(IVec3::new(2, 2, 2)), Ok(MaterialId(3)));
        assert_eq!(s.delta_count(), 0);
    }

    #[test]
    fn a_synchronous_consolidation_keeps_no_spent_deltas() {
        let base = BaseIndex::uniform(Aabb::new(IVec3::ZERO, IVec3::splat(32)), MaterialId(1)).unwrap();
        let mut s = DeltaStorage::new(base, DeltaConfig::default());
        s.update(IVec3::new(1, 1, 1), MaterialId(2)).unwrap();
        s.update(IVec3::new(17, 1, 1), MaterialId(3)).unwrap();
        s.flush().unwrap();
        assert_eq!(s.overlay.brick_count(), 0, "the written deltas are dropped, not kept spent");
        assert_eq!(s.query(IVec3::new(17, 1, 1)), Ok(MaterialId(3)));
        // A later write to a consolidated brick merges with nothing left over.
        s.update(IVec3::new(2, 1, 1), MaterialId(4)).unwrap();
        assert_eq!(s.overlay.brick(crate::overlay::BrickKey::split(IVec3::ZERO).0).map(|(d, _)| d.len()), Some(1));
    }
}
