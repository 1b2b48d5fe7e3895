//! The geology model's fidelity: piles rest at their angle along axes and
//! diagonals, sediment settles sorted by grain size, compaction needs depth
//! and time and loses volume, and no process makes or destroys water (a
//! census by material class over every process).

use bevy_delta_overlay::geology::{
    Deposition, DepositionSettings, GeologyProcess, HydraulicErosion, HydraulicSettings, Intrusion, IntrusionSettings,
    Terrain, ThermalErosion, ThermalSettings, Workspace, relax_area,
};
use bevy_delta_overlay::material::Form;
use bevy_delta_overlay::materials;
use bevy_delta_overlay::{Aabb, BaseIndex, DeltaConfig, DeltaStorage, MaterialId, MaterialUpdate, Palette, WorldGen};
use glam::{IVec2, IVec3};
use std::collections::HashMap;
use std::time::Duration;

/// An empty world of `size` with a granite floor at y 0.
fn floored(size: IVec3) -> DeltaStorage {
    let bounds = Aabb::new(IVec3::ZERO, size);
    let mut world = DeltaStorage::new(BaseIndex::uniform(bounds, materials::AIR).unwrap(), DeltaConfig::default());
    world.batch_update((0..size.x).flat_map(|x| (0..size.z).map(move |z| (IVec3::new(x, 0, z), materials::GRANITE))));
    world
}

/// The flank's slope in degrees from the pile's top at `centre` in
/// direction `dir`: a least-squares line through the surface heights between
/// 20% and 80% of the pile's height (above the floor at y 0), against the
/// horizontal distance (`sqrt(2)` a step on a diagonal).
fn flank_angle(t: &mut Terrain<'_>, centre: IVec2, dir: IVec2) -> f64 {
    let peak = f64::from(t.surface(centre).unwrap());
    let step = f64::from(dir.x * dir.x + dir.y * dir.y).sqrt();
    let mut points = Vec::new();
    for k in 0.. {
        let Some(h) = t.surface(centre + dir * k) else { break };
        let h = f64::from(h);
        if h <= 0.0 {
            break;
        }
        if h >= 0.2 * peak && h <= 0.8 * peak {
            points.push((f64::from(k) * step, h));
        }
    }
    assert!(points.len() >= 4, "too few points on the flank towards {dir}: {points:?}");
    let n = points.len() as f64;
    let (mx, my) = (points.iter().map(|p| p.0).sum::<f64>() / n, points.iter().map(|p| p.1).sum::<f64>() / n);
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = points.iter().map(|p| (p.0 - mx) * (p.0 - mx)).sum();
    (-sxy / sxx).atan().to_degrees()
}

/// A tower of sediment (34°), 15 x 15 and 60 high, relaxes at the default
/// settings into a cone whose flanks stand at 34° ± 4° along the axes and
/// the diagonals alike. (The four-direction rule over 3 columns left 43°
/// along the axes and 51° along the diagonals.)
#[test]
fn a_sediment_pile_rests_at_its_angle_along_axes_and_diagonals() {
    let palette = Palette::shipped();
    let mut world = floored(IVec3::new(96, 72, 96));
    let centre = IVec2::new(48, 48);
    world
        .batch_update((41..56).flat_map(|x| {
            (41..56).flat_map(move |z| (1..61).map(move |y| (IVec3::new(x, y, z), materials::SEDIMENT)))
        }));
    let settings = ThermalSettings::default();
    let mut state = ThermalErosion::new(&settings);
    let mut ws = Workspace::new();
    let (lo, hi) = (IVec2::ZERO, IVec2::new(96, 96));
    {
        let mut t = Terrain::new(&world, &palette, &mut ws);
        assert!(relax_area(&mut t, &settings, &mut state, lo, hi, 2000), "did not come to rest");
    }
    world.batch_update(ws.take_edits());
    let mut t = Terrain::new(&world, &palette, &mut ws);
    let axes: Vec<f64> =
        [IVec2::X, IVec2::NEG_X, IVec2::Y, IVec2::NEG_Y].into_iter().map(|d| flank_angle(&mut t, centre, d)).collect();
    let diagonals: Vec<f64> = [IVec2::new(1, 1), IVec2::new(-1, -1), IVec2::new(1, -1), IVec2::new(-1, 1)]
        .into_iter()
        .map(|d| flank_angle(&mut t, centre, d))
        .collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "peak {:?}, axes {axes:.1?} (mean {:.1}), diagonals {diagonals:.1?} (mean {:.1})",
        t.surface(centre),
        mean(&axes),
        mean(&diagonals)
    );
    for a in axes.iter().chain(&diagonals) {
        assert!((30.0..=38.0).contains(a), "axes {axes:?}, diagonals {diagonals:?}");
    }
    assert!((mean(&axes) - mean(&diagonals)).abs() < 3.0, "axes {axes:?}, diagonals {diagonals:?}");
}

