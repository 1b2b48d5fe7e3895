//! The residency section: what a paged world holds, pages and reads.

use crate::plugin::PagedStore;
use bevy::prelude::*;
use bevy_egui::egui;

/// Shows the paged world, if the app has one.
pub(super) fn show(ui: &mut egui::Ui, world: &World) {
    let Some(store) = world.get_resource::<PagedStore>() else { return };
    let stats = store.stats();
    let mut times = store.page_in_times();
    times.sort_unstable();
    let at = |q: f64| times.get(((times.len().saturating_sub(1)) as f64 * q) as usize).copied().unwrap_or_default();
    let (reads, missed) = store.reads();
    let mib = |b: usize| b as f64 / (1 << 20) as f64;
    ui.separator();
    ui.label("residency");
    let budget = store.settings().resident_budget;
    if budget != usize::MAX {
        let used = stats.resident_bytes as f32 / budget.max(1) as f32;
        ui.add(egui::ProgressBar::new(used.min(1.0)).text(format!(
            "{:.0} / {:.0} MiB resident",
            mib(stats.resident_bytes),
            mib(budget)
        )));
    }
    egui::Grid::new("residency").num_columns(2).show(ui, |ui| {
        let row = |ui: &mut egui::Ui, k: &str, v: String| {
            ui.label(k);
            ui.label(v);
            ui.end_row();
        };
        row(ui, "sectors", format!("{} resident, {} being made", stats.resident_sectors, stats.in_flight));
        row(
            ui,
            "resident",
            format!("{:.1} MiB (peak {:.1})", mib(stats.resident_bytes), mib(stats.peak_resident_bytes)),
        );
        row(ui, "paged", format!("{} in, {} out, {} failed", stats.generated, stats.evicted, stats.failed));
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        row(ui, "page-in", format!("p50 {:.0} ms, p99 {:.0} ms", ms(at(0.5)), ms(at(0.99))));
        let share = missed as f64 * 100.0 / reads.max(1) as f64;
        row(ui, "reads not resident", format!("{missed} of {reads} ({share:.2}%)"));
        row(ui, "edits in memory", format!("{} ({:.1} MiB)", stats.edits, mib(stats.edit_bytes)));
        if stats.file_bytes > 0 {
            let file = mib(stats.file_bytes as usize);
            row(ui, "file", format!("{file:.1} MiB, batch {} durable, {} flushing", stats.durable, stats.flushing));
        }
    });
}
