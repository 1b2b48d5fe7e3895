//! Hostile inputs to `paging`, from the review of its first version: each
//! test failed on it (a radius near `i32::MAX` wanted nothing, a NaN velocity
//! paged in the world's origin, consolidation's growth went uncounted, a
//! world-wide radius allocated a key per sector each tick, waiting was
//! quadratic, refused edits allocated, stale requests were all generated, an
//! interest at the `i32` extremes overflowed, edit bytes were undercounted).
//! The tests run one at a time (a lock): some count the heap's bytes.

use bevy_delta_overlay::paging::{Interest, Paged, PagedWorld, PagingSettings};
use bevy_delta_overlay::{DeltaConfig, DeltaStorage, MaterialId, WorldGen};
use glam::{IVec3, Vec3};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Counts live heap bytes and their peak (tests run with --test-threads=1).
struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size() as isize, Ordering::Relaxed) + l.size() as isize;
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
    }
}
#[global_allocator]
static A: Counting = Counting;

/// One test at a time: the heap counts are the process's.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `f` on a thread; fails the test when it does not end within `secs`.
fn bounded<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("did not return within {secs} s (hang)"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the worker panicked"),
    }
}

fn small(size: IVec3, min: IVec3) -> WorldGen {
    WorldGen { min, size, sea_level: 8, seed: 3 }
}

/// A radius near i32::MAX wraps `q + radius` in `sectors_around`
/// (sector.rs:55-60): the interest wants no sector at all, so
/// `tick_until_resident` returns with nothing resident (debug: overflow panic).
#[test]
fn huge_radius_wants_the_whole_world() {
    let got = bounded(30, || {
        let g = small(IVec3::new(64, 16, 64), IVec3::ZERO);
        let s = PagingSettings { sector_columns: 16, ..Default::default() };
        let mut w = PagedWorld::new(g, s, DeltaConfig::default()).unwrap();
        let c = IVec3::new(32, 8, 32);
        w.set_interest(&[Interest { center: c, radius: i32::MAX, velocity: Vec3::ZERO }]);
        w.tick_until_resident();
        (w.get(c).unwrap(), w.stats().resident_sectors)
    });
    assert!(
        matches!(got.0, Paged::Resident(_)) && got.1 == 16,
        "{got:?}: an interest of radius i32::MAX left nothing resident"
    );
}

/// A NaN velocity (or prefetch_seconds = inf with a zero velocity) makes
/// the look-ahead point NaN, which `as i32` turns into 0 (mod.rs:337-338): the
/// sectors around the world origin are wanted, paged in and pinned.
#[test]
fn a_nan_velocity_pages_in_nothing_but_the_interest() {
    let got = bounded(30, || {
        let g = small(IVec3::new(256, 16, 256), IVec3::ZERO);
        let s = PagingSettings { sector_columns: 16, ..Default::default() };
        let mut w = PagedWorld::new(g, s, DeltaConfig::default()).unwrap();
        let c = IVec3::new(200, 8, 200);
        w.set_interest(&[Interest { center: c, radius: 4, velocity: Vec3::new(f32::NAN, 0.0, f32::NAN) }]);
        w.tick_until_resident();
        (w.get(IVec3::new(0, 8, 0)).unwrap(), w.stats().resident_sectors)
    });
    assert!(got.0 == Paged::NotResident && got.1 == 1, "{got:?}: sector (0,0), 200 columns away, was paged in");
}

#[test]
fn an_infinite_prefetch_of_a_still_interest_pages_in_nothing_else() {
    let got = bounded(30, || {
        let g = small(IVec3::new(256, 16, 256), IVec3::ZERO);
        let s = PagingSettings { sector_columns: 16, prefetch_seconds: f32::INFINITY, ..Default::default() };
        let mut w = PagedWorld::new(g, s, DeltaConfig::default()).unwrap();
        let c = IVec3::new(200, 8, 200);
        w.set_interest(&[Interest { center: c, radius: 4, velocity: Vec3::ZERO }]);
        w.tick_until_resident();
        (w.get(IVec3::new(0, 8, 0)).unwrap(), w.stats().resident_sectors)
    });
    assert!(got.0 == Paged::NotResident && got.1 == 1, "{got:?}");
}

