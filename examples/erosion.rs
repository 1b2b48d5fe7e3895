//! The windowed demo: the default world's geology at work, in 3D.
//!
//! A 320 x 256 x 320 region around the intrusion, greedy-meshed in chunks
//! of 32³ by the mesher in `examples/mesher` (a template for your app), which
//! follows the change messages: only chunks an edit or a consolidation touched
//! are remeshed, on the async compute pool, newest edits first, a budget a
//! frame. Rain erodes the region, loose slopes slide, sediment settles under
//! water, magma rises and cools. The front is cut away through the intrusion
//! so the strata and the magma show; voxels holding a delta not yet
//! consolidated are drawn lighter.
//!
//! Drag to orbit, scroll to zoom, `C` toggles the cut-away, `Tab` switches to
//! the 2D section (a slice through the cut, filling the window; drag to pan,
//! scroll to zoom there; `--section` starts there), F3 toggles the debug panel.
//!
//! ```text
//! cargo run --release --features demo --example erosion
//! cargo run --release --features demo --example erosion -- --screenshot demo.png --frames 240
//! cargo run --release --features demo,paging --example erosion -- --paged
//! ```
//!
//! `--paged` (feature `paging`) adds a paged world of 4096 x 256 x 4096 voxels
//! beside the demo's, resident around the camera (a `WorldInterest` on it), so
//! the panel's residency section shows what paging holds and does.

#[allow(dead_code, reason = "the shared geology module serves several examples")]
mod common;
mod mesher;

use bevy::asset::RenderAssetUsages;
use bevy::core_pipeline::tonemapping::Tonemapping;
use bevy::diagnostic::{Diagnostic, DiagnosticPath, Diagnostics, RegisterDiagnostic};
use bevy::input::mouse::{AccumulatedMouseMotion, AccumulatedMouseScroll};
use bevy::mesh::{Indices, PrimitiveTopology};
use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured, save_to_disk};
use bevy::window::WindowResolution;
use bevy_delta_overlay::prelude::*;
use bevy_delta_overlay::{Palette, debug_ui::DebugPanel};
use bevy_egui::{EguiContexts, EguiPrimaryContextPass};
use common::ExampleGeology;
use mesher::{ChunkMeshed, Geometry, MesherPlugin, MesherSettings, MesherStats};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

/// The region shown, centred on the first intrusion.
const REGION: IVec3 = IVec3::new(320, 256, 320);

const MESHED: DiagnosticPath = DiagnosticPath::const_new("mesher/chunks_per_frame");
const QUEUED: DiagnosticPath = DiagnosticPath::const_new("mesher/queued");
const MESH_MS: DiagnosticPath = DiagnosticPath::const_new("mesher/mesh_ms_per_chunk");
const READ_MS: DiagnosticPath = DiagnosticPath::const_new("mesher/read_ms_per_frame");
const FRAME_MS: DiagnosticPath = DiagnosticPath::const_new("demo/frame_ms");

#[derive(Resource, Default)]
struct Capture {
    path: Option<PathBuf>,
    after_frames: u32,
    frame: u32,
    requested: bool,
    saved: bool,
    /// The mesher's main-thread time of every frame, ms (printed on exit).
    read_ms: Vec<f64>,
}

/// The 3D view or the 2D section.
#[derive(Resource, Clone, Copy, PartialEq, Eq, Default)]
enum View {
    #[default]
    Terrain,
    Section,
}

/// The orbit camera's state.
#[derive(Resource)]
struct Orbit {
    target: Vec3,
    yaw: f32,
    pitch: f32,
    distance: f32,
}

/// The chunks' entities (terrain, water).
#[derive(Resource, Default)]
struct ChunkEntities(HashMap<IVec3, (Entity, Entity)>);

#[derive(Resource)]
struct Materials {
    terrain: Handle<StandardMaterial>,
    water: Handle<StandardMaterial>,
}

