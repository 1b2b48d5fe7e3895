//! Intrusions with shapes, cooling from the margins in, contact aureoles,
//! magma that rain cannot wash away, and uplift: each called as plain
//! processes on small layered worlds, checked against the world itself.
#![cfg(feature = "geology")]

mod common;

use bevy_delta_overlay::geology::{
    Composition, GeologyProcess, HydraulicErosion, HydraulicSettings, Intrusion, IntrusionSettings, IntrusionShape,
    Terrain, Uplift, UpliftRegion, UpliftSettings, Workspace,
};
use bevy_delta_overlay::{Aabb, BaseIndex, DeltaConfig, DeltaStorage, MaterialId, Palette, WorldGen, materials};
use glam::{IVec2, IVec3};
use std::collections::BTreeMap;
use std::time::Duration;

/// A flat layered world 48 × 56 × 48: bedrock 0..2, limestone 2..14,
/// sandstone 14..26, clay 26..40, soil 40..42, air above. No igneous rock.
fn layered() -> DeltaStorage {
    let bounds = Aabb::new(IVec3::ZERO, IVec3::new(48, 56, 48));
    let mut world = DeltaStorage::new(BaseIndex::uniform(bounds, materials::AIR).unwrap(), DeltaConfig::default());
    let layers = [
        (2, materials::BEDROCK),
        (14, materials::LIMESTONE),
        (26, materials::SANDSTONE),
        (40, materials::CLAY),
        (42, materials::SOIL),
    ];
    let mut edits = Vec::new();
    for z in 0..48 {
        for x in 0..48 {
            for y in 0..42 {
                let m = layers.iter().find(|(top, _)| y < *top).map(|l| l.1).unwrap();
                edits.push((IVec3::new(x, y, z), m));
            }
        }
    }
    world.batch_update(edits);
    world.enable_surfaces(&Palette::shipped());
    world
}

use common::census;

fn count(c: &BTreeMap<MaterialId, u64>, m: MaterialId) -> u64 {
    c.get(&m).copied().unwrap_or(0)
}

/// Terrain voxels (not air, not water).
fn matter(c: &BTreeMap<MaterialId, u64>, palette: &Palette) -> u64 {
    c.iter().filter(|(m, _)| palette.properties(**m).is_matter()).map(|(_, n)| n).sum()
}

/// One frame of `process`, as the plugin runs it: its edits applied as one
/// batch, then the clock advanced by 100 ms.
fn frame<P: GeologyProcess>(world: &mut DeltaStorage, palette: &Palette, process: &mut P, settings: &P::Settings) {
    let mut workspace = Workspace::new();
    process.step(&mut Terrain::new(world, palette, &mut workspace), settings);
    let outcome = world.batch_update(workspace.take_edits());
    assert!(outcome.rejected.is_empty(), "a process wrote outside the world");
    world.advance_clock(Duration::from_millis(100));
}

/// One body (no repeat) from `(24, 4, 24)`, fast.
fn one_body(shape: IntrusionShape) -> IntrusionSettings {
    IntrusionSettings {
        source: Some(IVec3::new(24, 4, 24)),
        shape,
        radius: 5.0,
        rise_per_second: 40.0,
        cooling_seconds: 0.1,
        repeat: false,
        ..Default::default()
    }
}

/// Runs one body until it has solidified: the world, the process, and the
/// seconds from the end of its growth to its last voxel's cooling.
fn intrude(settings: &IntrusionSettings) -> (DeltaStorage, Intrusion, f32) {
    let palette = Palette::shipped();
    let mut world = layered();
    let mut p = Intrusion::new(settings);
    let mut grown_at = None;
    for _ in 0..2000 {
        frame(&mut world, &palette, &mut p, settings);
        if grown_at.is_none() && !p.growing() {
            grown_at = Some(world.now());
        }
        if let Some(grown) = grown_at
            && p.molten() == 0
        {
            let s = p.stats;
            assert_eq!(s.melted, s.cooled + s.lost, "{s:?}");
            let took = world.now().saturating_sub(grown).as_secs_f32();
            return (world, p, took);
        }
    }
    panic!("the body did not solidify: {:?}", p.stats);
}

