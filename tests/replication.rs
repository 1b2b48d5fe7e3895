//! Replication: a server and clients as Apps in one process, joined by
//! bevy_replicon's test harness (no socket). Every test ends by comparing each
//! client's world with the server's, voxel for voxel through the digest and at
//! sampled positions.

mod common;
mod net;

use bevy::prelude::*;
use bevy_delta_overlay::{
    DeltaStorage, MaterialId, replication::RefusedReason, replication::ReplicationSettings,
    replication::ReplicationStats, replication::ReplicationStatus,
};
use bevy_replicon::prelude::*;
use bevy_replicon::test_app::ServerTestAppExt;
use net::*;

#[test]
fn three_clients_follow_a_server_under_edits_from_everyone() {
    let mut server = server(ReplicationSettings::default());
    let mut clients = vec![client(), client(), client()];
    for c in &mut clients {
        server.connect_client(c);
    }
    settle(&mut server, &mut clients);
    let bounds = storage(&server).bounds();
    let mut rng = Rng(7);
    for frame in 0..300 {
        let edits = rng.edits(400, bounds);
        write(&mut server, &edits);
        let k = frame % clients.len();
        let edits = rng.edits(150, bounds);
        write(&mut clients[k], &edits);
        step(&mut server, &mut clients);
    }
    settle(&mut server, &mut clients);
    assert_converged(&server, &clients, &mut rng);
    let stats = server.world().resource::<ReplicationStats>().clone();
    assert_eq!(stats.edits_applied, 300 * 150);
    assert_eq!(stats.malformed, 0);
    assert!(stats.changes_sent > 0 && stats.change_bytes > 0);
    // Every peer consolidated on its own: the wire carried changes only.
    for c in &clients {
        assert!(storage(c).stats().consolidation.finished.total() > 0);
    }
    assert!(storage(&server).stats().consolidation.finished.total() > 0);
}

#[test]
fn a_client_joining_late_gets_the_world_and_every_change_after_it() {
    let mut server = server(ReplicationSettings { window_bytes: 1 << 10, ..default() });
    let mut early = vec![client()];
    server.connect_client(&mut early[0]);
    let bounds = storage(&server).bounds();
    let mut rng = Rng(11);
    for _ in 0..30 {
        let edits = rng.edits(500, bounds);
        write(&mut server, &edits);
        step(&mut server, &mut early);
    }
    // The late client joins while edits go on: its snapshot streams over
    // several frames (a small window) while the changes after it queue.
    let mut late = client();
    server.connect_client(&mut late);
    let mut all = vec![early.remove(0), late];
    let mut joining_frames = 0;
    for _ in 0..40 {
        let edits = rng.edits(500, bounds);
        write(&mut server, &edits);
        step(&mut server, &mut all);
        if matches!(status(&all[1]), ReplicationStatus::Joining { .. }) {
            joining_frames += 1;
        }
    }
    assert!(joining_frames > 1, "the snapshot streamed in one frame: the window did not bound it");
    settle(&mut server, &mut all);
    assert_converged(&server, &all, &mut rng);
    let received = &all[1].world().resource::<Seen>().received;
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].bounds, bounds);
}

#[test]
fn a_client_that_reconnects_gets_a_fresh_world() {
    let mut server = server(ReplicationSettings::default());
    let mut clients = vec![client()];
    server.connect_client(&mut clients[0]);
    settle(&mut server, &mut clients);
    let bounds = storage(&server).bounds();
    let mut rng = Rng(3);
    server.disconnect_client(&mut clients[0]);
    assert_eq!(status(&clients[0]), ReplicationStatus::Waiting);
    for _ in 0..10 {
        let edits = rng.edits(500, bounds);
        write(&mut server, &edits);
        server.update();
    }
    server.connect_client(&mut clients[0]);
    settle(&mut server, &mut clients);
    assert_converged(&server, &clients, &mut rng);
    assert_eq!(clients[0].world().resource::<Seen>().received.len(), 2);
}

#[test]
fn edits_outside_the_world_are_refused_and_the_rate_is_enforced() {
    let mut server = server(ReplicationSettings { edits_per_second: 0.0, edit_burst: 100.0, ..default() });
    let mut clients = vec![client()];
    server.connect_client(&mut clients[0]);
    settle(&mut server, &mut clients);
    let bounds = storage(&server).bounds();
    let outside = bounds.max + IVec3::new(5, 0, 0);
    let mut rng = Rng(5);
    let mut edits = vec![(outside, MaterialId(2))];
    edits.extend(rng.edits(150, bounds));
    write(&mut clients[0], &edits);
    settle(&mut server, &mut clients);
    let stats = server.world().resource::<ReplicationStats>().clone();
    assert_eq!(stats.refused_out_of_bounds, 1);
    assert_eq!(stats.edits_applied, 100, "the burst");
    assert_eq!(stats.refused_rate, 50);
    let refused = &clients[0].world().resource::<Seen>().refused;
    assert!(refused.iter().any(|r| r.reason == RefusedReason::OutOfBounds && r.count == 1 && r.first == outside));
    assert!(refused.iter().any(|r| r.reason == RefusedReason::RateLimited && r.count == 50));
    assert_converged(&server, &clients, &mut rng);
}