fn main() {
    let mut capture = Capture { after_frames: 240, ..default() };
    let mut view = View::Terrain;
    let mut paged = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--section" || arg == "--paged" {
            view = if arg == "--section" { View::Section } else { view };
            paged |= arg == "--paged";
            continue;
        }
        match (arg.as_str(), args.next()) {
            ("--screenshot", Some(path)) => capture.path = Some(PathBuf::from(path)),
            ("--frames", Some(n)) if n.parse::<u32>().is_ok() => capture.after_frames = n.parse().unwrap_or(240),
            _ => {
                eprintln!("usage: erosion [--screenshot PATH] [--frames N] [--section] [--paged]");
                std::process::exit(2);
            }
        }
    }
    let mut app = App::new();
    app.add_plugins(DefaultPlugins.set(WindowPlugin {
        primary_window: Some(Window {
            title: "bevy_delta_overlay: geology".into(),
            resolution: WindowResolution::new(1280, 720),
            ..default()
        }),
        ..default()
    }));
    let generator = WorldGen::default();
    let bounds = generator.bounds();
    let centre = common::intrusion_center(bounds);
    // Chunk-aligned from the world's corner: a brick lies in one chunk.
    let corner = IVec3::new(centre.x - REGION.x / 2, bounds.min.y, centre.z - REGION.z / 2);
    let corner = bounds.min + ((corner - bounds.min).max(IVec3::ZERO) / mesher::CHUNK) * mesher::CHUNK;
    let region = Aabb::from_min_size(corner, REGION).intersection(&bounds);
    let rain = (IVec2::new(region.min.x, region.min.z), IVec2::new(region.max.x, region.max.z));
    // The processes' settings first, so the group's processes keep them.
    app.add_plugins(ExampleGeology { bounds, rain: Some(rain) })
        .add_plugins(DeltaOverlayPlugins::new(Update).world(generator))
        .add_plugins(MesherPlugin {
            settings: MesherSettings { region, budget: 48, max_in_flight: 96, cut_z: Some(centre.z) },
        })
        .register_diagnostic(Diagnostic::new(MESHED))
        .register_diagnostic(Diagnostic::new(QUEUED))
        .register_diagnostic(Diagnostic::new(MESH_MS))
        .register_diagnostic(Diagnostic::new(READ_MS))
        .register_diagnostic(Diagnostic::new(FRAME_MS))
        .insert_resource(capture)
        .insert_resource(Palette::load("assets/materials.ron").unwrap_or_else(|e| {
            warn!("{e}; using the built-in palette");
            Palette::shipped()
        }))
        .insert_resource(view)
        .init_resource::<ChunkEntities>()
        .insert_resource(Orbit {
            // Shifted left of the region's centre, so the region sits in the
            // part of the window the panel leaves free.
            target: (region.min + region.max).as_vec3() / 2.0 - Vec3::new(36.0, 60.0, -25.0),
            yaw: 0.6,
            pitch: 0.5,
            distance: 350.0,
        })
        .add_systems(Startup, setup)
        .add_systems(Update, (controls, orbit, install_meshes, figures, screenshot))
        .add_systems(Update, section::render.after(DeltaOverlaySystems::Ingest))
        .add_systems(EguiPrimaryContextPass, section::draw);
    if paged {
        add_paged_world(&mut app);
    }
    app.run();
}

/// A paged world beside the demo's, resident around the camera.
#[cfg(feature = "paging")]
fn add_paged_world(app: &mut App) {
    use bevy_delta_overlay::paging::PagingSettings;
    use bevy_delta_overlay::plugin::{PagingPlugin, WorldInterest};
    let generator = WorldGen { size: IVec3::new(4096, 256, 4096), ..default() };
    let settings = PagingSettings { resident_budget: 256 << 20, ..default() };
    app.add_plugins(PagingPlugin { generator, settings, ..default() }).add_systems(
        Update,
        |mut commands: Commands, cameras: Query<Entity, (With<Camera3d>, Without<WorldInterest>)>| {
            for camera in &cameras {
                commands.entity(camera).insert(WorldInterest { radius: 160 });
            }
        },
    );
}

#[cfg(not(feature = "paging"))]
fn add_paged_world(_: &mut App) {
    eprintln!("--paged needs the `paging` feature: cargo run --release --features demo,paging --example erosion");
    std::process::exit(2);
}

fn setup(
    mut commands: Commands,
    mut materials: ResMut<Assets<StandardMaterial>>,
    mut panel: ResMut<DebugPanel>,
    storage: Res<DeltaStorage>,
    settings: Res<MesherSettings>,
    view: Res<View>,
) {
    // No MSAA: the demo runs on software rasterizers too (CI uses lavapipe),
    // where multisampling costs most of a frame.
    commands.spawn((Camera3d::default(), layers_for(*view), Msaa::Off, Tonemapping::Reinhard, Transform::default()));
    commands.spawn((
        DirectionalLight { illuminance: 9000.0, shadow_maps_enabled: false, ..default() },
        Transform::from_xyz(0.3, 1.0, 0.5).looking_at(Vec3::ZERO, Vec3::Y),
    ));
    commands.insert_resource(GlobalAmbientLight { brightness: 500.0, ..default() });
    commands.insert_resource(ClearColor(Color::srgb(0.62, 0.75, 0.88)));
    commands.insert_resource(Materials {
        terrain: materials.add(StandardMaterial { perceptual_roughness: 0.9, ..default() }),
        water: materials.add(StandardMaterial { alpha_mode: AlphaMode::Blend, perceptual_roughness: 0.2, ..default() }),
    });
    panel.figures.extend([
        ("chunks meshed / frame".to_string(), MESHED),
        ("chunks queued".to_string(), QUEUED),
        ("mesh ms / chunk (pool)".to_string(), MESH_MS),
        ("read ms / frame (main)".to_string(), READ_MS),
        ("frame ms".to_string(), FRAME_MS),
    ]);
    commands.insert_resource(section::Section::new(&storage, settings.cut_z));
}

