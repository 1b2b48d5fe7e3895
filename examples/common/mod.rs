//! The geology both examples run: rivers cut their beds (erosion), the material
//! settles downstream (deposition), a magma intrusion rises from a worker thread
//! through the off-ECS channel, and now and then an update lands out of bounds.
//! Every update sent is recorded in a shadow copy the examples verify against.

use bevy::prelude::*;
use bevy_delta_overlay::UpdateBatch;
use bevy_delta_overlay::prelude::*;
use std::collections::HashMap;
use std::time::Duration;

/// Every update the systems sent, last value per voxel.
#[derive(Resource, Default)]
pub struct Shadow {
    pub voxels: HashMap<IVec3, MaterialId>,
    pub sent: u64,
    pub out_of_bounds: u64,
}

/// The simulation's view of the terrain: surface height per river column.
#[derive(Resource, Default)]
pub struct Surface(HashMap<IVec2, i32>);

pub const RIVERS: i32 = 4;
/// The intrusion stays below this height, the rivers above it.
pub const INTRUSION_DEPTH: i32 = 90;

/// Adds the geology systems, ordered before the overlay's ingest.
pub struct GeologyPlugin;

impl Plugin for GeologyPlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<Shadow>()
            .init_resource::<Surface>()
            .add_systems(Update, (erode_and_deposit, meteor).before(DeltaOverlaySystems::Ingest));
    }
}

/// The meandering path of river `river`: its z at each x.
pub fn river_z(bounds: Aabb, river: i32, x: i32) -> i32 {
    let z0 = bounds.min.z + bounds.size().z * (2 * river + 1) / (2 * RIVERS);
    z0 + (20.0 * (x as f32 / 53.0 + river as f32).sin()) as i32
}

/// Rivers cut their bed one voxel per pass along their path; the material settles
/// as sediment 24 voxels downstream.
fn erode_and_deposit(
    storage: Res<DeltaStorage>,
    mut surface: ResMut<Surface>,
    mut shadow: ResMut<Shadow>,
    mut updates: MessageWriter<MaterialUpdate>,
    mut frame: Local<i32>,
) {
    let bounds = storage.bounds();
    let size = bounds.size();
    *frame += 1;
    let f = *frame;
    for river in 0..RIVERS {
        // Sweep 24 columns of the path per frame, wrapping along x.
        for step in 0..24 {
            let x = bounds.min.x + (f * 24 + step + river * 97).rem_euclid(size.x - 64);
            let z = river_z(bounds, river, x);
            for w in -1..=1 {
                let col = IVec2::new(x, z + w);
                let top = surface_at(&storage, &mut surface, col);
                if top <= INTRUSION_DEPTH + 8 {
                    continue; // the channel reached the rock the intrusion owns
                }
                let water = if top < 150 { geology::WATER } else { geology::AIR };
                send(&mut updates, &mut shadow, IVec3::new(col.x, top, col.y), water);
                surface.0.insert(col, top - 1);
                let down = IVec2::new(col.x + 24, col.y);
                if down.x < bounds.max.x {
                    let dtop = surface_at(&storage, &mut surface, down);
                    send(&mut updates, &mut shadow, IVec3::new(down.x, dtop + 1, down.y), geology::SEDIMENT);
                    surface.0.insert(down, dtop + 1);
                }
            }
        }
    }
}

/// Every 50 frames, a deposit lands above the sky: an out-of-bounds update the
/// overlay refuses and counts.
fn meteor(mut updates: MessageWriter<MaterialUpdate>, mut shadow: ResMut<Shadow>, mut frame: Local<u32>) {
    *frame += 1;
    if (*frame).is_multiple_of(50) {
        updates.write(MaterialUpdate { position: IVec3::new(10, 10_000, 10), material: geology::BASALT });
        shadow.sent += 1;
        shadow.out_of_bounds += 1;
    }
}

fn send(updates: &mut MessageWriter<MaterialUpdate>, shadow: &mut Shadow, p: IVec3, m: MaterialId) {
    updates.write(MaterialUpdate { position: p, material: m });
    shadow.sent += 1;
    shadow.voxels.insert(p, m);
}

/// Height of the topmost solid voxel of a column (cached after the first scan).
fn surface_at(storage: &DeltaStorage, surface: &mut Surface, col: IVec2) -> i32 {
    *surface.0.entry(col).or_insert_with(|| {
        let b = storage.bounds();
        let mut reader = storage.reader();
        (b.min.y..b.max.y)
            .rev()
            .find(|&y| {
                let m = reader.get(IVec3::new(col.x, y, col.y)).unwrap_or(geology::AIR);
                m != geology::AIR && m != geology::WATER
            })
            .unwrap_or(b.min.y)
    })
}

/// Where the intrusion rises: under river 1, at x = 600.
pub fn intrusion_center(bounds: Aabb) -> IVec3 {
    IVec3::new(600, 20, river_z(bounds, 1, 600))
}

/// A magma plume growing upward from deep in the crust, computed on a worker
/// thread and sent in batches through the bounded channel, one batch every
/// `pause`. Returns its own shadow copy and the number of updates sent.
pub fn spawn_intrusion(
    sender: DeltaSender,
    bounds: Aabb,
    steps: u32,
    pause: Duration,
) -> std::thread::JoinHandle<(HashMap<IVec3, MaterialId>, u64)> {
    std::thread::spawn(move || {
        let mut shadow = HashMap::new();
        let mut sent = 0;
        let center = intrusion_center(bounds);
        let steps = steps.max(1) as i32;
        for step in 0..steps {
            let top = 20 + (INTRUSION_DEPTH - 20) * (step + 1) / steps;
            let radius = 3 + 9 * (step + 1) / steps;
            let mut batch: UpdateBatch = Vec::new();
            for y in (top - 4).max(1)..top {
                for dz in -radius..=radius {
                    for dx in -radius..=radius {
                        if dx * dx + dz * dz <= radius * radius {
                            let p = IVec3::new(center.x + dx, y, center.z + dz);
                            batch.push((p, geology::MAGMA));
                            shadow.insert(p, geology::MAGMA);
                        }
                    }
                }
            }
            sent += batch.len() as u64;
            if sender.send(batch).is_err() {
                break;
            }
            std::thread::sleep(pause);
        }
        (shadow, sent)
    })
}
