//! Builds the procedural default world and prints its build time, node counts and
//! memory, measured from the structure.
//!
//! ```text
//! cargo run --release --example worldgen [-- --seed N]
//! ```

use bevy_delta_overlay::WorldGen;
use std::time::Instant;

fn main() {
    let mut world = WorldGen::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next().map(|v| v.parse::<u64>())) {
            ("--seed", Some(Ok(seed))) => world.seed = seed,
            _ => {
                eprintln!("usage: worldgen [--seed N]");
                std::process::exit(2);
            }
        }
    }
    let start = Instant::now();
    let base = match world.build() {
        Ok(base) => base,
        Err(e) => {
            eprintln!("cannot build the world: {e}");
            std::process::exit(1);
        }
    };
    let elapsed = start.elapsed();
    let stats = base.stats();
    let size = world.size;
    let voxels = world.bounds().volume();
    println!("world        {} x {} x {} voxels ({voxels} voxels), seed {:#x}", size.x, size.y, size.z, world.seed);
    println!("build time   {:.1} ms", elapsed.as_secs_f64() * 1e3);
    println!(
        "nodes        {} uniform, {} branch, {} bricks; {:.1}% of voxels in uniform nodes",
        stats.uniform_nodes,
        stats.branch_nodes,
        stats.bricks,
        stats.uniform_fraction * 100.0
    );
    println!(
        "memory       {:.1} MiB ({:.2} bytes per voxel; dense u16 would be {:.1} MiB)",
        stats.bytes as f64 / (1 << 20) as f64,
        stats.bytes as f64 / voxels as f64,
        (voxels * 2) as f64 / (1 << 20) as f64
    );
}