fn is_igneous(m: MaterialId) -> bool {
    [materials::BASALT, materials::GABBRO, materials::RHYOLITE, materials::GRANITE].contains(&m)
}

const FACES: [IVec3; 6] = [IVec3::X, IVec3::NEG_X, IVec3::Y, IVec3::NEG_Y, IVec3::Z, IVec3::NEG_Z];

/// Every voxel of `m` in the world.
fn voxels_of(world: &DeltaStorage, m: impl Fn(MaterialId) -> bool) -> Vec<IVec3> {
    let b = world.bounds();
    let mut r = world.reader();
    let mut out = Vec::new();
    for z in b.min.z..b.max.z {
        for y in b.min.y..b.max.y {
            for x in b.min.x..b.max.x {
                let p = IVec3::new(x, y, z);
                if m(r.get(p).unwrap()) {
                    out.push(p);
                }
            }
        }
    }
    out
}

#[test]
fn a_cooled_stock_has_a_chilled_margin_and_a_coarser_core() {
    for (composition, fine, coarse) in [
        (Composition::Mafic, materials::BASALT, materials::GABBRO),
        (Composition::Felsic, materials::RHYOLITE, materials::GRANITE),
    ] {
        let (world, p, _) = intrude(&IntrusionSettings { composition, ..one_body(IntrusionShape::Stock) });
        let c = census(&world);
        assert!(count(&c, fine) > 200 && count(&c, coarse) > 50, "{composition:?}: {c:?} {:?}", p.stats);
        assert_eq!(count(&c, fine) + count(&c, coarse), p.stats.cooled, "nothing else is igneous");
        // The margin is the fine rock: every igneous voxel touching other
        // rock is fine-grained, and the coarse core touches only igneous rock.
        let mut r = world.reader();
        for q in voxels_of(&world, is_igneous) {
            let at = r.get(q).unwrap();
            let touches_country = FACES.iter().any(|&f| !is_igneous(r.get(q + f).unwrap_or(MaterialId::AIR)));
            if touches_country {
                assert_eq!(at, fine, "{composition:?}: the margin at {q} is {at}");
            }
            if at == coarse {
                let near = FACES.iter().all(|&f| r.get(q + f).is_ok_and(is_igneous));
                assert!(near, "{composition:?}: the core at {q} touches country rock");
            }
        }
    }
}

#[test]
fn a_thin_dike_solidifies_before_a_stock_of_the_same_volume() {
    let stock = IntrusionSettings { radius: 4.0, ..one_body(IntrusionShape::Stock) };
    let dike = IntrusionSettings {
        radius: 12.0,
        thickness: 2,
        strike: Some(IVec2::new(1, 0)),
        ..one_body(IntrusionShape::Dike)
    };
    let (stock_world, s, stock_took) = intrude(&stock);
    let (dike_world, d, dike_took) = intrude(&dike);
    let (sv, dv) = (s.stats.melted as f32, d.stats.melted as f32);
    assert!((sv - dv).abs() < 0.25 * sv, "volumes {sv} and {dv} are not comparable");
    assert!(dike_took * 4.0 < stock_took, "the dike took {dike_took} s, the stock {stock_took} s");
    // Thin: all margin, so all fine-grained; the stock has a core.
    assert_eq!(count(&census(&dike_world), materials::GABBRO), 0);
    assert!(count(&census(&stock_world), materials::GABBRO) > 0);
    // And a sheet: two voxels across its strike, 25 along it.
    let body = voxels_of(&dike_world, |m| m == materials::BASALT);
    assert!(body.iter().all(|p| (23..=24).contains(&p.z)), "thicker than 2");
    let (lo, hi) = body.iter().fold((i32::MAX, i32::MIN), |(lo, hi), p| (lo.min(p.x), hi.max(p.x)));
    assert_eq!((lo, hi), (12, 36));
}

