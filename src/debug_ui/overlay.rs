//! The overlay's section of the panel: its figures, two plots, its settings.

use super::DebugPanel;
use crate::consolidation::ConsolidationStrategy;
use crate::plugin::{DeltaOverlaySettings, DeltaStats, FlushDeltas};
use bevy::prelude::*;
use bevy_egui::egui;
use std::collections::VecDeque;
use std::time::Duration;

/// The overlay's figures, from [`DeltaStats`].
pub(super) fn figures(ui: &mut egui::Ui, world: &World) {
    let stats = world.resource::<DeltaStats>();
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
        row(ui, "waiting (backlog)", stats.ingest_backlog.to_string());
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

/// The app's own figures ([`DebugPanel::figures`]).
pub(super) fn app_figures(ui: &mut egui::Ui, world: &World) {
    let figures = &world.resource::<DebugPanel>().figures;
    let store = world.get_resource::<bevy::diagnostic::DiagnosticsStore>();
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
pub(super) fn plots(ui: &mut egui::Ui, panel: &DebugPanel) {
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

/// Sliders and buttons over a copy of [`DeltaOverlaySettings`]: the resource
/// is written (and marked changed) only when a value moved.
pub(super) fn tuning(ui: &mut egui::Ui, world: &mut World) {
    let mut s = world.resource::<DeltaOverlaySettings>().clone();
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
            world.write_message(FlushDeltas);
        }
    });
    if s != before {
        *world.resource_mut::<DeltaOverlaySettings>() = s;
    }
}
