//! The geology processes, called as plain functions on small worlds (and one
//! App). Conservation is checked against the world itself: terrain voxels are
//! counted before and after, not only the processes' own counters.

mod common;

use bevy_delta_overlay::{
    Aabb, BaseIndex, DeltaConfig, DeltaStorage, MaterialId, Palette, WorldGen, geology::Deposition,
    geology::DepositionSettings, geology::GeologyProcess, geology::HydraulicErosion, geology::HydraulicSettings,
    geology::Intrusion, geology::IntrusionSettings, geology::IntrusionShape, geology::Terrain, geology::ThermalErosion,
    geology::ThermalSettings, geology::Workspace, geology::relax_area, geology::slopes_at_rest, materials,
};
use glam::{IVec2, IVec3};
use std::collections::BTreeMap;
use std::time::Duration;

fn small_world() -> DeltaStorage {
    let world_gen =
        WorldGen { min: IVec3::new(-20, -10, 5), size: IVec3::new(96, 80, 96), sea_level: 40, ..WorldGen::default() };
    let mut world =
        DeltaStorage::new(world_gen.build().unwrap(), DeltaConfig { threshold: 4000, ..DeltaConfig::default() });
    world.enable_surfaces(&Palette::shipped());
    world
}

/// Voxels of each material in the world, by id.
fn census(storage: &DeltaStorage) -> BTreeMap<u16, u64> {
    common::census(storage).into_iter().map(|(m, n)| (m.0, n)).collect()
}

/// Terrain voxels (not air, not water).
fn matter(census: &BTreeMap<u16, u64>, palette: &Palette) -> u64 {
    census.iter().filter(|(m, _)| palette.properties(MaterialId(**m)).is_matter()).map(|(_, n)| n).sum()
}

/// The state of all four processes.
struct Processes {
    hydraulic: (HydraulicSettings, HydraulicErosion),
    thermal: (ThermalSettings, ThermalErosion),
    intrusion: (IntrusionSettings, Intrusion),
    deposition: (DepositionSettings, Deposition),
}

impl Processes {
    fn new(seed: u64) -> Self {
        let hydraulic = HydraulicSettings { seed, droplets_per_frame: 60, ..Default::default() };
        let thermal = ThermalSettings { seed, columns_per_frame: 400, ..Default::default() };
        // Bodies cool from the margin in, `cooling_seconds * d²` at `d` voxels
        // in: 0.1 s solidifies a core 7 voxels deep in 4.9 s.
        let intrusion =
            IntrusionSettings { seed, radius: 6.0, rise_per_second: 30.0, cooling_seconds: 0.1, ..Default::default() };
        let deposition = DepositionSettings { seed, columns_per_frame: 400, ..Default::default() };
        Self {
            hydraulic: (hydraulic.clone(), HydraulicErosion::new(&hydraulic)),
            thermal: (thermal.clone(), ThermalErosion::new(&thermal)),
            intrusion: (intrusion.clone(), Intrusion::new(&intrusion)),
            deposition: (deposition.clone(), Deposition::new(&deposition)),
        }
    }
}

#[derive(Clone, Copy)]
struct Which {
    hydraulic: bool,
    thermal: bool,
    intrusion: bool,
    deposition: bool,
}

const ALL: Which = Which { hydraulic: true, thermal: true, intrusion: true, deposition: true };
const NONE: Which = Which { hydraulic: false, thermal: false, intrusion: false, deposition: false };

/// Runs `frames` frames of the chosen processes, as the plugin does: in order,
/// through one workspace, the edits applied as one batch, the clock advanced.
fn run(storage: &mut DeltaStorage, palette: &Palette, p: &mut Processes, which: Which, frames: u32) {
    let mut workspace = Workspace::new();
    for _ in 0..frames {
        {
            let mut t = Terrain::new(storage, palette, &mut workspace);
            if which.intrusion {
                p.intrusion.1.step(&mut t, &p.intrusion.0);
            }
            if which.hydraulic {
                p.hydraulic.1.step(&mut t, &p.hydraulic.0);
            }
            if which.thermal {
                p.thermal.1.step(&mut t, &p.thermal.0);
            }
            if which.deposition {
                p.deposition.1.step(&mut t, &p.deposition.0);
            }
        }
        let edits = workspace.take_edits();
        let outcome = storage.batch_update(edits);
        assert!(outcome.rejected.is_empty(), "a process wrote outside the world: {:?}", outcome.rejected);
        storage.advance_clock(Duration::from_millis(100));
    }
}