/// `base_bytes` is taken once at install (mod.rs:357, 397); a storage
/// whose overlay consolidates into its base grows its base, which
/// `resident_bytes` never sees: the stats and the budget undercount.
#[test]
fn resident_bytes_count_a_base_grown_by_consolidation() {
    let (reported, truth) = bounded(60, || {
        let g = small(IVec3::new(64, 256, 64), IVec3::ZERO);
        let config = DeltaConfig { threshold: 64, hard_cap: 64, ..DeltaConfig::default() };
        let s = PagingSettings { sector_columns: 64, ..Default::default() };
        let mut w = PagedWorld::new(g.clone(), s, config.clone()).unwrap();
        let mut oracle = DeltaStorage::new(g.build().unwrap(), config);
        w.set_interest(&[Interest { center: IVec3::new(32, 0, 32), radius: 1, velocity: Vec3::ZERO }]);
        w.tick_until_resident();
        // A checkerboard: every brick becomes dense.
        for x in 0..64 {
            for z in 0..64 {
                for y in 224..256 {
                    if (x + y + z) % 2 == 0 {
                        let p = IVec3::new(x, y, z);
                        w.update(p, MaterialId(9)).unwrap();
                        oracle.update(p, MaterialId(9)).unwrap();
                    }
                }
            }
        }
        w.tick();
        let truth = oracle.base().stats().bytes + oracle.stats().overlay_bytes;
        (w.stats().resident_bytes, truth)
    });
    assert_eq!(reported, truth, "resident_bytes {reported}, the sector really holds {truth}");
}

/// `wanted()` materializes every sector key of every interest, twice
/// (centre and look-ahead), each tick, and `tick_until_resident` recomputes
/// it 2-3 times per installed sector (mod.rs:301-319, 334-348): a radius
/// covering the world is O(sectors) memory per tick (radius 2^20 over a
/// 2^21-wide world at 256 columns: 2 x 67M keys, > 2 GB) and the loading
/// loop is quadratic.
#[test]
fn a_world_wide_radius_costs_a_tick_at_most_max_wanted_keys() {
    let peak = bounded(60, || {
        let g = WorldGen {
            min: IVec3::new(-(1 << 20), 0, -(1 << 20)),
            size: IVec3::new(1 << 21, 16, 1 << 21),
            sea_level: 8,
            seed: 1,
        };
        let s = PagingSettings { sector_columns: 2048, resident_budget: 1, max_in_flight: 1, ..Default::default() };
        let mut w = PagedWorld::new(g, s, DeltaConfig::default()).unwrap();
        w.set_interest(&[Interest { center: IVec3::ZERO, radius: 1 << 20, velocity: Vec3::new(1.0, 0.0, 0.0) }]);
        let before = LIVE.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        w.tick();
        PEAK.load(Ordering::Relaxed) - before
    });
    // 1024 x 1024 sectors: tens of MB for one tick that requests 1 sector.
    assert!(peak < 4 << 20, "one tick allocated {} MB", peak >> 20);
}

#[test]
fn waiting_for_the_wanted_sectors_is_linear_in_them() {
    let (loop_time, gen_time) = bounded(120, || {
        let g = small(IVec3::new(1024, 16, 1024), IVec3::ZERO);
        let s = PagingSettings { sector_columns: 16, ..Default::default() };
        // The generation alone.
        let mut direct = PagedWorld::new(g.clone(), s.clone(), DeltaConfig::default()).unwrap();
        let t = Instant::now();
        for z in 0..64 {
            for x in 0..64 {
                direct.get_blocking(IVec3::new(x * 16, 0, z * 16)).unwrap();
            }
        }
        let gen_time = t.elapsed();
        let mut w = PagedWorld::new(g, s, DeltaConfig::default()).unwrap();
        w.set_interest(&[Interest { center: IVec3::new(512, 0, 512), radius: 1024, velocity: Vec3::ZERO }]);
        let t = Instant::now();
        w.tick_until_resident();
        (t.elapsed(), gen_time)
    });
    assert!(
        loop_time < gen_time * 4,
        "tick_until_resident {loop_time:?} for 4096 sectors whose generation takes {gen_time:?}"
    );
}

/// `update` creates the sector's edit map before the `max_edits` check
/// (mod.rs:258-262): refused edits still allocate a map entry per sector, so
/// memory grows past `max_edits` (here 0) with every refused edit.
#[test]
fn refused_edits_allocate_nothing() {
    let grown = bounded(60, || {
        let g = WorldGen {
            min: IVec3::new(-(1 << 20), 0, -(1 << 20)),
            size: IVec3::new(1 << 21, 16, 1 << 21),
            sea_level: 8,
            seed: 1,
        };
        let s = PagingSettings { sector_columns: 16, max_edits: 0, ..Default::default() };
        let mut w = PagedWorld::new(g, s, DeltaConfig::default()).unwrap();
        let before = LIVE.load(Ordering::Relaxed);
        for i in 0..200_000 {
            let p = IVec3::new(-(1 << 20) + (i % 1000) * 16, 0, -(1 << 20) + (i / 1000) * 16);
            assert!(w.update(p, MaterialId(3)).is_err());
        }
        (LIVE.load(Ordering::Relaxed) - before, w.stats().edits)
    });
    assert!(
        grown.0 < 1 << 20,
        "200k refused edits (max_edits 0, stats.edits {}) grew the heap by {} MB",
        grown.1,
        grown.0 >> 20
    );
}

