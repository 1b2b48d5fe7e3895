//! The windowed demo: the default world's geology at work, seen along a river.
//!
//! The view is a vertical section that follows river 1's meander across the
//! world (x across, y up), rendered column by column from `query_region` into a
//! texture, coloured by `assets/materials.ron`. Bright voxels currently hold a
//! delta (not yet consolidated). Only the columns inside bricks named by the
//! frame's `VoxelsChanged` messages are re-rendered, and those inside bricks a
//! `ConsolidationFinished` installed, whose delta marks clear.
//! Drag to pan, scroll to zoom, F3 toggles the debug panel.
//!
//! ```text
//! cargo run --release --features debug_ui --example erosion
//! cargo run --release --features debug_ui --example erosion -- --screenshot demo.png --frames 90
//! ```

mod common;

use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured, save_to_disk};
use bevy::window::WindowResolution;
use bevy_delta_overlay::Palette;
use bevy_delta_overlay::prelude::*;
use bevy_egui::{EguiContexts, EguiPrimaryContextPass, egui};
use common::GeologyPlugin;
use std::path::PathBuf;
use std::time::Duration;

/// Which river the section follows.
const RIVER: i32 = 1;

#[derive(Resource)]
struct Section {
    palette: Palette,
    image: egui::ColorImage,
    texture: Option<egui::TextureHandle>,
    dirty: bool,
    zoom: f32,
    center: egui::Vec2,
}

#[derive(Resource, Default)]
struct Capture {
    path: Option<PathBuf>,
    after_frames: u32,
    frame: u32,
    requested: bool,
    saved: bool,
}

fn main() {
    let mut capture = Capture { after_frames: 90, ..default() };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--screenshot", Some(path)) => capture.path = Some(PathBuf::from(path)),
            ("--frames", Some(n)) if n.parse::<u32>().is_ok() => capture.after_frames = n.parse().unwrap_or(90),
            _ => {
                eprintln!("usage: erosion [--screenshot PATH] [--frames N]");
                std::process::exit(2);
            }
        }
    }
    App::new()
        .add_plugins(DefaultPlugins.set(WindowPlugin {
            primary_window: Some(Window {
                title: "bevy_delta_overlay: erosion".into(),
                resolution: WindowResolution::new(1280, 720),
                ..default()
            }),
            ..default()
        }))
        .add_plugins((DeltaOverlayPlugin::default(), DeltaOverlayDebugPlugin::default(), GeologyPlugin))
        .insert_resource(capture)
        .add_systems(Startup, setup)
        .add_systems(Update, (render_section.after(DeltaOverlaySystems::Ingest), screenshot))
        .add_systems(EguiPrimaryContextPass, draw_section)
        .run();
}

fn setup(mut commands: Commands, storage: Res<DeltaStorage>, sender: Res<DeltaSender>) {
    commands.spawn(Camera2d);
    let size = storage.bounds().size();
    let palette = Palette::load("assets/materials.ron").unwrap_or_else(|e| {
        warn!("{e}; using the built-in palette");
        Palette::geology()
    });
    commands.insert_resource(Section {
        palette,
        image: egui::ColorImage::filled([size.x as usize, size.y as usize], egui::Color32::BLACK),
        texture: None,
        dirty: true,
        zoom: 1.0,
        center: egui::vec2(0.5, 0.5),
    });
    // The intrusion: a batch every 40 ms from a worker thread, for about two minutes.
    let _detached = common::spawn_intrusion(sender.clone(), storage.bounds(), 3000, Duration::from_millis(40));
    // Draw everything once.
    commands.queue(|world: &mut World| {
        world.resource_scope(|world, mut section: Mut<Section>| {
            let storage = world.resource::<DeltaStorage>();
            for x in 0..storage.bounds().size().x {
                paint_column(&mut section, storage, x);
            }
        });
    });
}

/// Re-renders one column of the section: a 1 x 256 `query_region`, and the
/// deltas in it to mark.
fn paint_column(section: &mut Section, storage: &DeltaStorage, col: i32) {
    let b = storage.bounds();
    let x = b.min.x + col;
    let z = common::river_z(b, RIVER, x);
    let column = Aabb::new(IVec3::new(x, b.min.y, z), IVec3::new(x + 1, b.max.y, z + 1));
    let Ok(region) = storage.query_region(column, 0) else { return };
    let height = b.size().y as usize;
    let width = section.image.size[0];
    for (i, m) in region.as_slice().iter().enumerate() {
        let (r, g, bl) = section.palette.colour(*m);
        section.image.pixels[(height - 1 - i) * width + col as usize] = egui::Color32::from_rgb(r, g, bl);
    }
    for d in storage.deltas_in(column) {
        let (r, g, bl) = section.palette.colour(d.material);
        let lift = |c: u8| c / 2 + 128;
        let y = (d.position.y - b.min.y) as usize;
        section.image.pixels[(height - 1 - y) * width + col as usize] =
            egui::Color32::from_rgb(lift(r), lift(g), lift(bl));
    }
    section.dirty = true;
}

