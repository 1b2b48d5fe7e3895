//! Every case side by side with the alternatives, on the same inputs:
//! `overlay` (this crate), `naive` (std HashMap in front of the base),
//! `shared_lock` (Arc<RwLock<HashMap>>), `direct` (straight into the base), and
//! for single updates and hits `flat_map` (an `ahash` `HashMap<u64, u16>` of
//! packed positions) and `flat_map_base` (the same, reading the base first).
//!
//! `cargo bench --bench overlay`; `scripts/benchmarks.py` turns the results into
//! BENCHMARKS.md.

mod support;

use bevy_delta_overlay::{
    Aabb, BaseIndex, ConsolidationStrategy, DeltaConfig, DeltaStorage, MaterialId, parallel::Threads,
};
use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use glam::IVec3;
use std::hint::black_box;
use std::time::{Duration, Instant};
use support::*;

/// Single updates: a new delta, an overwrite, a revert to the base.
fn single_updates(c: &mut Criterion) {
    let base = world();
    let mut group = c.benchmark_group("update_new");
    let positions = random_positions(1 << 20, 1);
    group.bench_function("overlay", |b| {
        b.iter_custom(|n| {
            let mut s = storage();
            let t = Instant::now();
            for &p in positions.iter().cycle().take(n as usize) {
                let _ = s.update(black_box(p), A);
            }
            t.elapsed()
        })
    });
    group.bench_function("naive", |b| {
        b.iter_custom(|n| {
            let mut o = NaiveOverlay::default();
            let t = Instant::now();
            for &p in positions.iter().cycle().take(n as usize) {
                o.update(base, black_box(p), A);
            }
            t.elapsed()
        })
    });
    group.bench_function("shared_lock", |b| {
        b.iter_custom(|n| {
            let o = SharedLockOverlay::default();
            let t = Instant::now();
            for &p in positions.iter().cycle().take(n as usize) {
                o.update(base, black_box(p), A);
            }
            t.elapsed()
        })
    });
    group.bench_function("flat_map", |b| {
        b.iter_custom(|n| {
            let mut o = FlatMap::default();
            let t = Instant::now();
            for &p in positions.iter().cycle().take(n as usize) {
                o.insert(black_box(p), A);
            }
            t.elapsed()
        })
    });
    group.bench_function("flat_map_base", |b| {
        b.iter_custom(|n| {
            let mut o = FlatMap::default();
            let t = Instant::now();
            for &p in positions.iter().cycle().take(n as usize) {
                o.insert_over_base(base, black_box(p), A);
            }
            t.elapsed()
        })
    });
    // Direct writes go to a world of its own: a clone of the shared one would pay
    // a copy-on-write brick copy on each first write, which a user would not.
    let mut own = own_world();
    let mut next = 0usize;
    group.bench_function("direct", |b| {
        b.iter_custom(|n| {
            let t = Instant::now();
            for _ in 0..n {
                next = (next + 1) % positions.len();
                let _ = own.apply_batch(&[(black_box(positions[next]), A)]);
            }
            t.elapsed()
        })
    });
    group.finish();

    // Overwrite and revert act on 100K existing deltas.
    let hot = random_positions(100_000, 2);
    let mut filled = storage();
    filled.batch_update(hot.iter().map(|&p| (p, A)));
    let mut naive = NaiveOverlay::default();
    hot.iter().for_each(|&p| naive.update(base, p, A));
    let shared = SharedLockOverlay::default();
    hot.iter().for_each(|&p| shared.update(base, p, A));
    let hot_writes: Vec<_> = hot.iter().map(|&p| (p, A)).collect();
    let mut direct = own_world();
    let _ = direct.apply_batch(&hot_writes);

    let mut group = c.benchmark_group("update_overwrite");
    group.bench_function("overlay", |b| {
        let mut s = filled.clone();
        let mut i = 0;
        b.iter(|| {
            i += 1;
            let (p, m) = overwrite(&hot, i);
            s.update(black_box(p), m)
        })
    });
    group.bench_function("naive", |b| {
        let mut o = naive.clone();
        let mut i = 0;
        b.iter(|| {
            i += 1;
            let (p, m) = overwrite(&hot, i);
            o.update(base, black_box(p), m)
        })
    });
    group.bench_function("shared_lock", |b| {
        let o = shared.deep_clone();
        let mut i = 0;
        b.iter(|| {
            i += 1;
            let (p, m) = overwrite(&hot, i);
            o.update(base, black_box(p), m)
        })
    });
    group.bench_function("direct", |b| {
        let w = &mut direct;
        let mut i = 0;
        b.iter(|| {
            i += 1;
            let (p, m) = overwrite(&hot, i);
            w.apply_batch(&[(black_box(p), m)])
        })
    });
    group.finish();

    let mut group = c.benchmark_group("update_revert");
    let originals: Vec<MaterialId> = hot.iter().map(|&p| base.get(p).unwrap()).collect();
    let (hot, originals) = (&hot, &originals);
    group.bench_function("overlay", |b| {
        b.iter_custom(|n| {
            reverts(
                n,
                hot.len(),
                || filled.clone(),
                |s, k| {
                    let _ = s.update(black_box(hot[k]), originals[k]);
                },
            )
        })
    });
    group.bench_function("naive", |b| {
        b.iter_custom(|n| {
            reverts(n, hot.len(), || naive.clone(), |o, k| o.update(base, black_box(hot[k]), originals[k]))
        })
    });
    group.bench_function("shared_lock", |b| {
        b.iter_custom(|n| {
            reverts(n, hot.len(), || shared.deep_clone(), |o, k| o.update(base, black_box(hot[k]), originals[k]))
        })
    });
    group.bench_function("direct", |b| {
        b.iter_custom(|n| {
            // Revert in place, then restore the deltas untimed: no clone of the world.
            let mut total = Duration::ZERO;
            let mut left = n as usize;
            while left > 0 {
                let k = left.min(hot.len());
                let t = Instant::now();
                for i in 0..k {
                    let _ = direct.apply_batch(&[(black_box(hot[i]), originals[i])]);
                }
                total += t.elapsed();
                let _ = direct.apply_batch(&hot_writes[..k]);
                left -= k;
            }
            total
        })
    });
    group.finish();
}