/// What the camera draws: the terrain, or nothing in the section view (egui,
/// which the camera also carries, covers the window there; the camera stays
/// active, or egui would not be drawn).
fn layers_for(view: View) -> bevy::camera::visibility::RenderLayers {
    bevy::camera::visibility::RenderLayers::layer(if view == View::Terrain { 0 } else { 1 })
}

/// `C`: cut-away on or off; `Tab`: 3D or the 2D section.
fn controls(
    keys: Res<ButtonInput<KeyCode>>,
    mut settings: ResMut<MesherSettings>,
    mut view: ResMut<View>,
    storage: Res<DeltaStorage>,
    cameras: Query<Entity, With<Camera3d>>,
    mut commands: Commands,
) {
    if keys.just_pressed(KeyCode::KeyC) {
        let centre = common::intrusion_center(storage.bounds());
        settings.cut_z = if settings.cut_z.is_some() { None } else { Some(centre.z) };
    }
    if keys.just_pressed(KeyCode::Tab) {
        *view = if *view == View::Terrain { View::Section } else { View::Terrain };
        for camera in &cameras {
            commands.entity(camera).insert(layers_for(*view));
        }
    }
}

/// Drag to orbit, scroll to zoom (when egui does not want the pointer).
fn orbit(
    mut orbit: ResMut<Orbit>,
    buttons: Res<ButtonInput<MouseButton>>,
    motion: Res<AccumulatedMouseMotion>,
    scroll: Res<AccumulatedMouseScroll>,
    mut contexts: EguiContexts,
    view: Res<View>,
    mut cameras: Query<&mut Transform, With<Camera3d>>,
) {
    let egui_wants = contexts.ctx_mut().is_ok_and(|c| c.egui_wants_pointer_input() || c.is_pointer_over_egui());
    if *view == View::Terrain && !egui_wants {
        if buttons.pressed(MouseButton::Left) {
            orbit.yaw -= motion.delta.x * 0.005;
            orbit.pitch = (orbit.pitch + motion.delta.y * 0.005).clamp(0.05, 1.5);
        }
        orbit.distance = (orbit.distance * (1.0 - scroll.delta.y * 0.1)).clamp(40.0, 1500.0);
    }
    let offset = Vec3::new(orbit.yaw.sin() * orbit.pitch.cos(), orbit.pitch.sin(), orbit.yaw.cos() * orbit.pitch.cos());
    for mut t in &mut cameras {
        *t = Transform::from_translation(orbit.target + offset * orbit.distance).looking_at(orbit.target, Vec3::Y);
    }
}

fn bevy_mesh(g: Geometry) -> Mesh {
    Mesh::new(PrimitiveTopology::TriangleList, RenderAssetUsages::RENDER_WORLD)
        .with_inserted_attribute(Mesh::ATTRIBUTE_POSITION, g.positions)
        .with_inserted_attribute(Mesh::ATTRIBUTE_NORMAL, g.normals)
        .with_inserted_attribute(Mesh::ATTRIBUTE_COLOR, g.colors)
        .with_inserted_indices(Indices::U32(g.indices))
}

/// Puts each arrived chunk mesh on its entities (spawned the first time).
fn install_meshes(
    mut commands: Commands,
    mut arrived: MessageReader<ChunkMeshed>,
    mut meshes: ResMut<Assets<Mesh>>,
    materials: Res<Materials>,
    mut chunks: ResMut<ChunkEntities>,
) {
    for ChunkMeshed { corner, opaque, water } in arrived.read().cloned() {
        let (terrain, liquid) = *chunks.0.entry(corner).or_insert_with(|| {
            let at = Transform::from_translation(corner.as_vec3());
            (commands.spawn((at, Visibility::default())).id(), commands.spawn((at, Visibility::default())).id())
        });
        for (entity, geometry, material) in
            [(terrain, opaque, materials.terrain.clone()), (liquid, water, materials.water.clone())]
        {
            if geometry.indices.is_empty() {
                commands.entity(entity).remove::<(Mesh3d, MeshMaterial3d<StandardMaterial>)>();
            } else {
                commands.entity(entity).insert((Mesh3d(meshes.add(bevy_mesh(geometry))), MeshMaterial3d(material)));
            }
        }
    }
}

