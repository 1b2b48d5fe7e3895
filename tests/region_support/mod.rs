//! The region tests' harness: a paged server and region clients as Apps
//! in one process, joined by bevy_replicon's test harness (no socket).

#![allow(dead_code, reason = "each test file uses a part of the harness")]

use bevy::prelude::*;
use bevy::state::app::StatesPlugin;
use bevy::time::TimeUpdateStrategy;
use bevy_delta_overlay::paging::PagingSettings;
use bevy_delta_overlay::plugin::{PagingPlugin, WorldInterest};
use bevy_delta_overlay::replication::{RegionClientPlugin, RegionServerPlugin, RegionSettings, RegionStatus};
use bevy_delta_overlay::{Aabb, WorldGen};
use bevy_replicon::prelude::*;
use bevy_replicon::test_app::ServerTestAppExt;
use std::time::Duration;

pub fn generator() -> WorldGen {
    WorldGen { size: IVec3::new(1024, 64, 1024), sea_level: 30, ..WorldGen::default() }
}

pub fn settings() -> PagingSettings {
    PagingSettings { sector_columns: 64, resident_budget: 8 << 20, ..PagingSettings::default() }
}

pub fn base() -> App {
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, StatesPlugin, TransformPlugin))
        .add_plugins(RepliconPlugins.set(ServerPlugin::new(PostUpdate)))
        .insert_resource(TimeUpdateStrategy::ManualDuration(Duration::from_millis(16)));
    app
}

/// A server of the test world (its edits in `file`, with `persistence`).
pub fn server_with(file: Option<std::path::PathBuf>, region: RegionSettings) -> App {
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

/// A client whose interest (radius 80) stands at `at`, and that entity.
pub fn client_with(at: IVec3, paging: PagingSettings) -> (App, Entity) {
    let mut app = base();
    app.add_plugins(RegionClientPlugin { settings: paging, ..default() });
    let e = app.world_mut().spawn((WorldInterest { radius: 80 }, Transform::from_translation(at.as_vec3()))).id();
    app.finish();
    app.cleanup();
    (app, e)
}

pub fn step(server: &mut App, clients: &mut [App]) {
    server.update();
    for c in clients.iter_mut() {
        server.exchange_with_client(c);
        c.update();
        server.exchange_with_client(c);
    }
}

/// Runs frames until every client is synced (bounded), then a few more
/// (the last frame's changes reach them).
pub fn settle(server: &mut App, clients: &mut [App]) {
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

    pub fn point(&mut self, b: Aabb) -> IVec3 {
        let s = b.size().as_u64vec3();
        let r = self.next();
        b.min + IVec3::new((r % s.x) as i32, ((r >> 20) % s.y) as i32, ((r >> 40) % s.z) as i32)
    }
}