/// A world no other bench shares bricks with (built, not cloned).
fn own_world() -> BaseIndex {
    bevy_delta_overlay::WorldGen::default().build().expect("the default world builds")
}

/// The `i`-th overwrite: cycles through the deltas, alternating two materials
/// that are never the base's (the deltas start as `A`), so every write changes one.
fn overwrite(hot: &[IVec3], i: usize) -> (IVec3, MaterialId) {
    let k = i % hot.len();
    (hot[k], if (i / hot.len()).is_multiple_of(2) { B } else { A })
}

/// Times `n` reverts, each removing one of `len` existing deltas: a fresh copy
/// holding them all (made outside the timing) serves every `len` reverts.
fn reverts<S>(n: u64, len: usize, mut fresh: impl FnMut() -> S, mut revert: impl FnMut(&mut S, usize)) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = n as usize;
    while left > 0 {
        let k = left.min(len);
        let mut state = fresh();
        let t = Instant::now();
        for i in 0..k {
            revert(&mut state, i);
        }
        total += t.elapsed();
        left -= k;
    }
    total
}

/// Batches of 1K and 100K updates, random and clustered, into an empty overlay.
fn batches(c: &mut Criterion) {
    let base = world();
    let mut own = own_world();
    for (shape, positions) in [("random", random_positions(100_000, 3)), ("clustered", clustered_positions(100_000, 4))]
    {
        for n in [1_000usize, 100_000] {
            let batch: Vec<_> = positions[..n].iter().map(|&p| (p, A)).collect();
            let mut group = c.benchmark_group(format!("batch_{shape}_{}k", n / 1000));
            group.sample_size(if n > 10_000 { 20 } else { 50 });
            // Every variant works in place and is restored untimed, keeping its
            // allocations, as a long-running app would.
            let undo: Vec<_> = batch.iter().map(|&(p, _)| (p, base.get(p).unwrap())).collect();
            let mut s = storage();
            group.bench_function("overlay", |b| {
                b.iter_custom(|n| {
                    let mut total = Duration::ZERO;
                    for _ in 0..n {
                        let t = Instant::now();
                        black_box(s.batch_update(black_box(&batch).iter().copied()));
                        total += t.elapsed();
                        s.batch_update(undo.iter().copied());
                    }
                    total
                })
            });
            let mut naive = NaiveOverlay::default();
            group.bench_function("naive", |b| {
                b.iter_custom(|n| {
                    let mut total = Duration::ZERO;
                    for _ in 0..n {
                        let t = Instant::now();
                        black_box(&batch).iter().for_each(|&(p, m)| naive.update(base, p, m));
                        total += t.elapsed();
                        naive.map.clear();
                    }
                    total
                })
            });
            let shared = SharedLockOverlay::default();
            group.bench_function("shared_lock", |b| {
                b.iter_custom(|n| {
                    let mut total = Duration::ZERO;
                    for _ in 0..n {
                        let t = Instant::now();
                        shared.update_batch(base, black_box(&batch));
                        total += t.elapsed();
                        shared.map.write().unwrap().clear();
                    }
                    total
                })
            });
            group.bench_function("direct", |b| {
                b.iter_custom(|n| {
                    let mut total = Duration::ZERO;
                    for _ in 0..n {
                        let t = Instant::now();
                        let _ = own.apply_batch(black_box(&batch));
                        total += t.elapsed();
                        let _ = own.apply_batch(&undo);
                    }
                    total
                })
            });
            group.finish();
        }
    }
}

