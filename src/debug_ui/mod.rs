//! The egui debug panel (feature `debug_ui`): watch the overlay, tune it live.
//!
//! The panel reads [`DeltaStats`] and writes only [`DeltaOverlaySettings`] and
//! [`FlushDeltas`]: everything it changes goes through the same path as a
//! system or an inspector would, and takes effect in the next `Ingest` phase.

use crate::{ConsolidationStrategy, DeltaOverlaySchedule, DeltaOverlaySettings, DeltaStats, FlushDeltas};
use bevy::ecs::schedule::ScheduleLabel;
use bevy::prelude::*;
use bevy_egui::{EguiContexts, EguiPlugin, EguiPrimaryContextPass, egui};
use std::collections::VecDeque;
use std::time::Duration;

/// Adds the debug panel. Adds `EguiPlugin` too unless the app already has it.
/// The app needs a window and a camera (egui draws on the first camera). Add it
/// after [`DeltaOverlayPlugin`](crate::DeltaOverlayPlugin): its bookkeeping runs
/// in that plugin's schedule, after its `Stats` phase; the panel itself draws in
/// egui's pass.
#[derive(Clone, Debug)]
pub struct DeltaOverlayDebugPlugin {
    /// Whether the panel starts open. Default true.
    pub open: bool,
    /// The key that toggles the panel. Default F3.
    pub toggle_key: KeyCode,
    /// Frames of history the plots keep. Default 300.
    pub history: usize,
}

impl Default for DeltaOverlayDebugPlugin {
    fn default() -> Self {
        Self { open: true, toggle_key: KeyCode::F3, history: 300 }
    }
}

/// State of the debug panel.
#[derive(Resource, Clone, Debug)]
pub struct DebugPanel {
    /// Whether the panel is shown.
    pub open: bool,
    /// The key that toggles it.
    pub toggle_key: KeyCode,
    /// Delta count per frame, oldest first (at most `capacity`).
    pub deltas: VecDeque<f32>,
    /// Run + finish time (ms) of each consolidation, oldest first.
    pub consolidation_ms: VecDeque<f32>,
    /// The app's own figures to list, by label: Bevy diagnostics the app
    /// measures (their smoothed value is shown), so a mesher or a simulation
    /// shows beside the overlay without a panel of its own.
    pub figures: Vec<(String, bevy::diagnostic::DiagnosticPath)>,
    capacity: usize,
    last_seen: Option<u64>,
}

impl Plugin for DeltaOverlayDebugPlugin {
    fn build(&self, app: &mut App) {
        if !app.is_plugin_added::<EguiPlugin>() {
            app.add_plugins(EguiPlugin::default());
        }
        let schedule = app.world().get_resource::<DeltaOverlaySchedule>().map_or(Update.intern(), |s| s.0);
        app.insert_resource(DebugPanel {
            open: self.open,
            toggle_key: self.toggle_key,
            deltas: VecDeque::with_capacity(self.history),
            consolidation_ms: VecDeque::with_capacity(self.history),
            figures: Vec::new(),
            capacity: self.history.max(2),
            last_seen: None,
        })
        .add_systems(schedule, (toggle, record).after(crate::DeltaOverlaySystems::Stats))
        .add_systems(EguiPrimaryContextPass, panel);
    }
}

fn toggle(keys: Option<Res<ButtonInput<KeyCode>>>, mut panel: ResMut<DebugPanel>) {
    if keys.is_some_and(|k| k.just_pressed(panel.toggle_key)) {
        panel.open = !panel.open;
    }
}

/// Appends this frame's figures to the bounded histories.
fn record(stats: Res<DeltaStats>, mut panel: ResMut<DebugPanel>) {
    let cap = panel.capacity;
    push(&mut panel.deltas, stats.overlay.delta_count as f32, cap);
    let finished = stats.overlay.consolidation.finished.total();
    if panel.last_seen != Some(finished) {
        if let (Some(_), Some(last)) = (panel.last_seen, stats.overlay.consolidation.last) {
            let ms = last.total_time().as_secs_f32() * 1e3;
            push(&mut panel.consolidation_ms, ms, cap);
        }
        panel.last_seen = Some(finished);
    }
}

fn push(q: &mut VecDeque<f32>, v: f32, cap: usize) {
    if q.len() == cap {
        q.pop_front();
    }
    q.push_back(v);
}

/// The overlay's own part of the panel: its figures and its settings.
#[derive(bevy::ecs::system::SystemParam)]
struct Overlay<'w> {
    stats: Res<'w, DeltaStats>,
    settings: ResMut<'w, DeltaOverlaySettings>,
    flush: MessageWriter<'w, FlushDeltas>,
    diagnostics: Option<Res<'w, bevy::diagnostic::DiagnosticsStore>>,
}

