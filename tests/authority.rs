//! Who may write a replica, and what the plugin group promises: regression
//! tests for the holes a hostile review of the group found (each failed
//! before its fix).
#![cfg(all(feature = "replication", feature = "geology"))]

use bevy::prelude::*;
use bevy::state::app::StatesPlugin;
use bevy_delta_overlay::prelude::*;
use bevy_delta_overlay::replication::{
    PendingEdits, ReplicationClientPlugin, ReplicationServerPlugin, ReplicationStats, ReplicationStatus,
};
use bevy_replicon::prelude::*;
use bevy_replicon::test_app::ServerTestAppExt;

fn small() -> WorldGen {
    WorldGen { size: IVec3::new(64, 64, 64), sea_level: 30, ..default() }
}

fn replicon(app: &mut App) {
    app.add_plugins((MinimalPlugins, StatesPlugin, RepliconPlugins.set(ServerPlugin::new(PostUpdate))));
}

fn server() -> App {
    let mut app = App::new();
    replicon(&mut app);
    app.add_plugins((DeltaOverlayPlugin { world: small().into(), ..default() }, ReplicationServerPlugin::default()));
    app.finish();
    app.cleanup();
    app
}

/// The documented client: the group with `WorldSource::Server`.
fn client() -> App {
    let mut app = App::new();
    replicon(&mut app);
    app.add_plugins(DeltaOverlayPlugins::new(Update).world(WorldSource::Server));
    app.finish();
    app.cleanup();
    app
}

fn step(server: &mut App, clients: &mut [&mut App]) {
    server.update();
    for c in clients.iter_mut() {
        server.exchange_with_client(c);
        c.update();
        server.exchange_with_client(c);
    }
}

fn seq(app: &App) -> u64 {
    app.world().resource::<DeltaStorage>().sequence()
}

fn status(app: &App) -> ReplicationStatus {
    *app.world().resource::<ReplicationStatus>()
}

fn sync(server: &mut App, c: &mut App) {
    server.connect_client(c);
    for _ in 0..200 {
        step(server, &mut [c]);
        if matches!(status(c), ReplicationStatus::Synced { .. }) {
            step(server, &mut [c]);
            return;
        }
    }
    panic!("no sync: {:?}", status(c));
}

/// Batches sent through `DeltaSender` on a client go to the server, all of
/// them, over as many frames as needed; none is applied locally (before the
/// fix, batches past the 64 the client took in a frame were).
#[test]
fn a_client_forwards_every_channel_batch_and_applies_none() {
    let mut server = server();
    let mut c = client();
    sync(&mut server, &mut c);
    let before_server = seq(&server);
    let before_client = seq(&c);
    let sender = c.world().resource::<DeltaSender>().clone();
    for i in 0..100 {
        sender.send(vec![MaterialUpdate::new(IVec3::new(i % 64, 62, 1), materials::MAGMA)]).unwrap();
    }
    c.update();
    let pending = c.world().resource::<PendingEdits>().updates.len();
    let local = seq(&c) - before_client;
    eprintln!("pending edits {pending}, applied locally {local}, status {:?}", status(&c));
    // Then run the network to see what the server got.
    for _ in 0..20 {
        step(&mut server, &mut [&mut c]);
    }
    let applied = server.world().resource::<ReplicationStats>().edits_applied;
    eprintln!(
        "server applied {applied} edits (sequence +{}), client status {:?}",
        seq(&server) - before_server,
        status(&c)
    );
    assert_eq!(local, 0, "a client applied {local} of its own updates locally");
    assert_eq!(applied, 100, "edits lost on the way to the server");
}

/// `ReplicationClientPlugin` beside a core plugin whose world is not
/// `WorldSource::Server` is inert; it says so in its status (and a warning)
/// rather than showing "waiting for the server" forever.
#[test]
fn a_client_plugin_without_a_server_source_says_it_is_inactive() {
    let mut server = server();
    let mut c = App::new();
    replicon(&mut c);
    c.insert_resource(DeltaStorage::new(
        WorldGen { size: IVec3::splat(16), ..default() }.build().unwrap(),
        DeltaConfig::default(),
    ));
    c.add_plugins((ReplicationClientPlugin::default(), DeltaOverlayPlugin::default()));
    c.finish();
    c.cleanup();
    server.connect_client(&mut c);
    for _ in 0..20 {
        step(&mut server, &mut [&mut c]);
    }
    assert_eq!(status(&c), ReplicationStatus::Inactive);
}

