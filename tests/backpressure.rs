//! Backpressure in time: a frame's updates past the ingest budget, or past the
//! overlay's hard cap while a consolidation catches up, wait in the plugin's
//! backlog in order; a full backlog refuses (typed, counted); nothing stalls.

use bevy::prelude::*;
use bevy_delta_overlay::prelude::*;
use bevy_delta_overlay::{Aabb, VoxelError};
use std::time::Duration;

const WORLD: Aabb = Aabb::new(IVec3::new(0, 0, 0), IVec3::new(128, 64, 128));
const ROCK: MaterialId = MaterialId(1);

fn app(config: DeltaConfig, settings: impl FnOnce(&mut DeltaOverlaySettings)) -> App {
    let mut app = App::new();
    let base = BaseIndex::uniform(WORLD, ROCK).unwrap();
    app.insert_resource(DeltaStorage::new(base, config.clone()));
    let mut s = DeltaOverlaySettings::from_config(config);
    settings(&mut s);
    app.insert_resource(s);
    app.add_plugins((bevy::app::TaskPoolPlugin::default(), DeltaOverlayPlugin::default()));
    app
}

/// `n` pseudo-random updates (the same every run).
fn updates(n: usize, seed: u64) -> Vec<MaterialUpdate> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let p = IVec3::new((s % 128) as i32, ((s >> 16) % 64) as i32, ((s >> 32) % 128) as i32);
            MaterialUpdate::new(p, MaterialId(2 + (s >> 60) as u16 % 5))
        })
        .collect()
}

fn stats(app: &App) -> &DeltaStats {
    app.world().resource::<DeltaStats>()
}

fn storage(app: &App) -> &DeltaStorage {
    app.world().resource::<DeltaStorage>()
}

/// The world after applying `all` in order to a plain storage.
fn replay(all: &[MaterialUpdate]) -> u64 {
    let base = BaseIndex::uniform(WORLD, ROCK).unwrap();
    let mut world = DeltaStorage::new(base, DeltaConfig { hard_cap: 1 << 24, threshold: 1 << 23, ..default() });
    world.batch_update(all.iter().copied());
    world.flush();
    world.digest()
}

#[test]
fn a_flood_waits_in_order_and_never_stalls_a_frame() {
    let config = DeltaConfig { threshold: 2_000, hard_cap: 12_000, ..default() };
    // A zero budget: one chunk a frame, so the backlog is sure to be used.
    let mut app = app(config, |s| s.ingest_budget = Duration::ZERO);
    let first = updates(60_000, 7);
    app.world_mut().write_message_batch(first.iter().copied());
    app.update();
    assert!(stats(&app).ingest_backlog > 40_000, "most of the flood waits: {}", stats(&app).ingest_backlog);
    // Later frames' updates queue behind it: a voxel written in both keeps the later value.
    let second = updates(3_000, 7);
    let second: Vec<_> = second.into_iter().map(|u| MaterialUpdate::new(u.position, MaterialId(9))).collect();
    app.world_mut().write_message_batch(second.iter().copied());
    let mut frames = 0;
    while stats(&app).ingest_backlog > 0 || storage(&app).in_flight() {
        app.update();
        frames += 1;
        assert!(storage(&app).delta_count() <= 12_000, "the backlog keeps the overlay under its cap");
        assert!(frames < 20_000, "the backlog drains");
        std::thread::sleep(Duration::from_micros(200));
    }
    let finished = storage(&app).stats().consolidation.finished;
    assert_eq!(finished.backpressure, 0, "no synchronous consolidation ran in a frame");
    assert!(finished.total() > 0);
    let all: Vec<_> = first.into_iter().chain(second).collect();
    app.world_mut().resource_mut::<DeltaStorage>().flush();
    assert_eq!(storage(&app).digest(), replay(&all), "every update applied, in order");
    assert_eq!(storage(&app).query(all[59_999 + 3_000].position).unwrap(), MaterialId(9));
}