fn panel(
    mut contexts: EguiContexts,
    mut panel: ResMut<DebugPanel>,
    overlay: Overlay,
    #[cfg(feature = "replication")] network: network::Network,
    #[cfg(feature = "geology")] mut geology: geology_panel::Geology,
) -> Result {
    if !panel.open {
        return Ok(());
    }
    let Overlay { stats, mut settings, mut flush, diagnostics } = overlay;
    let ctx = contexts.ctx_mut()?;
    let mut open = panel.open;
    egui::Window::new("Delta overlay")
        .open(&mut open)
        .default_pos([12.0, 12.0])
        .default_width(330.0)
        .resizable(false)
        .show(ctx, |ui| {
            figures(ui, &stats);
            app_figures(ui, &panel.figures, diagnostics.as_deref());
            #[cfg(feature = "replication")]
            network.show(ui);
            #[cfg(feature = "geology")]
            geology.show(ui);
            ui.separator();
            plots(ui, &panel);
            ui.separator();
            // Edit a copy: the resource is only marked changed when a value moved.
            let mut edited = settings.clone();
            if tuning(ui, &mut edited, &mut flush) {
                *settings = edited;
            }
        });
    panel.open = open;
    Ok(())
}

fn figures(ui: &mut egui::Ui, stats: &DeltaStats) {
    let o = &stats.overlay;
    ui.label(format!("deltas {} / threshold {} / cap {}", o.delta_count, stats.threshold, stats.hard_cap));
    ui.add(egui::ProgressBar::new(o.utilization.min(1.0)).text(format!("{:.0}% of threshold", o.utilization * 100.0)));
    ui.add(
        egui::ProgressBar::new(stats.cap_utilization.min(1.0))
            .text(format!("{:.1}% of hard cap", stats.cap_utilization * 100.0)),
    );
    egui::Grid::new("figures").num_columns(2).show(ui, |ui| {
        let row = |ui: &mut egui::Ui, k: &str, v: String| {
            ui.label(k);
            ui.label(v);
            ui.end_row();
        };
        row(ui, "updates / frame", stats.updates_this_frame.to_string());
        let c = &o.consolidation;
        let flight = if stats.task_running {
            format!("running ({} deltas in {} layers)", o.sealed_deltas, o.sealed_layers)
        } else {
            "idle".into()
        };
        row(ui, "consolidation", flight);
        match c.last {
            Some(last) => {
                row(ui, "last", format!("{} deltas, {} bricks, {}", last.deltas, last.bricks, last.strategy.name()));
                row(ui, "last time", format!("run {} + stall {}", ms(last.run_time), ms(last.stall())));
            }
            None => row(ui, "last", "none yet".into()),
        }
        row(ui, "mean / max", format!("{} / {}", ms(c.mean_time), ms(c.max_time)));
        row(ui, "max stall", ms(c.max_stall));
        let by: Vec<String> =
            c.finished.named().iter().filter(|(_, n)| *n > 0).map(|(s, n)| format!("{s} {n}")).collect();
        row(ui, "by strategy", if by.is_empty() { "-".into() } else { by.join(", ") });
        let a = c.adaptive;
        row(ui, "adaptive chose", format!("lazy {}, spatial {}, time {}", a.lazy, a.spatial, a.time));
        row(ui, "sequence", o.sequence.to_string());
        row(ui, "rejects", format!("{} ({} this frame)", o.rejects, stats.rejects_this_frame));
        row(ui, "forced (cap)", c.finished.backpressure.to_string());
        row(ui, "overlay memory", format!("{:.1} KiB", o.overlay_bytes as f64 / 1024.0));
        row(ui, "channel backlog", format!("{} batches", stats.channel_backlog));
    });
}

/// The geology section: what each process did, and its main settings, live.
#[cfg(feature = "geology")]
mod geology_panel {
    use crate::{
        Deposition, DepositionState, HydraulicErosion, HydraulicErosionState, Intrusion, IntrusionState,
        ThermalErosion, ThermalErosionState,
    };
    use bevy::ecs::system::SystemParam;
    use bevy::prelude::*;
    use bevy_egui::egui;