#[test]
fn hydraulic_erosion_conserves_material() {
    let palette = Palette::shipped();
    let mut world = small_world();
    let before = census(&world);
    let mut p = Processes::new(7);
    run(&mut world, &palette, &mut p, Which { hydraulic: true, ..NONE }, 150);
    let after = census(&world);
    let s = p.hydraulic.1.stats;
    assert!(s.eroded > 500, "too little erosion to test: {s:?}");
    assert_eq!(s.eroded, s.deposited + s.carried_out, "{s:?}");
    assert_eq!(matter(&after, &palette) as i64 - matter(&before, &palette) as i64, -(s.carried_out as i64), "{s:?}");
    // What was eroded became sediment (or left the world).
    let sediment = |c: &BTreeMap<u16, u64>| *c.get(&materials::SEDIMENT.0).unwrap_or(&0) as i64;
    assert!(sediment(&after) > sediment(&before));
}

#[test]
fn thermal_erosion_moves_material_without_making_or_losing_any() {
    let palette = Palette::shipped();
    let mut world = small_world();
    // Sediment piles to slide.
    for (i, c) in [IVec2::new(10, 40), IVec2::new(50, 60), IVec2::new(-5, 30)].into_iter().enumerate() {
        let mut ws = Workspace::new();
        let mut t = Terrain::new(&world, &palette, &mut ws);
        let top = t.surface(c).unwrap();
        drop(t);
        let pile: Vec<_> =
            (1..=12 + i as i32).map(|dy| (IVec3::new(c.x, top + dy, c.y), materials::SEDIMENT)).collect();
        world.batch_update(pile);
    }
    let before = census(&world);
    let mut p = Processes::new(9);
    run(&mut world, &palette, &mut p, Which { thermal: true, ..NONE }, 60);
    let s = p.thermal.1.stats;
    assert!(s.slid > 20, "{s:?}");
    assert_eq!(census(&world), before, "slides change where material is, not how much of each");
}

#[test]
fn intrusion_melts_and_cools_on_the_storage_clock() {
    let palette = Palette::shipped();
    let mut world = small_world();
    let before = census(&world);
    let mut p = Processes::new(5);
    p.intrusion.0.repeat = false;
    // A stock: its core takes seconds to cool (a thin dike or sill would be
    // rock within a frame or two of growing).
    p.intrusion.0.shape = IntrusionShape::Stock;
    run(&mut world, &palette, &mut p, Which { intrusion: true, ..NONE }, 20);
    let s = p.intrusion.1.stats;
    assert!(s.melted > 200, "{s:?}");
    let mid = census(&world);
    let magma = *mid.get(&materials::MAGMA.0).unwrap_or(&0);
    assert_eq!(s.melted, s.cooled + p.intrusion.1.molten() as u64 + s.lost, "{s:?}");
    assert_eq!(magma, p.intrusion.1.molten() as u64, "every molten voxel is in the world");
    assert_eq!(matter(&mid, &palette), matter(&before, &palette), "melting changes material, not amount");
    // Without the clock, nothing cools; with it, everything does.
    let molten = p.intrusion.1.molten();
    assert!(molten > 0);
    run(&mut world, &palette, &mut p, Which { intrusion: true, ..NONE }, 60);
    let s = p.intrusion.1.stats;
    let end = census(&world);
    assert_eq!(*end.get(&materials::MAGMA.0).unwrap_or(&0), 0, "{s:?}");
    assert_eq!(s.melted, s.cooled + s.lost);
    let igneous = |c: &BTreeMap<u16, u64>| {
        [materials::BASALT, materials::GABBRO, materials::GRANITE]
            .iter()
            .map(|m| c.get(&m.0).unwrap_or(&0))
            .sum::<u64>()
    };
    assert!(igneous(&end) > igneous(&before));
    assert_eq!(matter(&end, &palette), matter(&before, &palette));
}

