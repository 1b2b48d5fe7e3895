//! The surface index against a brute-force scan of a plain map: random
//! interleavings of single writes, batches, consolidations (begin, run and
//! finish apart, writes between), flushes, builds ahead (taken, run and
//! installed apart, writes between), the index dropped and kept again, and a
//! replica fed the change feed through `apply_changes` with an index of its
//! own. After every step the columns read (and, after a build is installed,
//! every column) equal a top-down scan of the oracle, and the surface log
//! accounts for every change of a built column.

mod common;

use bevy_delta_overlay::parallel::{Sequential, Threads};
use bevy_delta_overlay::storage::SurfaceBuild;
use bevy_delta_overlay::surface::{Surface, SurfaceCursor};
use bevy_delta_overlay::{
    Aabb, BaseIndex, ConsolidationStrategy, DeltaConfig, DeltaStorage, MaterialId, Palette, materials,
};
use common::Dense;
use glam::{IVec2, IVec3};
use proptest::prelude::*;
use std::collections::HashMap;

/// Three tiles by three on x and z, none whole; bricks cut on every axis.
const WORLD: Aabb = Aabb::new(IVec3::new(-5, -3, -7), IVec3::new(29, 37, 26));

/// Air, water, two terrain materials and an id the palette does not list
/// (terrain, as the palette's properties treat it).
const MATERIALS: [MaterialId; 5] =
    [materials::AIR, materials::WATER, materials::GRANITE, materials::SEDIMENT, MaterialId(200)];

#[derive(Clone, Debug)]
enum Op {
    Update(IVec3, usize),
    Batch(Vec<(IVec3, usize)>),
    /// Read these columns (building their tiles) and check them.
    Read(Vec<IVec2>),
    Consolidate(ConsolidationStrategy),
    Begin,
    RunFinish,
    Flush,
    TakeBuild,
    RunBuild,
    InstallBuild,
    /// Drop the index and keep a new one: every tile unbuilt again.
    Reindex,
}

fn position() -> impl Strategy<Value = IVec3> {
    // Near the surface mostly (heights 8..20), anywhere sometimes.
    prop_oneof![
        3 => (WORLD.min.x..WORLD.max.x, 8..20, WORLD.min.z..WORLD.max.z).prop_map(|(x, y, z)| IVec3::new(x, y, z)),
        1 => (WORLD.min.x..WORLD.max.x, WORLD.min.y..WORLD.max.y, WORLD.min.z..WORLD.max.z)
            .prop_map(|(x, y, z)| IVec3::new(x, y, z)),
    ]
}

fn column() -> impl Strategy<Value = IVec2> {
    (WORLD.min.x..WORLD.max.x, WORLD.min.z..WORLD.max.z).prop_map(|(x, z)| IVec2::new(x, z))
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (position(), 0..MATERIALS.len()).prop_map(|(p, m)| Op::Update(p, m)),
        4 => prop::collection::vec((position(), 0..MATERIALS.len()), 0..80).prop_map(Op::Batch),
        // A column dug out or filled: whole runs of one column.
        2 => (column(), WORLD.min.y..WORLD.max.y, 1..30i32, 0..MATERIALS.len()).prop_map(|(c, y, n, m)| {
            Op::Batch((y..(y + n).min(WORLD.max.y)).map(|y| (IVec3::new(c.x, y, c.y), m)).collect())
        }),
        4 => prop::collection::vec(column(), 1..6).prop_map(Op::Read),
        1 => prop_oneof![
            Just(ConsolidationStrategy::LazyThreshold),
            Just(ConsolidationStrategy::SpatialClustering),
            Just(ConsolidationStrategy::Adaptive),
        ]
        .prop_map(Op::Consolidate),
        2 => Just(Op::Begin),
        2 => Just(Op::RunFinish),
        1 => Just(Op::Flush),
        2 => Just(Op::TakeBuild),
        1 => Just(Op::RunBuild),
        2 => Just(Op::InstallBuild),
        1 => Just(Op::Reindex),
    ]
}