    #[derive(SystemParam)]
    pub(super) struct Geology<'w> {
        hydraulic: Option<ResMut<'w, HydraulicErosion>>,
        hydraulic_state: Option<Res<'w, HydraulicErosionState>>,
        thermal: Option<ResMut<'w, ThermalErosion>>,
        thermal_state: Option<Res<'w, ThermalErosionState>>,
        intrusion: Option<ResMut<'w, Intrusion>>,
        intrusion_state: Option<Res<'w, IntrusionState>>,
        deposition: Option<ResMut<'w, Deposition>>,
        deposition_state: Option<Res<'w, DepositionState>>,
    }

    /// Edits a copy of a settings resource; writes it back (marking it
    /// changed) only when a value moved.
    fn tune<T>(settings: &mut Option<ResMut<'_, T>>, edit: impl FnOnce(&mut T))
    where
        T: Resource + Component<Mutability = bevy::ecs::component::Mutable> + Clone + PartialEq,
    {
        if let Some(settings) = settings {
            let mut copy = (**settings).clone();
            edit(&mut copy);
            if copy != **settings {
                **settings = copy;
            }
        }
    }

    impl Geology<'_> {
        pub(super) fn show(&mut self, ui: &mut egui::Ui) {
            if self.hydraulic.is_none()
                && self.thermal.is_none()
                && self.intrusion.is_none()
                && self.deposition.is_none()
            {
                return;
            }
            ui.separator();
            egui::CollapsingHeader::new("Geology").default_open(false).show(ui, |ui| {
                if let Some(s) = &self.hydraulic_state {
                    let s = s.stats;
                    ui.label(format!(
                        "rain: {} droplets, {} eroded, {} deposited, {} out",
                        s.droplets, s.eroded, s.deposited, s.carried_out
                    ));
                }
                tune(&mut self.hydraulic, |h| {
                    ui.horizontal(|ui| {
                        ui.checkbox(&mut h.enabled, "on");
                        ui.add(egui::Slider::new(&mut h.droplets_per_frame, 0..=2000).text("droplets/frame"));
                    });
                    ui.add(egui::Slider::new(&mut h.erode_rate, 0.0..=1.0).text("erode rate"));
                    ui.add(egui::Slider::new(&mut h.capacity, 0.0..=16.0).text("capacity"));
                });
                if let Some(s) = &self.thermal_state {
                    ui.label(format!("slides: {} voxels, {} queued", s.stats.slid, s.queued()));
                }
                tune(&mut self.thermal, |t| {
                    ui.horizontal(|ui| {
                        ui.checkbox(&mut t.enabled, "on");
                        ui.add(egui::Slider::new(&mut t.columns_per_frame, 0..=20_000).text("columns/frame"));
                    });
                });
                if let Some(s) = &self.intrusion_state {
                    ui.label(format!(
                        "intrusion: {} melted, {} cooled, {} molten",
                        s.stats.melted,
                        s.stats.cooled,
                        s.molten()
                    ));
                }
                tune(&mut self.intrusion, |i| {
                    ui.horizontal(|ui| {
                        ui.checkbox(&mut i.enabled, "on");
                        ui.add(egui::Slider::new(&mut i.rise_per_second, 0.0..=60.0).text("rise voxels/s"));
                    });
                    ui.add(egui::Slider::new(&mut i.cooling_seconds, 0.0..=300.0).text("cooling s"));
                });
                if let Some(s) = &self.deposition_state {
                    ui.label(format!("settling: {} settled, {} compacted", s.stats.settled, s.stats.compacted));
                }
                tune(&mut self.deposition, |d| {
                    ui.horizontal(|ui| {
                        ui.checkbox(&mut d.enabled, "on");
                        ui.add(egui::Slider::new(&mut d.columns_per_frame, 0..=20_000).text("columns/frame"));
                    });
                    ui.add(egui::Slider::new(&mut d.burial_depth, 1..=64).text("burial depth"));
                });
            });
        }
    }
}

/// The replication section: the server's peers, bytes and lag, or the
/// client's state.
#[cfg(feature = "replication")]
mod network {
    use crate::{ReplicationStats, ReplicationStatus};
    use bevy::ecs::system::SystemParam;
    use bevy::prelude::*;
    use bevy_egui::egui;