/// A sector requested by an interest that then moved away is still
/// generated and installed (the job queue is never cancelled), so with a
/// wide `max_in_flight` the new interest waits behind every stale job and
/// sectors nobody wants are paged in.
#[test]
fn requests_for_a_moved_interest_are_skipped() {
    let stats = bounded(60, || {
        let g = small(IVec3::new(2048, 16, 2048), IVec3::ZERO);
        let s = PagingSettings { sector_columns: 16, max_in_flight: 4096, ..Default::default() };
        let mut w = PagedWorld::new(g, s, DeltaConfig::default()).unwrap();
        w.set_interest(&[Interest { center: IVec3::new(512, 0, 512), radius: 256, velocity: Vec3::ZERO }]);
        w.tick(); // asks for 33 x 33 sectors
        w.set_interest(&[Interest { center: IVec3::new(1800, 0, 1800), radius: 8, velocity: Vec3::ZERO }]);
        w.tick_until_resident(); // wants 2 x 2
        w.stats()
    });
    assert!(stats.generated <= 8, "{} sectors installed for an interest wanting 4: {stats:?}", stats.generated);
}

/// Interest arithmetic is unchecked i32 (sector.rs:52, 55-60, 70): a centre
/// at the i32 extremes, or a look-ahead saturated by a huge/infinite
/// velocity, overflows `centre - bounds.min` when the world's min is
/// negative: a debug build (overflow checks on, the default `cargo run`)
/// panics in `tick`. Release wraps (and, with a huge radius, answers wrongly:
/// test 1). Run with CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true to see it.
#[test]
fn an_interest_at_the_i32_extremes_does_not_panic() {
    let got = bounded(30, || {
        let g = small(IVec3::new(128, 16, 128), IVec3::new(-64, 0, -64));
        let s = PagingSettings { sector_columns: 16, ..Default::default() };
        let mut w = PagedWorld::new(g, s, DeltaConfig::default()).unwrap();
        w.set_interest(&[Interest { center: IVec3::new(i32::MAX, 0, i32::MAX), radius: 8, velocity: Vec3::ZERO }]);
        w.tick_until_resident();
        w.stats().resident_sectors
    });
    assert_eq!(got, 0);
}

#[test]
fn an_infinite_velocity_does_not_panic() {
    let got = bounded(30, || {
        let g = small(IVec3::new(128, 16, 128), IVec3::new(-64, 0, -64));
        let s = PagingSettings { sector_columns: 16, ..Default::default() };
        let mut w = PagedWorld::new(g, s, DeltaConfig::default()).unwrap();
        w.set_interest(&[Interest { center: IVec3::ZERO, radius: 8, velocity: Vec3::new(f32::INFINITY, 0.0, 0.0) }]);
        w.tick_until_resident();
        w.stats().resident_sectors
    });
    assert_eq!(got, 4);
}

/// docs/paging.md: "an edited sector's edits stay in memory: 16 bytes an
/// edited voxel"; `stats.edit_bytes` says 17 (mod.rs:410). The maps hold
/// more (hash table slack and growth, one map per sector).
#[test]
fn edit_bytes_are_what_the_edit_maps_hold() {
    let (real, reported) = bounded(60, || {
        let g = small(IVec3::new(1024, 64, 1024), IVec3::ZERO);
        let s = PagingSettings { sector_columns: 1024, ..Default::default() };
        let mut w = PagedWorld::new(g, s, DeltaConfig::default()).unwrap();
        let before = LIVE.load(Ordering::Relaxed);
        for i in 0..240_000 {
            w.update(IVec3::new(i % 1024, 0, i / 1024), MaterialId(3)).unwrap();
        }
        let real = LIVE.load(Ordering::Relaxed) - before;
        w.tick();
        (real as usize, w.stats().edit_bytes)
    });
    assert!(
        real <= reported * 5 / 4,
        "edit maps hold {real} bytes, stats.edit_bytes says {reported}, docs 16 a voxel ({})",
        240_000 * 16
    );
}
