//! Hydraulic erosion's fidelity to the droplet model it implements (Beyer
//! 2015 as Lague's, brush radius 3), and what the voxel version must show:
//! channels rather than pits, fans where droplets enter water, and material
//! conserved per material. Bevy-free: the process's `step` on a
//! `DeltaStorage`, as in `tests/geology.rs`.

mod common;

use bevy_delta_overlay::{
    Aabb, BaseIndex, DeltaConfig, DeltaStorage, MaterialId, Palette,
    geology::{GeologyProcess, HydraulicErosion, HydraulicSettings, Terrain, Workspace},
    materials,
};
use glam::{IVec2, IVec3, Vec2};
use std::collections::BTreeMap;

/// Columns along each side of the test worlds.
const N: i32 = 96;
/// The test worlds' height.
const HEIGHT: i32 = 96;

/// Rock that erodes into sand, both of hardness 0: the droplet model's
/// heights, with nothing of the palette's hardness in between.
const SOFT: &str = r#"[
    (id: 0, name: "air", colour: (0,0,0), form: Gas),
    (id: 1, name: "rock", colour: (0,0,0), hardness: 0.0, erodes_to: "sand"),
    (id: 8, name: "water", colour: (0,0,0), form: Liquid),
    (id: 11, name: "sand", colour: (0,0,0), form: Loose, hardness: 0.0, angle_of_repose: 34.0),
]"#;

/// splitmix64 of `x`: the tests' own random numbers.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A value in `[-1, 1)` for lattice point `(x, z)`.
fn lattice(x: i32, z: i32, seed: u64) -> f32 {
    let h = mix(seed ^ mix((x as u32 as u64) << 32 | z as u32 as u64));
    (h >> 40) as f32 / (1u64 << 23) as f32 - 1.0
}

/// Value noise: lattice values `spacing` apart, interpolated bilinearly.
fn noise(x: i32, z: i32, spacing: i32, seed: u64) -> f32 {
    let (fx, fz) = (x as f32 / spacing as f32, z as f32 / spacing as f32);
    let (ix, iz) = (fx.floor() as i32, fz.floor() as i32);
    let (u, v) = (fx - ix as f32, fz - iz as f32);
    let l = |dx, dz| lattice(ix + dx, iz + dz, seed);
    l(0, 0) * (1.0 - u) * (1.0 - v) + l(1, 0) * u * (1.0 - v) + l(0, 1) * (1.0 - u) * v + l(1, 1) * u * v
}

/// A slope falling along +x, 0.5 a column, with noise of two scales (`rough`:
/// ±4 over 12 columns and ±1.5 over 4, steeper than the slope, so with
/// closed hollows; otherwise ±2.5 over 16 and ±0.75 over 4): the heights of
/// its `N × N` columns, `x + N · z`.
fn noisy_slope(seed: u64, rough: bool) -> Vec<i32> {
    let (big, small, spacing) = if rough { (4.0, 1.5, 12) } else { (2.5, 0.75, 16) };
    (0..N * N)
        .map(|i| {
            let (x, z) = (i % N, i / N);
            let h =
                12.0 + (N - 1 - x) as f32 * 0.5 + big * noise(x, z, spacing, seed) + small * noise(x, z, 4, seed + 1);
            h.round() as i32
        })
        .collect()
}

/// A world of `N × HEIGHT × N` with columns of `rock` up to `heights`, and
/// water up to `water` over the columns below it.
fn world(heights: &[i32], rock: MaterialId, water: i32, palette: &Palette) -> DeltaStorage {
    let bounds = Aabb::new(IVec3::ZERO, IVec3::new(N, HEIGHT, N));
    let mut world = DeltaStorage::new(BaseIndex::uniform(bounds, MaterialId::AIR).unwrap(), DeltaConfig::default());
    let voxels = (0..N * N).flat_map(|i| {
        let (x, z, top) = (i % N, i / N, heights[i as usize]);
        (0..=top.max(water)).map(move |y| (IVec3::new(x, y, z), if y <= top { rock } else { materials::WATER }))
    });
    world.batch_update(voxels.collect::<Vec<_>>());
    world.enable_surfaces(palette);
    world
}

