//! The storage's side of consolidation: it forwards to the
//! [`consolidation`](crate::consolidation) module, which holds everything about it.

use super::DeltaStorage;
use super::feed::FinishedConsolidation;
use crate::consolidation::{
    AppliedStrategy, ConsolidationError, ConsolidationJob, ConsolidationOutput, ConsolidationReport,
    ConsolidationStrategy, Consolidator, Finished, Parts,
};
use crate::coords::brick::brick_box;

impl DeltaStorage {
    /// The consolidator, and the parts it works on.
    fn consolidation(&mut self) -> (&mut Consolidator, Parts<'_>) {
        let parts =
            Parts { overlay: &mut self.overlay, base: &mut self.base, config: &self.config, now: self.clock_ms };
        (&mut self.consolidator, parts)
    }

    /// Records a finished consolidation in the feed.
    fn finished(&mut self, f: Option<Finished>) -> Option<ConsolidationReport> {
        let f = f?;
        if self.feed.is_recording() {
            let bounds = self.bounds();
            let bricks = f.bricks.iter().map(|&b| brick_box(bounds, b)).collect();
            self.feed.finished(FinishedConsolidation { report: f.report, bricks });
        }
        self.debug_check();
        Some(f.report)
    }

    /// True while a job handed out by [`begin_consolidation`](Self::begin_consolidation)
    /// has not been finished or cancelled.
    pub fn in_flight(&self) -> bool {
        self.consolidator.in_flight()
    }

    /// True when the configured strategy says a consolidation is due and none is in
    /// flight: the delta count reached the threshold, or (time-based and adaptive
    /// strategies) `max_age` has passed on the storage clock since the last attempt.
    pub fn should_consolidate(&self) -> bool {
        self.consolidator.due(&self.overlay, &self.config, self.clock_ms)
    }

    /// The concrete strategy `strategy` stands for now (`Adaptive` decides here).
    pub fn resolve_strategy(&self, strategy: ConsolidationStrategy) -> AppliedStrategy {
        self.consolidator.resolve(strategy, &self.overlay, &self.config, self.clock_ms)
    }

    /// Starts a consolidation in O(1): the active layer is sealed, and the job
    /// gets the sealed layers and a snapshot of the base, by `Arc`. Run it on any
    /// thread, then [`finish_consolidation`](Self::finish_consolidation).
    ///
    /// Returns `None` when a job is already in flight (at most one at a time) or
    /// the overlay is empty.
    pub fn begin_consolidation(&mut self, strategy: ConsolidationStrategy) -> Option<ConsolidationJob> {
        let (c, parts) = self.consolidation();
        let job = c.begin(parts, strategy);
        self.debug_check();
        job
    }

    /// Installs a job's output: swaps the new bricks into the base and the job's
    /// remaining deltas in for the layers it merged. `O(bricks * depth)` on the
    /// calling thread.
    ///
    /// # Errors
    /// [`ConsolidationError::ForeignJob`] for the output of another storage's job,
    /// [`ConsolidationError::Cancelled`] for a job that was cancelled (by
    /// [`flush`](Self::flush), [`consolidate`](Self::consolidate), backpressure or
    /// [`cancel_consolidation`](Self::cancel_consolidation)) or already finished.
    /// The storage is unchanged; the refusal is counted.
    pub fn finish_consolidation(
        &mut self,
        output: ConsolidationOutput,
    ) -> Result<ConsolidationReport, ConsolidationError> {
        let (c, parts) = self.consolidation();
        let finished = c.finish(parts, output)?;
        Ok(self.finished(Some(finished)).expect("a finished consolidation has a report"))
    }

    /// Abandons the job in flight, if any: its output will be refused, and its
    /// layers stay in the overlay (nothing reads differently). Returns true when a
    /// job was cancelled.
    pub fn cancel_consolidation(&mut self) -> bool {
        self.consolidator.cancel()
    }

    /// Consolidates synchronously with `strategy`, on this thread and in place
    /// (bricks no job shares are not copied). A job in flight is cancelled
    /// first. `None` when the strategy picked nothing.
    pub fn consolidate(&mut self, strategy: ConsolidationStrategy) -> Option<ConsolidationReport> {
        let applied = self.resolve_strategy(strategy);
        let (c, parts) = self.consolidation();
        let f = c.run_now(parts, applied);
        self.finished(f)
    }

    /// Consolidates everything synchronously: afterwards the base holds every
    /// update and the overlay is empty. A job in flight is cancelled first.
    pub fn flush(&mut self) -> Option<ConsolidationReport> {
        let (c, parts) = self.consolidation();
        let f = c.run_now(parts, AppliedStrategy::Flush);
        self.finished(f)
    }

    /// Consolidates if the strategy says so ([`should_consolidate`](Self::should_consolidate)),
    /// synchronously. For callers without a task pool; the Bevy plugin spawns jobs.
    pub fn consolidate_if_needed(&mut self) -> Option<ConsolidationReport> {
        let (c, parts) = self.consolidation();
        let f = c.if_due(parts);
        self.finished(f)
    }

    /// Backpressure: past the hard cap, merges synchronously down to half of it.
    pub(super) fn enforce_cap(&mut self) {
        if self.overlay.len() > self.config.hard_cap {
            let (c, parts) = self.consolidation();
            let f = c.enforce_cap(parts);
            self.finished(f);
        }
    }

    /// Checks the overlay's invariants (debug builds).
    pub(super) fn debug_check(&self) {
        self.overlay.check();
    }
}
