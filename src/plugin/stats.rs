//! Per-frame figures: the `DeltaStats` resource and Bevy diagnostics.

use super::{ConsolidationTask, DeltaReceiver, IngestCounts};
use crate::storage::{DeltaStorage, OverlayStats};
use bevy::diagnostic::{Diagnostic, DiagnosticPath, Diagnostics, RegisterDiagnostic};
use bevy::prelude::*;

/// The overlay's figures, refreshed every frame in `DeltaOverlaySystems::Stats`.
#[derive(Resource, Clone, Debug, Default, PartialEq)]
pub struct DeltaStats {
    /// The storage's counters and figures.
    pub overlay: OverlayStats,
    /// The consolidation threshold in force.
    pub threshold: usize,
    /// The hard cap in force.
    pub hard_cap: usize,
    /// `deltas / hard_cap`.
    pub cap_utilization: f32,
    /// Updates applied this frame (messages and channel batches).
    pub updates_this_frame: u64,
    /// Updates refused this frame.
    pub rejects_this_frame: u64,
    /// Main-thread time of this frame's ingest (the updates applied, the
    /// surface index kept).
    pub ingest_time: std::time::Duration,
    /// Channel batches still waiting after this frame's ingest.
    pub channel_backlog: usize,
    /// Updates accepted and waiting to be applied after this frame's ingest
    /// (over the frame's `ingest_budget` or at the overlay's hard cap), at
    /// most `DeltaOverlaySettings::max_backlog`.
    pub ingest_backlog: usize,
    /// True while a consolidation task runs on the async compute pool.
    pub task_running: bool,
    /// Frames this stats resource has been refreshed.
    pub frame: u64,
}

/// Bevy diagnostics the plugin registers (shown by `LogDiagnosticsPlugin` and any
/// other diagnostics tool).
pub struct DeltaOverlayDiagnostics;

impl DeltaOverlayDiagnostics {
    /// Deltas in the overlay.
    pub const DELTAS: DiagnosticPath = DiagnosticPath::const_new("delta_overlay/deltas");
    /// Deltas as a percentage of the threshold.
    pub const UTILIZATION: DiagnosticPath = DiagnosticPath::const_new("delta_overlay/utilization");
    /// Updates applied per frame.
    pub const UPDATES_PER_FRAME: DiagnosticPath = DiagnosticPath::const_new("delta_overlay/updates_per_frame");
    /// Updates refused per frame.
    pub const REJECTS_PER_FRAME: DiagnosticPath = DiagnosticPath::const_new("delta_overlay/rejects_per_frame");
    /// Main-thread time of the frame's ingest, in ms.
    pub const INGEST_MS: DiagnosticPath = DiagnosticPath::const_new("delta_overlay/ingest_ms");
    /// Begin, run and finish time of the last consolidation, in ms.
    pub const CONSOLIDATION_MS: DiagnosticPath = DiagnosticPath::const_new("delta_overlay/consolidation_ms");
    /// Main-thread stall of the last consolidation (begin plus finish), in ms.
    pub const STALL_MS: DiagnosticPath = DiagnosticPath::const_new("delta_overlay/stall_ms");
    /// Number of the last accepted change.
    pub const SEQUENCE: DiagnosticPath = DiagnosticPath::const_new("delta_overlay/sequence");
    /// Updates waiting in the ingest backlog.
    pub const INGEST_BACKLOG: DiagnosticPath = DiagnosticPath::const_new("delta_overlay/ingest_backlog");
    /// Heap bytes of the overlay, in KiB.
    pub const OVERLAY_KIB: DiagnosticPath = DiagnosticPath::const_new("delta_overlay/overlay_kib");

    pub(crate) fn register(app: &mut App) {
        app.register_diagnostic(Diagnostic::new(Self::DELTAS))
            .register_diagnostic(Diagnostic::new(Self::UTILIZATION).with_suffix("%"))
            .register_diagnostic(Diagnostic::new(Self::UPDATES_PER_FRAME))
            .register_diagnostic(Diagnostic::new(Self::REJECTS_PER_FRAME))
            .register_diagnostic(Diagnostic::new(Self::INGEST_MS).with_suffix("ms"))
            .register_diagnostic(Diagnostic::new(Self::CONSOLIDATION_MS).with_suffix("ms"))
            .register_diagnostic(Diagnostic::new(Self::STALL_MS).with_suffix("ms"))
            .register_diagnostic(Diagnostic::new(Self::SEQUENCE))
            .register_diagnostic(Diagnostic::new(Self::INGEST_BACKLOG))
            .register_diagnostic(Diagnostic::new(Self::OVERLAY_KIB).with_suffix("KiB"));
    }
}

/// Refreshes [`DeltaStats`] and the diagnostics.
pub(crate) fn update_stats(
    storage: Res<DeltaStorage>,
    task: Res<ConsolidationTask>,
    receiver: Res<DeltaReceiver>,
    mut counts: ResMut<IngestCounts>,
    mut stats: ResMut<DeltaStats>,
    mut diagnostics: Diagnostics,
) {
    let overlay = storage.stats();
    let last = overlay.consolidation.last;
    diagnostics.add_measurement(&DeltaOverlayDiagnostics::DELTAS, || overlay.delta_count as f64);
    diagnostics.add_measurement(&DeltaOverlayDiagnostics::UTILIZATION, || f64::from(overlay.utilization) * 100.0);
    diagnostics.add_measurement(&DeltaOverlayDiagnostics::UPDATES_PER_FRAME, || counts.updates as f64);
    diagnostics.add_measurement(&DeltaOverlayDiagnostics::REJECTS_PER_FRAME, || counts.rejects as f64);
    diagnostics.add_measurement(&DeltaOverlayDiagnostics::INGEST_MS, || counts.time.as_secs_f64() * 1e3);
    diagnostics.add_measurement(&DeltaOverlayDiagnostics::OVERLAY_KIB, || overlay.overlay_bytes as f64 / 1024.0);
    diagnostics.add_measurement(&DeltaOverlayDiagnostics::INGEST_BACKLOG, || counts.backlog as f64);
    diagnostics.add_measurement(&DeltaOverlayDiagnostics::SEQUENCE, || overlay.sequence as f64);
    if let Some(last) = last {
        diagnostics
            .add_measurement(&DeltaOverlayDiagnostics::CONSOLIDATION_MS, || last.total_time().as_secs_f64() * 1e3);
        diagnostics.add_measurement(&DeltaOverlayDiagnostics::STALL_MS, || last.stall().as_secs_f64() * 1e3);
    }
    let frame = stats.frame + 1;
    *stats = DeltaStats {
        cap_utilization: overlay.delta_count as f32 / storage.config().hard_cap as f32,
        threshold: storage.config().threshold,
        hard_cap: storage.config().hard_cap,
        updates_this_frame: counts.updates,
        rejects_this_frame: counts.rejects,
        ingest_time: counts.time,
        channel_backlog: receiver.rx.len(),
        ingest_backlog: counts.backlog,
        task_running: task.is_running(),
        frame,
        overlay,
    };
    *counts = IngestCounts::default();
}