/// A palette with one loose material of each grain class, compacting.
fn grain_palette() -> Palette {
    Palette::from_ron_str(
        r#"[(id: 0, name: "air", colour: (0,0,0), form: Gas),
            (id: 3, name: "granite", colour: (0,0,0), hardness: 0.9),
            (id: 4, name: "sandstone", colour: (0,0,0), hardness: 0.45),
            (id: 8, name: "water", colour: (0,0,0), form: Liquid),
            (id: 9, name: "sand", colour: (0,0,0), form: Loose, hardness: 0.05, angle_of_repose: 34.0,
             compacts_to: "sandstone", compacts_volume: (4, 3), grain: Sand),
            (id: 13, name: "silt", colour: (0,0,0), form: Loose, hardness: 0.04, angle_of_repose: 32.0,
             compacts_to: "shale", compacts_volume: (2, 1), grain: Silt),
            (id: 14, name: "shale", colour: (0,0,0), hardness: 0.35),
            (id: 20, name: "gravel", colour: (0,0,0), form: Loose, hardness: 0.1, angle_of_repose: 38.0, grain: Gravel),
            (id: 21, name: "mud", colour: (0,0,0), form: Loose, hardness: 0.03, angle_of_repose: 30.0,
             compacts_to: "shale", compacts_volume: (2, 1), grain: Clay)]"#,
    )
    .unwrap()
}

const GRAVEL: MaterialId = MaterialId(20);
const MUD: MaterialId = MaterialId(21);

/// A basin under water to y 40: a granite bed falling gently from the shore
/// at x 0 (top 30) to x 48 (top 6), flat beyond.
fn basin() -> DeltaStorage {
    let size = IVec3::new(80, 48, 24);
    let bounds = Aabb::new(IVec3::ZERO, size);
    let mut world = DeltaStorage::new(BaseIndex::uniform(bounds, materials::AIR).unwrap(), DeltaConfig::default());
    let mut edits = Vec::new();
    for x in 0..size.x {
        let top = (30 - x / 2).max(6);
        for z in 0..size.z {
            for y in 0..40 {
                edits.push((IVec3::new(x, y, z), if y <= top { materials::GRANITE } else { materials::WATER }));
            }
        }
    }
    world.batch_update(edits);
    world.enable_surfaces(&grain_palette());
    world
}

/// Where each material lies: its voxels' mean x.
fn mean_x(world: &DeltaStorage, m: MaterialId) -> (f64, u64) {
    let b = world.bounds();
    let mut r = world.reader();
    let (mut sum, mut n) = (0i64, 0u64);
    for x in b.min.x..b.max.x {
        for z in b.min.z..b.max.z {
            for y in b.min.y..b.max.y {
                if r.get(IVec3::new(x, y, z)).unwrap() == m {
                    sum += i64::from(x);
                    n += 1;
                }
            }
        }
    }
    (sum as f64 / n.max(1) as f64, n)
}

