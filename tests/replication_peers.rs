//! Replication among peers that share a server: one client's load must not
//! cost another its connection, a world the server replaces reaches every
//! client, a join survives a damaged message, and edits the server accepts are
//! applied or refused to their sender.

mod net;

use bevy::prelude::*;
use bevy_delta_overlay::prelude::*;
use bevy_delta_overlay::replication::{
    ReplicationClientStats, ReplicationServerPlugin, ReplicationSettings, ReplicationStats,
};
use bevy_replicon::prelude::*;
use bevy_replicon::shared::backend::server_messages::ServerMessages;
use bevy_replicon::test_app::{ServerTestAppExt, TestClientEntity};
use net::*;
use std::time::Duration;

fn server_stats(app: &App) -> ReplicationStats {
    app.world().resource::<ReplicationStats>().clone()
}

/// `ServerBusy` is the server's own limit over every client together, not the
/// client's fault: a client within its own rate, whose edits arrive after
/// another client's took the frame's budget, is told, never disconnected as a
/// flooder. One peer cannot get another disconnected.
#[test]
fn server_busy_caused_by_another_client_does_not_disconnect_an_honest_one() {
    let settings = ReplicationSettings { server_edits_per_frame: 50, flood_limit: 500, ..default() };
    let mut server = server(settings);
    // Client 0 is the greedy one (its messages reach the server first each
    // frame); client 1 is honest: 50 edits a frame, far under its own rate.
    let mut clients = vec![client(), client()];
    for c in &mut clients {
        server.connect_client(c);
    }
    settle(&mut server, &mut clients);
    let bounds = storage(&server).bounds();
    let mut rng = Rng(77);
    for _ in 0..30 {
        let greedy = rng.edits(50, bounds);
        let honest = rng.edits(50, bounds);
        write(&mut clients[0], &greedy);
        write(&mut clients[1], &honest);
        step(&mut server, &mut clients);
    }
    let stats = server_stats(&server);
    assert!(stats.refused_busy > 500, "the honest client was refused as busy: {}", stats.refused_busy);
    assert_eq!(stats.disconnected, 0, "a client was disconnected for the server's own budget: {stats:?}");
}

/// The client plugin sends up to `max_edits_per_frame` (8,192) queued edits
/// every frame, whatever the server's rate. An app that writes one large edit
/// (an explosion of 400k voxels; `PendingEdits` holds up to 1M) through the
/// plugin, with every default, gets `RateLimited` refusals for what is over
/// its rate, and stays connected: the rate is not a flood.
#[test]
fn an_honest_client_with_a_large_edit_is_not_disconnected_with_defaults() {
    let mut server = server(ReplicationSettings::default());
    let mut clients = vec![client()];
    server.connect_client(&mut clients[0]);
    settle(&mut server, &mut clients);
    let bounds = storage(&server).bounds();
    let edits = Rng(5).edits(400_000, bounds);
    write(&mut clients[0], &edits);
    for _ in 0..60 {
        step(&mut server, &mut clients);
    }
    let stats = server_stats(&server);
    assert_eq!(stats.disconnected, 0, "the plugin's own client was disconnected as a flood: {stats:?}");
}

