//! Heap bytes per delta at 1K, 10K, 100K and 1M deltas, measured with a counting
//! global allocator, for this overlay and the naive `HashMap<IVec3, MaterialId>`.
//! Also compares with the crate's own `overlay_bytes` figure.
//!
//! `cargo bench --bench memory`: prints a table and writes
//! `target/criterion/memory.json` for `scripts/benchmarks.py`.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::sync::atomic::{AtomicIsize, Ordering};
use support::*;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the only
// addition is a relaxed counter of live bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn main() {
    let mut rows = Vec::new();
    println!("{:<10} {:>10} {:>14} {:>14} {:>14}", "shape", "deltas", "overlay B/Δ", "reported B/Δ", "naive B/Δ");
    for (shape, positions) in
        [("random", random_positions(1 << 21, 11)), ("clustered", clustered_positions(1 << 21, 12))]
    {
        for n in [1_000usize, 10_000, 100_000, 1_000_000] {
            // Distinct positions, so the count is exactly n.
            let mut seen = std::collections::HashSet::with_capacity(n);
            let keys: Vec<_> = positions.iter().copied().filter(|p| seen.insert(*p)).take(n).collect();
            assert_eq!(keys.len(), n);
            drop(seen);

            let mut single = storage();
            let before = live();
            for &p in &keys {
                let _ = single.update(p, A);
            }
            let overlay = live() - before;
            assert_eq!(single.delta_count(), n);
            let reported = single.stats().overlay_bytes;
            drop(single);

            let before = live();
            let mut naive: HashMap<glam::IVec3, bevy_delta_overlay::MaterialId> = HashMap::new();
            for &p in &keys {
                naive.insert(p, A);
            }
            let naive_bytes = live() - before;
            drop(naive);

            let per = |b: isize| b as f64 / n as f64;
            println!(
                "{shape:<10} {n:>10} {:>14.1} {:>14.1} {:>14.1}",
                per(overlay),
                per(reported as isize),
                per(naive_bytes)
            );
            rows.push(format!(
                r#"{{"shape":"{shape}","deltas":{n},"overlay":{:.2},"reported":{:.2},"naive":{:.2}}}"#,
                per(overlay),
                per(reported as isize),
                per(naive_bytes)
            ));
        }
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/criterion");
    let _ = std::fs::create_dir_all(&dir);
    let json = format!("[\n{}\n]\n", rows.join(",\n"));
    if let Err(e) = std::fs::write(dir.join("memory.json"), json) {
        eprintln!("cannot write memory.json: {e}");
    }
}