/// A mixed load laid at the shore, a voxel of each class a frame in a few
/// columns, settles sorted: gravel nearest, then sand, silt, clay furthest;
/// the bed far out is fine, the bed near the shore coarse.
#[test]
fn a_mixed_load_settles_sorted_by_grain_size() {
    let palette = grain_palette();
    let mut world = basin();
    let settings = DepositionSettings { burial_depth: 1000, ..Default::default() };
    let mut state = Deposition::new(&settings);
    let mut ws = Workspace::new();
    let load = [GRAVEL, materials::SEDIMENT, materials::SILT, MUD];
    for frame in 0..400 {
        {
            let mut t = Terrain::new(&world, &palette, &mut ws);
            if frame < 300 {
                for (i, m) in load.into_iter().enumerate() {
                    let c = IVec2::new(4, 8 + (frame + i as i32) % 8);
                    assert!(t.lay(c, m));
                }
            }
            state.step(&mut t, &settings);
        }
        world.batch_update(ws.take_edits());
    }
    let at: Vec<(f64, u64)> = load.into_iter().map(|m| mean_x(&world, m)).collect();
    println!("mean x (gravel, sand, silt, clay): {at:.1?}; {:?}", state.stats);
    assert!(at.iter().all(|&(_, n)| n == 300), "every voxel laid is still there: {at:?}");
    assert!(at.windows(2).all(|w| w[0].0 + 1.0 < w[1].0), "coarse nearer the shore, fine further: {at:?}");
    // Strata: the bed near the shore is mostly coarse, far out mostly fine.
    let mut r = world.reader();
    let mut near = HashMap::new();
    let mut far = HashMap::new();
    for z in 0..24 {
        for x in 0..80 {
            for y in 0..40 {
                let m = r.get(IVec3::new(x, y, z)).unwrap();
                if load.contains(&m) {
                    *(if x < 12 { &mut near } else { &mut far }).entry(m.0).or_insert(0u64) += 1;
                }
            }
        }
    }
    let coarse = |h: &HashMap<u16, u64>| h.get(&GRAVEL.0).unwrap_or(&0) + h.get(&materials::SEDIMENT.0).unwrap_or(&0);
    let fine = |h: &HashMap<u16, u64>| h.get(&materials::SILT.0).unwrap_or(&0) + h.get(&MUD.0).unwrap_or(&0);
    println!("near the shore {near:?}, far {far:?}");
    assert!(coarse(&near) > 2 * fine(&near) && fine(&far) > 2 * coarse(&far), "near {near:?}, far {far:?}");
}

/// Voxels of each form in the world.
fn classes(world: &DeltaStorage, palette: &Palette) -> [i64; 5] {
    let b = world.bounds();
    let mut r = world.reader();
    let mut out = [0; 5];
    for z in b.min.z..b.max.z {
        for y in b.min.y..b.max.y {
            for x in b.min.x..b.max.x {
                out[form_index(palette.properties(r.get(IVec3::new(x, y, z)).unwrap()).form)] += 1;
            }
        }
    }
    out
}

/// Gas, liquid, molten, loose, solid.
fn form_index(form: Form) -> usize {
    match form {
        Form::Gas => 0,
        Form::Liquid => 1,
        Form::Molten => 2,
        Form::Loose => 3,
        Form::Solid => 4,
    }
}

const GAS: usize = 0;
const LIQUID: usize = 1;
const MOLTEN: usize = 2;
const LOOSE: usize = 3;
const SOLID: usize = 4;

/// A column of 40 voxels of sand under 10 of water, on a granite floor:
/// compaction needs the burial depth and the time, and loses a quarter of the
/// volume (four voxels of sand make three of sandstone), the water sinking
/// with the bed and none lost.
#[test]
fn compaction_needs_depth_and_time_and_loses_volume() {
    let palette = grain_palette();
    let run = |depth: i32, seconds: u64| {
        let mut world = floored(IVec3::new(16, 64, 16));
        let mut edits = Vec::new();
        for x in 0..16 {
            for z in 0..16 {
                for y in 1..51 {
                    edits.push((IVec3::new(x, y, z), if y <= 40 { materials::SEDIMENT } else { materials::WATER }));
                }
            }
        }
        world.batch_update(edits);
        world.enable_surfaces(&palette);
        let before = classes(&world, &palette);
        let settings = DepositionSettings {
            burial_depth: depth,
            compaction_seconds: 30.0,
            compaction_scan: 64,
            ..Default::default()
        };
        let mut state = Deposition::new(&settings);
        let mut ws = Workspace::new();
        for _ in 0..20 {
            {
                let mut t = Terrain::new(&world, &palette, &mut ws);
                state.step(&mut t, &settings);
                for x in 0..16 {
                    for z in 0..16 {
                        state.check_column(&mut t, &settings, IVec2::new(x, z));
                    }
                }
            }
            world.batch_update(ws.take_edits());
            world.advance_clock(Duration::from_secs(seconds));
        }
        (before, classes(&world, &palette), state.stats, world)
    };
    // Deep enough, no time: nothing.
    let (_, _, s, _) = run(12, 0);
    assert_eq!((s.compacted, s.lithified), (0, 0), "{s:?}");
    // Time, not deep enough (the sand is 40 voxels thick): nothing.
    let (_, _, s, _) = run(45, 10);
    assert_eq!((s.compacted, s.lithified), (0, 0), "{s:?}");
    // Both: compacts, a quarter of the volume lost, water kept.
    let (before, after, s, world) = run(12, 10);
    println!("{before:?} -> {after:?}: {s:?}");
    assert!(s.compacted >= 16 * 16 * 20, "{s:?}");
    assert_eq!(s.compacted % 4, 0);
    assert_eq!(s.lithified * 4, s.compacted * 3, "{s:?}");
    assert_eq!(after[LIQUID], before[LIQUID], "water neither made nor destroyed");
    assert_eq!(after[LOOSE], before[LOOSE] - s.compacted as i64);
    assert_eq!(after[SOLID], before[SOLID] + s.lithified as i64);
    assert_eq!(after[GAS], before[GAS] + (s.compacted - s.lithified) as i64, "the volume lost is air at the top");
    // The bed sank: 28 voxels of sand buried 12 deep became 21 of sandstone,
    // 12 of sand above them, the water above that.
    let mut r = world.reader();
    let column: Vec<MaterialId> = (1..50).map(|y| r.get(IVec3::new(5, y, 9)).unwrap()).collect();
    let expect: Vec<MaterialId> = (1..50)
        .map(|y| match y {
            1..=21 => materials::SANDSTONE,
            22..=33 => materials::SEDIMENT,
            34..=43 => materials::WATER,
            _ => materials::AIR,
        })
        .collect();
    assert_eq!(column, expect);
}