/// The surface of column `c` of `world`, by a scan from the top down.
fn scan(world: &Dense, palette: &Palette, c: IVec2) -> Surface {
    use bevy_delta_overlay::surface::MaterialClass;
    let class = |y: i32| MaterialClass::from(palette.properties(world.get(IVec3::new(c.x, y, c.y))).form);
    let top = (WORLD.min.y..WORLD.max.y).rev().find(|&y| class(y) == MaterialClass::Terrain);
    let material = top.map_or(MaterialId::AIR, |y| world.get(IVec3::new(c.x, y, c.y)));
    let mut liquid = None;
    let mut y = top.map_or(WORLD.min.y, |t| t + 1);
    while y < WORLD.max.y && class(y) == MaterialClass::Liquid {
        liquid = Some(y);
        y += 1;
    }
    Surface { top, material, liquid }
}

struct Harness {
    palette: Palette,
    storage: DeltaStorage,
    oracle: Dense,
    /// Fed the storage's change batches, with an index of its own.
    replica: DeltaStorage,
    job: Option<bevy_delta_overlay::consolidation::ConsolidationJob>,
    build: Option<SurfaceBuild>,
    cursor: SurfaceCursor,
}

impl Harness {
    fn write(&mut self, p: IVec3, m: usize) {
        self.storage.update(p, MATERIALS[m]).expect("inside the world");
        self.oracle.set(p, MATERIALS[m]);
    }

    fn check_column(&self, storage: &DeltaStorage, c: IVec2, what: &str) -> Result<(), TestCaseError> {
        let expected = scan(&self.oracle, &self.palette, c);
        prop_assert_eq!(storage.surface(c.x, c.y), Some(expected), "{} column {}", what, c);
        Ok(())
    }

    fn check_all(&self) -> Result<(), TestCaseError> {
        for x in WORLD.min.x..WORLD.max.x {
            for z in WORLD.min.z..WORLD.max.z {
                self.check_column(&self.storage, IVec2::new(x, z), "storage")?;
            }
        }
        Ok(())
    }

    fn apply(&mut self, op: Op) -> Result<(), TestCaseError> {
        match op {
            Op::Update(p, m) => self.write(p, m),
            Op::Batch(writes) => {
                let outcome = self.storage.batch_update(writes.iter().map(|&(p, m)| (p, MATERIALS[m])));
                prop_assert_eq!(outcome.applied, writes.len());
                for (p, m) in writes {
                    self.oracle.set(p, MATERIALS[m]);
                }
            }
            Op::Read(columns) => {
                for c in columns {
                    self.check_column(&self.storage, c, "storage")?;
                    self.check_column(&self.replica, c, "replica")?;
                }
            }
            Op::Consolidate(s) => {
                self.storage.consolidate(s);
                self.job = None;
            }
            Op::Begin => {
                if self.job.is_none() {
                    self.job = self.storage.begin_consolidation(ConsolidationStrategy::Adaptive);
                }
            }
            Op::RunFinish => {
                if let Some(job) = self.job.take() {
                    let out = job.run_on(&Threads(2));
                    // Refused when a flush or the hard cap cancelled it: fine.
                    let _ = self.storage.finish_consolidation(out);
                }
            }
            Op::Flush => {
                self.storage.flush();
                self.job = None;
            }
            Op::TakeBuild => {
                if self.build.is_none() {
                    self.build = self.storage.surface_build(None);
                }
            }
            Op::RunBuild => {
                if let Some(build) = self.build.as_mut() {
                    std::thread::scope(|s| s.spawn(|| build.run(&Sequential)).join()).expect("the build ran");
                }
            }
            Op::InstallBuild => {
                if let Some(mut build) = self.build.take() {
                    build.run(&Threads(2));
                    self.storage.install_surfaces(build);
                    // A stale tile installed would show anywhere: check them all.
                    self.check_all()?;
                }
            }
            Op::Reindex => {
                self.storage.disable_surfaces();
                self.storage.enable_surfaces(&self.palette);
            }
        }
        self.check_log()?;
        self.check_replica()
    }

    /// The log's changes since the last step: each column's last one says
    /// what its top is now, and none was missed.
    fn check_log(&mut self) -> Result<(), TestCaseError> {
        let changes = self.storage.surface_changes(&mut self.cursor);
        prop_assert_eq!(changes.missed, 0);
        let mut last: HashMap<IVec2, Option<i32>> = HashMap::new();
        for change in changes {
            last.insert(change.column, change.after);
        }
        for (c, after) in last {
            prop_assert_eq!(after, scan(&self.oracle, &self.palette, c).top, "the log's last word on column {}", c);
        }
        Ok(())
    }

