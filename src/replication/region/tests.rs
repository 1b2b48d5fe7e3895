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

/// A client that keeps changing its region (acknowledging all it is sent)
/// took every read slot (`max_reads`) each frame before a client joined
/// after it was served: with a file, that client never got its sectors
/// (before the clients took turns, one read each a frame).
#[cfg(feature = "persistence")]
#[test]
fn review_a_client_cycling_its_region_starves_a_later_client_of_reads() {
    let dir = std::env::temp_dir().join(format!("region-review-starve-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut server = app();
    let generator = WorldGen { size: IVec3::new(1024, 32, 1024), sea_level: 16, ..WorldGen::default() };
    let paging = PagingPlugin { generator, settings: settings(), file: Some(dir.join("world.redb")), ..default() };
    server.add_plugins((paging, RegionServerPlugin::default()));
    server.finish();
    // The hostile client: a follower with no interest (it names no region
    // itself); its regions are written below.
    let mut hostile = app();
    hostile.add_plugins(RegionClientPlugin { settings: settings(), ..default() });
    hostile.finish();
    let mut good = client();
    server.connect_client(&mut hostile);
    server.connect_client(&mut good);
    // Two halves of the world away from the good client's sectors (x < 3).
    let half = |xs: std::ops::Range<i32>| xs.flat_map(|x| (0..16).map(move |z| IVec2::new(x, z))).collect::<Vec<_>>();
    let (a, b) = (half(4..10), half(10..16));
    let mut synced_at = None;
    for frame in 0..600u64 {
        let region = if frame % 2 == 0 { &a } else { &b };
        if std::env::var_os("REVIEW_NO_HOSTILE").is_none() {
            hostile.world_mut().write_message(ClientWire(super::wire::region(frame + 1, region)));
        }
        server.update();
        for c in [&mut hostile, &mut good] {
            server.exchange_with_client(c);
            c.update();
            server.exchange_with_client(c);
        }
        if good.world().resource::<RegionStatus>().is_synced() {
            synced_at = Some(frame);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let stats = *server.world().resource::<RegionStats>();
    let status = *good.world().resource::<RegionStatus>();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(synced_at.is_some(), "the later client never synced in 600 frames: {status:?}; server {stats:?}");
}