/// `WorldSource::Server` without the client plugin: the app's updates are not
/// applied to the placeholder world (they were), and an error is logged.
#[test]
fn a_replica_without_a_client_applies_nothing_of_its_own() {
    let mut c = App::new();
    c.add_plugins(MinimalPlugins);
    c.add_plugins(DeltaOverlayPlugin { world: WorldSource::Server, ..default() });
    c.world_mut().write_message(MaterialUpdate::new(IVec3::new(1, 1, 1), materials::MAGMA));
    c.update();
    assert_eq!(seq(&c), 0, "a `WorldSource::Server` app applied its own update");
}

/// The group's documented `.disable::<...>()` of a member works when the world
/// source is `Server` (it panicked: the geology members were not added).
#[test]
fn a_client_group_can_disable_a_geology_member() {
    use bevy_delta_overlay::geology::{GeologyPlugin, HydraulicErosion};
    let r = std::panic::catch_unwind(|| {
        let mut app = App::new();
        replicon(&mut app);
        app.add_plugins(
            DeltaOverlayPlugins::new(Update)
                .world(WorldSource::Server)
                .build()
                .disable::<GeologyPlugin<HydraulicErosion>>(),
        );
    });
    assert!(r.is_ok(), "disable::<GeologyPlugin<HydraulicErosion>>() panicked on a client group");
}

/// Member order does not change `GeologyProcesses` (what the debug panel
/// lists, in that order); it did, and `tests/plugin_group.rs` compared only
/// resource types (it now compares values too).
#[test]
fn member_order_leaves_the_process_list_alone() {
    use bevy_delta_overlay::geology::*;
    let build = |flip: bool| {
        let mut app = App::new();
        app.add_plugins(MinimalPlugins);
        app.add_plugins(DeltaOverlayPlugin { world: small().into(), ..default() });
        if flip {
            app.add_plugins((GeologyPlugin::<Deposition>::default(), GeologyPlugin::<Intrusion>::default()));
        } else {
            app.add_plugins((GeologyPlugin::<Intrusion>::default(), GeologyPlugin::<Deposition>::default()));
        }
        app.world().resource::<GeologyProcesses>().0.iter().map(|p| p.name).collect::<Vec<_>>()
    };
    assert_eq!(build(false), build(true));
}

/// Settings inserted after the plugins (as `insert_resource` often is) seed
/// the process too (they set only the tunables: it was seeded at build).
#[test]
fn settings_inserted_after_the_group_seed_the_process() {
    use bevy_delta_overlay::geology::*;
    let run = |before: bool| {
        let mut app = App::new();
        app.add_plugins(MinimalPlugins);
        let s = HydraulicSettings { seed: 12345, ..default() };
        if before {
            app.insert_resource(s.clone());
        }
        app.add_plugins(DeltaOverlayPlugins::new(Update).world(small()));
        if !before {
            app.insert_resource(s);
        }
        for _ in 0..10 {
            app.update();
        }
        app.world().resource::<DeltaStorage>().digest()
    };
    assert_eq!(run(true), run(false), "same settings, different world");
}

/// The group (replication feature on, nothing served) in a plain app: no
/// replicon needed.
#[test]
fn the_group_without_serve_needs_no_replicon() {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins);
    app.add_plugins(DeltaOverlayPlugins::new(Update).world(small()));
    app.update();
    app.world_mut().write_message(MaterialUpdate::new(IVec3::new(1, 1, 1), materials::MAGMA));
    app.update();
    assert!(seq(&app) > 0);
}