#[test]
fn buried_sediment_compacts_and_submerged_sediment_settles() {
    let palette = Palette::shipped();
    // A basin: rock floor at y 0..4, a ledge of rock to y 12 on one side,
    // water to y 20, sediment piled on the ledge under water.
    let bounds = Aabb::new(IVec3::ZERO, IVec3::new(32, 40, 32));
    let mut world = DeltaStorage::new(BaseIndex::uniform(bounds, materials::AIR).unwrap(), DeltaConfig::default());
    let mut edits = Vec::new();
    for x in 0..32 {
        for z in 0..32 {
            let rock = if x < 8 { 12 } else { 4 };
            for y in 0..20 {
                edits.push((IVec3::new(x, y, z), if y < rock { materials::LIMESTONE } else { materials::WATER }));
            }
        }
    }
    for x in 2..6 {
        for z in 10..14 {
            for y in 12..18 {
                edits.push((IVec3::new(x, y, z), materials::SEDIMENT));
            }
        }
    }
    // And a deep column of sediment to compact, away from the rest.
    for y in 4..30 {
        edits.push((IVec3::new(28, y, 28), materials::SEDIMENT));
    }
    world.batch_update(edits);
    let before = census(&world);
    let mut p = Processes::new(3);
    p.deposition.0.columns_per_frame = 2000;
    p.deposition.0.compaction_seconds = 1.0;
    // Buried, but not for long enough yet (the clock runs 0.1 s a frame).
    run(&mut world, &palette, &mut p, Which { deposition: true, ..NONE }, 5);
    assert_eq!(p.deposition.1.stats.compacted, 0);
    run(&mut world, &palette, &mut p, Which { deposition: true, ..NONE }, 35);
    let s = p.deposition.1.stats;
    let after = census(&world);
    assert!(s.settled > 10, "{s:?}");
    assert!(s.compacted > 0, "{s:?}");
    // Four voxels of sediment compact into three of sandstone: the volume
    // lost leaves the world (as air at the column's top), water stays.
    assert_eq!((s.compacted % 4, s.lithified * 4), (0, s.compacted * 3), "{s:?}");
    let lost = (s.compacted - s.lithified) as i64;
    assert_eq!(matter(&after, &palette) as i64, matter(&before, &palette) as i64 - lost);
    let count = |c: &BTreeMap<u16, u64>, m: MaterialId| *c.get(&m.0).unwrap_or(&0) as i64;
    assert_eq!(count(&after, materials::WATER), count(&before, materials::WATER));
    assert_eq!(count(&after, materials::SEDIMENT), count(&before, materials::SEDIMENT) - s.compacted as i64);
    assert_eq!(count(&after, materials::SANDSTONE), s.lithified as i64);
    // The deep column (sediment 4..=29): the 8 voxels scanned below the
    // burial depth (10..=17, 12 under the top) compact into 6 of sandstone
    // (10..=15), the column sinking by 2 (its top at 27); what lies below
    // the scan stays loose.
    let mut r = world.reader();
    let column: Vec<MaterialId> = [9, 10, 15, 16, 27, 28].map(|y| r.get(IVec3::new(28, y, 28)).unwrap()).into();
    use materials::{AIR, SANDSTONE, SEDIMENT};
    assert_eq!(column, [SEDIMENT, SANDSTONE, SANDSTONE, SEDIMENT, SEDIMENT, AIR]);
    // Sediment left the ledge for the deeper basin floor.
    let on_floor = (8..32)
        .flat_map(|x| (0..32).map(move |z| (x, z)))
        .filter(|&(x, z)| r.get(IVec3::new(x, 4, z)).unwrap() == materials::SEDIMENT)
        .count();
    assert!(on_floor > 0);
}

