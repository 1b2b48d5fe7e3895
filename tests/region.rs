//! Replication by region of a paged world: a server and clients as Apps in
//! one process, joined by bevy_replicon's test harness (no socket). Each
//! test ends by reading back, on the client, every voxel the server edited
//! in the client's received sectors, and sampled voxels there, against the
//! server's world.

#[cfg(feature = "persistence")]
mod paging_support;
mod region_support;

use bevy::prelude::*;
use bevy_delta_overlay::paging::Paged;
use bevy_delta_overlay::plugin::PagedStore;
use bevy_delta_overlay::replication::{RegionClientStats, RegionSettings, RegionStats, RegionSync};
use bevy_delta_overlay::{Aabb, MaterialId};
use bevy_replicon::test_app::ServerTestAppExt;
use region_support::*;
use std::collections::HashMap;

fn server(file: Option<std::path::PathBuf>) -> App {
    server_with(file, RegionSettings::default())
}

fn client(at: IVec3) -> (App, Entity) {
    client_with(at, settings())
}

/// `n` edits on the server, half near `near` (the clients' side of the
/// world), recorded in `truth`.
fn edit(server: &mut App, rng: &mut Rng, n: usize, near: Aabb, truth: &mut HashMap<IVec3, MaterialId>) {
    let mut store = server.world_mut().resource_mut::<PagedStore>();
    let bounds = store.bounds();
    for i in 0..n {
        let p = rng.point(if i % 2 == 0 { near } else { bounds });
        let m = MaterialId((rng.next() % 5) as u16);
        store.update(p, m).unwrap();
        truth.insert(p, m);
    }
}

/// Every edited voxel, and sampled ones, of each sector the client received
/// and holds resident reads as the server's; returns how many were compared.
fn assert_follows(server: &mut App, client: &App, truth: &HashMap<IVec3, MaterialId>, rng: &mut Rng) -> usize {
    let (copy, sync) = (client.world().resource::<PagedStore>(), client.world().resource::<RegionSync>());
    let mut compared = 0;
    let received = |p: IVec3| copy.sector_of(p).is_ok_and(|k| sync.is_received(k) && copy.is_sector_resident(k));
    for (&p, &m) in truth.iter().filter(|(p, _)| received(**p)) {
        assert_eq!(copy.get(p).unwrap(), Paged::Resident(m), "edited voxel {p}");
        compared += 1;
    }
    let mut truth_store = server.world_mut().resource_mut::<PagedStore>();
    let keys: Vec<IVec2> = copy.wanted_sectors().iter().copied().filter(|k| sync.is_received(*k)).collect();
    for key in keys {
        let b = copy.sector_bounds(key).unwrap();
        for _ in 0..200 {
            let p = rng.point(b);
            assert_eq!(copy.get(p).unwrap(), Paged::Resident(truth_store.get_blocking(p).unwrap()), "voxel {p}");
            compared += 1;
        }
    }
    compared
}