/// Every column's top (`x + N · z`).
fn tops(world: &DeltaStorage, palette: &Palette) -> Vec<i32> {
    let mut ws = Workspace::new();
    let mut t = Terrain::new(world, palette, &mut ws);
    (0..N * N).map(|i| t.surface(IVec2::new(i % N, i / N)).unwrap_or(-1)).collect()
}

/// Runs one droplet from each of `starts`, in order (the area pinned to the
/// start column), applying the edits every 64 droplets.
fn rain_at(world: &mut DeltaStorage, palette: &Palette, s: &HydraulicSettings, starts: &[IVec2]) -> HydraulicErosion {
    let mut state = HydraulicErosion::new(s);
    let mut ws = Workspace::new();
    for chunk in starts.chunks(64) {
        {
            let mut t = Terrain::new(world, palette, &mut ws);
            for &c in chunk {
                let one = HydraulicSettings { droplets_per_frame: 1, area: Some((c, c + IVec2::ONE)), ..s.clone() };
                state.step(&mut t, &one);
            }
        }
        let outcome = world.batch_update(ws.take_edits());
        assert!(outcome.rejected.is_empty());
    }
    state
}

/// Random start columns, the tests' own.
fn starts(count: usize, seed: u64) -> Vec<IVec2> {
    (0..count as u64)
        .map(|i| {
            let h = mix(seed ^ mix(i));
            IVec2::new((h % N as u64) as i32, ((h >> 32) % N as u64) as i32)
        })
        .collect()
}

/// The droplet model on a heightmap of `f32`s, written from Lague's
/// `Erosion.cs` with this crate's settings: the reference the voxel version
/// is measured against. `lague: true` is Lague's own (excess laid on the four
/// columns around the droplet, the load left when it ends discarded);
/// `false` is the model the crate implements, continuous (excess laid over
/// the brush, the load at the end laid over it: conservation).
struct Reference<'a> {
    s: &'a HydraulicSettings,
    /// Offsets and weights `∝ radius - distance` (Lague's brush).
    brush: Vec<(IVec2, f32)>,
    h: Vec<f32>,
    lague: bool,
}

