//! The processes at their edges: settings at the ends of their types, live
//! changes of caps, a workspace moved to another world, and the surface index
//! as a cache (which tiles happen to be built changes nothing). From a
//! hostile review; each failing case failed before its fix.

use bevy_delta_overlay::geology::{
    Deposition, DepositionSettings, GeologyProcess, HydraulicErosion, HydraulicSettings, Terrain, ThermalErosion,
    ThermalSettings, Workspace,
};
use bevy_delta_overlay::parallel::Sequential;
use bevy_delta_overlay::{Aabb, BaseIndex, DeltaConfig, DeltaStorage, MaterialUpdate, Palette, WorldGen, materials};
use glam::IVec3;

/// A flat basin under water: rock to y 4, then a bed of sediment with
/// one-voxel steps (x < 16: top at 5, x >= 16: top at 4), water to y 20.
fn stepped_basin() -> DeltaStorage {
    let bounds = Aabb::new(IVec3::ZERO, IVec3::new(32, 32, 32));
    let mut world = DeltaStorage::new(BaseIndex::uniform(bounds, materials::AIR).unwrap(), DeltaConfig::default());
    let mut edits = Vec::new();
    for x in 0..32 {
        for z in 0..32 {
            let top = if x < 16 { 5 } else { 4 };
            for y in 0..20 {
                let m = if y < 4 {
                    materials::GRANITE
                } else if y <= top {
                    materials::SEDIMENT
                } else {
                    materials::WATER
                };
                edits.push((IVec3::new(x, y, z), m));
            }
        }
    }
    world.batch_update(edits);
    world
}

fn run_deposition(world: &mut DeltaStorage, settings: &DepositionSettings, frames: u32) -> Deposition {
    let palette = Palette::shipped();
    let mut state = Deposition::new(settings);
    let mut ws = Workspace::new();
    for _ in 0..frames {
        {
            let mut t = Terrain::new(world, &palette, &mut ws);
            state.step(&mut t, settings);
        }
        world.batch_update(ws.take_edits());
    }
    state
}

/// An underwater angle of repose of 90 degrees is the steepest there is: a
/// one-voxel step (45 degrees by the rule's `+ 1`) stands, as at 89. (At 90,
/// `to_radians().tan()` in f32 is about -2.3e7, pi/2 rounding up: the
/// threshold went negative and every submerged loose top slid.)
#[test]
fn an_underwater_angle_of_90_degrees_moves_nothing() {
    for angle in [89.0f32, 90.0] {
        let mut world = stepped_basin();
        world.enable_surfaces(&Palette::shipped());
        let settings = DepositionSettings {
            underwater_angle: angle,
            columns_per_frame: 2000,
            burial_depth: 100,
            ..Default::default()
        };
        let state = run_deposition(&mut world, &settings, 10);
        assert_eq!(state.stats.settled, 0, "underwater_angle {angle}: {:?}", state.stats);
    }
}

/// Settings at the far end of their type: a huge burial depth or compaction
/// scan does not panic (it overflowed in a debug build).
#[test]
fn a_huge_burial_depth_does_not_panic() {
    let mut world = stepped_basin();
    world.enable_surfaces(&Palette::shipped());
    let settings = DepositionSettings { burial_depth: i32::MAX, columns_per_frame: 50, ..Default::default() };
    let state = run_deposition(&mut world, &settings, 2);
    assert_eq!(state.stats.compacted, 0);
}

#[test]
fn a_huge_compaction_scan_does_not_panic() {
    let mut world = stepped_basin();
    world.enable_surfaces(&Palette::shipped());
    let settings = DepositionSettings { compaction_scan: i32::MAX, columns_per_frame: 50, ..Default::default() };
    run_deposition(&mut world, &settings, 2);
}

/// A world for thermal erosion: a granite floor at y 0, a tower of sediment
/// at (40, 40) (tile (2, 2) of a 64 x 64 world), nothing else.
fn tower_world(index: Option<&str>) -> DeltaStorage {
    let bounds = Aabb::new(IVec3::ZERO, IVec3::new(64, 48, 64));
    let mut world = DeltaStorage::new(BaseIndex::uniform(bounds, materials::AIR).unwrap(), DeltaConfig::default());
    let mut edits = Vec::new();
    for x in 0..64 {
        for z in 0..64 {
            edits.push((IVec3::new(x, 0, z), materials::GRANITE));
        }
    }
    world.batch_update(edits);
    match index {
        None => {}
        Some("lazy") => world.enable_surfaces(&Palette::shipped()),
        Some(_) => {
            world.enable_surfaces(&Palette::shipped());
            let mut build = world.surface_build(None).unwrap();
            build.run(&Sequential);
            assert_eq!(world.install_surfaces(build), 16);
        }
    }
    world
}