#[test]
fn clients_follow_their_regions_exactly_as_the_server_edits_and_they_move() {
    let mut server = server(None);
    let (a, ea) = client(IVec3::new(200, 40, 200));
    let (b, _) = client(IVec3::new(800, 40, 700));
    let mut clients = vec![a, b];
    for c in &mut clients {
        server.connect_client(c);
    }
    let (mut rng, mut truth) = (Rng(11), HashMap::new());
    let near = Aabb::new(IVec3::new(100, 0, 100), IVec3::new(500, 64, 300));
    for frame in 0..240 {
        edit(&mut server, &mut rng, 60, near, &mut truth);
        if frame % 40 == 39 {
            // Client a wanders along x and back: sectors leave its region
            // and come back (and are sent again).
            let x = [300.0, 420.0, 300.0, 160.0, 300.0, 420.0][frame / 40];
            clients[0].world_mut().entity_mut(ea).insert(Transform::from_xyz(x, 40.0, 200.0));
        }
        step(&mut server, &mut clients);
    }
    settle(&mut server, &mut clients);
    // The server holds no client's region resident: it reads their edits.
    assert_eq!(server.world().resource::<PagedStore>().stats().generated, 0);
    for c in &clients {
        assert!(assert_follows(&mut server, c, &truth, &mut rng) > 1000);
        let stats = *c.world().resource::<RegionClientStats>();
        assert_eq!((stats.malformed, stats.edits_refused, stats.refused_worlds), (0, 0, 0), "{stats:?}");
    }
    // Only its region's edits reached b (away from the edits near a).
    let kept = clients[1].world().resource::<PagedStore>().stats().edits;
    assert!(kept < truth.len() / 10, "{kept} of {} edits", truth.len());
    let stats = *server.world().resource::<RegionStats>();
    assert_eq!((stats.clients, stats.malformed, stats.disconnected), (2, 0, 0), "{stats:?}");
    assert!(stats.changes_sent > 0 && stats.sectors_sent > 0);
}

/// A late joiner is sent what the file holds (acknowledged, let go of by
/// memory) merged with what memory holds (not yet flushed or acknowledged).
#[cfg(feature = "persistence")]
#[test]
fn a_late_joiner_gets_the_edits_from_the_file_and_from_memory() {
    let dir = paging_support::Dir::new("region");
    let mut server = server(Some(dir.file()));
    let (mut rng, mut truth) = (Rng(5), HashMap::new());
    let near = Aabb::new(IVec3::new(100, 0, 100), IVec3::new(400, 64, 400));
    for _ in 0..60 {
        edit(&mut server, &mut rng, 200, near, &mut truth);
        server.update();
    }
    {
        let mut store = server.world_mut().resource_mut::<PagedStore>();
        for _ in 0..100 {
            store.flush().unwrap();
            // Every batch handed over (the writer may have refused the last
            // while two were in flight: the next round hands it over).
            store.wait_durable(u64::MAX).unwrap();
            store.tick();
            if store.stats().edits == 0 {
                break;
            }
        }
        assert_eq!(store.stats().edits, 0, "memory let go of the acknowledged edits");
    }
    // Some edits again, over voxels the file has: memory's must win.
    let again: Vec<IVec3> = truth.keys().copied().take(500).collect();
    for p in again {
        let m = MaterialId(7);
        server.world_mut().resource_mut::<PagedStore>().update(p, m).unwrap();
        truth.insert(p, m);
    }
    let (c, _) = client(IVec3::new(250, 40, 250));
    let mut clients = vec![c];
    server.connect_client(&mut clients[0]);
    settle(&mut server, &mut clients);
    assert!(assert_follows(&mut server, &clients[0], &truth, &mut rng) > 5000);
    assert_eq!(server.world().resource::<RegionStats>().read_failures, 0);
}

/// A change log too small for a frame's edits: every client is told and
/// sent its sectors again, and still follows exactly.
#[test]
fn changes_lost_are_sent_again_as_sectors() {
    let mut server = server(None);
    server.insert_resource(RegionSettings { max_log: 50, ..RegionSettings::default() });
    let (c, _) = client(IVec3::new(200, 40, 200));
    let mut clients = vec![c];
    server.connect_client(&mut clients[0]);
    settle(&mut server, &mut clients);
    let (mut rng, mut truth) = (Rng(3), HashMap::new());
    let near = Aabb::new(IVec3::new(120, 0, 120), IVec3::new(280, 64, 280));
    for frame in 0..30 {
        // Over the log's 50 every other frame.
        edit(&mut server, &mut rng, if frame % 2 == 0 { 120 } else { 20 }, near, &mut truth);
        step(&mut server, &mut clients);
    }
    settle(&mut server, &mut clients);
    assert!(assert_follows(&mut server, &clients[0], &truth, &mut rng) > 500);
    assert!(server.world().resource::<RegionStats>().logs_lost >= 15);
}