impl Reference<'_> {
    fn new<'a>(s: &'a HydraulicSettings, heights: &[i32], lague: bool) -> Reference<'a> {
        let r = s.brush_radius as i32;
        let mut brush = Vec::new();
        for dz in -r..=r {
            for dx in -r..=r {
                let d = ((dx * dx + dz * dz) as f32).sqrt();
                if d < r as f32 {
                    brush.push((IVec2::new(dx, dz), r as f32 - d));
                }
            }
        }
        let sum: f32 = brush.iter().map(|b| b.1).sum();
        brush.iter_mut().for_each(|b| b.1 /= sum);
        Reference { s, brush, h: heights.iter().map(|&h| h as f32).collect(), lague }
    }

    fn inside(c: IVec2) -> bool {
        c.x >= 0 && c.y >= 0 && c.x < N && c.y < N
    }

    fn at(&self, c: IVec2, fallback: f32) -> f32 {
        if Self::inside(c) { self.h[(c.x + N * c.y) as usize] } else { fallback }
    }

    /// Height and gradient, bilinear between column centres; the four
    /// columns and their weights.
    fn sample(&self, pos: Vec2, fallback: f32) -> (f32, Vec2, [(IVec2, f32); 4]) {
        let p = pos - Vec2::splat(0.5);
        let min = IVec2::new(p.x.floor() as i32, p.y.floor() as i32);
        let (u, v) = (p.x - min.x as f32, p.y - min.y as f32);
        let c = [min, min + IVec2::X, min + IVec2::Y, min + IVec2::ONE];
        let [h00, h10, h01, h11] = c.map(|c| self.at(c, fallback));
        let height = h00 * (1.0 - u) * (1.0 - v) + h10 * u * (1.0 - v) + h01 * (1.0 - u) * v + h11 * u * v;
        let grad = Vec2::new((h10 - h00) * (1.0 - v) + (h11 - h01) * v, (h01 - h00) * (1.0 - u) + (h11 - h10) * u);
        let w = [(1.0 - u) * (1.0 - v), u * (1.0 - v), (1.0 - u) * v, u * v];
        (height, grad, std::array::from_fn(|k| (c[k], w[k])))
    }

    /// Adds `amount` over the brush around `centre` (renormalised inside the
    /// map), or subtracts it: returns what was moved.
    fn brush_add(&mut self, centre: IVec2, amount: f32) {
        let inside: f32 = self.brush.iter().filter(|b| Self::inside(centre + b.0)).map(|b| b.1).sum();
        for i in 0..self.brush.len() {
            let (d, w) = self.brush[i];
            if Self::inside(centre + d) {
                self.h[(centre.x + d.x + N * (centre.y + d.y)) as usize] += amount * w / inside;
            }
        }
    }

    fn corners_add(&mut self, corners: [(IVec2, f32); 4], amount: f32) {
        for (c, w) in corners {
            if Self::inside(c) {
                self.h[(c.x + N * c.y) as usize] += amount * w;
            }
        }
    }

    fn droplet(&mut self, start: IVec2) {
        let s = self.s;
        let (mut pos, mut dir) = (start.as_vec2() + Vec2::splat(0.5), Vec2::ZERO);
        let (mut speed, mut water, mut load) = (1.0f32, 1.0f32, 0.0f32);
        let mut cell = start;
        for _ in 0..s.max_steps {
            cell = IVec2::new(pos.x.floor() as i32, pos.y.floor() as i32);
            let top = self.at(cell, 0.0);
            let (height, grad, corners) = self.sample(pos, top);
            dir = dir * s.inertia - grad * (1.0 - s.inertia);
            if dir.length() <= 1e-6 {
                break;
            }
            dir = dir.normalize();
            let next = pos + dir;
            if !Self::inside(IVec2::new(next.x.floor() as i32, next.y.floor() as i32)) {
                return;
            }
            let dh = self.sample(next, top).0 - height;
            let capacity = (-dh).max(s.min_slope) * speed * water * s.capacity;
            if dh > 0.0 {
                let amount = dh.min(load);
                load -= amount;
                self.corners_add(corners, amount);
            } else if load > capacity {
                let amount = (load - capacity) * s.deposit_rate;
                load -= amount;
                if self.lague { self.corners_add(corners, amount) } else { self.brush_add(cell, amount) }
            } else {
                let amount = ((capacity - load) * s.erode_rate).min(-dh);
                load += amount;
                self.brush_add(cell, -amount);
            }
            speed = (speed * speed - dh * s.gravity).max(0.0).sqrt();
            water *= 1.0 - s.evaporation;
            pos = next;
        }
        if !self.lague {
            self.brush_add(cell, load);
        }
    }
}

/// `values` averaged over the `(2k + 1)²` columns around each (clipped at
/// the edges).
fn smooth(values: &[f32], k: i32) -> Vec<f32> {
    (0..N * N)
        .map(|i| {
            let (x, z) = (i % N, i / N);
            let (mut sum, mut n) = (0.0, 0.0);
            for dz in -k..=k {
                for dx in -k..=k {
                    if (0..N).contains(&(x + dx)) && (0..N).contains(&(z + dz)) {
                        sum += values[(x + dx + N * (z + dz)) as usize];
                        n += 1.0;
                    }
                }
            }
            sum / n
        })
        .collect()
}

