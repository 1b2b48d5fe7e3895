//! Replication under conditions the happy path does not meet: a direct write
//! on the server in a snapshot frame, a server that stops and starts again, a
//! client world that drifts without its sequence moving.

mod net;

use bevy::prelude::*;
use bevy_delta_overlay::prelude::*;
use bevy_delta_overlay::replication::{ReplicationClientStats, ReplicationSettings};
use bevy_replicon::prelude::*;
use bevy_replicon::test_app::ServerTestAppExt;
use net::*;
use std::time::{Duration, Instant};

fn stats(app: &App) -> ReplicationClientStats {
    *app.world().resource::<ReplicationClientStats>()
}

/// Whether the server's direct writer runs.
#[derive(Resource)]
struct Writing(bool);

/// The server's own system writes the world directly after the frame's feed
/// was drained (between `Publish` and `Forward`): a snapshot taken that frame
/// holds changes the next batch repeats. The joiner gets only what it lacks.
#[test]
fn a_direct_write_in_a_snapshot_frame_does_not_diverge_a_joiner() {
    let mut server = server(ReplicationSettings::default());
    server.insert_resource(Writing(true)).add_systems(
        Update,
        (|mut world: ResMut<DeltaStorage>, writing: Res<Writing>, mut n: Local<i32>| {
            if !writing.0 {
                return;
            }
            *n += 1;
            let min = world.bounds().min;
            // Positions in decreasing voxel order: a cut of the sorted batch
            // would keep the wrong ones.
            for i in 0..4 {
                let p = min + IVec3::new(60 - i * 7 - *n % 5, 40, 50 - i);
                let _ = world.update(p, MaterialId(2 + ((*n + i) % 5) as u16));
            }
        })
        .after(DeltaOverlaySystems::Publish)
        .before(DeltaOverlaySystems::Forward),
    );
    for _ in 0..3 {
        server.update();
    }
    let mut clients = vec![client()];
    server.connect_client(&mut clients[0]);
    // Updates ingested each frame too: the batch after a snapshot holds both
    // changes the snapshot has (the direct writes) and changes it lacks.
    let (mut rng, bounds) = (Rng(21), storage(&server).bounds());
    for _ in 0..30 {
        let edits = rng.edits(50, bounds);
        write(&mut server, &edits);
        step(&mut server, &mut clients);
    }
    server.insert_resource(Writing(false));
    settle(&mut server, &mut clients);
    assert_converged(&server, &clients, &mut Rng(3));
    assert_eq!(stats(&clients[0]).divergences, 0);
    assert_eq!(stats(&clients[0]).resyncs, 0, "joined once, never asked again");
}

/// A server that stops and runs again forgets its cached snapshot: a client
/// joining afterwards gets the world as it is now.
#[test]
fn a_restarted_server_sends_joiners_its_world_of_now() {
    let mut server = server(ReplicationSettings::default());
    let mut first = vec![client()];
    server.connect_client(&mut first[0]);
    settle(&mut server, &mut first);
    server.disconnect_client(&mut first[0]);
    server.world_mut().resource_mut::<NextState<ServerState>>().set(ServerState::Stopped);
    server.update();
    let mut rng = Rng(5);
    let bounds = storage(&server).bounds();
    for _ in 0..10 {
        let edits = rng.edits(300, bounds);
        write(&mut server, &edits);
        server.update();
    }
    let mut clients = vec![client()];
    server.connect_client(&mut clients[0]);
    settle(&mut server, &mut clients);
    assert_converged(&server, &clients, &mut rng);
}

/// One voxel of a synced client's world changed behind the server's back, its
/// sequence unchanged (a world swapped for a copy): an audit finds it and the
/// world is received again, within 5 s.
#[test]
fn a_client_world_that_drifts_is_detected_and_repaired_within_5_s() {
    let mut server = server(ReplicationSettings { audit_every: Duration::from_millis(100), ..default() });
    let mut clients = vec![client()];
    server.connect_client(&mut clients[0]);
    settle(&mut server, &mut clients);
    let world = storage(&clients[0]);
    let (sequence, bounds) = (world.sequence(), world.bounds());
    let p = bounds.min + IVec3::new(70, 20, 70);
    let mut drifted = DeltaStorage::resume(world.base().clone(), config(), 0);
    let was = drifted.query(p).unwrap();
    drifted.update(p, MaterialId(if was == MaterialId(7) { 8 } else { 7 })).unwrap();
    drifted.flush();
    let mut drifted = DeltaStorage::resume(drifted.base().clone(), config(), sequence);
    drifted.record_changes(DeltaStorage::DEFAULT_CHANGE_CAPACITY);
    clients[0].insert_resource(drifted);
    let start = Instant::now();
    while stats(&clients[0]).divergences == 0 {
        assert!(start.elapsed() < Duration::from_secs(5), "not detected within 5 s");
        step(&mut server, &mut clients);
        std::thread::sleep(Duration::from_millis(2));
    }
    settle(&mut server, &mut clients);
    assert!(start.elapsed() < Duration::from_secs(5), "not repaired within 5 s");
    assert_converged(&server, &clients, &mut Rng(9));
    assert_eq!(stats(&clients[0]).divergences, 1);
}
