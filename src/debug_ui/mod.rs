//! The egui debug panel (feature `debug_ui`): watch the overlay, tune it live.
//!
//! The panel reads figures ([`DeltaStats`], the processes' state, replication's
//! stats) and writes only settings resources and [`FlushDeltas`]: everything it
//! changes goes through the same path as a system or an inspector would, and
//! takes effect in the next frame.
//!
//! | file | section |
//! | --- | --- |
//! | `overlay.rs` | the overlay's figures, plots and settings |
//! | `geology.rs` | each process's figures and settings, found by reflection |
//! | `network.rs` | replication: the server's peers, or the client's state |
//! | `paging.rs` | residency: a paged world's sectors, page-ins, reads, file |
//!
//! [`FlushDeltas`]: crate::plugin::FlushDeltas

#[cfg(feature = "geology")]
mod geology;
#[cfg(feature = "replication")]
mod network;
mod overlay;
#[cfg(feature = "paging")]
mod paging;

use crate::plugin::{DeltaOverlaySystems, DeltaStats};
use bevy::ecs::schedule::{InternedScheduleLabel, ScheduleLabel};
use bevy::prelude::*;
use bevy_egui::{EguiContext, EguiPlugin, EguiPrimaryContextPass, PrimaryEguiContext, egui};
use std::collections::VecDeque;

/// Adds the debug panel. Adds `EguiPlugin` too unless the app already has it.
/// The app needs a window and a camera (egui draws on the first camera). Its
/// bookkeeping runs in the overlay's schedule after
/// [`DeltaOverlaySystems::Stats`]; the panel draws in egui's pass.
#[derive(Clone, Debug)]
pub struct DeltaOverlayDebugPlugin {
    /// The schedule of the overlay's systems. Default `Update`.
    pub schedule: InternedScheduleLabel,
    /// Whether the panel starts open. Default true.
    pub open: bool,
    /// The key that toggles the panel. Default F3.
    pub toggle_key: KeyCode,
    /// Frames of history the plots keep. Default 300.
    pub history: usize,
}

impl DeltaOverlayDebugPlugin {
    /// The panel, recording figures in `schedule`.
    pub fn new(schedule: impl ScheduleLabel) -> Self {
        Self { schedule: schedule.intern(), open: true, toggle_key: KeyCode::F3, history: 300 }
    }
}

impl Default for DeltaOverlayDebugPlugin {
    fn default() -> Self {
        Self::new(Update)
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
        app.insert_resource(DebugPanel {
            open: self.open,
            toggle_key: self.toggle_key,
            deltas: VecDeque::with_capacity(self.history),
            consolidation_ms: VecDeque::with_capacity(self.history),
            figures: Vec::new(),
            capacity: self.history.max(2),
            last_seen: None,
        })
        .add_systems(self.schedule, (toggle, record).after(DeltaOverlaySystems::Stats))
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

/// The primary egui context, if the app has one (a clone: egui's context is
/// shared).
fn primary_context(world: &mut World) -> Option<egui::Context> {
    let mut contexts = world.query_filtered::<&mut EguiContext, With<PrimaryEguiContext>>();
    contexts.single_mut(world).ok().map(|mut c| c.get_mut().clone())
}

/// Draws the panel. Exclusive: each section reads the resources it shows,
/// and the geology section finds the processes' resources by reflection.
fn panel(world: &mut World) {
    if !world.resource::<DebugPanel>().open {
        return;
    }
    let Some(ctx) = primary_context(world) else { return };
    let mut open = true;
    egui::Window::new("Delta overlay")
        .open(&mut open)
        .default_pos([12.0, 12.0])
        .default_width(330.0)
        .resizable(false)
        .show(&ctx, |ui| {
            overlay::figures(ui, world);
            overlay::app_figures(ui, world);
            #[cfg(feature = "replication")]
            network::show(ui, world);
            #[cfg(feature = "paging")]
            paging::show(ui, world);
            #[cfg(feature = "geology")]
            geology::show(ui, world);
            ui.separator();
            overlay::plots(ui, world.resource::<DebugPanel>());
            ui.separator();
            overlay::tuning(ui, world);
        });
    if !open {
        world.resource_mut::<DebugPanel>().open = false;
    }
}
