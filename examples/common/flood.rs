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
    start: Option<(Instant, Option<(u64, u64)>)>,
    pub frames: Vec<Duration>,
    /// The ingest's part of each frame.
    pub ingest: Vec<Duration>,
    /// Of each frame, the time the main thread waited for a core (other
    /// threads of the process, or other processes, were running).
    pub waited: Vec<Duration>,
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

/// The store's worst frame.
pub struct Worst {
    /// Its wall time, the ingest's part and the time the thread waited for a core.
    pub wall: Duration,
    pub ingest: Duration,
    pub waited: Duration,
    /// Frames over 50 ms of wall time, and over 50 ms on a core (wall less waits).
    pub over: usize,
    pub over_on_core: usize,
}

impl Worst {
    /// The figures as a report's words.
    pub fn describe(&self) -> String {
        format!(
            "max {:.2} ms a frame (ingest {:.2} ms, waiting for a core {:.2} ms), {} frames over 50 ms ({} on a core)",
            self.wall.as_secs_f64() * 1e3,
            self.ingest.as_secs_f64() * 1e3,
            self.waited.as_secs_f64() * 1e3,
            self.over,
            self.over_on_core
        )
    }
}

/// The store's worst frame, and how many took over 50 ms.
pub fn worst(world: &World) -> Worst {
    let times = world.resource::<StoreTimes>();
    let (at, wall) = times.frames.iter().copied().enumerate().max_by_key(|(_, t)| *t).unwrap_or_default();
    let limit = Duration::from_millis(50);
    let on_core = |i: usize| times.frames[i].saturating_sub(times.waited.get(i).copied().unwrap_or_default());
    Worst {
        wall,
        ingest: times.ingest.get(at).copied().unwrap_or_default(),
        waited: times.waited.get(at).copied().unwrap_or_default(),
        over: times.frames.iter().filter(|t| **t > limit).count(),
        over_on_core: (0..times.frames.len()).filter(|&i| on_core(i) > limit).count(),
    }
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

/// This thread's time on a core and waiting for one, in ns (Linux's
/// schedstat; `None` elsewhere).
fn schedstat() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().ok());
    Some((fields.next()??, fields.next()??))
}

fn store_start(mut times: ResMut<StoreTimes>) {
    times.start = Some((Instant::now(), schedstat()));
}

fn store_end(mut times: ResMut<StoreTimes>, stats: Res<DeltaStats>) {
    if let Some((start, at)) = times.start.take() {
        times.frames.push(start.elapsed());
        times.ingest.push(stats.ingest_time);
        let waited = at.zip(schedstat()).map_or(0, |(a, b)| b.1.saturating_sub(a.1));
        times.waited.push(Duration::from_nanos(waited));
    }
}

/// The flood's lines of the report.
pub fn report(world: &World) -> Vec<String> {
    let times = world.resource::<StoreTimes>();
    let stats = world.resource::<DeltaStats>();
    let w = self::worst(world);
    vec![
        format!("flood              {} updates sent in the burst", times.sent),
        format!("store time         {}, {} updates still waiting", w.describe(), stats.ingest_backlog),
    ]
}