/// The mesher's figures as diagnostics, which the debug panel lists.
fn figures(
    stats: Res<MesherStats>,
    mut diagnostics: Diagnostics,
    mut last: Local<Option<(Instant, u64, f64)>>,
    mut report: Local<Option<(Instant, u64, u32)>>,
) {
    let now = Instant::now();
    // A log line every 5 s: the figures a user can quote without the panel.
    let (since, meshed_then, frames) = report.get_or_insert((now, stats.meshed, 0));
    *frames += 1;
    let elapsed = (now - *since).as_secs_f64();
    if elapsed >= 5.0 {
        info!(
            "mesher: {:.1} chunks/s, {} queued, {} in flight; {:.1} ms per frame over {} frames",
            (stats.meshed - *meshed_then) as f64 / elapsed,
            stats.queued,
            stats.in_flight,
            elapsed * 1e3 / f64::from(*frames),
            frames
        );
        *report = Some((now, stats.meshed, 0));
    }
    let mesh_ms = stats.mesh_time.as_secs_f64() * 1e3;
    if let Some((t, meshed, ms)) = *last {
        let n = stats.meshed - meshed;
        diagnostics.add_measurement(&MESHED, || n as f64);
        if n > 0 {
            diagnostics.add_measurement(&MESH_MS, || (mesh_ms - ms) / n as f64);
        }
        diagnostics.add_measurement(&FRAME_MS, || (now - t).as_secs_f64() * 1e3);
    }
    diagnostics.add_measurement(&QUEUED, || stats.queued as f64);
    diagnostics.add_measurement(&READ_MS, || stats.read_time.as_secs_f64() * 1e3);
    *last = Some((now, stats.meshed, mesh_ms));
}