/// Pearson's correlation of `a` and `b`.
fn pearson(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().map(|&x| x as f64).sum::<f64>() / n, b.iter().map(|&x| x as f64).sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (dx, dy) = (x as f64 - ma, y as f64 - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    sab / (saa * sbb).sqrt()
}

/// Settings whose model the reference implements: no flow memory (Lague's
/// droplets remember nothing), nothing else changed.
fn memoryless() -> HydraulicSettings {
    HydraulicSettings { flow_steering: 0.0, flow_erosion: 0.0, ..HydraulicSettings::default() }
}

/// (a) Fidelity. The same droplets (start columns, in order) on the same
/// tilted noisy slope, in the voxel world and in the heightmap reference:
/// the per-column change of height correlates at least 0.8, after averaging
/// over the 3 × 3 columns around each. 3 × 3 and not 9 × 9: the voxel
/// version lays and takes whole voxels where a column's fraction crosses one
/// (a column a voxel up beside one unchanged, where the reference has two
/// halves), noise a voxel wide that a 3 × 3 mean removes; features narrower
/// than the brush (5 columns across) cannot exist in either, so 3 × 3 keeps
/// every feature the model makes, where 9 × 9 would blur valleys together
/// and flatter the match.
#[test]
fn the_voxel_droplets_follow_the_heightmap_model() {
    let palette = Palette::from_ron_str(SOFT).unwrap();
    let heights = noisy_slope(3, true);
    // 4,000 droplets erode about a voxel a column on average: fewer leave
    // most columns' fractions short of a whole voxel, and the comparison
    // measures rounding more than the model.
    let starts = starts(4000, 17);
    let report = |s: &HydraulicSettings, lague: bool| {
        let mut w = world(&heights, MaterialId(1), -1, &palette);
        let state = rain_at(&mut w, &palette, s, &starts);
        let voxel: Vec<f32> = tops(&w, &palette).iter().zip(&heights).map(|(a, b)| (a - b) as f32).collect();
        let mut reference = Reference::new(s, &heights, lague);
        for &c in &starts {
            reference.droplet(c);
        }
        let model: Vec<f32> = reference.h.iter().zip(&heights).map(|(a, &b)| a - b as f32).collect();
        let r = [0, 1, 4].map(|k| pearson(&smooth(&voxel, k), &smooth(&model, k)));
        eprintln!(
            "lague {lague} steering {} eroded {}: r raw {:.3}, 3x3 {:.3}, 9x9 {:.3}",
            s.flow_steering, state.stats.eroded, r[0], r[1], r[2]
        );
        r
    };
    let same = report(&memoryless(), false);
    assert!(same[1] >= 0.8, "voxel vs heightmap, same model, 3x3: {same:?}");
    // The defaults, flow memory on: the reference has none, still close.
    let with_memory = report(&HydraulicSettings::default(), false);
    assert!(with_memory[1] >= 0.8, "voxel (flow memory on) vs heightmap, 3x3: {with_memory:?}");
    // Lague's own deposition (four columns, the last load lost) is not the
    // model implemented (the brush, the last load laid): further apart.
    let lague = report(&memoryless(), true);
    assert!(lague[1] >= 0.45, "voxel vs Lague's own, 3x3: {lague:?}");
}

/// Runs `frames` frames of `s`'s rain (droplets anywhere), the edits applied
/// each frame.
fn rain(world: &mut DeltaStorage, palette: &Palette, s: &HydraulicSettings, frames: u32) -> HydraulicErosion {
    let mut state = HydraulicErosion::new(s);
    let mut ws = Workspace::new();
    for _ in 0..frames {
        state.step(&mut Terrain::new(world, palette, &mut ws), s);
        let outcome = world.batch_update(ws.take_edits());
        assert!(outcome.rejected.is_empty());
    }
    state
}

/// The share of the eroded volume of deeply eroded columns (2 voxels or
/// more) that lies in connected stretches (8-neighbours) at least 12
/// columns long down the slope (along +x).
///
/// Why it separates channels from pits: a pit is as wide as the brush (5
/// columns across at radius 3), so a field of pits, however deep, has all
/// its deep stretches shorter than 12 columns and scores near 0; a channel is
/// deep along the way water runs, so its stretch runs down the slope
/// whatever its depth, and scores its whole volume. Scattering the same deep
/// columns at random gives the measure's floor (checked below to be near 0).
fn channel_share(change: &[i32]) -> f64 {
    let deep = |i: usize| change[i] <= -2;
    let mut seen = vec![false; change.len()];
    let (mut total, mut channelled) = (0i64, 0i64);
    for first in 0..change.len() {
        if !deep(first) || seen[first] {
            continue;
        }
        // One component, by flood fill.
        let (mut stack, mut volume, mut lo, mut hi) = (vec![first], 0i64, N, -1);
        seen[first] = true;
        while let Some(i) = stack.pop() {
            let (x, z) = (i as i32 % N, i as i32 / N);
            volume += -change[i] as i64;
            (lo, hi) = (lo.min(x), hi.max(x));
            for (dx, dz) in [(-1, -1), (0, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (0, 1), (1, 1)] {
                let (nx, nz) = (x + dx, z + dz);
                let j = (nx + N * nz) as usize;
                if (0..N).contains(&nx) && (0..N).contains(&nz) && deep(j) && !seen[j] {
                    seen[j] = true;
                    stack.push(j);
                }
            }
        }
        total += volume;
        if hi - lo + 1 >= 12 {
            channelled += volume;
        }
    }
    channelled as f64 / total.max(1) as f64
}

/// (b) On a tilted noisy slope, rain cuts channels: most of the deep
/// erosion lies in stretches running 12 columns or more down the slope
/// ([`channel_share`]), where the same deep columns scattered at random
/// score near 0.
#[test]
fn rain_on_a_noisy_slope_cuts_downslope_channels() {
    let palette = Palette::from_ron_str(SOFT).unwrap();
    let heights = noisy_slope(5, false);
    let measure = |s: &HydraulicSettings| {
        let mut w = world(&heights, MaterialId(1), -1, &palette);
        let state = rain(&mut w, &palette, s, 30);
        let change: Vec<i32> = tops(&w, &palette).iter().zip(&heights).map(|(a, b)| a - b).collect();
        // The same values at random columns: a field of scattered pits.
        let mut scattered = change.clone();
        for i in (1..scattered.len()).rev() {
            scattered.swap(i, (mix(i as u64 ^ 0x5ca7) % (i as u64 + 1)) as usize);
        }
        let deep = change.iter().filter(|&&c| c <= -2).count();
        // `MAP=1` prints the change (# 4 voxels or more down, + 2-3, . 1, o up).
        if std::env::var("MAP").is_ok() {
            for z in 0..N {
                let row: String = (0..N)
                    .map(|x| match change[(x + N * z) as usize] {
                        ..=-4 => '#',
                        -3 | -2 => '+',
                        -1 => '.',
                        0 => ' ',
                        _ => 'o',
                    })
                    .collect();
                eprintln!("|{row}|");
            }
        }
        let (share, floor) = (channel_share(&change), channel_share(&scattered));
        eprintln!(
            "radius {} steering {}: eroded {}, deep columns {deep}, channel share {share:.3}, scattered {floor:.3}",
            s.brush_radius, s.flow_steering, state.stats.eroded
        );
        (share, floor, deep)
    };
    let (share, floor, deep) = measure(&HydraulicSettings::default());
    assert!(deep > 200, "too little deep erosion to measure: {deep}");
    assert!(share >= 0.7 && floor <= 0.1, "channel share {share:.3}, scattered {floor:.3}");
    // One column a step and no memory (close to the model before the brush):
    // pits, no channel.
    let (single, _, _) = measure(&HydraulicSettings { brush_radius: 0, ..memoryless() });
    assert!(single < share / 2.0, "single column {single:.3}, brush and memory {share:.3}");
}

/// A slope falling along +x (0.5 a column, a little noise) to a shore at
/// x = 48, then a basin floor under water to level 18.
fn shore() -> Vec<i32> {
    (0..N * N)
        .map(|i| {
            let (x, z) = (i % N, i / N);
            let h = if x < 48 { 20.0 + (47 - x) as f32 * 0.5 } else { 16.0 - (x - 48) as f32 / 4.0 };
            (h + 0.75 * noise(x, z, 4, 9)).round() as i32
        })
        .collect()
}

/// (c) A droplet that reaches standing water goes on a few steps laying its
/// load over the brush: the load spreads into a fan over many columns under
/// the water, none holding most of it.
#[test]
fn droplets_entering_water_lay_a_fan() {
    let palette = Palette::from_ron_str(SOFT).unwrap();
    let heights = shore();
    let mut w = world(&heights, MaterialId(1), 18, &palette);
    let wet: Vec<bool> = heights.iter().map(|&h| h < 18).collect();
    // Rain on a patch 20 columns up the slope from the shore.
    let s = HydraulicSettings { area: Some((IVec2::new(26, 44), IVec2::new(30, 52))), ..HydraulicSettings::default() };
    let state = rain(&mut w, &palette, &s, 10);
    let raised: Vec<i32> = tops(&w, &palette)
        .iter()
        .zip(&heights)
        .zip(&wet)
        .map(|((a, b), &wet)| if wet { (a - b).max(0) } else { 0 })
        .collect();
    let columns = raised.iter().filter(|&&r| r > 0).count();
    let laid: i32 = raised.iter().sum();
    let most = *raised.iter().max().unwrap();
    let (xs, zs): (Vec<i32>, Vec<i32>) = (0..N * N).filter(|&i| raised[i as usize] > 0).map(|i| (i % N, i / N)).unzip();
    let spread = |v: &[i32]| v.iter().max().unwrap_or(&0) - v.iter().min().unwrap_or(&0) + 1;
    eprintln!(
        "eroded {}: under water {laid} voxels on {columns} columns, at most {most} on one, {} x {} columns",
        state.stats.eroded,
        spread(&xs),
        spread(&zs)
    );
    assert!(laid > 20, "too little reached the water: {laid}");
    assert!(columns >= 10 && most * 4 <= laid, "a heap, not a fan: {laid} voxels on {columns} columns, {most} on one");
    assert!(spread(&zs) >= 5 && spread(&xs) >= 5, "{} x {}", spread(&xs), spread(&zs));
}

/// Voxels of each material in the world, by id, signed (for differences).
fn census(storage: &DeltaStorage) -> BTreeMap<u16, i64> {
    common::census(storage).into_iter().map(|(m, n)| (m.0, n as i64)).collect()
}

/// (d) Conservation, per material: on a slope of soil over sandstone over
/// granite, basalt along one side, granite at the surface along the other,
/// running into water and off the world's edges, every material's count in
/// the world changes by what was laid of it less what was taken of it, and
/// what became each (sand of sandstone, gravel of granite and basalt,
/// sediment of soil) was laid or carried out, voxel for voxel.
#[test]
fn hydraulic_erosion_conserves_each_material() {
    let palette = Palette::shipped();
    let heights = noisy_slope(7, false);
    let mut w = world(&heights, materials::GRANITE, 14, &palette);
    let layers = (0..N * N).flat_map(|i| {
        let (x, z, top) = (i % N, i / N, heights[i as usize]);
        (top - 5..=top).filter_map(move |y| {
            let m = match (z, top - y) {
                (..16, _) => materials::BASALT,
                (80.., _) => return None,
                (_, 0) => materials::SOIL,
                _ => materials::SANDSTONE,
            };
            (y >= 0).then_some((IVec3::new(x, y, z), m))
        })
    });
    w.batch_update(layers.collect::<Vec<_>>());
    let before = census(&w);
    let state = rain(&mut w, &palette, &HydraulicSettings { droplets_per_frame: 200, ..Default::default() }, 30);
    let after = census(&w);
    let s = state.stats;
    assert_eq!(s.eroded, s.deposited + s.carried_out, "{s:?}");
    assert!(s.carried_out > 0, "nothing left the world: {s:?}");
    let ids: std::collections::BTreeSet<u16> = before.keys().chain(after.keys()).copied().collect();
    let (mut became, mut matter) = (0, 0);
    for &id in &ids {
        let m = MaterialId(id);
        let l = state.ledger(m);
        let change = after.get(&id).unwrap_or(&0) - before.get(&id).unwrap_or(&0);
        if palette.properties(m).is_matter() {
            assert_eq!(change, l.laid as i64 - l.taken as i64, "material {id}: {l:?}");
            matter += change;
        }
        assert_eq!(l.became, l.laid + l.carried_out, "material {id}: {l:?}");
        became += l.became;
    }
    assert_eq!(became, s.eroded);
    assert_eq!(matter, -(s.carried_out as i64));
    for (grains, from) in [(materials::SAND, "sandstone"), (materials::GRAVEL, "granite and basalt")] {
        assert!(state.ledger(grains).became > 0, "nothing eroded from {from}");
    }
    eprintln!(
        "eroded {}, laid {}, carried out {}; sand {:?}, gravel {:?}, sediment {:?}",
        s.eroded,
        s.deposited,
        s.carried_out,
        state.ledger(materials::SAND),
        state.ledger(materials::GRAVEL),
        state.ledger(materials::SEDIMENT)
    );
}