/// Re-renders the section's columns that lie in a brick named by this frame's
/// `VoxelsChanged` (voxels changed) or `ConsolidationFinished` (delta marks to
/// clear), each column once.
fn render_section(
    storage: Res<DeltaStorage>,
    mut changed: MessageReader<VoxelsChanged>,
    mut consolidated: MessageReader<ConsolidationFinished>,
    mut section: ResMut<Section>,
) {
    let b = storage.bounds();
    let boxes = changed.read().flat_map(|m| m.bricks.iter()).chain(consolidated.read().flat_map(|m| m.bricks.iter()));
    let mut columns: Vec<i32> = Vec::new();
    for brick in boxes {
        for x in brick.min.x..brick.max.x {
            let z = common::river_z(b, RIVER, x);
            if (brick.min.z..brick.max.z).contains(&z) {
                columns.push(x - b.min.x);
            }
        }
    }
    columns.sort_unstable();
    columns.dedup();
    for c in columns {
        paint_column(&mut section, &storage, c);
    }
}

fn draw_section(mut contexts: EguiContexts, mut section: ResMut<Section>, stats: Res<DeltaStats>) -> Result {
    let ctx = contexts.ctx_mut()?;
    if section.dirty {
        let image = section.image.clone();
        match &mut section.texture {
            Some(t) => t.set(image, egui::TextureOptions::NEAREST),
            None => section.texture = Some(ctx.load_texture("section", image, egui::TextureOptions::NEAREST)),
        }
        section.dirty = false;
    }
    let Some(texture) = section.texture.clone() else { return Ok(()) };
    // A background UI over the whole window, under the debug panel's window.
    let mut viewport = egui::Ui::new(
        ctx.clone(),
        "section".into(),
        egui::UiBuilder::new().layer_id(egui::LayerId::background()).max_rect(ctx.viewport_rect()),
    );
    egui::CentralPanel::default().frame(egui::Frame::new().fill(egui::Color32::from_gray(12))).show(&mut viewport, |ui| {
        let o = &stats.overlay;
        let last = o.consolidation.last.map_or("-", |l| l.strategy.name());
        ui.label(format!(
            "River {RIVER} section, 1024 voxels across, 256 up. Bright voxels hold a delta. {} deltas, {} consolidations (last: {last}). Drag to pan, scroll to zoom, F3: panel.",
            o.delta_count,
            o.consolidation.finished.total()
        ));
        // The section keeps its 4:1 aspect, along the bottom of the window.
        let (area, response) = ui.allocate_exact_size(ui.available_size(), egui::Sense::drag());
        let height = (area.width() / 4.0).min(area.height());
        let rect = egui::Rect::from_min_max(egui::pos2(area.left(), area.bottom() - height), area.right_bottom());
        if response.hovered() {
            let scroll = ui.input(|i| i.smooth_scroll_delta.y);
            section.zoom = (section.zoom * (1.0 + scroll * 0.002)).clamp(1.0, 64.0);
        }
        let span = 1.0 / section.zoom;
        let drag = response.drag_delta();
        section.center -= egui::vec2(drag.x / rect.width(), drag.y / rect.height()) * span;
        section.center = section.center.clamp(egui::Vec2::splat(span / 2.0), egui::Vec2::splat(1.0 - span / 2.0));
        let uv = egui::Rect::from_center_size(section.center.to_pos2(), egui::Vec2::splat(span));
        ui.painter().image(texture.id(), rect, uv, egui::Color32::WHITE);
    });
    Ok(())
}

/// With `--screenshot`, saves the window after `--frames` frames and exits.
fn screenshot(mut commands: Commands, mut capture: ResMut<Capture>, mut exit: MessageWriter<AppExit>) {
    let Some(path) = capture.path.clone() else { return };
    capture.frame += 1;
    if capture.saved {
        exit.write(AppExit::Success);
    } else if !capture.requested && capture.frame >= capture.after_frames {
        capture.requested = true;
        commands
            .spawn(Screenshot::primary_window())
            .observe(save_to_disk(path))
            .observe(|_: On<ScreenshotCaptured>, mut capture: ResMut<Capture>| capture.saved = true);
    } else if capture.frame > capture.after_frames + 600 {
        error!("no screenshot after 600 more frames");
        exit.write(AppExit::error());
    }
}