/// Single reads through 100K active deltas: a delta hit, a base hit and, with
/// 100K deltas in a sealed layer (a job in flight holds them) under 100K active
/// ones, a hit in the sealed layer and a miss through both layers to the base.
fn queries(c: &mut Criterion) {
    let base = world();
    let active = random_positions(100_000, 5);
    let frozen = random_positions(100_000, 6);
    let misses = random_positions(100_000, 7);
    // Without a job in flight: 100K active deltas.
    let mut plain = storage();
    plain.batch_update(active.iter().map(|&p| (p, A)));
    let mut plain_naive = NaiveOverlay::default();
    let plain_shared = SharedLockOverlay::default();
    for &p in &active {
        plain_naive.update(base, p, A);
        plain_shared.update(base, p, A);
    }
    // With a job in flight: every delta of the first batch is sealed (the job is
    // never finished, so every read goes through it), then 100K active ones.
    let mut s = storage();
    s.set_config(DeltaConfig { spatial_share: 1.0, ..s.config().clone() });
    s.batch_update(frozen.iter().map(|&p| (p, B)));
    let job = s.begin_consolidation(ConsolidationStrategy::SpatialClustering).expect("deltas to seal");
    assert_eq!(job.delta_count(), s.delta_count());
    s.batch_update(active.iter().map(|&p| (p, A)));
    let mut naive = NaiveOverlay::default();
    let shared = SharedLockOverlay::default();
    let mut direct = base.clone();
    for &p in frozen.iter().chain(&active) {
        naive.update(base, p, A);
        shared.update(base, p, A);
    }
    let _ = direct.apply_batch(&frozen.iter().chain(&active).map(|&p| (p, A)).collect::<Vec<_>>());
    let mut flat = FlatMap::default();
    for &p in &active {
        flat.insert(p, A);
    }
    let cases = [
        ("query_delta_hit", &active, &plain, &plain_naive, &plain_shared),
        ("query_base_hit", &misses, &plain, &plain_naive, &plain_shared),
        ("query_sealed_hit", &frozen, &s, &naive, &shared),
        ("query_sealed_miss", &misses, &s, &naive, &shared),
    ];
    for (case, keys, s, naive, shared) in cases {
        let mut group = c.benchmark_group(case);
        let mut i = 0;
        group.bench_function("overlay", |b| {
            b.iter(|| {
                i = (i + 1) % keys.len();
                s.query(black_box(keys[i]))
            })
        });
        group.bench_function("naive", |b| {
            b.iter(|| {
                i = (i + 1) % keys.len();
                naive.query(base, black_box(keys[i]))
            })
        });
        group.bench_function("shared_lock", |b| {
            b.iter(|| {
                i = (i + 1) % keys.len();
                shared.query(base, black_box(keys[i]))
            })
        });
        group.bench_function("direct", |b| {
            b.iter(|| {
                i = (i + 1) % keys.len();
                direct.get(black_box(keys[i]))
            })
        });
        if case == "query_delta_hit" {
            group.bench_function("flat_map", |b| {
                b.iter(|| {
                    i = (i + 1) % keys.len();
                    flat.get(black_box(keys[i]))
                })
            });
        }
        group.finish();
    }
    drop(job);
}