/// A hostile client: garbage bytes on the wire. It is disconnected and
/// counted; the server and the other client go on.
#[test]
fn a_client_sending_garbage_is_disconnected_and_the_rest_go_on() {
    let mut server = server(ReplicationSettings::default());
    let mut clients = vec![client(), client()];
    for c in &mut clients {
        server.connect_client(c);
    }
    settle(&mut server, &mut clients);
    let bounds = storage(&server).bounds();
    let mut rng = Rng(9);
    // The hostile client's message, raw: a random payload on the crate's
    // channel (the last client channel: registered after replicon's own).
    let channel = clients[1].world().resource::<RepliconChannels>().client_channels().len() - 1;
    let garbage: Vec<u8> = (0..300).map(|_| rng.next() as u8).collect();
    clients[1].world_mut().resource_mut::<ClientMessages>().send(channel, garbage);
    for _ in 0..2 {
        let edits = rng.edits(300, bounds);
        write(&mut server, &edits);
        step(&mut server, &mut clients);
    }
    let stats = server.world().resource::<ReplicationStats>().clone();
    assert_eq!((stats.malformed, stats.disconnected), (1, 1));
    let requests = server.world().resource::<Messages<DisconnectRequest>>();
    assert!(!requests.is_empty(), "the transport was asked to disconnect the client");
    // The transport would drop it now; the harness needs telling.
    let mut hostile = clients.pop().unwrap();
    server.disconnect_client(&mut hostile);
    for _ in 0..10 {
        let edits = rng.edits(300, bounds);
        write(&mut server, &edits);
        write(&mut clients[0], &edits[..50]);
        step(&mut server, &mut clients);
    }
    settle(&mut server, &mut clients);
    assert_converged(&server, &clients, &mut rng);
}

/// A client's world written behind the server's back (directly, not through
/// `MaterialUpdate`) is caught and replaced by a fresh snapshot.
#[test]
fn a_client_world_written_directly_is_resynced() {
    let mut server = server(ReplicationSettings::default());
    let mut clients = vec![client()];
    server.connect_client(&mut clients[0]);
    settle(&mut server, &mut clients);
    let bounds = storage(&server).bounds();
    let p = bounds.min + IVec3::splat(3);
    let was = storage(&clients[0]).query(p).unwrap();
    let other = MaterialId(if was == MaterialId(9) { 8 } else { 9 });
    clients[0].world_mut().resource_mut::<DeltaStorage>().update(p, other).unwrap();
    let mut rng = Rng(13);
    for _ in 0..5 {
        let edits = rng.edits(200, bounds);
        write(&mut server, &edits);
        step(&mut server, &mut clients);
    }
    settle(&mut server, &mut clients);
    assert_converged(&server, &clients, &mut rng);
    assert_eq!(clients[0].world().resource::<Seen>().received.len(), 2, "joined, then resynced");
}

/// A client that keeps a surface index of its replica (for its own reads)
/// finds it exact after the server's changes, and after a resync replaces its
/// world (the index is carried over to the new world).
#[test]
fn a_client_surface_index_stays_exact_through_changes_and_a_resync() {
    let palette = bevy_delta_overlay::Palette::shipped();
    let mut server = server(ReplicationSettings::default());
    let mut clients = vec![client()];
    server.connect_client(&mut clients[0]);
    settle(&mut server, &mut clients);
    clients[0].world_mut().resource_mut::<DeltaStorage>().enable_surfaces(&palette);
    common::assert_surfaces_exact(storage(&clients[0]), &palette);
    let bounds = storage(&server).bounds();
    let mut rng = Rng(21);
    for _ in 0..4 {
        let edits = rng.edits(300, bounds);
        write(&mut server, &edits);
        step(&mut server, &mut clients);
    }
    settle(&mut server, &mut clients);
    common::assert_surfaces_exact(storage(&clients[0]), &palette);
    // Written behind the server's back: the client resyncs to a new world.
    let p = bounds.min + IVec3::splat(2);
    let was = storage(&clients[0]).query(p).unwrap();
    let other = MaterialId(if was == MaterialId(9) { 8 } else { 9 });
    clients[0].world_mut().resource_mut::<DeltaStorage>().update(p, other).unwrap();
    for _ in 0..3 {
        let edits = rng.edits(200, bounds);
        write(&mut server, &edits);
        step(&mut server, &mut clients);
    }
    settle(&mut server, &mut clients);
    assert_eq!(clients[0].world().resource::<Seen>().received.len(), 2, "joined, then resynced");
    assert!(storage(&clients[0]).surfaces_enabled(), "the index was carried to the new world");
    common::assert_surfaces_exact(storage(&clients[0]), &palette);
    assert_converged(&server, &clients, &mut rng);
}