    /// The replica applies the step's changes; the columns it has built read
    /// as the oracle (a few checked every step).
    fn check_replica(&mut self) -> Result<(), TestCaseError> {
        let batch = self.storage.take_changes();
        let applied = self.replica.apply_changes(&batch);
        prop_assert!(applied.is_ok(), "{:?}", applied);
        for c in [IVec2::new(WORLD.min.x, WORLD.min.z), IVec2::new(3, 4), IVec2::new(WORLD.max.x - 1, WORLD.max.z - 1)]
        {
            self.check_column(&self.replica, c, "replica")?;
        }
        Ok(())
    }
}

/// A world with a terrain surface of random heights (a few overhangs and
/// holes among them), a lake of water, and air above.
fn initial(heights: &[i32], lake: i32) -> Dense {
    let mut world = Dense::filled(WORLD, MaterialId::AIR);
    let size = WORLD.size();
    for x in WORLD.min.x..WORLD.max.x {
        for z in WORLD.min.z..WORLD.max.z {
            let i = ((x - WORLD.min.x) + size.x * (z - WORLD.min.z)) as usize;
            let h = heights[i % heights.len()];
            for y in WORLD.min.y..WORLD.max.y {
                let m = if y <= h {
                    if y + 3 > h { materials::SEDIMENT } else { materials::GRANITE }
                } else if y <= lake {
                    materials::WATER
                } else {
                    MaterialId::AIR
                };
                world.set(IVec3::new(x, y, z), m);
            }
        }
    }
    world
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn the_surface_index_matches_a_scan_under_any_interleaving(
        heights in prop::collection::vec(4..24i32, 1..40),
        lake in 0..20i32,
        ops in prop::collection::vec(op(), 1..50),
    ) {
        let palette = Palette::shipped();
        let oracle = initial(&heights, lake);
        let mut base = BaseIndex::uniform(WORLD, MaterialId::AIR).unwrap();
        let voxels: Vec<(IVec3, MaterialId)> = (WORLD.min.z..WORLD.max.z)
            .flat_map(|z| (WORLD.min.y..WORLD.max.y).flat_map(move |y| (WORLD.min.x..WORLD.max.x).map(move |x| IVec3::new(x, y, z))))
            .map(|p| (p, oracle.get(p)))
            .collect();
        base.apply_batch(&voxels).unwrap();
        let config = DeltaConfig { threshold: 64, hard_cap: 400, chunk_size: 16, ..DeltaConfig::default() };
        let mut storage = DeltaStorage::new(base.clone(), config.clone());
        storage.record_changes(1 << 16);
        storage.enable_surfaces(&palette);
        let mut replica = DeltaStorage::new(base, config);
        replica.enable_surfaces(&palette);
        let mut h = Harness { palette, storage, oracle, replica, job: None, build: None, cursor: SurfaceCursor::default() };
        for op in ops {
            h.apply(op)?;
        }
        h.check_all()?;
        for x in WORLD.min.x..WORLD.max.x {
            for z in WORLD.min.z..WORLD.max.z {
                h.check_column(&h.replica, IVec2::new(x, z), "replica")?;
            }
        }
    }
}

/// A reader's cursor stays valid when the index is replaced (another palette,
/// or dropped and kept again): the new log goes on numbering, so the first
/// change after it is read, not skipped.
#[test]
fn the_log_goes_on_numbering_across_a_new_index() {
    let palette = Palette::shipped();
    let bounds = Aabb::new(IVec3::ZERO, IVec3::splat(16));
    let mut world = DeltaStorage::new(BaseIndex::uniform(bounds, materials::AIR).unwrap(), DeltaConfig::default());
    world.enable_surfaces(&palette);
    let mut cursor = SurfaceCursor::default();
    assert_eq!(world.surface(3, 3).unwrap().top, None);
    for y in 0..5 {
        world.update(IVec3::new(3, y, 3), materials::GRANITE).unwrap();
    }
    assert_eq!(world.surface_changes(&mut cursor).count(), 5);
    world.disable_surfaces();
    world.enable_surfaces(&palette);
    assert_eq!(world.surface(3, 3).unwrap().top, Some(4));
    world.update(IVec3::new(3, 5, 3), materials::GRANITE).unwrap();
    let changes: Vec<_> = world.surface_changes(&mut cursor).copied().collect();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!((changes[0].before, changes[0].after), (Some(4), Some(5)));
}