#[test]
fn a_full_backlog_refuses_with_a_typed_error_and_channel_batches_wait() {
    let mut app = app(DeltaConfig::default(), |s| {
        s.ingest_budget = Duration::ZERO;
        s.max_backlog = 10_000;
    });
    #[derive(Resource, Default)]
    struct Refused(Vec<RejectedUpdate>);
    app.init_resource::<Refused>();
    app.add_systems(
        Update,
        (|mut r: MessageReader<RejectedUpdate>, mut out: ResMut<Refused>| out.0.extend(r.read().cloned()))
            .after(DeltaOverlaySystems::Ingest),
    );
    let flood = updates(15_000, 3);
    app.world_mut().write_message_batch(flood.iter().copied());
    let sender = app.world().resource::<DeltaSender>().clone();
    sender.send(updates(100, 5)).unwrap();
    app.update();
    let refused = &app.world().resource::<Refused>().0;
    assert_eq!(refused.len(), 5_000);
    assert_eq!(stats(&app).rejects_this_frame, 5_000);
    assert!(refused.iter().all(|r| r.error == VoxelError::Backlogged { capacity: 10_000 }));
    assert_eq!(refused[0].update, flood[10_000], "the last updates are refused, in order");
    assert_eq!(stats(&app).channel_backlog, 1, "the channel batch waits in its channel");
    for _ in 0..100 {
        app.update();
    }
    assert_eq!((stats(&app).ingest_backlog, stats(&app).channel_backlog), (0, 0));
    app.world_mut().resource_mut::<DeltaStorage>().flush();
    let accepted: Vec<_> = flood[..10_000].iter().copied().chain(updates(100, 5)).collect();
    assert_eq!(storage(&app).digest(), replay(&accepted));
}

#[test]
fn without_auto_consolidation_the_cap_falls_back_to_the_storage_backpressure() {
    let config = DeltaConfig { threshold: 1_000, hard_cap: 5_000, ..default() };
    let mut app = app(config, |s| {
        s.auto_consolidate = false;
        s.ingest_budget = Duration::from_secs(60);
    });
    let flood = updates(20_000, 11);
    app.world_mut().write_message_batch(flood.iter().copied());
    app.update();
    assert_eq!(stats(&app).ingest_backlog, 0, "nothing would consolidate: no waiting at the cap");
    assert!(storage(&app).stats().consolidation.finished.backpressure > 0);
    app.world_mut().resource_mut::<DeltaStorage>().flush();
    assert_eq!(storage(&app).digest(), replay(&flood));
}

/// The ingest waits at the hard cap for a consolidation to bring the overlay
/// down. A strategy that would take nothing then (time-based batching takes
/// only deltas older than `max_age`, 5 minutes, and a flood is young) must not
/// leave it waiting: at the cap the plugin merges the oldest half, whatever
/// the strategy.
#[test]
fn a_flood_under_time_based_batching_drains() {
    let bounds = Aabb::new(IVec3::ZERO, IVec3::new(128, 64, 128));
    let config = DeltaConfig {
        threshold: 2_000,
        hard_cap: 12_000,
        strategy: ConsolidationStrategy::TimeBasedBatching,
        ..default()
    };
    let mut app = App::new();
    app.insert_resource(DeltaStorage::new(BaseIndex::uniform(bounds, MaterialId(1)).unwrap(), config.clone()));
    app.insert_resource(DeltaOverlaySettings::from_config(config));
    app.add_plugins((MinimalPlugins, DeltaOverlayPlugin::default()));
    let updates = updates(60_000, 17);
    app.update();
    app.world_mut().write_message_batch(updates.iter().copied());
    app.update();
    assert!(app.world().resource::<DeltaStats>().ingest_backlog > 0, "the flood waits at first");
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(3) && app.world().resource::<DeltaStats>().ingest_backlog > 0 {
        app.update();
        std::thread::sleep(Duration::from_millis(2));
    }
    let stats = app.world().resource::<DeltaStats>();
    assert_eq!(stats.ingest_backlog, 0, "after 3 s the flood still waits: overlay {}", storage(&app).delta_count());
}
