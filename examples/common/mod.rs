//! The geology the examples run: the crate's four processes (rain erosion,
//! slides, a rising intrusion, settling and compaction), with settings tuned
//! for a lively minute, and now and then an update out of bounds. Every
//! update the frame sends is recorded in a shadow copy the examples verify
//! against.

pub mod flood;
#[cfg(feature = "paging")]
pub mod paged;
#[cfg(feature = "paging")]
pub mod rss;

use bevy::prelude::*;
use bevy_delta_overlay::geology::{
    Deposition, GeologyTimes, HydraulicErosion, HydraulicSettings, Intrusion, IntrusionSettings, ThermalErosion,
};
use bevy_delta_overlay::prelude::*;
/// Every update sent this run, last value per voxel (hashed with ahash: the
/// record is the example's own cost in the frame it measures).
#[derive(Resource)]
pub struct Shadow {
    pub voxels: std::collections::HashMap<IVec3, MaterialId, ahash::RandomState>,
    pub sent: u64,
    pub out_of_bounds: u64,
}

impl Default for Shadow {
    fn default() -> Self {
        let hasher = ahash::RandomState::with_seeds(1, 2, 3, 4);
        Self { voxels: std::collections::HashMap::with_hasher(hasher), sent: 0, out_of_bounds: 0 }
    }
}

/// Where the first intrusion rises (the demo's view is centred on it): a
/// valley of the default world, under a lake.
pub fn intrusion_center(bounds: Aabb) -> IVec3 {
    let size = bounds.size();
    bounds.min + IVec3::new(size.x * 600 / 1024, 20.min(size.y / 8), size.z * 380 / 1024)
}

/// The processes' settings, tuned for the examples: rain over `rain` (columns
/// `(min x, min z)..(max x, max z)`; `None`: everywhere), an intrusion that
/// rises and cools within a minute in the world of `bounds`. Add it before
/// `DeltaOverlayPlugins`: its settings are inserted first, so the processes
/// keep them (and are seeded by them).
pub struct ExampleGeology {
    pub bounds: Aabb,
    pub rain: Option<(IVec2, IVec2)>,
}

impl Plugin for ExampleGeology {
    fn build(&self, app: &mut App) {
        app.insert_resource(HydraulicSettings { droplets_per_frame: 200, area: self.rain, ..default() })
            .insert_resource(IntrusionSettings {
                source: Some(intrusion_center(self.bounds)),
                radius: 12.0,
                rise_per_second: 8.0,
                // The margin cools in 0.05 s, a voxel d in in 0.05 d² s: a 12-voxel
                // stock solidifies in about 7 s.
                cooling_seconds: 0.05,
                ..default()
            })
            .init_resource::<Shadow>()
            .add_systems(
                Update,
                (meteor.before(GeologySystems::Flush), record.after(GeologySystems::Flush))
                    .before(DeltaOverlaySystems::Ingest),
            );
    }
}

/// Every 50 frames, a deposit lands above the sky: an out-of-bounds update the
/// overlay refuses and counts.
fn meteor(mut updates: MessageWriter<MaterialUpdate>, mut frame: Local<u32>) {
    *frame += 1;
    if (*frame).is_multiple_of(50) {
        updates.write(MaterialUpdate { position: IVec3::new(10, 10_000, 10), material: materials::BASALT });
    }
}

/// Records the frame's updates in the shadow copy.
pub fn record(mut updates: MessageReader<MaterialUpdate>, storage: Res<DeltaStorage>, mut shadow: ResMut<Shadow>) {
    let bounds = storage.bounds();
    for u in updates.read() {
        shadow.sent += 1;
        if bounds.contains(u.position) {
            shadow.voxels.insert(u.position, u.material);
        } else {
            shadow.out_of_bounds += 1;
        }
    }
}

/// What each process did, one line each.
pub fn summary(world: &World) -> Vec<String> {
    let h = world.resource::<HydraulicErosion>().stats;
    let t = world.resource::<ThermalErosion>().stats;
    let i = world.resource::<Intrusion>();
    let d = world.resource::<Deposition>().stats;
    vec![
        format!(
            "hydraulic          {} droplets: {} voxels eroded, {} deposited, {} carried out",
            h.droplets, h.eroded, h.deposited, h.carried_out
        ),
        format!("thermal            {} columns checked: {} voxels slid", t.columns, t.slid),
        format!(
            "intrusion          {} bodies: {} voxels melted, {} cooled, {} molten now",
            i.stats.bodies,
            i.stats.melted,
            i.stats.cooled,
            i.molten()
        ),
        format!(
            "deposition         {} columns checked: {} voxels settled, {} compacted",
            d.columns, d.settled, d.compacted
        ),
    ]
}

/// The main thread's time: each process's and the overlay's ingest, a frame
/// on average, and the processes' time against the ingest's (per update both,
/// as every update the processes make is ingested once).
pub fn main_thread(world: &World, ingest: std::time::Duration, frames: usize) -> Vec<String> {
    let per_frame = |d: std::time::Duration| d.as_secs_f64() * 1e3 / frames.max(1) as f64;
    let times = world.resource::<GeologyTimes>();
    let total: std::time::Duration = times.0.values().map(|t| t.total).sum();
    let each: Vec<String> = times.0.iter().map(|(name, t)| format!("{name} {:.3}", per_frame(t.total))).collect();
    vec![
        format!("processes          {:.3} ms a frame ({})", per_frame(total), each.join(", ")),
        format!(
            "ingest             {:.3} ms a frame; processes / ingest {:.1}x",
            per_frame(ingest),
            total.as_secs_f64() / ingest.as_secs_f64().max(1e-9)
        ),
    ]
}