/// Sweeps over a 32³ box of whole bricks (x fastest), 10% of it holding
/// deltas: `query` per voxel, a `Reader` (caches the last brick), the naive
/// map, and region reads into one reused buffer, from the storage and from a
/// snapshot (what a mesher on another thread does). Throughput in voxels.
fn sweeps(c: &mut Criterion) {
    let base = world();
    let region = Aabb::from_min_size(IVec3::new(496, 128, 496), IVec3::splat(32));
    let mut rng = Rng::new(13);
    let mut s = storage();
    let mut naive = NaiveOverlay::default();
    for _ in 0..region.volume() / 10 {
        let p = rng.in_box(&region);
        let _ = s.update(p, A);
        naive.update(base, p, A);
    }
    let voxels: Vec<IVec3> = (region.min.z..region.max.z)
        .flat_map(|z| {
            (region.min.y..region.max.y)
                .flat_map(move |y| (region.min.x..region.max.x).map(move |x| IVec3::new(x, y, z)))
        })
        .collect();
    let mut group = c.benchmark_group("query_sweep_32k");
    group.throughput(criterion::Throughput::Elements(region.volume()));
    group.bench_function("overlay", |b| b.iter(|| voxels.iter().map(|&p| s.query(p).unwrap().0 as u64).sum::<u64>()));
    group.bench_function("overlay_reader", |b| {
        b.iter(|| {
            let mut r = s.reader();
            voxels.iter().map(|&p| r.get(p).unwrap().0 as u64).sum::<u64>()
        })
    });
    group.bench_function("naive", |b| {
        b.iter(|| voxels.iter().map(|&p| naive.query(base, p).unwrap().0 as u64).sum::<u64>())
    });
    let mut out = bevy_delta_overlay::base::Region::default();
    group.bench_function("read_region", |b| {
        b.iter(|| {
            s.read_region(black_box(region), &mut out).unwrap();
            out.as_slice()[0].0
        })
    });
    let snapshot = s.snapshot();
    group.bench_function("snapshot_read_region", |b| {
        b.iter(|| {
            snapshot.read_region(black_box(region), &mut out).unwrap();
            out.as_slice()[0].0
        })
    });
    group.finish();
}

/// A 64³ region at LOD 0 and 2, with 0%, 1% and 10% of its voxels holding deltas
/// (and as many deltas elsewhere in the world).
fn regions(c: &mut Criterion) {
    let base = world();
    let region = Aabb::from_min_size(IVec3::new(448, 128, 448), IVec3::splat(64));
    for pct in [0u32, 1, 10] {
        let n = (region.volume() * u64::from(pct) / 100) as usize;
        let mut rng = Rng::new(8 + u64::from(pct));
        let inside: Vec<_> = (0..n).map(|_| rng.in_box(&region)).collect();
        let outside = random_positions(n, 9);
        let mut s = storage();
        let mut naive = NaiveOverlay::default();
        for &p in inside.iter().chain(&outside) {
            let _ = s.update(p, A);
            naive.update(base, p, A);
        }
        for lod in [0u8, 2] {
            let mut group = c.benchmark_group(format!("region_lod{lod}_{pct}pct"));
            group.bench_function("overlay", |b| b.iter(|| s.query_region(black_box(region), lod)));
            group.bench_function("naive", |b| {
                b.iter(|| {
                    // Its best path: the base's region, then every delta it holds.
                    let mut r = base.region(black_box(region), lod).unwrap();
                    if lod == 0 {
                        for (&p, &m) in &naive.map {
                            if let Some(i) = r.index_of(p) {
                                r.as_mut_slice()[i] = m;
                            }
                        }
                    }
                    r
                })
            });
            group.bench_function("direct", |b| b.iter(|| base.region(black_box(region), lod)));
            group.finish();
        }
    }
}