    #[derive(SystemParam)]
    pub(super) struct Network<'w> {
        server: Option<Res<'w, ReplicationStats>>,
        client: Option<Res<'w, ReplicationStatus>>,
    }

    impl Network<'_> {
        pub(super) fn show(&self, ui: &mut egui::Ui) {
            if self.server.is_none() && self.client.is_none() {
                return;
            }
            ui.separator();
            egui::Grid::new("network").num_columns(2).show(ui, |ui| {
                let row = |ui: &mut egui::Ui, k: &str, v: String| {
                    ui.label(k);
                    ui.label(v);
                    ui.end_row();
                };
                if let Some(s) = &self.server {
                    row(ui, "peers", format!("{} ({} joining)", s.peers, s.joining));
                    row(ui, "sent / frame", format!("{:.1} KiB", s.bytes_this_frame as f64 / 1024.0));
                    row(ui, "lag (max)", format!("{} changes", s.max_lag));
                    let per = s.change_bytes as f64 / s.changes_sent.max(1) as f64;
                    row(ui, "bytes / change", format!("{per:.2}"));
                    let refused =
                        s.refused_out_of_bounds + s.refused_rate + s.refused_unauthorized + s.refused_not_joined;
                    row(ui, "client edits", format!("{} applied, {refused} refused", s.edits_applied));
                    row(ui, "malformed", format!("{} ({} disconnected)", s.malformed, s.disconnected));
                }
                if let Some(status) = &self.client {
                    let text = match **status {
                        ReplicationStatus::Waiting => "waiting for the server".to_string(),
                        ReplicationStatus::Joining { nodes, total } => format!("joining: {nodes} / {total} nodes"),
                        ReplicationStatus::Synced { sequence, lag } => format!("synced at {sequence}, lag {lag}"),
                        ReplicationStatus::Resyncing => "resyncing".to_string(),
                    };
                    row(ui, "replication", text);
                }
            });
        }
    }
}

/// The app's own figures ([`DebugPanel::figures`]).
fn app_figures(
    ui: &mut egui::Ui,
    figures: &[(String, bevy::diagnostic::DiagnosticPath)],
    store: Option<&bevy::diagnostic::DiagnosticsStore>,
) {
    let (Some(store), false) = (store, figures.is_empty()) else { return };
    ui.separator();
    egui::Grid::new("app figures").num_columns(2).show(ui, |ui| {
        for (label, path) in figures {
            ui.label(label);
            match store.get(path).and_then(|d| d.smoothed()) {
                Some(v) => ui.label(format!("{v:.2}")),
                None => ui.label("-"),
            };
            ui.end_row();
        }
    });
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// Two small line plots drawn with the painter (no plotting dependency).
fn plots(ui: &mut egui::Ui, panel: &DebugPanel) {
    ui.label("delta count (last frames)");
    sparkline(ui, &panel.deltas, egui::Color32::from_rgb(90, 170, 250));
    ui.label("consolidation time, ms (last consolidations)");
    sparkline(ui, &panel.consolidation_ms, egui::Color32::from_rgb(250, 150, 60));
}

fn sparkline(ui: &mut egui::Ui, values: &VecDeque<f32>, colour: egui::Color32) {
    let (rect, _) = ui.allocate_exact_size(egui::vec2(ui.available_width(), 48.0), egui::Sense::hover());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 2.0, egui::Color32::from_gray(24));
    let max = values.iter().copied().fold(f32::EPSILON, f32::max);
    if values.len() >= 2 {
        let n = (values.len() - 1) as f32;
        let points: Vec<egui::Pos2> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                egui::pos2(rect.left() + rect.width() * i as f32 / n, rect.bottom() - rect.height() * v / max)
            })
            .collect();
        painter.add(egui::Shape::line(points, egui::Stroke::new(1.5, colour)));
    }
    painter.text(
        rect.right_top(),
        egui::Align2::RIGHT_TOP,
        format!("{max:.1}"),
        egui::FontId::monospace(10.0),
        egui::Color32::GRAY,
    );
}

/// Sliders and buttons; returns true when a setting changed.
fn tuning(ui: &mut egui::Ui, s: &mut DeltaOverlaySettings, flush: &mut MessageWriter<FlushDeltas>) -> bool {
    let before = s.clone();
    let c = &mut s.config;
    ui.add(egui::Slider::new(&mut c.threshold, 16..=1_000_000).logarithmic(true).text("threshold"));
    ui.add(egui::Slider::new(&mut c.hard_cap, 1_024..=8_000_000).logarithmic(true).text("hard cap"));
    egui::ComboBox::from_label("strategy").selected_text(format!("{:?}", c.strategy)).show_ui(ui, |ui| {
        for strategy in [
            ConsolidationStrategy::Adaptive,
            ConsolidationStrategy::LazyThreshold,
            ConsolidationStrategy::SpatialClustering,
            ConsolidationStrategy::TimeBasedBatching,
        ] {
            ui.selectable_value(&mut c.strategy, strategy, format!("{strategy:?}"));
        }
    });
    ui.add(egui::Slider::new(&mut c.chunk_size, 16..=1024).step_by(16.0).text("chunk size"));
    let mut age = c.max_age.as_secs_f32();
    if ui.add(egui::Slider::new(&mut age, 0.1..=600.0).logarithmic(true).suffix(" s").text("max age")).changed() {
        c.max_age = Duration::from_secs_f32(age);
    }
    ui.horizontal(|ui| {
        ui.checkbox(&mut s.auto_consolidate, "automatic consolidation");
        if ui.button("Flush now").clicked() {
            flush.write(FlushDeltas);
        }
    });
    *s != before
}
