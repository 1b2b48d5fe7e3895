//! Headless integration tests of the plugin: an `App` with `TaskPoolPlugin` only
//! (no `TimePlugin`, so message buffers rotate once per update, deterministically).
//! They pass with and without Bevy's `multi_threaded` feature; CI runs both.

use bevy::prelude::*;
use bevy_delta_overlay::prelude::*;
use bevy_delta_overlay::{Aabb, plugin::DeltaOverlayDiagnostics, plugin::FrameChanges};
use std::collections::HashMap;

const WORLD: Aabb = Aabb::new(IVec3::new(-64, 0, -64), IVec3::new(64, 64, 64));
const ROCK: MaterialId = MaterialId(1);

fn app(config: DeltaConfig) -> App {
    let mut app = App::new();
    let base = BaseIndex::uniform(WORLD, ROCK).unwrap();
    app.insert_resource(DeltaStorage::new(base, config));
    app.add_plugins((bevy::app::TaskPoolPlugin::default(), DeltaOverlayPlugin::default()));
    app
}

fn send(app: &mut App, updates: &[(IVec3, MaterialId)]) {
    for &(position, material) in updates {
        app.world_mut().write_message(MaterialUpdate { position, material });
    }
}

fn storage(app: &App) -> &DeltaStorage {
    app.world().resource::<DeltaStorage>()
}

fn total(app: &App) -> u64 {
    storage(app).stats().consolidation.finished.total()
}