/// A producer in `Ingest` before `ApplyUpdates` (where the `ApplyUpdates`
/// docs invite it) cannot write a replica, whichever was added first (its
/// messages raced the client's `take_updates`, which ran before ingest).
#[test]
fn a_producer_before_apply_updates_cannot_write_a_replica() {
    use bevy_delta_overlay::plugin::ApplyUpdates;
    let mut leaked = 0;
    for order in 0..2 {
        let mut c = App::new();
        replicon(&mut c);
        let produce = |mut w: MessageWriter<MaterialUpdate>, mut i: Local<i32>| {
            *i += 1;
            w.write(MaterialUpdate::new(IVec3::new(*i % 16, 1, 1), materials::MAGMA));
        };
        if order == 0 {
            c.add_systems(Update, produce.in_set(DeltaOverlaySystems::Ingest).before(ApplyUpdates));
            c.add_plugins(DeltaOverlayPlugins::new(Update).world(WorldSource::Server));
        } else {
            c.add_plugins(DeltaOverlayPlugins::new(Update).world(WorldSource::Server));
            c.add_systems(Update, produce.in_set(DeltaOverlaySystems::Ingest).before(ApplyUpdates));
        }
        c.edit_schedule(Update, |s| {
            s.set_executor(bevy::ecs::schedule::SingleThreadedExecutor::new());
        });
        c.finish();
        c.cleanup();
        for _ in 0..20 {
            c.update();
        }
        eprintln!("order {order}: local sequence {}", seq(&c));
        leaked += seq(&c);
    }
    assert_eq!(leaked, 0, "a client applied its own updates");
}

/// A worker thread feeding `DeltaSender` slowly (a few batches a frame): a
/// batch landing between the client's `take_updates` and the overlay's ingest
/// was applied locally; ingest no longer runs on a replica.
#[test]
fn a_worker_thread_cannot_write_a_replica_between_systems() {
    let mut c = client();
    let sender = c.world().resource::<DeltaSender>().clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    let worker = std::thread::spawn(move || {
        let mut i = 0;
        while !s2.load(std::sync::atomic::Ordering::Relaxed) {
            i += 1;
            // Never more than 4 batches waiting: far under the 64 taken a frame.
            if sender.backlog() < 4 {
                let _ = sender
                    .try_send(vec![MaterialUpdate::new(IVec3::new(i % 16, 1, 1), MaterialId((i % 7) as u16 + 1))]);
            }
            std::thread::sleep(std::time::Duration::from_micros(20));
        }
    });
    for _ in 0..1000 {
        c.update();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    worker.join().unwrap();
    eprintln!("local sequence {}", seq(&c));
    assert_eq!(seq(&c), 0, "a client applied its own updates");
}

/// A `WorldSource::File` that cannot be opened: `WorldOrigin` does not say
/// `File` (it did, over a generated world).
#[test]
fn an_unopenable_file_is_not_reported_as_the_origin() {
    use bevy_delta_overlay::persistence::StoreOptions;
    use bevy_delta_overlay::plugin::{WorldFile, WorldOrigin};
    let path = std::env::temp_dir().join(format!("review22-garbage-{}.redb", std::process::id()));
    std::fs::write(&path, b"not a redb file at all, just garbage bytes").unwrap();
    let options = StoreOptions { generator: small(), ..default() };
    let mut app = App::new();
    app.add_plugins(MinimalPlugins);
    app.add_plugins(DeltaOverlayPlugins::new(Update).world(WorldSource::File {
        path: path.clone(),
        options,
        on_bad_file: default(),
    }));
    let origin = *app.world().resource::<WorldOrigin>();
    let has_file = app.world().contains_resource::<WorldFile>();
    std::fs::remove_file(&path).ok();
    eprintln!("origin {origin:?}, WorldFile exists: {has_file}");
    assert!(has_file || origin != WorldOrigin::File, "origin File without a file");
}

/// `.serve()` in an app without bevy_replicon's plugins: a clear panic at
/// build, not messages that silently go nowhere.
#[test]
#[should_panic(expected = "RepliconPlugins")]
fn serve_without_replicon() {
    let mut app = App::new();
    app.add_plugins(MinimalPlugins);
    app.add_plugins(DeltaOverlayPlugins::new(Update).world(small()).serve());
    app.finish();
    app.cleanup();
    app.update();
}