/// The server's world is replaced by an older one (a save loaded while
/// running): synced clients, at a higher sequence, would skip every new batch
/// as already held. The server sees the storage replaced
/// (`DeltaStorage::world_id`) and sends every client the new world.
#[test]
fn a_world_replaced_by_an_older_one_rejoins_synced_clients() {
    let mut server = server(ReplicationSettings { audit_every: Duration::from_millis(10), ..default() });
    let mut clients = vec![client()];
    server.connect_client(&mut clients[0]);
    let (mut rng, bounds) = (Rng(31), storage(&server).bounds());
    for _ in 0..10 {
        let edits = rng.edits(300, bounds);
        write(&mut server, &edits);
        step(&mut server, &mut clients);
    }
    settle(&mut server, &mut clients);
    assert!(storage(&server).sequence() > 500);
    // The app loads an older save of the same world: sequence 0.
    let mut older = DeltaStorage::new(world().build().unwrap(), config());
    older.record_changes(DeltaStorage::DEFAULT_CHANGE_CAPACITY);
    server.insert_resource(older);
    for _ in 0..5 {
        let edits = rng.edits(20, bounds);
        write(&mut server, &edits);
        step(&mut server, &mut clients);
    }
    for _ in 0..50 {
        step(&mut server, &mut clients);
        std::thread::sleep(Duration::from_millis(1));
    }
    let (truth, copy) = (storage(&server), storage(&clients[0]));
    assert_eq!(
        (copy.sequence(), copy.digest()),
        (truth.sequence(), truth.digest()),
        "the client still holds the replaced world: {:?}",
        status(&clients[0])
    );
}

/// The server's world is replaced by a newer one (a later save) and then left
/// idle: the cached snapshot of the old world must not serve joiners.
#[test]
fn a_world_replaced_by_a_newer_one_is_what_joiners_get() {
    let mut server = server(ReplicationSettings::default());
    let mut first = vec![client()];
    server.connect_client(&mut first[0]);
    settle(&mut server, &mut first);
    let (mut rng, bounds) = (Rng(41), storage(&server).bounds());
    let edits = rng.edits(50, bounds);
    write(&mut server, &edits);
    settle(&mut server, &mut first);
    // A newer save of another world of the same bounds.
    let sequence = storage(&server).sequence() + 1000;
    let other = WorldGen { seed: 12345, ..world() }.build().unwrap();
    let mut newer = DeltaStorage::resume(other, config(), sequence);
    newer.record_changes(DeltaStorage::DEFAULT_CHANGE_CAPACITY);
    server.insert_resource(newer);
    for _ in 0..5 {
        step(&mut server, &mut first);
    }
    let mut second = client();
    server.connect_client(&mut second);
    let mut all = vec![first.pop().unwrap(), second];
    for _ in 0..100 {
        step(&mut server, &mut all);
        std::thread::sleep(Duration::from_millis(1));
    }
    let truth = storage(&server);
    for (i, c) in all.iter().enumerate() {
        assert_eq!(
            (storage(c).sequence(), storage(c).digest()),
            (truth.sequence(), truth.digest()),
            "client {i} ({:?}) holds the replaced world",
            status(c)
        );
    }
}

/// A client that asks for a resync while the server is still streaming it
/// its join (a damaged message, a snapshot whose digest does not match)
/// drops what it has: the server starts the stream over, and the client gets
/// the world.
#[test]
fn a_client_that_resyncs_during_its_join_gets_the_world() {
    // A small window: the join's backlog spans several frames.
    let mut server = server(ReplicationSettings { window_bytes: 2 << 10, ..default() });
    let mut clients = vec![client()];
    server.connect_client(&mut clients[0]);
    let (mut rng, bounds) = (Rng(3), storage(&server).bounds());
    // The server starts the join (a snapshot's first messages sent), then runs
    // a few frames of changes before the client is heard from: they wait in
    // the joiner's backlog, behind its window.
    let mut frames = 0;
    while server_stats(&server).bytes_total == 0 {
        server.update();
        frames += 1;
        assert!(frames < 2000, "no join started");
        std::thread::sleep(Duration::from_millis(1));
    }
    for _ in 0..8 {
        let edits = rng.edits(3000, bounds);
        write(&mut server, &edits);
        server.update();
    }
    assert_eq!(server_stats(&server).joining, 1, "still streaming");
    // One damaged message on the server's channel (a corrupted frame), after
    // the snapshot's first messages.
    let channel = server.world().resource::<RepliconChannels>().server_channels().len() - 1;
    let entity = **clients[0].world().resource::<TestClientEntity>();
    server.world_mut().resource_mut::<ServerMessages>().send(entity, channel, vec![0xde, 0xad, 0xbe, 0xef]);
    step(&mut server, &mut clients);
    assert_eq!(clients[0].world().resource::<ReplicationClientStats>().resyncs, 1, "the client asked again");
    // It is sent the world again: it converges.
    settle(&mut server, &mut clients);
}

