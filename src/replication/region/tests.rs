//! The region server against a hostile client, in Apps joined by
//! replicon's test harness: a message that does not decode disconnects its
//! sender; the server and its other clients go on.

use super::{RegionClientPlugin, RegionServerPlugin, RegionStats, RegionStatus};
use crate::paging::PagingSettings;
use crate::plugin::{PagingPlugin, WorldInterest};
use crate::replication::ClientWire;
use crate::worldgen::WorldGen;
use bevy::prelude::*;
use bevy::state::app::StatesPlugin;
use bevy_replicon::prelude::*;
use bevy_replicon::test_app::ServerTestAppExt;

fn settings() -> PagingSettings {
    PagingSettings { sector_columns: 64, ..PagingSettings::default() }
}

fn app() -> App {
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, StatesPlugin, TransformPlugin))
        .add_plugins(RepliconPlugins.set(ServerPlugin::new(PostUpdate)));
    app
}

fn client() -> App {
    let mut app = app();
    app.add_plugins(RegionClientPlugin { settings: settings(), ..default() });
    app.world_mut().spawn((WorldInterest { radius: 40 }, Transform::from_xyz(100.0, 20.0, 100.0)));
    app.finish();
    app
}

#[test]
fn a_client_sending_garbage_is_disconnected_and_the_others_go_on() {
    let mut server = app();
    let generator = WorldGen { size: IVec3::new(512, 32, 512), sea_level: 16, ..WorldGen::default() };
    server.add_plugins((PagingPlugin { generator, settings: settings(), ..default() }, RegionServerPlugin::default()));
    server.finish();
    let (mut good, mut bad) = (client(), client());
    server.connect_client(&mut good);
    server.connect_client(&mut bad);
    bad.world_mut().write_message(ClientWire(vec![23, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
    for _ in 0..2000 {
        server.update();
        for c in [&mut good, &mut bad] {
            server.exchange_with_client(c);
            c.update();
            server.exchange_with_client(c);
        }
        if good.world().resource::<RegionStatus>().is_synced() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert!(good.world().resource::<RegionStatus>().is_synced());
    let stats = *server.world().resource::<RegionStats>();
    assert_eq!((stats.malformed, stats.disconnected, stats.clients), (1, 1, 1), "{stats:?}");
}
