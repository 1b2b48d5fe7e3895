//! The demo's mesher (examples/mesher), headless: it meshes every chunk once,
//! then only the chunks an edit touches, and its geometry has the faces a
//! voxel should have.

#[path = "../examples/mesher/mod.rs"]
#[allow(dead_code, reason = "the demo uses parts the test does not")]
mod mesher;

use bevy::prelude::*;
use bevy_delta_overlay::prelude::*;
use mesher::{CHUNK, ChunkMeshed, MesherPlugin, MesherSettings, MesherStats};

const WORLD: Aabb = Aabb::new(IVec3::new(-32, 0, 0), IVec3::new(96, 64, 96));

fn app() -> App {
    let mut app = App::new();
    // Ground: granite below y = 20, air above.
    let mut storage = DeltaStorage::new(BaseIndex::uniform(WORLD, materials::AIR).unwrap(), DeltaConfig::default());
    let ground: Vec<_> = (WORLD.min.x..WORLD.max.x)
        .flat_map(|x| {
            (WORLD.min.z..WORLD.max.z)
                .flat_map(move |z| (0..20).map(move |y| (IVec3::new(x, y, z), materials::GRANITE)))
        })
        .collect();
    storage.batch_update(ground);
    storage.flush();
    app.insert_resource(storage);
    app.add_plugins((bevy::app::TaskPoolPlugin::default(), DeltaOverlayPlugin::default()));
    // No consolidation: a consolidation remeshes the chunks it touched (to
    // clear their tint), which would blur the count.
    app.world_mut().resource_mut::<DeltaOverlaySettings>().auto_consolidate = false;
    app.add_plugins(MesherPlugin {
        settings: MesherSettings { region: WORLD, budget: 8, max_in_flight: 8, cut_z: None },
    });
    app.finish();
    app.cleanup();
    app
}

/// Runs frames until nothing is queued or meshing (bounded).
fn settle(app: &mut App) {
    for _ in 0..2000 {
        app.update();
        let s = app.world().resource::<MesherStats>();
        if s.queued == 0 && s.in_flight == 0 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    panic!("the mesher did not settle");
}

fn counts(app: &App) -> std::collections::HashMap<IVec3, u32> {
    app.world().resource::<MesherStats>().per_chunk.clone()
}

#[test]
fn an_edit_remeshes_its_chunk_and_no_other() {
    let mut app = app();
    settle(&mut app);
    let first = counts(&app);
    let chunks = (WORLD.size() / CHUNK).element_product() as usize;
    assert_eq!(first.len(), chunks, "every chunk meshed");
    assert!(first.values().all(|&n| n == 1), "each once: {first:?}");

    // An edit in the middle of one chunk (no face on its border).
    let inside = WORLD.min + IVec3::new(CHUNK + 10, 20, CHUNK + 12);
    app.world_mut().write_message(MaterialUpdate { position: inside, material: materials::BASALT });
    settle(&mut app);
    let after = counts(&app);
    let edited = WORLD.min + IVec3::new(CHUNK, 0, CHUNK);
    for (chunk, n) in &after {
        let expected = first[chunk] + u32::from(*chunk == edited);
        assert_eq!(*n, expected, "chunk {chunk}");
    }

    // An edit on a chunk's face also remeshes the neighbour across it.
    let face = WORLD.min + IVec3::new(2 * CHUNK, 19, CHUNK + 5);
    app.world_mut().write_message(MaterialUpdate { position: face, material: materials::AIR });
    settle(&mut app);
    let last = counts(&app);
    let changed: Vec<IVec3> = last.iter().filter(|(c, n)| **n != after[*c]).map(|(c, _)| *c).collect();
    let mut changed = changed;
    changed.sort_by_key(|c| (c.x, c.y, c.z));
    assert_eq!(changed, vec![WORLD.min + IVec3::new(CHUNK, 0, CHUNK), WORLD.min + IVec3::new(2 * CHUNK, 0, CHUNK)]);
}

#[test]
fn a_lone_voxel_has_six_faces_in_its_place() {
    let mut app = app();
    settle(&mut app);
    let mut reader = app.world_mut().resource_mut::<Messages<ChunkMeshed>>();
    reader.clear();
    let p = WORLD.min + IVec3::new(5, 40, 7);
    app.world_mut().write_message(MaterialUpdate { position: p, material: materials::BASALT });
    let mut meshed: Vec<ChunkMeshed> = Vec::new();
    for _ in 0..200 {
        app.update();
        let messages = app.world().resource::<Messages<ChunkMeshed>>();
        meshed.extend(messages.iter_current_update_messages().cloned());
        if app.world().resource::<MesherStats>().queued == 0 && app.world().resource::<MesherStats>().in_flight == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let chunk = meshed.iter().find(|m| m.corner == WORLD.min + IVec3::new(0, 32, 0)).expect("its chunk was meshed");
    let g = &chunk.opaque;
    assert_eq!(g.indices.len(), 6 * 6, "six quads of two triangles");
    let local = (p - chunk.corner).as_vec3();
    for v in &g.positions {
        let d = Vec3::from(*v) - local;
        assert!(d.min_element() >= -1e-6 && d.max_element() <= 1.0 + 1e-6, "vertex {v:?} off the voxel at {local}");
    }
    // The delta tint: the voxel holds a delta, so its colour is lighter
    // than basalt's.
    assert!(g.colors.iter().all(|c| c[0] > 0.1), "{:?}", g.colors[0]);
}

/// Edits that never stop do not starve the chunks queued before them: with
/// newest-first alone, the first pass never finished while rain fell on the
/// demo's surface chunks every frame.
#[test]
fn a_chunk_queued_long_ago_is_meshed_while_edits_never_stop() {
    let mut app = app();
    let chunks = (WORLD.size() / CHUNK).element_product() as usize;
    // Each frame an edit in every chunk of the lower layer (12 chunks), more
    // than the budget of 8: newest first alone, their re-marks always win and
    // the upper layer waits forever. Bounded: 500 frames.
    let lower: Vec<IVec3> =
        (0..4).flat_map(|x| (0..3).map(move |z| WORLD.min + IVec3::new(x * CHUNK + 10, 19, z * CHUNK + 10))).collect();
    let mut frames = 0;
    while frames < 500 {
        let material = if frames % 2 == 0 { materials::BASALT } else { materials::GRANITE };
        for &position in &lower {
            app.world_mut().write_message(MaterialUpdate { position, material });
        }
        app.update();
        frames += 1;
        let stats = app.world().resource::<MesherStats>();
        if stats.unmeshed == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let stats = app.world().resource::<MesherStats>();
    assert_eq!(stats.unmeshed, 0, "after {frames} frames, {} of {chunks} chunks never meshed", stats.unmeshed);
    assert_eq!(counts(&app).len(), chunks);
}
