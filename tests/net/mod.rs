//! The replication tests' harness: a server and clients as Apps in one
//! process, joined by bevy_replicon's test harness (no socket).

#![allow(dead_code, reason = "each test file uses a part of the harness")]

use bevy::prelude::*;
use bevy::state::app::StatesPlugin;
use bevy_delta_overlay::{
    Aabb, DeltaConfig, DeltaOverlayPlugin, DeltaStorage, MaterialId, MaterialUpdate, WorldGen, WorldSource,
    replication::EditsRefused, replication::ReplicationClientPlugin, replication::ReplicationServerPlugin,
    replication::ReplicationSettings, replication::ReplicationStatus, replication::WorldReceived,
};
use bevy_replicon::prelude::*;
use bevy_replicon::test_app::ServerTestAppExt;

/// Consolidation often, so every peer merges on its own schedule meanwhile.
pub fn config() -> DeltaConfig {
    DeltaConfig { threshold: 300, ..DeltaConfig::default() }
}

pub fn world() -> WorldGen {
    WorldGen { min: IVec3::new(-40, -8, 8), size: IVec3::new(100, 72, 90), sea_level: 30, ..WorldGen::default() }
}

pub fn replicon(app: &mut App) {
    app.add_plugins((MinimalPlugins, StatesPlugin, RepliconPlugins.set(ServerPlugin::new(PostUpdate))));
}

pub fn server(settings: ReplicationSettings) -> App {
    let mut app = App::new();
    replicon(&mut app);
    app.insert_resource(DeltaStorage::new(world().build().unwrap(), config()));
    app.insert_resource(settings).add_plugins((DeltaOverlayPlugin::default(), ReplicationServerPlugin::default()));
    app.finish();
    app.cleanup();
    app
}

#[derive(Resource, Default)]
pub struct Seen {
    pub refused: Vec<EditsRefused>,
    pub received: Vec<WorldReceived>,
}

pub fn client() -> App {
    let mut app = App::new();
    replicon(&mut app);
    let overlay = DeltaOverlayPlugin { world: WorldSource::Server, config: config(), ..default() };
    app.add_plugins((ReplicationClientPlugin { config: config(), ..default() }, overlay));
    app.init_resource::<Seen>().add_systems(
        Update,
        |mut refused: MessageReader<EditsRefused>,
         mut received: MessageReader<WorldReceived>,
         mut seen: ResMut<Seen>| {
            seen.refused.extend(refused.read().copied());
            seen.received.extend(received.read().copied());
        },
    );
    app.finish();
    app.cleanup();
    app
}

/// One network frame: the server runs, each client receives, runs and
/// answers.
pub fn step(server: &mut App, clients: &mut [App]) {
    server.update();
    for c in clients.iter_mut() {
        server.exchange_with_client(c);
        c.update();
        server.exchange_with_client(c);
    }
}

pub fn storage(app: &App) -> &DeltaStorage {
    app.world().resource::<DeltaStorage>()
}

pub fn status(app: &App) -> ReplicationStatus {
    *app.world().resource::<ReplicationStatus>()
}

/// A little PRNG (splitmix64): the tests are deterministic.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn edits(&mut self, n: usize, bounds: Aabb) -> Vec<(IVec3, MaterialId)> {
        let size = bounds.size().as_u64vec3();
        (0..n)
            .map(|_| {
                let r = self.next();
                let p = bounds.min
                    + IVec3::new((r % size.x) as i32, ((r >> 20) % size.y) as i32, ((r >> 40) % size.z) as i32);
                // Few materials: many writes restore a value (not a change).
                (p, MaterialId((self.next() % 4) as u16))
            })
            .collect()
    }
}

pub fn write(app: &mut App, edits: &[(IVec3, MaterialId)]) {
    for &(position, material) in edits {
        app.world_mut().write_message(MaterialUpdate { position, material });
    }
}

/// Runs frames until every client is synced at the server's sequence (bounded).
pub fn settle(server: &mut App, clients: &mut [App]) {
    for _ in 0..500 {
        step(server, clients);
        let target = storage(server).sequence();
        if clients.iter().all(|c| matches!(status(c), ReplicationStatus::Synced { sequence, .. } if sequence == target))
        {
            // One more frame: the clients' progress reaches the server.
            step(server, clients);
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let states: Vec<_> = clients.iter().map(status).collect();
    panic!("clients did not converge on {}: {states:?}", storage(server).sequence());
}

pub fn assert_converged(server: &App, clients: &[App], rng: &mut Rng) {
    let truth = storage(server);
    for (i, c) in clients.iter().enumerate() {
        let copy = storage(c);
        assert_eq!(copy.bounds(), truth.bounds(), "client {i}");
        assert_eq!(copy.sequence(), truth.sequence(), "client {i}");
        assert_eq!(copy.digest(), truth.digest(), "client {i}'s world differs from the server's");
        for (p, _) in rng.edits(2000, truth.bounds()) {
            assert_eq!(copy.query(p).unwrap(), truth.query(p).unwrap(), "client {i} at {p}");
        }
    }
}