#[test]
fn a_sill_spreads_along_a_bedding_plane() {
    let sill = IntrusionSettings { radius: 14.0, thickness: 2, ..one_body(IntrusionShape::Sill) };
    let (world, p, _) = intrude(&sill);
    assert_eq!(p.stats.sills, 1);
    // The body's top is 42 - 12 = 30: the highest contact with room below it
    // is sandstone under clay, at 26. Away from the feeder, the body is the
    // sheet: y 26 and 27 only, spreading to the radius.
    let body = voxels_of(&world, is_igneous);
    let sheet: Vec<_> = body.iter().filter(|p| (p.x - 24).abs() > 1 || (p.z - 24).abs() > 1).collect();
    assert!(sheet.iter().all(|p| (26..=27).contains(&p.y)), "the sheet leaves the plane");
    let reach = sheet.iter().map(|p| (p.x - 24).abs().max((p.z - 24).abs())).max().unwrap();
    assert_eq!(reach, 14);
}

#[test]
fn an_aureole_of_the_expected_rocks_surrounds_a_body() {
    let settings = IntrusionSettings { aureole: 3, ..one_body(IntrusionShape::Stock) };
    let before = census(&layered());
    let (world, p, _) = intrude(&settings);
    let c = census(&world);
    let palette = Palette::shipped();
    assert_eq!(matter(&c, &palette), matter(&before, &palette), "baking changes rock, not amount");
    let baked = [materials::QUARTZITE, materials::MARBLE, materials::HORNFELS];
    for m in baked {
        assert!(count(&c, m) > 20, "{m}: {c:?}");
    }
    assert_eq!(baked.iter().map(|&m| count(&c, m)).sum::<u64>(), p.stats.metamorphosed);
    // Within the aureole only (3 voxels face to face: a Manhattan distance),
    // and no unbaked country rock left touching the body.
    let mut r = world.reader();
    for q in voxels_of(&world, |m| baked.contains(&m)) {
        let near = (-3..=3i32).any(|dz| {
            (-3..=3i32).any(|dy| {
                (-3..=3i32).any(|dx| {
                    dx.abs() + dy.abs() + dz.abs() <= 3 && r.get(q + IVec3::new(dx, dy, dz)).is_ok_and(is_igneous)
                })
            })
        });
        assert!(near, "{q} baked farther than 3 voxels from the body");
    }
    for q in voxels_of(&world, is_igneous) {
        for f in FACES {
            let m = r.get(q + f).unwrap_or(MaterialId::AIR);
            let unbaked = [materials::SANDSTONE, materials::LIMESTONE, materials::CLAY].contains(&m);
            assert!(!unbaked, "{m} at {} touches the body", q + f);
        }
    }
}

#[test]
fn magma_exposed_to_rain_is_not_washed_into_sediment() {
    // A slope of clay, its upper half capped by four voxels of magma.
    let palette = Palette::shipped();
    let bounds = Aabb::new(IVec3::ZERO, IVec3::new(64, 64, 64));
    let mut world = DeltaStorage::new(BaseIndex::uniform(bounds, MaterialId::AIR).unwrap(), DeltaConfig::default());
    let slope: Vec<_> = (0..64)
        .flat_map(|x| {
            (0..64).flat_map(move |z| {
                let top = 8 + x / 2 + (z % 7) / 3;
                (0..top).map(move |y| {
                    let m = if x >= 32 && y >= top - 4 { materials::MAGMA } else { materials::CLAY };
                    (IVec3::new(x, y, z), m)
                })
            })
        })
        .collect();
    world.batch_update(slope);
    world.enable_surfaces(&palette);
    let magma = count(&census(&world), materials::MAGMA);
    let settings = HydraulicSettings { droplets_per_frame: 100, seed: 21, ..Default::default() };
    let mut rain = HydraulicErosion::new(&settings);
    for _ in 0..100 {
        frame(&mut world, &palette, &mut rain, &settings);
    }
    let s = rain.stats;
    assert!(s.eroded > 500, "the clay erodes: {s:?}");
    assert_eq!(count(&census(&world), materials::MAGMA), magma, "rain took magma: {s:?}");
}

/// Surfaces of every column.
fn surfaces(world: &DeltaStorage, palette: &Palette) -> BTreeMap<(i32, i32), Option<i32>> {
    let mut ws = Workspace::new();
    let mut t = Terrain::new(world, palette, &mut ws);
    let b = world.bounds();
    (b.min.z..b.max.z)
        .flat_map(|z| (b.min.x..b.max.x).map(move |x| (x, z)))
        .map(|(x, z)| ((x, z), t.surface(IVec2::new(x, z))))
        .collect()
}