/// Accepted edits (`ReplicationStats::edits_applied`, no `EditsRefused` to
/// the client) go to the overlay plugin's ingest as `MaterialUpdate`s, whose
/// backlog refuses what does not fit: the server accepts no more than fits, and
/// refuses the rest to the client (`ServerBusy`), so nothing it accepted
/// vanishes.
#[test]
fn edits_the_server_accepted_are_applied_or_refused_to_the_client() {
    let mut server = App::new();
    replicon(&mut server);
    server.insert_resource(DeltaStorage::new(world().build().unwrap(), config()));
    let overlay = DeltaOverlaySettings { max_backlog: 100, ..DeltaOverlaySettings::from_config(config()) };
    server.insert_resource(overlay).insert_resource(ReplicationSettings::default());
    server.add_plugins((DeltaOverlayPlugin { config: config(), ..default() }, ReplicationServerPlugin::default()));
    server.finish();
    server.cleanup();
    let mut clients = vec![client()];
    server.connect_client(&mut clients[0]);
    settle(&mut server, &mut clients);
    let bounds = storage(&server).bounds();
    // 1,000 distinct voxels, each to a material it does not hold.
    let edits: Vec<(IVec3, MaterialId)> = (0..1000)
        .map(|i| {
            let p = bounds.min + IVec3::new(i % 50, 10 + i / 500, (i / 50) % 10);
            let was = storage(&server).query(p).unwrap();
            (p, MaterialId(if was == MaterialId(2) { 3 } else { 2 }))
        })
        .collect();
    write(&mut clients[0], &edits);
    for _ in 0..20 {
        step(&mut server, &mut clients);
    }
    let applied = edits.iter().filter(|(p, m)| storage(&server).query(*p).unwrap() == *m).count() as u64;
    let refused: u64 = clients[0].world().resource::<Seen>().refused.iter().map(|r| r.count).sum();
    let stats = server_stats(&server);
    assert_eq!(
        applied + refused,
        1000,
        "server counted {} applied; {applied} in the world, {refused} refused to the client",
        stats.edits_applied
    );
}

/// The server's world is replaced at the same sequence (a "new game": another
/// generated world, before anyone edited). A stale cached snapshot would make
/// every audit differ and healthy clients resync until the server called them
/// abusive: the clients get the new world once, and stay connected.
#[test]
fn a_world_replaced_at_the_same_sequence_does_not_make_clients_resync_forever() {
    let mut server = server(ReplicationSettings { audit_every: Duration::from_millis(5), ..default() });
    let mut clients = vec![client()];
    server.connect_client(&mut clients[0]);
    settle(&mut server, &mut clients);
    let other = WorldGen { seed: 999, ..world() }.build().unwrap();
    let mut fresh = DeltaStorage::new(other, config());
    fresh.record_changes(DeltaStorage::DEFAULT_CHANGE_CAPACITY);
    assert_eq!(fresh.sequence(), storage(&server).sequence());
    server.insert_resource(fresh);
    for _ in 0..400 {
        step(&mut server, &mut clients);
        std::thread::sleep(Duration::from_millis(1));
    }
    let resyncs = clients[0].world().resource::<ReplicationClientStats>().resyncs;
    let stats = server_stats(&server);
    assert!(
        resyncs <= 1,
        "a healthy client asked for the world {resyncs} times; server: {} disconnected",
        stats.disconnected
    );
    assert_eq!(stats.disconnected, 0, "a healthy client was disconnected: {stats:?}");
    assert_eq!(storage(&clients[0]).digest(), storage(&server).digest());
}