/// Each voxel a batch changes, once, with its material before (read from the
/// world) and after (the last write): the batch's change of each class.
fn class_change(world: &DeltaStorage, palette: &Palette, edits: &[MaterialUpdate]) -> [i64; 5] {
    let mut last: HashMap<IVec3, MaterialId> = HashMap::new();
    for e in edits {
        last.insert(e.position, e.material);
    }
    let mut r = world.reader();
    let mut out = [0; 5];
    for (p, m) in last {
        out[form_index(palette.properties(r.get(p).unwrap()).form)] -= 1;
        out[form_index(palette.properties(m).form)] += 1;
    }
    out
}

/// Applies one process's edits, returning their change of each class.
fn apply(world: &mut DeltaStorage, palette: &Palette, ws: &mut Workspace) -> [i64; 5] {
    let edits = ws.take_edits();
    let change = class_change(world, palette, &edits);
    let outcome = world.batch_update(edits);
    assert!(outcome.rejected.is_empty());
    change
}

/// The census: 200 frames of every process on a small world with a sea,
/// each process's edits classed (gas, liquid, molten, loose, solid) against
/// what it declares. No process makes or destroys water; hydraulic erosion's
/// rock and loose taken is what it lays plus what it carries out; thermal
/// erosion moves only; deposition turns loose into less rock, the volume lost
/// becoming air; intrusion turns rock into magma and back. The world's own
/// census before and after agrees with the sum.
#[test]
fn a_census_of_every_process_conserves_water_and_accounts_for_every_class() {
    let palette = Palette::shipped();
    let world_gen =
        WorldGen { min: IVec3::new(-20, -10, 5), size: IVec3::new(96, 80, 96), sea_level: 52, ..WorldGen::default() };
    let mut world = DeltaStorage::new(world_gen.build().unwrap(), DeltaConfig::default());
    world.enable_surfaces(&palette);
    // A bank of sediment laid in the sea (and on land): something to settle
    // and to compact.
    let mut ws = Workspace::new();
    {
        let mut t = Terrain::new(&world, &palette, &mut ws);
        // Around the deepest water: a block 10 thick.
        let depth = |t: &mut Terrain<'_>, c: IVec2| t.surface_of(c).and_then(|s| Some(s.liquid? - s.top?)).unwrap_or(0);
        let columns = (-20..76).flat_map(|x| (5..101).map(move |z| IVec2::new(x, z)));
        let deepest = columns.max_by_key(|&c| (depth(&mut t, c), c.x, c.y)).unwrap();
        assert!(depth(&mut t, deepest) > 8, "a sea: {deepest} {}", depth(&mut t, deepest));
        for x in -6..6 {
            for z in -6..6 {
                let c = deepest + IVec2::new(x, z);
                if t.surface_of(c).is_some_and(|s| s.liquid.is_some()) {
                    (0..10).for_each(|_| assert!(t.lay(c, materials::SEDIMENT)));
                }
            }
        }
    }
    world.batch_update(ws.take_edits());
    let before = classes(&world, &palette);
    let hs = HydraulicSettings { seed: 3, droplets_per_frame: 80, ..Default::default() };
    let ts = ThermalSettings { seed: 3, columns_per_frame: 200, ..Default::default() };
    let is =
        IntrusionSettings { seed: 3, radius: 5.0, rise_per_second: 30.0, cooling_seconds: 2.0, ..Default::default() };
    let ds = DepositionSettings {
        seed: 3,
        columns_per_frame: 200,
        burial_depth: 3,
        compaction_seconds: 2.0,
        ..Default::default()
    };
    let (mut h, mut th, mut i, mut d) =
        (HydraulicErosion::new(&hs), ThermalErosion::new(&ts), Intrusion::new(&is), Deposition::new(&ds));
    let mut total = [0i64; 5];
    let add = |total: &mut [i64; 5], c: [i64; 5]| (0..5).for_each(|k| total[k] += c[k]);
    for _ in 0..200 {
        let (melted, cooled) = (i.stats.melted, i.stats.cooled);
        i.step(&mut Terrain::new(&world, &palette, &mut ws), &is);
        let c = apply(&mut world, &palette, &mut ws);
        assert_eq!((c[LIQUID], c[GAS]), (0, 0), "intrusion: {c:?}");
        assert_eq!(c[MOLTEN], (i.stats.melted - melted) as i64 - (i.stats.cooled - cooled) as i64, "{c:?}");
        assert_eq!(c[MOLTEN] + c[LOOSE] + c[SOLID], 0, "intrusion converts: {c:?}");
        add(&mut total, c);

        let (eroded, deposited, out) = (h.stats.eroded, h.stats.deposited, h.stats.carried_out);
        h.step(&mut Terrain::new(&world, &palette, &mut ws), &hs);
        let c = apply(&mut world, &palette, &mut ws);
        let (eroded, deposited, out) = (
            (h.stats.eroded - eroded) as i64,
            (h.stats.deposited - deposited) as i64,
            (h.stats.carried_out - out) as i64,
        );
        assert_eq!(c[LIQUID], 0, "hydraulic erosion made or destroyed water: {c:?}");
        assert_eq!(eroded, deposited + out);
        // Rock, magma and loose taken = what was laid + what left the world.
        assert_eq!(c[MOLTEN] + c[LOOSE] + c[SOLID], -out, "hydraulic: {c:?}, carried out {out}");
        assert_eq!(c[GAS], out, "{c:?}");
        add(&mut total, c);

        th.step(&mut Terrain::new(&world, &palette, &mut ws), &ts);
        let c = apply(&mut world, &palette, &mut ws);
        assert_eq!(c, [0; 5], "thermal erosion only moves material");
        add(&mut total, c);

        let (compacted, lithified) = (d.stats.compacted, d.stats.lithified);
        d.step(&mut Terrain::new(&world, &palette, &mut ws), &ds);
        let c = apply(&mut world, &palette, &mut ws);
        let (compacted, lithified) = ((d.stats.compacted - compacted) as i64, (d.stats.lithified - lithified) as i64);
        assert_eq!(c, [compacted - lithified, 0, 0, -compacted, lithified], "deposition");
        add(&mut total, c);
        world.advance_clock(Duration::from_millis(100));
    }
    let after = classes(&world, &palette);
    let change: Vec<i64> = (0..5).map(|k| after[k] - before[k]).collect();
    println!(
        "before {before:?}, after {after:?}, by the processes {total:?}\n{:?}\n{:?}\n{:?}\n{:?}",
        h.stats, th.stats, i.stats, d.stats
    );
    assert_eq!(change, total, "the world's census is the processes' sum");
    assert_eq!(after[LIQUID], before[LIQUID], "water conserved exactly");
    assert!(
        h.stats.eroded > 50 && th.stats.slid > 0 && i.stats.melted > 100 && d.stats.settled > 0,
        "too little to test"
    );
    assert!(d.stats.compacted > 0, "{:?}", d.stats);
}