/// Runs thermal erosion, a user's edit (a tower of sediment piled in one
/// batch) landing after frame 0, and returns every edit the process made.
fn thermal_edits(world: &mut DeltaStorage, frames: u32) -> Vec<MaterialUpdate> {
    // A trickle of 0: only the change-driven queue moves anything.
    thermal_edits_with(world, frames, ThermalSettings { columns_per_frame: 0, seed: 9, ..Default::default() })
}

fn thermal_edits_with(world: &mut DeltaStorage, frames: u32, settings: ThermalSettings) -> Vec<MaterialUpdate> {
    let palette = Palette::shipped();
    let mut state = ThermalErosion::new(&settings);
    let mut ws = Workspace::new();
    let mut all = Vec::new();
    for frame in 0..frames {
        {
            let mut t = Terrain::new(world, &palette, &mut ws);
            state.step(&mut t, &settings);
        }
        let edits = ws.take_edits();
        all.extend(edits.iter().copied());
        world.batch_update(edits);
        if frame == 0 {
            // The user piles a tower of sediment (the tile was never read).
            world.batch_update((1..30).map(|y| (IVec3::new(40, y, 40), materials::SEDIMENT)));
        }
    }
    all
}

/// The surface index is a cache: which of its tiles happen to be built does
/// not change what the processes do for the same seed and world (a user's
/// write to a tile never read was not logged, so thermal erosion never saw
/// the tower). Without an index there is no log: the change-driven processes
/// see only their random trickle (documented on `Terrain::new`).
#[test]
fn thermal_erosion_does_the_same_whichever_tiles_are_built() {
    let prebuilt = thermal_edits(&mut tower_world(Some("built")), 20);
    let lazy = thermal_edits(&mut tower_world(Some("lazy")), 20);
    let none = thermal_edits(&mut tower_world(None), 20);
    assert!(!prebuilt.is_empty(), "the tower slides with every tile built");
    assert_eq!(lazy, prebuilt, "tiles built ahead, or on first use");
    assert!(none.is_empty(), "no index, no log, no trickle: nothing seen");
}

/// The same with the default settings (a random trickle of 32 columns a
/// frame): the same seed gives the same world.
#[test]
fn thermal_erosion_with_default_settings_does_not_depend_on_which_tiles_are_built() {
    let settings = ThermalSettings { seed: 9, ..Default::default() };
    let mut a = tower_world(Some("built"));
    let mut b = tower_world(Some("lazy"));
    let ea = thermal_edits_with(&mut a, 40, settings.clone());
    let eb = thermal_edits_with(&mut b, 40, settings);
    assert_eq!((ea.len(), a.digest()), (eb.len(), b.digest()), "same seed, same world, same writes: (edits, digest)");
}

/// Hydraulic erosion does not read the log: the same with and without an
/// index (the index and the droplets' corner cache are exact).
#[test]
fn hydraulic_erosion_does_the_same_with_and_without_an_index() {
    let palette = Palette::shipped();
    let world_gen =
        WorldGen { min: IVec3::new(-20, -10, 5), size: IVec3::new(70, 60, 50), sea_level: 25, ..WorldGen::default() };
    let mut out = Vec::new();
    for indexed in [false, true] {
        let mut world = DeltaStorage::new(world_gen.build().unwrap(), DeltaConfig::default());
        if indexed {
            world.enable_surfaces(&palette);
        }
        let settings = HydraulicSettings { seed: 5, droplets_per_frame: 200, ..Default::default() };
        let mut state = HydraulicErosion::new(&settings);
        let mut ws = Workspace::new();
        let mut all = Vec::new();
        for _ in 0..10 {
            {
                let mut t = Terrain::new(&world, &palette, &mut ws);
                state.step(&mut t, &settings);
            }
            let edits = ws.take_edits();
            all.extend(edits.iter().copied());
            world.batch_update(edits);
        }
        out.push((all, world.digest()));
    }
    assert!(!out[0].0.is_empty());
    assert_eq!(out[0], out[1]);
}

