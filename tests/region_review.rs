//! Review tests of replication by region: each asserts what the docs promise
//! (a received, resident sector reads as the server's; a client applies at
//! most `edits_per_frame` edits a frame, give or take a message; a stopped
//! server lets go of memory) in a case the code got wrong: each failed
//! before its fix (a hostile review's findings).

#[cfg(feature = "persistence")]
mod paging_support;

use bevy::prelude::*;
use bevy::state::app::StatesPlugin;
use bevy::time::TimeUpdateStrategy;
use bevy_delta_overlay::paging::{Paged, PagingSettings};
use bevy_delta_overlay::plugin::{PagedStore, PagingPlugin, WorldInterest};
use bevy_delta_overlay::replication::{
    RegionClientPlugin, RegionClientStats, RegionServerPlugin, RegionSettings, RegionStatus, RegionSync,
};
use bevy_delta_overlay::{Aabb, MaterialId, WorldGen};
use bevy_replicon::prelude::*;
use bevy_replicon::test_app::ServerTestAppExt;
use std::collections::HashMap;
use std::time::Duration;

fn generator() -> WorldGen {
    WorldGen { size: IVec3::new(1024, 64, 1024), sea_level: 30, ..WorldGen::default() }
}

fn settings() -> PagingSettings {
    PagingSettings { sector_columns: 64, resident_budget: 8 << 20, ..PagingSettings::default() }
}

fn base() -> App {
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, StatesPlugin, TransformPlugin))
        .add_plugins(RepliconPlugins.set(ServerPlugin::new(PostUpdate)))
        .insert_resource(TimeUpdateStrategy::ManualDuration(Duration::from_millis(16)));
    app
}

fn server_with(file: Option<std::path::PathBuf>, region: RegionSettings) -> App {
    let mut app = base();
    let paging = PagingPlugin { generator: generator(), settings: settings(), ..default() };
    #[cfg(feature = "persistence")]
    let paging = PagingPlugin { file, ..paging };
    #[cfg(not(feature = "persistence"))]
    let _ = file;
    app.add_plugins((paging, RegionServerPlugin { settings: region }));
    app.finish();
    app.cleanup();
    app
}

fn client_with(at: IVec3, paging: PagingSettings) -> App {
    let mut app = base();
    app.add_plugins(RegionClientPlugin { settings: paging, ..default() });
    app.world_mut().spawn((WorldInterest { radius: 80 }, Transform::from_translation(at.as_vec3())));
    app.finish();
    app.cleanup();
    app
}

fn step(server: &mut App, clients: &mut [App]) {
    server.update();
    for c in clients.iter_mut() {
        server.exchange_with_client(c);
        c.update();
        server.exchange_with_client(c);
    }
}