/// Runs frames until no consolidation is in flight (bounded).
fn settle(app: &mut App) -> usize {
    for frame in 0..2000 {
        app.update();
        if !storage(app).in_flight() && !app.world().resource::<DeltaStats>().task_running {
            return frame;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    panic!("a consolidation did not finish within 2000 frames");
}

#[test]
fn updates_sent_in_a_frame_are_readable_after_its_ingest() {
    let mut app = app(DeltaConfig::default());
    #[derive(Resource, Default)]
    struct Seen(Vec<MaterialId>);
    app.init_resource::<Seen>();
    app.add_systems(
        Update,
        (
            (|mut w: MessageWriter<MaterialUpdate>| {
                w.write(MaterialUpdate { position: IVec3::new(1, 2, 3), material: MaterialId(7) });
            })
            .before(DeltaOverlaySystems::Ingest),
            (|s: Res<DeltaStorage>, mut seen: ResMut<Seen>| seen.0.push(s.query(IVec3::new(1, 2, 3)).unwrap()))
                .after(DeltaOverlaySystems::Ingest),
        ),
    );
    app.update();
    assert_eq!(app.world().resource::<Seen>().0, vec![MaterialId(7)], "visible in the same frame");
    assert_eq!(app.world().resource::<DeltaStats>().updates_this_frame, 1);
}

#[test]
fn consolidation_runs_on_the_pool_and_lands_in_the_base() {
    let mut app =
        app(DeltaConfig { threshold: 10, strategy: ConsolidationStrategy::LazyThreshold, ..Default::default() });
    let updates: Vec<_> = (0..40).map(|i| (IVec3::new(i - 20, 5, 3), MaterialId(2))).collect();
    send(&mut app, &updates);
    app.update();
    assert!(storage(&app).in_flight() || total(&app) > 0, "a job was started");
    settle(&mut app);
    let s = storage(&app);
    assert!(s.stats().consolidation.finished.lazy >= 1);
    assert!(s.delta_count() < 40);
    let in_base = updates.iter().filter(|(p, m)| s.base().get(*p).unwrap() == *m).count();
    assert_eq!(in_base + s.delta_count(), 40, "every update is in the base or still a delta");
    for &(p, m) in &updates {
        assert_eq!(s.query(p).unwrap(), m);
    }
}

#[test]
fn reads_stay_exact_and_updates_survive_while_a_job_is_in_flight() {
    let mut app =
        app(DeltaConfig { threshold: 16, strategy: ConsolidationStrategy::SpatialClustering, ..Default::default() });
    let mut shadow: HashMap<IVec3, MaterialId> = HashMap::new();
    let mut seen_in_flight = 0;
    for frame in 0..200i32 {
        // Overwrite earlier voxels too, so updates land on sealed deltas.
        let batch: Vec<_> = (0..8)
            .map(|i| {
                let p = IVec3::new((frame * 3 + i) % 50 - 25, (frame + i) % 7, i);
                (p, MaterialId(((frame + i) % 5) as u16))
            })
            .collect();
        send(&mut app, &batch);
        shadow.extend(batch.iter().copied());
        app.update();
        let s = storage(&app);
        seen_in_flight += usize::from(s.in_flight());
        for (&p, &m) in &shadow {
            assert_eq!(s.query(p).unwrap(), m, "frame {frame}: stale read at {p}");
        }
    }
    settle(&mut app);
    let s = storage(&app);
    assert!(s.stats().consolidation.finished.total() > 5);
    if cfg!(feature = "multi_threaded") {
        // Single-threaded pools finish a job inside `spawn`, so in-flight frames
        // are only guaranteed with real threads; there they are the common case.
        assert!(seen_in_flight > 0);
    }
    app.world_mut().write_message(FlushDeltas);
    app.update();
    let s = storage(&app);
    assert_eq!(s.delta_count(), 0);
    for (&p, &m) in &shadow {
        assert_eq!(s.base().get(p).unwrap(), m, "flushed into the base");
    }
}

#[test]
fn a_pre_inserted_storage_and_settings_are_kept() {
    let mut app = App::new();
    let base = BaseIndex::uniform(WORLD, MaterialId(9)).unwrap();
    let mut storage = DeltaStorage::new(base, DeltaConfig { threshold: 77, ..Default::default() });
    storage.update(IVec3::ZERO, MaterialId(3)).unwrap();
    app.insert_resource(storage);
    app.add_plugins((bevy::app::TaskPoolPlugin::default(), DeltaOverlayPlugin::default()));
    app.update();
    let s = app.world().resource::<DeltaStorage>();
    assert_eq!(s.query(IVec3::ZERO).unwrap(), MaterialId(3));
    assert_eq!(s.query(IVec3::ONE).unwrap(), MaterialId(9));
    assert_eq!(s.config().threshold, 77);
    assert_eq!(app.world().resource::<DeltaOverlaySettings>().config.threshold, 77);

    // The app's own settings win over the plugin's config.
    let mut app = App::new();
    app.insert_resource(DeltaOverlaySettings::from_config(DeltaConfig { threshold: 5, ..Default::default() }));
    app.insert_resource(DeltaStorage::new(BaseIndex::uniform(WORLD, ROCK).unwrap(), DeltaConfig::default()));
    app.add_plugins((bevy::app::TaskPoolPlugin::default(), DeltaOverlayPlugin::default()));
    app.update();
    assert_eq!(app.world().resource::<DeltaStorage>().config().threshold, 5);
}

#[test]
fn settings_changes_apply_the_next_frame() {
    let mut app = app(DeltaConfig { threshold: 1000, ..Default::default() });
    send(&mut app, &(0..50).map(|i| (IVec3::new(i, 1, 1), MaterialId(2))).collect::<Vec<_>>());
    app.update();
    assert_eq!(total(&app), 0, "below the threshold");
    app.world_mut().resource_mut::<DeltaOverlaySettings>().config.threshold = 20;
    app.update();
    settle(&mut app);
    assert_eq!(storage(&app).config().threshold, 20);
    assert!(total(&app) >= 1, "the lowered threshold triggered a consolidation");

    // Paused: nothing starts on its own.
    app.world_mut().resource_mut::<DeltaOverlaySettings>().auto_consolidate = false;
    let before = total(&app);
    send(&mut app, &(0..100).map(|i| (IVec3::new(i - 50, 2, 2), MaterialId(3))).collect::<Vec<_>>());
    for _ in 0..5 {
        app.update();
    }
    assert_eq!(total(&app), before);
    assert!(storage(&app).delta_count() >= 100);
}

#[test]
fn bad_positions_are_rejected_with_a_message_and_nothing_else_is_dropped() {
    let mut app = app(DeltaConfig::default());
    #[derive(Resource, Default)]
    struct Rejected(Vec<RejectedUpdate>);
    app.init_resource::<Rejected>();
    app.add_systems(
        Update,
        (|mut r: MessageReader<RejectedUpdate>, mut out: ResMut<Rejected>| out.0.extend(r.read().copied()))
            .after(DeltaOverlaySystems::Ingest),
    );
    let bad = IVec3::new(0, 1000, 0);
    send(&mut app, &[(IVec3::new(1, 1, 1), MaterialId(4)), (bad, MaterialId(4)), (IVec3::new(2, 2, 2), MaterialId(5))]);
    app.world()
        .resource::<DeltaSender>()
        .send(vec![MaterialUpdate::new(IVec3::new(3, 3, 3), MaterialId(6)), MaterialUpdate::new(bad, MaterialId(6))])
        .unwrap();
    app.update();
    let rejected = &app.world().resource::<Rejected>().0;
    assert_eq!(rejected.len(), 2);
    assert!(rejected.iter().all(|r| r.update.position == bad));
    assert!(matches!(rejected[0].error, VoxelError::OutOfBounds { .. }));
    let s = storage(&app);
    assert_eq!(s.query(IVec3::new(1, 1, 1)).unwrap(), MaterialId(4));
    assert_eq!(s.query(IVec3::new(2, 2, 2)).unwrap(), MaterialId(5));
    assert_eq!(s.query(IVec3::new(3, 3, 3)).unwrap(), MaterialId(6));
    assert_eq!(s.stats().rejects, 2);
    assert_eq!(app.world().resource::<DeltaStats>().rejects_this_frame, 2);
}

#[test]
fn the_channel_delivers_every_batch_exactly_once() {
    let mut app = app(DeltaConfig { threshold: 64, ..Default::default() });
    app.world_mut().resource_mut::<DeltaOverlaySettings>().max_batches_per_frame = 3;
    let sender = app.world().resource::<DeltaSender>().clone();
    // 4 producer threads, 50 batches each. The update count catches a batch
    // applied twice or skipped, the final values catch one applied out of order.
    let producers: Vec<_> = (0..4)
        .map(|t| {
            let sender = sender.clone();
            std::thread::spawn(move || {
                for b in 0..50 {
                    let batch = (0..10)
                        .map(|i| MaterialUpdate::new(IVec3::new(t * 10 + i, b % 8, 7), MaterialId(100 + b as u16)))
                        .collect();
                    sender.send(batch).unwrap();
                }
            })
        })
        .collect();
    let mut frames = 0;
    while producers.iter().any(|p| !p.is_finished()) || sender.backlog() > 0 {
        app.update();
        frames += 1;
        assert!(frames < 10_000, "the channel never drained");
    }
    for p in producers {
        p.join().unwrap();
    }
    settle(&mut app);
    let s = storage(&app);
    assert_eq!(s.stats().updates, 4 * 50 * 10);
    for t in 0..4 {
        for i in 0..10 {
            for y in 0..8 {
                let last = (0..50).filter(|b| b % 8 == y).max().unwrap();
                assert_eq!(s.query(IVec3::new(t * 10 + i, y, 7)).unwrap(), MaterialId(100 + last as u16));
            }
        }
    }
}

#[test]
fn diagnostics_are_registered_and_measured() {
    let mut app = app(DeltaConfig::default());
    send(&mut app, &[(IVec3::new(4, 4, 4), MaterialId(2))]);
    app.update();
    app.update();
    let store = app.world().resource::<bevy::diagnostic::DiagnosticsStore>();
    let deltas = store.get(&DeltaOverlayDiagnostics::DELTAS).and_then(|d| d.value());
    assert_eq!(deltas, Some(1.0));
}

/// Collects the change messages of every frame.
#[derive(Resource, Default)]
struct Seen {
    changed: Vec<VoxelsChanged>,
    finished: Vec<ConsolidationFinished>,
    storage_changed: Vec<bool>,
}

fn watch(app: &mut App) {
    app.init_resource::<Seen>().add_systems(
        Update,
        (|mut c: MessageReader<VoxelsChanged>,
          mut f: MessageReader<ConsolidationFinished>,
          s: Res<DeltaStorage>,
          mut seen: ResMut<Seen>| {
            seen.changed.extend(c.read().cloned());
            seen.finished.extend(f.read().cloned());
            seen.storage_changed.push(s.is_changed());
        })
        .after(DeltaOverlaySystems::Consolidate),
    );
}

#[test]
fn a_frame_of_updates_makes_one_voxels_changed_naming_exactly_the_changed_bricks() {
    let mut app = app(DeltaConfig { threshold: 1_000_000, ..Default::default() });
    watch(&mut app);
    app.update(); // the first frame: the storage was just added
    let updates = [
        (IVec3::new(-64, 0, -64), MaterialId(2)),
        (IVec3::new(-63, 1, -64), MaterialId(2)),
        (IVec3::new(5, 40, 17), MaterialId(3)),
        (IVec3::new(63, 63, 63), MaterialId(4)),
        (IVec3::new(5, 40, 17), MaterialId(5)),
    ];
    send(&mut app, &updates);
    app.update();
    let seen = app.world().resource::<Seen>();
    assert_eq!(seen.changed.len(), 1, "one message for the frame");
    let msg = &seen.changed[0];
    assert_eq!(msg.sequences, 1..=5);
    let mut boxes = msg.bricks.clone();
    boxes.sort_by_key(|b| b.min.to_array());
    let brick = |x, y, z| Aabb::from_min_size(IVec3::new(x, y, z), IVec3::splat(16));
    assert_eq!(boxes, vec![brick(-64, 0, -64), brick(0, 32, 16), brick(48, 48, 48)]);
    for &(p, _) in &updates {
        assert!(msg.bricks.iter().any(|b| b.contains(p)), "{p} is covered");
    }
    let frame = app.world().resource::<FrameChanges>().batch.clone();
    assert_eq!(frame.changes().len(), 5);
    assert_eq!(frame.changes()[4].material, MaterialId(5));
    assert!(*seen.storage_changed.last().unwrap(), "the frame with changes marks the storage changed");

    // Writes equal to what the voxels hold: no change, no message, and the
    // resource does not read as changed.
    send(&mut app, &[(IVec3::new(5, 40, 17), MaterialId(5)), (IVec3::new(0, 0, 0), ROCK)]);
    app.update();
    app.update();
    let seen = app.world().resource::<Seen>();
    assert_eq!(seen.changed.len(), 1);
    assert_eq!(seen.storage_changed[seen.storage_changed.len() - 2..], [false, false]);
    assert!(app.world().resource::<FrameChanges>().batch.is_empty());
}

#[test]
fn consolidation_finished_follows_every_consolidation() {
    let mut app =
        app(DeltaConfig { threshold: 8, strategy: ConsolidationStrategy::LazyThreshold, ..Default::default() });
    watch(&mut app);
    for frame in 0..40 {
        let updates: Vec<_> = (0..6).map(|i| (IVec3::new(frame - 20, i, 7 * i - 20), MaterialId(2))).collect();
        send(&mut app, &updates);
        app.update();
    }
    settle(&mut app);
    app.world_mut().write_message(FlushDeltas);
    app.update();
    app.update();
    let finished = total(&app);
    let seen = app.world().resource::<Seen>();
    assert!(finished >= 3, "{finished} consolidations");
    assert_eq!(seen.finished.len() as u64, finished, "one message per consolidation");
    let s = storage(&app);
    assert_eq!(s.delta_count(), 0);
    for m in &seen.finished {
        assert_eq!(m.bricks.len(), m.report.bricks);
        assert!(m.bricks.iter().all(|b| s.bounds().contains_box(b)));
    }
    // The frames where only a consolidation happened did not mark the storage changed.
    assert!(!*seen.storage_changed.last().unwrap());
}
