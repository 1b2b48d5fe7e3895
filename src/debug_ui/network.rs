//! The replication section: the server's peers, bytes and lag, or the
//! client's state.

use crate::replication::{ReplicationClientStats, ReplicationStats, ReplicationStatus};
use bevy::prelude::*;
use bevy_egui::egui;

/// Shows whichever side this app is.
pub(super) fn show(ui: &mut egui::Ui, world: &World) {
    let server = world.get_resource::<ReplicationStats>();
    let client = world.get_resource::<ReplicationStatus>();
    if server.is_none() && client.is_none() {
        return;
    }
    ui.separator();
    egui::Grid::new("network").num_columns(2).show(ui, |ui| {
        let row = |ui: &mut egui::Ui, k: &str, v: String| {
            ui.label(k);
            ui.label(v);
            ui.end_row();
        };
        if let Some(s) = &server {
            row(ui, "peers", format!("{} ({} joining)", s.peers, s.joining));
            row(ui, "sent / frame", format!("{:.1} KiB", s.bytes_this_frame as f64 / 1024.0));
            row(ui, "lag (max)", format!("{} changes", s.max_lag));
            let per = s.change_bytes as f64 / s.changes_sent.max(1) as f64;
            row(ui, "bytes / change", format!("{per:.2}"));
            let refused = s.refused_out_of_bounds
                + s.refused_rate
                + s.refused_unauthorized
                + s.refused_not_joined
                + s.refused_busy
                + s.refused_material;
            row(
                ui,
                "client edits",
                format!("{} applied, {refused} refused ({} busy)", s.edits_applied, s.refused_busy),
            );
            row(
                ui,
                "malformed",
                format!("{} ({} disconnected, {} timed out)", s.malformed, s.disconnected, s.timed_out),
            );
            row(ui, "resyncs / audits", format!("{} ({} ignored) / {}", s.resyncs, s.resyncs_ignored, s.audits));
        }
        if let Some(status) = &client {
            let text = match **status {
                ReplicationStatus::Waiting => "waiting for the server".to_string(),
                ReplicationStatus::Joining { nodes, total } => format!("joining: {nodes} / {total} nodes"),
                ReplicationStatus::Synced { sequence, lag } => format!("synced at {sequence}, lag {lag}"),
                ReplicationStatus::Resyncing => "resyncing".to_string(),
                ReplicationStatus::Inactive => "inactive: the world is not a server's".to_string(),
            };
            row(ui, "replication", text);
            if let Some(c) = world.get_resource::<ReplicationClientStats>() {
                row(
                    ui,
                    "audits",
                    format!("{}, {} divergences repaired, {} resyncs", c.audits, c.divergences, c.resyncs),
                );
            }
        }
    });
}