#[test]
fn all_processes_together_conserve_material_and_are_deterministic() {
    let palette = Palette::shipped();
    let start = small_world();
    let before = census(&start);
    let run_from = |seed| {
        let mut world = small_world();
        let mut p = Processes::new(seed);
        run(&mut world, &palette, &mut p, ALL, 80);
        (world, p)
    };
    let (a, pa) = run_from(11);
    let (b, _) = run_from(11);
    let (c, _) = run_from(12);
    assert_eq!(a.digest(), b.digest(), "same seed, same world");
    assert_ne!(a.digest(), c.digest(), "another seed, another world");
    let h = pa.hydraulic.1.stats;
    let lost = pa.intrusion.1.stats.lost;
    let after = census(&a);
    assert!(h.eroded > 0 && pa.thermal.1.stats.columns > 0 && pa.intrusion.1.stats.melted > 0);
    assert_eq!(h.eroded, h.deposited + h.carried_out);
    // Only rain takes material out of the world; the rest moves or converts it.
    assert_eq!(
        matter(&after, &palette) as i64 - matter(&before, &palette) as i64,
        -(h.carried_out as i64),
        "lost {lost}"
    );
}

#[test]
fn harder_rock_erodes_less_under_the_same_rain() {
    // One slope of one rock, twice: soft, then hard. Same rain, same seed.
    let text = |hardness: f32| {
        format!(
            r#"[(id: 0, name: "air", colour: (0,0,0), form: Gas),
                (id: 1, name: "rock", colour: (0,0,0), hardness: {hardness}),
                (id: 9, name: "sediment", colour: (0,0,0), form: Loose, hardness: 0.05, angle_of_repose: 34.0)]"#
        )
    };
    let eroded = |hardness: f32| {
        let palette = Palette::from_ron_str(&text(hardness)).unwrap();
        let bounds = Aabb::new(IVec3::ZERO, IVec3::new(64, 64, 64));
        let mut world = DeltaStorage::new(BaseIndex::uniform(bounds, MaterialId::AIR).unwrap(), DeltaConfig::default());
        let slope: Vec<_> = (0..64)
            .flat_map(|x| {
                (0..64)
                    .flat_map(move |z| (0..8 + x / 2 + (z % 7) / 3).map(move |y| (IVec3::new(x, y, z), MaterialId(1))))
            })
            .collect();
        world.batch_update(slope);
        let mut p = Processes::new(21);
        p.hydraulic.0.droplets_per_frame = 100;
        let rock = |w: &DeltaStorage| *census(w).get(&1).unwrap_or(&0);
        let before = rock(&world);
        run(&mut world, &palette, &mut p, Which { hydraulic: true, ..NONE }, 100);
        // Rock taken (the sediment laid down is soft whatever the rock).
        before - rock(&world)
    };
    // Soft rock saturates the droplets' capacity (transport-limited), hard
    // rock limits what they detach: erosion falls with hardness, steeply
    // towards 1.
    let taken: Vec<u64> = [0.1, 0.5, 0.8, 0.95].into_iter().map(eroded).collect();
    assert!(taken[0] > 1000, "soft rock: {taken:?}");
    assert!(taken.windows(2).all(|w| w[1] * 10 < w[0] * 9), "not decreasing by 10% a step: {taken:?}");
    assert!(taken[3] * 3 < taken[0], "{taken:?}");
    assert_eq!(eroded(1.0), 0, "hardness 1 never erodes");
}