/// Deposition at 0 degrees: settles until steps of one voxel remain, ends.
#[test]
fn deposition_at_extreme_but_sane_settings_comes_to_rest() {
    for (angle, reach, checks, cap) in
        [(0.0f32, 0, 0u32, 0usize), (0.0, -5, 2000, 1), (45.0, 1000, 5, 0), (f32::NAN, 4, 100, 10)]
    {
        let mut world = stepped_basin();
        world.enable_surfaces(&Palette::shipped());
        // Dig a pit under water to give it something to do.
        world.batch_update((1..6).map(|y| (IVec3::new(8, y, 8), materials::WATER)));
        let settings = DepositionSettings {
            underwater_angle: angle,
            reach,
            checks_per_frame: checks,
            queue_cap: cap,
            columns_per_frame: 500,
            burial_depth: 100,
            ..Default::default()
        };
        let mut state = Deposition::new(&settings);
        let palette = Palette::shipped();
        let mut ws = Workspace::new();
        let mut last = usize::MAX;
        for _ in 0..60 {
            {
                let mut t = Terrain::new(&world, &palette, &mut ws);
                state.step(&mut t, &settings);
            }
            let edits = ws.take_edits();
            last = edits.len();
            world.batch_update(edits);
        }
        assert_eq!(last, 0, "angle {angle} reach {reach}: still moving after 60 frames: {:?}", state.stats);
    }
}

/// `queue_cap` is "columns queued for a check, at most" (the queue's
/// `BOUNDED` invariant), also when lowered live (the settings are tuned in
/// the debug panel): the queue stayed far above it, each push past the cap
/// dropping one column and adding one.
#[test]
fn lowering_queue_cap_bounds_the_queue() {
    let palette = Palette::shipped();
    let mut world = tower_world(Some("built"));
    let mut settings = ThermalSettings { columns_per_frame: 0, checks_per_frame: 0, seed: 3, ..Default::default() };
    let mut state = ThermalErosion::new(&settings);
    let mut ws = Workspace::new();
    let mut frame = |world: &mut DeltaStorage, settings: &ThermalSettings, state: &mut ThermalErosion, y: i32| {
        // The user raises a strip of columns: each a surface change.
        world.batch_update((0..64).flat_map(|x| (0..32).map(move |z| (IVec3::new(x, y, z), materials::GRANITE))));
        {
            let mut t = Terrain::new(world, &palette, &mut ws);
            state.step(&mut t, settings);
        }
        world.batch_update(ws.take_edits());
    };
    frame(&mut world, &settings, &mut state, 1);
    assert_eq!(state.queued(), 64 * 32);
    settings.queue_cap = 100;
    frame(&mut world, &settings, &mut state, 2);
    assert!(state.queued() <= settings.queue_cap, "{} queued, cap {}", state.queued(), settings.queue_cap);
}

/// `Terrain`'s invariant: "A pending edit is inside the world". A workspace
/// reused with a world of other bounds drops what was pending for the old
/// one (it handed the old world's edits out for the new one).
#[test]
fn a_workspace_moved_to_another_world_hands_out_no_edit_outside_it() {
    let palette = Palette::shipped();
    let big = tower_world(Some("built"));
    let small = DeltaStorage::new(
        BaseIndex::uniform(Aabb::new(IVec3::ZERO, IVec3::new(16, 16, 16)), materials::AIR).unwrap(),
        DeltaConfig::default(),
    );
    let mut ws = Workspace::new();
    {
        let mut t = Terrain::new(&big, &palette, &mut ws);
        t.set(IVec3::new(40, 5, 40), materials::SEDIMENT);
    }
    {
        let _t = Terrain::new(&small, &palette, &mut ws);
    }
    let edits = ws.take_edits();
    let outside: Vec<_> = edits.iter().filter(|e| !small.bounds().contains(e.position)).collect();
    assert!(outside.is_empty(), "edits outside the world the workspace now serves: {outside:?}");
}

/// At 90 degrees the bed comes to rest (it never did: voxels went back and
/// forth across the one-voxel step frame after frame).
#[test]
fn an_underwater_angle_of_90_degrees_comes_to_rest() {
    let palette = Palette::shipped();
    let mut world = stepped_basin();
    world.enable_surfaces(&palette);
    let settings = DepositionSettings { underwater_angle: 90.0, burial_depth: 100, ..Default::default() };
    let mut state = Deposition::new(&settings);
    let mut ws = Workspace::new();
    let mut per_frame = Vec::new();
    for _ in 0..100 {
        {
            let mut t = Terrain::new(&world, &palette, &mut ws);
            state.step(&mut t, &settings);
        }
        let edits = ws.take_edits();
        per_frame.push(edits.len());
        world.batch_update(edits);
    }
    assert_eq!(
        per_frame[90..],
        [0; 10],
        "edits in the last 10 of 100 frames; tan(90°) in f32 = {}",
        90f32.to_radians().tan()
    );
}