/// With `--screenshot`, saves the window after `--frames` frames (once the
/// mesher's first pass is done: every chunk on screen) and exits.
fn screenshot(
    mut commands: Commands,
    mut capture: ResMut<Capture>,
    stats: Res<MesherStats>,
    mut exit: MessageWriter<AppExit>,
) {
    let Some(path) = capture.path.clone() else { return };
    capture.frame += 1;
    capture.read_ms.push(stats.read_time.as_secs_f64() * 1e3);
    let ready = capture.frame >= capture.after_frames && stats.meshed > 0 && stats.unmeshed == 0;
    if capture.saved {
        let mut ms = std::mem::take(&mut capture.read_ms);
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| ms.get(((ms.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0.0);
        println!(
            "mesher main-thread read: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms over {} frames ({} chunks meshed)",
            at(0.5),
            at(0.99),
            at(1.0),
            ms.len(),
            stats.meshed
        );
        exit.write(AppExit::Success);
    } else if !capture.requested && ready {
        capture.requested = true;
        commands
            .spawn(Screenshot::primary_window())
            .observe(save_to_disk(path))
            .observe(|_: On<ScreenshotCaptured>, mut capture: ResMut<Capture>| capture.saved = true);
    } else if capture.frame > capture.after_frames + 1200 {
        error!("no screenshot after 1200 more frames");
        exit.write(AppExit::error());
    }
}

/// The 2D section: a vertical slice through the cut plane, rendered column by
/// column from `query_region` into a texture, filling the window.
mod section {
    use super::View;
    use bevy::prelude::*;
    use bevy_delta_overlay::Palette;
    use bevy_delta_overlay::prelude::*;
    use bevy_egui::{EguiContexts, egui};

    #[derive(Resource)]
    pub struct Section {
        z: i32,
        image: egui::ColorImage,
        texture: Option<egui::TextureHandle>,
        dirty: bool,
        zoom: f32,
        center: egui::Vec2,
        painted: bool,
    }

    impl Section {
        pub fn new(storage: &DeltaStorage, cut_z: Option<i32>) -> Self {
            let b = storage.bounds();
            let size = b.size();
            Self {
                z: cut_z.unwrap_or(b.min.z + size.z / 2),
                image: egui::ColorImage::filled([size.x as usize, size.y as usize], egui::Color32::BLACK),
                texture: None,
                dirty: true,
                zoom: 1.0,
                center: egui::vec2(0.5, 0.5),
                painted: false,
            }
        }
    }

    fn paint_column(section: &mut Section, storage: &DeltaStorage, palette: &Palette, col: i32) {
        let b = storage.bounds();
        let x = b.min.x + col;
        let column = Aabb::new(IVec3::new(x, b.min.y, section.z), IVec3::new(x + 1, b.max.y, section.z + 1));
        let Ok(region) = storage.query_region(column, 0) else { return };
        let height = b.size().y as usize;
        let width = section.image.size[0];
        for (i, m) in region.as_slice().iter().enumerate() {
            let (r, g, bl) = palette.colour(*m);
            section.image.pixels[(height - 1 - i) * width + col as usize] = egui::Color32::from_rgb(r, g, bl);
        }
        for d in storage.deltas_in(column) {
            let (r, g, bl) = palette.colour(d.material);
            let lift = |c: u8| c / 2 + 128;
            let y = (d.position.y - b.min.y) as usize;
            section.image.pixels[(height - 1 - y) * width + col as usize] =
                egui::Color32::from_rgb(lift(r), lift(g), lift(bl));
        }
        section.dirty = true;
    }

    /// Re-renders the columns in bricks the frame's messages name.
    pub fn render(
        storage: Res<DeltaStorage>,
        palette: Res<Palette>,
        mut changed: MessageReader<VoxelsChanged>,
        mut consolidated: MessageReader<ConsolidationFinished>,
        mut section: ResMut<Section>,
    ) {
        let b = storage.bounds();
        if !section.painted {
            section.painted = true;
            for x in 0..b.size().x {
                paint_column(&mut section, &storage, &palette, x);
            }
        }
        let z = section.z;
        let mut columns: Vec<i32> = changed
            .read()
            .flat_map(|m| m.bricks.iter())
            .chain(consolidated.read().flat_map(|m| m.bricks.iter()))
            .filter(|brick| (brick.min.z..brick.max.z).contains(&z))
            .flat_map(|brick| brick.min.x - b.min.x..brick.max.x - b.min.x)
            .collect();
        columns.sort_unstable();
        columns.dedup();
        for c in columns {
            paint_column(&mut section, &storage, &palette, c);
        }
    }

    pub fn draw(mut contexts: EguiContexts, mut section: ResMut<Section>, view: Res<View>) -> Result {
        let ctx = contexts.ctx_mut()?;
        if *view != View::Section {
            return Ok(());
        }
        if section.dirty {
            let image = section.image.clone();
            match &mut section.texture {
                Some(t) => t.set(image, egui::TextureOptions::NEAREST),
                None => section.texture = Some(ctx.load_texture("section", image, egui::TextureOptions::NEAREST)),
            }
            section.dirty = false;
        }
        let Some(texture) = section.texture.clone() else { return Ok(()) };
        let [w, h] = section.image.size;
        let mut viewport = egui::Ui::new(
            ctx.clone(),
            "section".into(),
            egui::UiBuilder::new().layer_id(egui::LayerId::background()).max_rect(ctx.viewport_rect()),
        );
        egui::CentralPanel::default().frame(egui::Frame::new().fill(egui::Color32::from_gray(12))).show(
            &mut viewport,
            |ui| {
                ui.label(format!(
                    "Section at z = {}: {w} voxels across, {h} up. Lighter voxels hold a delta. Drag to pan, scroll to zoom, Tab: 3D.",
                    section.z
                ));
                let (rect, response) = ui.allocate_exact_size(ui.available_size(), egui::Sense::drag());
                if response.hovered() {
                    let scroll = ui.input(|i| i.smooth_scroll_delta.y);
                    section.zoom = (section.zoom * (1.0 + scroll * 0.002)).clamp(1.0, 64.0);
                }
                // Fill the view: the texture's height fits the view's height at
                // zoom 1 (square voxels), and the view shows the part that fits.
                let aspect = rect.width() / rect.height();
                let span_y = 1.0 / section.zoom;
                let span_x = (span_y * aspect * h as f32 / w as f32).min(1.0);
                let drag = response.drag_delta();
                section.center -= egui::vec2(drag.x / rect.width() * span_x, drag.y / rect.height() * span_y);
                section.center = section.center.clamp(
                    egui::vec2(span_x / 2.0, span_y / 2.0),
                    egui::vec2(1.0 - span_x / 2.0, 1.0 - span_y / 2.0),
                );
                let uv = egui::Rect::from_center_size(section.center.to_pos2(), egui::vec2(span_x, span_y));
                ui.painter().image(texture.id(), rect, uv, egui::Color32::WHITE);
            },
        );
        Ok(())
    }
}
