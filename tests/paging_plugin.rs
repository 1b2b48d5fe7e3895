//! The paging plugin: interest entities page the world in around them and
//! out behind them, the diagnostics measure it, a user's own store wins,
//! and (feature `persistence`) edits made in the app reach its file, a bad
//! file is reported and the app runs on.

use bevy::diagnostic::DiagnosticsStore;
use bevy::prelude::*;
use bevy::time::TimeUpdateStrategy;
use bevy_delta_overlay::paging::{PagedWorld, PagingSettings};
use bevy_delta_overlay::plugin::{PagedStore, PagingDiagnostics, PagingPlugin, WorldInterest};
use bevy_delta_overlay::{DeltaConfig, WorldGen, materials};
use std::time::Duration;

fn generator() -> WorldGen {
    WorldGen { size: IVec3::new(2048, 64, 256), sea_level: 30, ..WorldGen::default() }
}

fn settings() -> PagingSettings {
    PagingSettings { sector_columns: 64, resident_budget: 2 << 20, ..PagingSettings::default() }
}

fn app(plugin: PagingPlugin) -> App {
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, TransformPlugin, bevy::diagnostic::DiagnosticsPlugin, plugin))
        .insert_resource(TimeUpdateStrategy::ManualDuration(Duration::from_millis(16)));
    app
}

/// Updates until `p` is resident (at most `frames`, a few ms apart).
fn until_resident(app: &mut App, p: IVec3, frames: usize) -> bool {
    for _ in 0..frames {
        app.update();
        if app.world().resource::<PagedStore>().get(p).is_ok_and(|a| a.is_resident()) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

#[test]
fn an_interest_entity_pages_the_world_in_around_it_and_out_behind_it() {
    let mut app = app(PagingPlugin { generator: generator(), settings: settings(), ..default() });
    let start = IVec3::new(100, 40, 128);
    let e = app.world_mut().spawn((WorldInterest { radius: 48 }, Transform::from_translation(start.as_vec3()))).id();
    assert!(until_resident(&mut app, start, 2000), "never resident around the entity");
    // Far along x: in there, and the start evicted under the budget.
    let there = IVec3::new(1900, 40, 128);
    app.world_mut().entity_mut(e).insert(Transform::from_translation(there.as_vec3()));
    assert!(until_resident(&mut app, there, 2000), "never resident where the entity went");
    let store = app.world().resource::<PagedStore>();
    let stats = store.stats();
    assert!(stats.evicted > 0 && !store.get(start).unwrap().is_resident(), "{stats:?}");
    let diagnostics = app.world().resource::<DiagnosticsStore>();
    let resident = diagnostics.get(&PagingDiagnostics::RESIDENT_SECTORS).and_then(|d| d.value());
    assert_eq!(resident, Some(stats.resident_sectors as f64));
    // The entity gone: nothing is wanted, and nothing panics.
    app.world_mut().despawn(e);
    app.update();
}

#[test]
fn a_users_own_store_wins() {
    let mut app = App::new();
    let mine = PagedWorld::new(generator(), PagingSettings { sector_columns: 32, ..default() }, DeltaConfig::default());
    app.insert_resource(PagedStore(mine.unwrap()));
    app.add_plugins((MinimalPlugins, TransformPlugin, PagingPlugin::default()));
    app.update();
    assert_eq!(app.world().resource::<PagedStore>().settings().sector_columns, 32);
}

#[cfg(feature = "persistence")]
mod file {
    use super::*;
    use bevy_delta_overlay::plugin::PagingFileError;

    fn dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("paging-plugin-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn edits_made_in_the_app_reach_its_file() {
        let dir = dir("edits");
        let path = dir.join("world.redb");
        let here = IVec3::new(1500, 20, 100);
        {
            let plugin =
                PagingPlugin { generator: generator(), settings: settings(), file: Some(path.clone()), ..default() };
            let mut app = app(plugin);
            app.add_systems(Update, move |mut store: ResMut<PagedStore>| {
                store.update(here, materials::MAGMA).unwrap();
            });
            for _ in 0..5 {
                app.update();
            }
            assert!(app.world().get_resource::<PagingFileError>().is_none());
        }
        let mut world = PagedWorld::open(&path, generator(), settings(), DeltaConfig::default()).unwrap();
        assert_eq!(world.get_blocking(here).unwrap(), materials::MAGMA);
        drop(world);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_file_that_cannot_be_opened_is_reported_and_the_world_runs_without_it() {
        let dir = dir("bad");
        let path = dir.join("world.redb");
        std::fs::write(&path, b"not a database").unwrap();
        let plugin =
            PagingPlugin { generator: generator(), settings: settings(), file: Some(path.clone()), ..default() };
        let mut app = app(plugin);
        app.update();
        let error = app.world().resource::<PagingFileError>();
        assert!(error.0.is_bad_file(), "{:?}", error.0);
        app.world_mut().resource_mut::<PagedStore>().update(IVec3::new(5, 5, 5), materials::SAND).unwrap();
        app.update();
        assert_eq!(std::fs::read(&path).unwrap(), b"not a database");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
