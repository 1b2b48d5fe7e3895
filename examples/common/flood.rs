//! `--flood N`: a burst of `N` random updates in one frame, to show the
//! ingest's backpressure in time. The burst is recorded in the shadow copy like
//! every other update; the frame's store time (the overlay's system sets, from
//! ingest to stats, persistence included) is kept a frame so the report can
//! give its worst frame. The sender's own time is left out: it is the app's.

use bevy::prelude::*;
use bevy_delta_overlay::prelude::*;
use std::time::{Duration, Instant};

/// Sends `updates` random updates in each of the first `frames` frames.
pub struct Flood {
    pub updates: usize,
    pub frames: u32,
}

/// The store's time each frame, and the burst sent.
#[derive(Resource, Default)]
pub struct StoreTimes {
    start: Option<Instant>,
    pub frames: Vec<Duration>,
    /// The ingest's part of each frame.
    pub ingest: Vec<Duration>,
    pub sent: u64,
}

#[derive(Resource)]
struct Burst {
    updates: usize,
    frames: u32,
    state: u64,
}

impl Plugin for Flood {
    fn build(&self, app: &mut App) {
        app.insert_resource(Burst { updates: self.updates, frames: self.frames, state: 0x9E37_79B9_7F4A_7C15 })
            .add_plugins(StoreClock)
            .add_systems(Update, send.before(GeologySystems::Flush));
    }
}

/// Times the overlay's system sets each frame, from ingest to stats (persistence
/// and replication's sending included) into [`StoreTimes`].
pub struct StoreClock;

impl Plugin for StoreClock {
    fn build(&self, app: &mut App) {
        app.init_resource::<StoreTimes>().add_systems(
            Update,
            (
                store_start.after(super::record).before(DeltaOverlaySystems::Ingest),
                store_end.after(DeltaOverlaySystems::Stats),
            ),
        );
    }
}

/// The store's worst frame, how many frames took over 50 ms, and the
/// ingest's part of the worst frame.
pub fn worst(world: &World) -> (Duration, usize, Duration) {
    let times = world.resource::<StoreTimes>();
    let (at, worst) = times.frames.iter().copied().enumerate().max_by_key(|(_, t)| *t).unwrap_or_default();
    let over = times.frames.iter().filter(|t| **t > Duration::from_millis(50)).count();
    (worst, over, times.ingest.get(at).copied().unwrap_or_default())
}

fn send(
    mut burst: ResMut<Burst>,
    storage: Res<DeltaStorage>,
    mut updates: MessageWriter<MaterialUpdate>,
    mut times: ResMut<StoreTimes>,
) {
    if burst.frames == 0 {
        return;
    }
    burst.frames -= 1;
    let (lo, size) = (storage.bounds().min, storage.bounds().size());
    let materials = [materials::SEDIMENT, materials::BASALT, materials::GRANITE, materials::AIR];
    let mut state = burst.state;
    let mut next = move || {
        // xorshift64*: the burst is the same every run.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let at = |r: u64, n: i32| (r % n.max(1) as u64) as i32;
    updates.write_batch((0..burst.updates).map(|_| {
        let r = next();
        let p = lo + IVec3::new(at(r, size.x), at(r >> 20, size.y), at(r >> 40, size.z));
        MaterialUpdate::new(p, materials[(r >> 60) as usize % materials.len()])
    }));
    times.sent += burst.updates as u64;
    burst.state = next();
}

fn store_start(mut times: ResMut<StoreTimes>) {
    times.start = Some(Instant::now());
}

fn store_end(mut times: ResMut<StoreTimes>, stats: Res<DeltaStats>) {
    if let Some(start) = times.start.take() {
        times.frames.push(start.elapsed());
        times.ingest.push(stats.ingest_time);
    }
}

/// The flood's lines of the report.
pub fn report(world: &World) -> Vec<String> {
    let times = world.resource::<StoreTimes>();
    let stats = world.resource::<DeltaStats>();
    let (worst, over, _) = self::worst(world);
    vec![
        format!("flood              {} updates sent in the burst", times.sent),
        format!(
            "store time         max {:.2} ms a frame, {over} frames over 50 ms, {} updates still waiting",
            worst.as_secs_f64() * 1e3,
            stats.ingest_backlog
        ),
    ]
}