#[test]
fn uplift_raises_its_region_at_its_rate_and_accounts_for_the_volume() {
    let palette = Palette::shipped();
    let mut world = layered();
    let region = UpliftRegion::Disc { center: IVec2::new(20, 24), radius: 8.0 };
    let settings = UpliftSettings { region: Some(region), rate: 2.0, ..Default::default() };
    let mut up = Uplift::new(&settings);
    let before = (census(&world), surfaces(&world, &palette));
    // 5 s at 2 voxels a second: 10 steps (the first frame starts the clock).
    for _ in 0..51 {
        frame(&mut world, &palette, &mut up, &settings);
    }
    let s = up.stats;
    let after = (census(&world), surfaces(&world, &palette));
    let inside = before.1.keys().filter(|&&(x, z)| region.contains(IVec2::new(x, z))).count() as u64;
    assert!((9..=11).contains(&s.steps), "{s:?}");
    assert_eq!((s.columns, s.added, s.clipped), (inside * s.steps, inside * s.steps, 0), "{s:?}");
    for (c, &was) in &before.1 {
        let rose = after.1[c].unwrap() - was.unwrap();
        let expected = if region.contains(IVec2::new(c.0, c.1)) { 10 } else { 0 };
        assert!((rose - expected).abs() <= 1, "{c:?} rose {rose}");
    }
    let grown = matter(&after.0, &palette) as i64 - matter(&before.0, &palette) as i64;
    assert_eq!(grown, (s.added - s.clipped) as i64);
    assert_eq!(count(&after.0, materials::GRANITE), s.added, "the new rock came in from below");
    // The floor stayed, the new rock is above it and the strata moved up.
    let mut r = world.reader();
    let c = IVec3::new(20, 0, 24);
    assert_eq!(r.get(c + IVec3::Y).unwrap(), materials::BEDROCK);
    assert_eq!(r.get(c + IVec3::Y * 2).unwrap(), materials::GRANITE);
    assert_eq!(r.get(c + IVec3::Y * (2 + s.steps as i32)).unwrap(), materials::LIMESTONE);
    assert_eq!(r.get(c + IVec3::Y * (42 + s.steps as i32 - 1)).unwrap(), materials::SOIL);
}

#[test]
fn uplift_clips_and_counts_what_reaches_the_top_of_the_world() {
    let palette = Palette::shipped();
    let mut world = layered();
    // A box of columns whose surface is 51: 4 voxels below the ceiling.
    let edits: Vec<_> = (0..48)
        .flat_map(|z| (0..48).flat_map(move |x| (42..52).map(move |y| (IVec3::new(x, y, z), materials::CLAY))))
        .collect();
    world.batch_update(edits);
    let region = UpliftRegion::Box { min: IVec2::new(4, 4), max: IVec2::new(10, 8) };
    let settings = UpliftSettings { region: Some(region), rate: 10.0, max_backlog: 0, ..Default::default() };
    let mut up = Uplift::new(&settings);
    let before = census(&world);
    for _ in 0..11 {
        frame(&mut world, &palette, &mut up, &settings);
    }
    let s = up.stats;
    assert_eq!(s.steps, 10, "{s:?}");
    assert!(s.dropped == 0, "{s:?}");
    // 24 columns: 4 steps to reach the ceiling, 6 clipped.
    assert_eq!((s.added, s.clipped), (240, 6 * 24), "{s:?}");
    let grown = matter(&census(&world), &palette) as i64 - matter(&before, &palette) as i64;
    assert_eq!(grown, 240 - 6 * 24);
    assert_eq!(surfaces(&world, &palette)[&(5, 5)], Some(55));
}