#[test]
fn loose_slopes_end_at_or_below_their_angle_of_repose() {
    let palette = Palette::shipped();
    let bounds = Aabb::new(IVec3::ZERO, IVec3::new(48, 48, 48));
    let mut world = DeltaStorage::new(BaseIndex::uniform(bounds, MaterialId::AIR).unwrap(), DeltaConfig::default());
    let mut edits = Vec::new();
    for x in 0..48 {
        for z in 0..48 {
            edits.push((IVec3::new(x, 0, z), materials::GRANITE));
        }
    }
    // A tower of sediment and one of soil (40°).
    for y in 1..40 {
        edits.push((IVec3::new(20, y, 20), materials::SEDIMENT));
        edits.push((IVec3::new(21, y, 20), materials::SEDIMENT));
        edits.push((IVec3::new(35, y, 35), materials::SOIL));
    }
    world.batch_update(edits);
    let before = census(&world);
    let settings = ThermalSettings::default();
    let mut state = ThermalErosion::new(&ThermalSettings { seed: 1, ..settings.clone() });
    let mut ws = Workspace::new();
    let (lo, hi) = (IVec2::ZERO, IVec2::new(48, 48));
    {
        let mut t = Terrain::new(&world, &palette, &mut ws);
        assert!(!slopes_at_rest(&mut t, lo, hi, settings.reach));
        assert!(relax_area(&mut t, &settings, &mut state, lo, hi, 500), "did not come to rest");
        assert!(slopes_at_rest(&mut t, lo, hi, settings.reach));
    }
    world.batch_update(ws.take_edits());
    assert_eq!(census(&world), before);
    // Measured directly: no loose top is steeper than its angle (within the
    // one-voxel resolution) towards any column within reach.
    let mut ws = Workspace::new();
    let mut t = Terrain::new(&world, &palette, &mut ws);
    let mut tallest = 0;
    for x in 0..48 {
        for z in 0..48 {
            let c = IVec2::new(x, z);
            let h = t.surface(c).unwrap();
            tallest = tallest.max(h);
            let top = t.get(IVec3::new(x, h, z));
            let props = *t.properties(top);
            if props.form != bevy_delta_overlay::material::Form::Loose {
                continue;
            }
            for d in [IVec2::X, IVec2::NEG_X, IVec2::Y, IVec2::NEG_Y] {
                let n = c + d;
                if t.has_column(n) {
                    let hn = t.surface(n).unwrap();
                    assert!((h - hn) as f32 <= props.repose_slope + 1.0, "{c}: {h} next to {hn}");
                }
            }
        }
    }
    assert!(tallest < 20, "the towers spread: {tallest}");
}

#[test]
fn no_process_writes_outside_a_world_of_any_size() {
    let palette = Palette::shipped();
    let worlds = [
        Aabb::new(IVec3::ZERO, IVec3::splat(16)),
        Aabb::new(IVec3::new(-3, 5, 7), IVec3::new(61, 6, 70)),
        Aabb::new(IVec3::new(0, -30, 0), IVec3::new(1, 40, 1)),
        Aabb::new(IVec3::new(-40, -20, -40), IVec3::new(60, 44, 70)),
        Aabb::new(IVec3::ZERO, IVec3::new(2, 2, 2)),
    ];
    for bounds in worlds {
        let world_gen =
            WorldGen { min: bounds.min, size: bounds.size(), sea_level: bounds.size().y / 2, ..WorldGen::default() };
        let mut world = DeltaStorage::new(world_gen.build().unwrap(), DeltaConfig::default());
        let mut p = Processes::new(1);
        // `run` asserts that nothing was rejected.
        run(&mut world, &palette, &mut p, ALL, 40);
    }
}

/// The default world, a few frames of everything: no panic, nothing outside.
#[test]
fn the_default_world_runs_every_process() {
    let palette = Palette::shipped();
    let mut world = DeltaStorage::new(WorldGen::default().build().unwrap(), DeltaConfig::default());
    let mut p = Processes::new(1);
    p.hydraulic.0.droplets_per_frame = 500;
    run(&mut world, &palette, &mut p, ALL, 10);
    assert!(p.hydraulic.1.stats.droplets == 5000 && p.intrusion.1.stats.melted > 0);
}

#[cfg(feature = "plugin")]
#[test]
fn the_plugins_run_in_an_app_and_send_their_edits() {
    use bevy::prelude::*;
    use bevy_delta_overlay::{DeltaOverlayPlugin, DeltaStats, geology::GeologyPlugins};
    let mut app = App::new();
    app.insert_resource(small_world());
    app.add_plugins((bevy::app::TaskPoolPlugin::default(), DeltaOverlayPlugin::default(), GeologyPlugins::default()));
    app.finish();
    app.cleanup();
    let start = app.world().resource::<DeltaStorage>().sequence();
    for _ in 0..30 {
        app.world_mut().resource_mut::<DeltaStorage>().advance_clock(Duration::from_millis(100));
        app.update();
    }
    let world = app.world();
    assert!(world.resource::<DeltaStorage>().sequence() > start + 100);
    assert_eq!(world.resource::<DeltaStorage>().stats().rejects, 0);
    assert!(world.resource::<HydraulicErosion>().stats.eroded > 0);
    assert!(world.resource::<Intrusion>().stats.melted > 0);
    assert!(world.resource::<Workspace>().pending() == 0, "the frame's edits were flushed");
    let _ = world.resource::<DeltaStats>();
}