/// Consolidation per strategy: `run` (off the main thread) and `finish` (the
/// frame stall) measured separately, at 10K, 100K and 1M deltas spread over an
/// erosion band of the world.
fn consolidation(c: &mut Criterion) {
    for n in [10_000usize, 100_000, 1_000_000] {
        let s = band_storage(n);
        let label = format!("{}k", n / 1000);
        for (name, strategy) in [
            ("lazy", ConsolidationStrategy::LazyThreshold),
            ("spatial", ConsolidationStrategy::SpatialClustering),
            ("time", ConsolidationStrategy::TimeBasedBatching),
        ] {
            let mut group = c.benchmark_group(format!("consolidate_{name}"));
            group.sample_size(10);
            group.warm_up_time(Duration::from_millis(500));
            group.bench_with_input(BenchmarkId::new("run", &label), &s, |b, s| {
                b.iter_batched(
                    || s.clone().begin_consolidation(strategy).expect("deltas to consolidate"),
                    |job| job.run(),
                    BatchSize::PerIteration,
                )
            });
            group.bench_with_input(BenchmarkId::new("finish", &label), &s, |b, s| {
                b.iter_batched(
                    || {
                        let mut s = s.clone();
                        let out = s.begin_consolidation(strategy).expect("deltas to consolidate").run();
                        (s, out)
                    },
                    |(mut s, out)| {
                        s.finish_consolidation(out).expect("the job of this storage");
                        s
                    },
                    BatchSize::PerIteration,
                )
            });
            group.finish();
        }
    }
}

/// Consolidation throughput: a lazy job over 1M deltas in the band (it merges
/// half of them), run on one thread and on two (`Threads`), as deltas merged
/// per second.
fn throughput(c: &mut Criterion) {
    let s = band_storage(1_000_000);
    let merged =
        s.clone().begin_consolidation(ConsolidationStrategy::LazyThreshold).expect("deltas").run().delta_count();
    let mut group = c.benchmark_group("consolidate_throughput_1m");
    group.sample_size(10);
    group.throughput(criterion::Throughput::Elements(merged as u64));
    for threads in [1, 2] {
        group.bench_function(format!("threads_{threads}"), |b| {
            b.iter_batched(
                || s.clone().begin_consolidation(ConsolidationStrategy::LazyThreshold).expect("deltas"),
                |job| job.run_on(&Threads(threads)),
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

/// The headless example's erosion, 200 frames of 576 updates: total CPU time to
/// reach a base holding every update, consolidation included.
fn erosion(c: &mut Criterion) {
    let frames = erosion_frames(200);
    let mut group = c.benchmark_group("erosion_200_frames");
    group.sample_size(10);
    // Every variant applies the frames to a world of its own, then restores it
    // untimed (the overlay flushes the undo too, so each run starts from the
    // original base with no deltas).
    let undo: Vec<_> = frames.iter().flatten().map(|&(p, _)| (p, world().get(p).unwrap())).rev().collect();
    // `overlay` consolidates at 20K deltas as it goes. `overlay_one_flush` is the
    // amortization limit: no consolidation until the final flush, so every brick
    // is rebuilt once for the whole run.
    let as_it_goes = DeltaConfig { threshold: 20_000, ..Default::default() };
    let deferred = DeltaConfig { threshold: usize::MAX / 2, hard_cap: usize::MAX / 2, ..Default::default() };
    for (name, config) in [("overlay", as_it_goes), ("overlay_one_flush", deferred)] {
        let mut s = DeltaStorage::new(own_world(), config);
        group.bench_function(name, |b| {
            b.iter_custom(|n| {
                let mut total = Duration::ZERO;
                for _ in 0..n {
                    let t = Instant::now();
                    for f in &frames {
                        s.batch_update(black_box(f).iter().copied());
                        s.consolidate_if_needed();
                    }
                    s.flush();
                    total += t.elapsed();
                    s.batch_update(undo.iter().copied());
                    s.flush();
                }
                total
            })
        });
    }
    let mut own = own_world();
    group.bench_function("direct", |b| {
        b.iter_custom(|n| {
            let mut total = Duration::ZERO;
            for _ in 0..n {
                let t = Instant::now();
                for f in &frames {
                    let _ = own.apply_batch(black_box(f));
                }
                total += t.elapsed();
                let _ = own.apply_batch(&undo);
            }
            total
        })
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = single_updates, batches, queries, sweeps, regions, consolidation, throughput, erosion
}
criterion_main!(benches);
