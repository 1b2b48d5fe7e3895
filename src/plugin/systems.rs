//! The plugin's systems: settings, ingest, the consolidation driver.

use super::{ConsolidationTask, DeltaOverlaySettings, DeltaReceiver, FlushDeltas, IngestCounts};
use super::{MaterialUpdate, MaterialUpdateRejected};
use crate::{DeltaStorage, RejectedUpdate};
use bevy::log::{info_span, warn};
use bevy::prelude::*;
use bevy::tasks::{AsyncComputeTaskPool, futures::check_ready};
use std::time::{Duration, Instant};

/// Pushes changed settings into the storage and advances its clock by the
/// frame's time (when a `Time` resource exists).
pub(crate) fn apply_settings(
    settings: Res<DeltaOverlaySettings>,
    time: Option<Res<Time>>,
    mut storage: ResMut<DeltaStorage>,
) {
    if settings.is_changed() && *storage.config() != settings.config.clone().normalized() {
        storage.set_config(settings.config.clone());
    }
    if let Some(time) = time {
        storage.advance_clock(time.delta());
    }
}

/// Reject logging at most once per second, with a count of what was suppressed.
#[derive(Default)]
pub(crate) struct RejectLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl RejectLog {
    fn report(&mut self, rejected: &RejectedUpdate) {
        let now = Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
            self.suppressed += 1;
            return;
        }
        if self.suppressed > 0 {
            warn!("delta overlay: {} more updates rejected in the last second", self.suppressed);
        }
        warn!("delta overlay: update rejected: {}", rejected.error);
        self.last = Some(now);
        self.suppressed = 0;
    }
}

/// Applies this frame's `MaterialUpdate` messages and up to
/// `max_batches_per_frame` channel batches. Never gated: unread messages are
/// dropped after two updates.
#[allow(clippy::too_many_arguments, reason = "a system's parameters are its inputs")]
pub(crate) fn ingest(
    mut storage: ResMut<DeltaStorage>,
    mut updates: MessageReader<MaterialUpdate>,
    mut rejected: MessageWriter<MaterialUpdateRejected>,
    receiver: Res<DeltaReceiver>,
    settings: Res<DeltaOverlaySettings>,
    mut counts: ResMut<IngestCounts>,
    mut log: Local<RejectLog>,
) {
    let _span = info_span!("delta_overlay::ingest").entered();
    let mut reject = |r: RejectedUpdate, counts: &mut IngestCounts| {
        counts.rejects += 1;
        log.report(&r);
        rejected.write(MaterialUpdateRejected {
            update: MaterialUpdate { position: r.position, material: r.material },
            error: r.error,
        });
    };
    for u in updates.read() {
        match storage.update(u.position, u.material) {
            Ok(()) => counts.updates += 1,
            Err(error) => reject(RejectedUpdate { position: u.position, material: u.material, error }, &mut counts),
        }
    }
    for batch in receiver.rx.try_iter().take(settings.max_batches_per_frame) {
        let outcome = storage.batch_update(batch);
        counts.updates += outcome.applied as u64;
        for r in outcome.rejected {
            reject(r, &mut counts);
        }
    }
}

/// Polls the task in flight, handles flush requests, and starts a consolidation
/// on the async compute pool when the strategy says one is due. Never blocks.
pub(crate) fn drive_consolidation(
    mut storage: ResMut<DeltaStorage>,
    mut task: ResMut<ConsolidationTask>,
    mut flushes: MessageReader<FlushDeltas>,
    settings: Res<DeltaOverlaySettings>,
) {
    if let Some(running) = task.0.as_mut() {
        if !storage.in_flight() {
            // Cancelled by backpressure or a direct flush: drop (and so cancel) it.
            task.0 = None;
        } else if let Some(output) = check_ready(running) {
            task.0 = None;
            let _span = info_span!("delta_overlay::finish").entered();
            storage.finish_consolidation(output);
        }
    }
    if flushes.read().count() > 0 {
        task.0 = None;
        let _span = info_span!("delta_overlay::flush").entered();
        storage.flush();
    }
    if task.0.is_none() && settings.auto_consolidate && storage.should_consolidate() {
        let strategy = storage.config().strategy;
        let job = {
            let _span = info_span!("delta_overlay::begin").entered();
            storage.begin_consolidation(strategy)
        };
        if let Some(job) = job {
            task.0 = Some(AsyncComputeTaskPool::get().spawn(async move {
                let _span = info_span!("delta_overlay::run").entered();
                job.run()
            }));
        }
    }
}