fn settle(server: &mut App, clients: &mut [App]) {
    for _ in 0..3000 {
        step(server, clients);
        if clients.iter().all(|c| c.world().resource::<RegionStatus>().is_synced()) {
            for _ in 0..3 {
                step(server, clients);
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let states: Vec<RegionStatus> = clients.iter().map(|c| *c.world().resource::<RegionStatus>()).collect();
    panic!("clients never synced: {states:?}");
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn point(&mut self, b: Aabb) -> IVec3 {
        let s = b.size().as_u64vec3();
        let r = self.next();
        b.min + IVec3::new((r % s.x) as i32, ((r >> 20) % s.y) as i32, ((r >> 40) % s.z) as i32)
    }
}

/// The client stands at (200, 40, 200) with a radius of 80: this box is in
/// sectors it follows.
fn near() -> Aabb {
    Aabb::new(IVec3::new(150, 0, 150), IVec3::new(250, 64, 250))
}

/// `n` edits in `near()` on the server (materials 1..=5), into `truth`.
fn edit_near(server: &mut App, rng: &mut Rng, n: usize, truth: &mut HashMap<IVec3, MaterialId>) {
    let mut store = server.world_mut().resource_mut::<PagedStore>();
    for _ in 0..n {
        let p = rng.point(near());
        let m = MaterialId(1 + (rng.next() % 5) as u16);
        store.update(p, m).unwrap();
        truth.insert(p, m);
    }
}

/// The voxels of `truth` in sectors the client received and holds resident
/// that do not read as the server's (`truth` or, when `server` is given,
/// the server's world).
fn wrong(
    client: &App,
    truth: &HashMap<IVec3, MaterialId>,
    mut server: Option<&mut App>,
) -> Vec<(IVec3, Paged<MaterialId>, MaterialId)> {
    let (copy, sync) = (client.world().resource::<PagedStore>(), client.world().resource::<RegionSync>());
    let mut out = Vec::new();
    for (&p, &m) in truth {
        let k = copy.sector_of(p).unwrap();
        if !(sync.is_received(k) && copy.is_sector_resident(k)) {
            continue;
        }
        let expected = match server.as_deref_mut() {
            Some(s) => s.world_mut().resource_mut::<PagedStore>().get_blocking(p).unwrap(),
            None => m,
        };
        let got = copy.get(p).unwrap();
        if got != Paged::Resident(expected) {
            out.push((p, got, expected));
        }
    }
    out.sort_by_key(|(p, _, _)| (p.x, p.y, p.z));
    out
}

/// The change log overflows (more edits in a frame than `max_log`): the
/// server sends every sector again, but the client is not told, keeps its
/// sectors "received" (and `is_synced`) while it lacks the frame's edits and
/// every later change until each sector comes again.
#[cfg(feature = "persistence")]
#[test]
fn review_change_log_overflow_leaves_received_sectors_stale() {
    let dir = paging_support::Dir::new("review-overflow");
    let mut server = server_with(Some(dir.file()), RegionSettings { max_log: 8, ..default() });
    let mut clients = vec![client_with(IVec3::new(200, 40, 200), settings())];
    server.connect_client(&mut clients[0]);
    settle(&mut server, &mut clients);
    let (mut rng, mut truth) = (Rng(3), HashMap::new());
    edit_near(&mut server, &mut rng, 20, &mut truth);
    step(&mut server, &mut clients);
    let status = *clients[0].world().resource::<RegionStatus>();
    let bad = wrong(&clients[0], &truth, None);
    assert!(
        bad.is_empty(),
        "synced: {}, {status:?}; {} of {} edited voxels in received resident sectors are not the server's, e.g. {:?}",
        status.is_synced(),
        bad.len(),
        truth.len(),
        &bad[..bad.len().min(3)]
    );
}

/// The client's world keeps at most its `max_edits` edits: past it an edit
/// is refused (counted). The sector must then not be received (it was, and
/// the client was synced with voxels not the server's, before the fix).
#[test]
fn review_edits_past_the_clients_max_edits_still_mark_the_sector_received() {
    let mut server = server_with(None, RegionSettings::default());
    let paging = PagingSettings { max_edits: 100, ..settings() };
    let mut clients = vec![client_with(IVec3::new(200, 40, 200), paging)];
    let (mut rng, mut truth) = (Rng(5), HashMap::new());
    edit_near(&mut server, &mut rng, 400, &mut truth);
    server.connect_client(&mut clients[0]);
    for _ in 0..300 {
        step(&mut server, &mut clients);
        std::thread::sleep(Duration::from_millis(1));
    }
    let status = *clients[0].world().resource::<RegionStatus>();
    assert!(status.received > 0 && !status.is_synced(), "the sectors refused are not received: {status:?}");
    let status = *clients[0].world().resource::<RegionStatus>();
    let stats = *clients[0].world().resource::<RegionClientStats>();
    let bad = wrong(&clients[0], &truth, None);
    assert!(
        bad.is_empty(),
        "synced: {}, refused {}; {} of {} edited voxels in received resident sectors are not the server's, e.g. {:?}",
        status.is_synced(),
        stats.edits_refused,
        bad.len(),
        truth.len(),
        &bad[..bad.len().min(3)]
    );
}

/// A client that reconnects (to a server of the same generator that lacks
/// some of the edits it was sent before: a restarted server that lost its
/// unflushed edits, a backup, another server of the same seed) keeps the
/// old edits: a sector's edits only add to what it holds, so voxels the new
/// server never edited keep the old server's materials in sectors marked
/// received.
#[test]
fn review_a_reconnected_client_keeps_edits_the_server_does_not_have() {
    let mut a = server_with(None, RegionSettings::default());
    let mut b = server_with(None, RegionSettings::default());
    let (mut rng, mut truth) = (Rng(7), HashMap::new());
    edit_near(&mut a, &mut rng, 50, &mut truth);
    let mut clients = vec![client_with(IVec3::new(200, 40, 200), settings())];
    a.connect_client(&mut clients[0]);
    settle(&mut a, &mut clients);
    assert!(wrong(&clients[0], &truth, Some(&mut a)).is_empty(), "synced with a first");
    a.disconnect_client(&mut clients[0]);
    b.connect_client(&mut clients[0]);
    settle(&mut b, &mut clients);
    let status = *clients[0].world().resource::<RegionStatus>();
    let bad = wrong(&clients[0], &truth, Some(&mut b));
    assert!(
        bad.is_empty(),
        "synced: {}; {} of {} voxels in received resident sectors are not server b's, e.g. (voxel, client, server) {:?}",
        status.is_synced(),
        bad.len(),
        truth.len(),
        &bad[..bad.len().min(3)]
    );
}

/// `edits_per_frame` (default 32,768, "about 3 ms") is "edits received the
/// client applies in a frame at most": one frame of the server's edits in
/// its sectors comes as one changes message of up to 2^20 edits, applied in
/// one frame.
#[test]
fn review_one_changes_message_passes_the_clients_edits_per_frame() {
    let mut server = server_with(None, RegionSettings::default());
    let mut clients = vec![client_with(IVec3::new(200, 40, 200), settings())];
    server.connect_client(&mut clients[0]);
    settle(&mut server, &mut clients);
    let (mut rng, mut truth) = (Rng(9), HashMap::new());
    edit_near(&mut server, &mut rng, 100_000, &mut truth);
    let before = clients[0].world().resource::<RegionClientStats>().changes_applied;
    let t = std::time::Instant::now();
    step(&mut server, &mut clients);
    let applied = clients[0].world().resource::<RegionClientStats>().changes_applied - before;
    let budget = RegionClientPlugin::default().edits_per_frame as u64;
    assert!(
        applied <= budget,
        "one client frame applied {applied} edits (budget {budget}); the step took {:?}",
        t.elapsed()
    );
}

/// The server stops (`ServerState::Stopped`, the world kept) while sector
/// reads are in flight: `send` no longer runs, the reads are never completed
/// or abandoned, and memory never again lets go of a batch the file
/// acknowledged (`note_acknowledged` holds back to the reads' floor): the
/// edits kept grow until `max_edits` refuses every new voxel.
#[cfg(feature = "persistence")]
#[test]
fn review_reads_in_flight_when_the_server_stops_pin_memory_for_good() {
    use bevy_delta_overlay::replication::RegionStats;
    let dir = paging_support::Dir::new("review-stop");
    let mut server = server_with(Some(dir.file()), RegionSettings::default());
    let mut clients = vec![client_with(IVec3::new(200, 40, 200), settings())];
    server.connect_client(&mut clients[0]);
    let mut in_flight = false;
    for _ in 0..50 {
        step(&mut server, &mut clients);
        if server.world().resource::<RegionStats>().reads_in_flight > 0 {
            in_flight = true;
            break;
        }
    }
    assert!(in_flight, "a read under way");
    if std::env::var_os("REVIEW_NO_STOP").is_none() {
        server.world_mut().resource_mut::<NextState<ServerState>>().set(ServerState::Stopped);
        server.update();
    } else {
        for _ in 0..20 {
            step(&mut server, &mut clients);
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let (mut rng, mut truth) = (Rng(11), HashMap::new());
    edit_near(&mut server, &mut rng, 500, &mut truth);
    let mut store = server.world_mut().resource_mut::<PagedStore>();
    for _ in 0..100 {
        store.flush().unwrap();
        store.wait_durable(u64::MAX).unwrap();
        store.tick();
        if store.stats().edits == 0 {
            break;
        }
    }
    let (edits, durable) = (store.stats().edits, store.durable());
    assert_eq!(edits, 0, "every batch acknowledged (durable {durable}), yet memory still keeps {edits} edits");
}
