//! Saved process state from a hostile or damaged file: refused, never a hang
//! or a panic. Each test failed before the restore checked what it read (the
//! hostile review of the continuity work): an uplift owing 2^24 steps or more
//! looped forever dropping one at a time, and an intrusion body's geometry
//! overflowed the growth's arithmetic.

use bevy_delta_overlay::geology::{
    GeologyProcess, Intrusion, IntrusionSettings, StateReader, StateWriter, Terrain, Uplift, UpliftSettings, Workspace,
};
use bevy_delta_overlay::{Aabb, BaseIndex, DeltaConfig, DeltaStorage, MaterialId, Palette, materials};
use glam::{IVec2, IVec3};
use std::sync::mpsc;
use std::time::Duration;

/// A 32³ world, rock up to y = 15.
fn world(palette: &Palette) -> DeltaStorage {
    let bounds = Aabb::new(IVec3::ZERO, IVec3::splat(32));
    let mut w = DeltaStorage::new(BaseIndex::uniform(bounds, MaterialId::AIR).unwrap(), DeltaConfig::default());
    let rock = (0..32)
        .flat_map(|x| (0..32).flat_map(move |z| (0..16).map(move |y| (IVec3::new(x, y, z), materials::GRANITE))));
    w.batch_update(rock);
    w.enable_surfaces(palette);
    w
}

/// What restoring `bytes` into a fresh `P` and stepping it `frames` times
/// did: `Ok(accepted)`, or how it failed (a panic, or still running after
/// 20 s).
fn restore_and_step<P: GeologyProcess>(settings: P::Settings, bytes: Vec<u8>, frames: u32) -> Result<bool, String>
where
    P::Settings: Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let palette = Palette::shipped();
            let storage = world(&palette);
            let mut p = P::new(&settings);
            let mut input = StateReader::new(&bytes);
            if p.restore(&storage, &mut input).and_then(|()| input.finish()).is_err() {
                return false;
            }
            let mut ws = Workspace::new();
            let mut t = Terrain::new(&storage, &palette, &mut ws);
            for _ in 0..frames {
                p.step(&mut t, &settings);
            }
            true
        }));
        let _ = tx.send(run.map_err(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        }));
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(Ok(accepted)) => Ok(accepted),
        Ok(Err(p)) => Err(format!("panicked: {p}")),
        Err(_) => Err("still running after 20 s".into()),
    }
}

fn uplift_state(owed: f32) -> Vec<u8> {
    let mut w = StateWriter::new();
    w.u8(1);
    w.f32(owed);
    w.option(None::<u64>, StateWriter::u64);
    w.option(None::<Duration>, StateWriter::duration);
    w.into_bytes()
}

#[test]
fn an_uplift_owing_too_much_is_refused_and_a_sane_one_runs() {
    for owed in [f32::INFINITY, f32::NAN, 1e30, 3e7, -1.0] {
        assert_eq!(restore_and_step::<Uplift>(UpliftSettings::default(), uplift_state(owed), 1), Ok(false), "{owed}");
    }
    assert_eq!(restore_and_step::<Uplift>(UpliftSettings::default(), uplift_state(40.0), 3), Ok(true));
}

fn intrusion_state(kind: impl FnOnce(&mut StateWriter), next: i32, front: f32, last: i32) -> Vec<u8> {
    let mut w = StateWriter::new();
    w.u8(1);
    w.u64(1); // rng
    w.u64(1); // seed
    w.u8(1); // a body
    kind(&mut w);
    w.ivec3(IVec3::new(16, 4, 16)); // source
    w.i32(next);
    w.f32(front);
    w.i32(last);
    w.len_of(0); // voxels
    w.len_of(0); // cooling queue
    w.u64(0); // order
    w.option(None::<Duration>, StateWriter::duration);
    w.u64(1); // bodies
    w.into_bytes()
}

#[test]
fn an_intrusion_body_no_growth_could_make_is_refused() {
    let settings = IntrusionSettings::default;
    let sill_far_below = intrusion_state(
        |w| {
            w.u8(2);
            w.i32(-2_000_000_000);
        },
        0,
        0.0,
        10,
    );
    let huge_strike = intrusion_state(
        |w| {
            w.u8(1);
            w.ivec2(IVec2::new(i32::MAX, 1));
        },
        0,
        0.0,
        10,
    );
    let at_the_end_of_i32 = intrusion_state(|w| w.u8(0), i32::MAX, f32::MAX, i32::MAX);
    for bytes in [sill_far_below, huge_strike, at_the_end_of_i32] {
        assert_eq!(restore_and_step::<Intrusion>(settings(), bytes, 1), Ok(false));
    }
    let dike = intrusion_state(
        |w| {
            w.u8(1);
            w.ivec2(IVec2::new(2, 1));
        },
        0,
        0.0,
        10,
    );
    assert_eq!(restore_and_step::<Intrusion>(settings(), dike, 3), Ok(true));
}