#[test]
fn a_step_over_more_columns_than_a_frame_raises_goes_on_over_the_next_frames() {
    let palette = Palette::shipped();
    let mut world = layered();
    let region = UpliftRegion::Disc { center: IVec2::new(24, 24), radius: 12.0 };
    let settings = UpliftSettings { region: Some(region), rate: 1.0, max_columns_per_frame: 100, ..Default::default() };
    let mut up = Uplift::new(&settings);
    let before = (census(&world), surfaces(&world, &palette));
    for _ in 0..60 {
        frame(&mut world, &palette, &mut up, &settings);
    }
    let s = up.stats;
    let after = (census(&world), surfaces(&world, &palette));
    let inside = before.1.keys().filter(|&&(x, z)| region.contains(IVec2::new(x, z))).count() as u64;
    // 449 columns, 100 a frame: a step takes 5 frames, half a second; the
    // clock owes one a second.
    assert!(inside > 400 && (5..=6).contains(&s.steps), "{inside} columns: {s:?}");
    assert!(s.columns >= inside * s.steps && s.columns < inside * (s.steps + 1), "{s:?}");
    for (c, &was) in &before.1 {
        let rose = (after.1[c].unwrap() - was.unwrap()) as u64;
        let inside = region.contains(IVec2::new(c.0, c.1));
        assert!(if inside { rose == s.steps || rose == s.steps + 1 } else { rose == 0 }, "{c:?} rose {rose}");
    }
    let grown = matter(&after.0, &palette) as i64 - matter(&before.0, &palette) as i64;
    assert_eq!((grown, s.added), ((s.added - s.clipped) as i64, s.columns));
}

#[test]
fn uplift_and_intrusion_stay_inside_a_world_of_any_size() {
    let palette = Palette::shipped();
    let worlds = [
        Aabb::new(IVec3::ZERO, IVec3::splat(16)),
        Aabb::new(IVec3::new(-3, 5, 7), IVec3::new(61, 6, 70)),
        Aabb::new(IVec3::new(0, -30, 0), IVec3::new(1, 40, 1)),
        Aabb::new(IVec3::ZERO, IVec3::new(2, 2, 2)),
    ];
    // The default region, and one reaching past the world's corner.
    let regions = [None, Some(UpliftRegion::Disc { center: IVec2::new(-2, 3), radius: 9.0 })];
    for bounds in worlds {
        for region in regions {
            let gen_ = WorldGen {
                min: bounds.min,
                size: bounds.size(),
                sea_level: bounds.size().y / 2,
                ..WorldGen::default()
            };
            let mut world = DeltaStorage::new(gen_.build().unwrap(), DeltaConfig::default());
            let before = census(&world);
            let up = UpliftSettings { region, rate: 5.0, ..Default::default() };
            let melt = IntrusionSettings { radius: 4.0, rise_per_second: 60.0, ..Default::default() };
            let (mut u, mut i) = (Uplift::new(&up), Intrusion::new(&melt));
            // `frame` asserts that nothing was rejected.
            for _ in 0..30 {
                frame(&mut world, &palette, &mut u, &up);
                frame(&mut world, &palette, &mut i, &melt);
            }
            let grown = matter(&census(&world), &palette) as i64 - matter(&before, &palette) as i64;
            assert_eq!(grown, u.stats.added as i64 - u.stats.clipped as i64, "{bounds:?}: {:?}", u.stats);
        }
    }
}

#[test]
fn mixed_bodies_take_every_shape_and_a_seed_decides_the_world() {
    let palette = Palette::shipped();
    let run = |seed| {
        let gen_ = WorldGen { size: IVec3::new(96, 80, 96), sea_level: 40, ..WorldGen::default() };
        let mut world = DeltaStorage::new(gen_.build().unwrap(), DeltaConfig::default());
        world.enable_surfaces(&palette);
        let settings =
            IntrusionSettings { seed, radius: 6.0, rise_per_second: 60.0, cooling_seconds: 0.05, ..Default::default() };
        let mut p = Intrusion::new(&settings);
        for _ in 0..120 {
            frame(&mut world, &palette, &mut p, &settings);
        }
        (world.digest(), p.stats)
    };
    let (a, s) = run(4);
    assert!(s.stocks > 0 && s.dikes > 0 && s.sills > 0, "{s:?}");
    assert!(s.metamorphosed > 0, "{s:?}");
    assert_eq!(a, run(4).0, "same seed, same world");
    assert_ne!(a, run(5).0, "another seed, another world");
}
