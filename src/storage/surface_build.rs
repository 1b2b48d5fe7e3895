//! Tiles of the surface index built off the storage's thread, from a
//! snapshot, and installed where no write reached them since.
//!
//! The first read of a tile builds it (about 13 µs for `16 x 256 x 16`
//! voxels); a simulation that reads everywhere at once (rain falls anywhere)
//! would pay thousands of them in its first frames. A [`SurfaceBuild`] builds
//! them ahead, on any thread, while the storage goes on: a write after the
//! build's snapshot builds its tile first, from the world as it is, and the
//! build's copy of that tile is not installed, so the index stays exact.

use super::DeltaStorage;
use super::snapshot::WorldSnapshot;
use super::surface::{BrickSource, build_tile};
use crate::base::{BrickContent, BrickView};
use crate::coords::Aabb;
use crate::coords::brick::{BRICK_LOG2, BRICK_VOLUME, BrickKey};
use crate::material::MaterialId;
use crate::overlay::{BrickStack, Layer};
use crate::parallel::Executor;
use crate::surface::{SurfaceIndex, TILE_LOG2, Tile};
use glam::IVec3;

/// A build of surface-index tiles ahead of their first read: taken with
/// [`DeltaStorage::surface_build`], run on any thread with
/// [`run`](Self::run), handed back with [`DeltaStorage::install_surfaces`].
///
/// ```
/// use bevy_delta_overlay::parallel::Sequential;
/// use bevy_delta_overlay::{DeltaConfig, DeltaStorage, Palette, WorldGen};
/// use glam::IVec3;
/// let generator = WorldGen { size: IVec3::new(64, 64, 64), ..Default::default() };
/// let mut world = DeltaStorage::new(generator.build()?, DeltaConfig::default());
/// world.enable_surfaces(&Palette::shipped());
/// let mut build = world.surface_build(None).expect("an index with no tile built");
/// std::thread::scope(|s| s.spawn(|| build.run(&Sequential)).join()).unwrap();
/// assert_eq!(world.install_surfaces(build), 16);
/// assert_eq!(world.surface_tiles(), 16);
/// # Ok::<(), bevy_delta_overlay::VoxelError>(())
/// ```
pub struct SurfaceBuild {
    snapshot: WorldSnapshot,
    /// An index of the same shape and classes: what the tiles are built for.
    shape: SurfaceIndex,
    /// The index this build is for.
    target: u64,
    slots: Vec<usize>,
    tiles: Vec<Tile>,
}

impl std::fmt::Debug for SurfaceBuild {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SurfaceBuild")
            .field("sequence", &self.snapshot.sequence())
            .field("tiles", &self.slots.len())
            .field("built", &self.tiles.len())
            .finish()
    }
}

impl DeltaStorage {
    /// A build of the surface index's tiles not built yet over `area` (`None`:
    /// the whole world), from a snapshot of the world as of now; `None` when
    /// no surface index is kept or every such tile is built. Costs a snapshot
    /// and a list of tiles.
    pub fn surface_build(&self, area: Option<Aabb>) -> Option<SurfaceBuild> {
        let index = self.surfaces.as_deref()?;
        let area = area.map_or(self.bounds(), |a| a.intersection(&self.bounds()));
        let slots: Vec<usize> = (0..index.len())
            .filter(|&slot| index.built(slot).is_none() && index.tile_box(slot).intersects(&area))
            .collect();
        if slots.is_empty() {
            return None;
        }
        let shape = SurfaceIndex::new(self.bounds(), index.classes.clone(), 0);
        Some(SurfaceBuild { snapshot: self.snapshot(), shape, target: index.id, slots, tiles: Vec::new() })
    }

    /// Installs the tiles of a build that ran: each one unless its tile was
    /// built meanwhile (a read, or a write to one of its columns after the
    /// build's snapshot, builds it from the world as it is). A build for
    /// another index (a new one was enabled, or another storage's) installs
    /// nothing. Returns the tiles installed.
    pub fn install_surfaces(&mut self, build: SurfaceBuild) -> usize {
        let Some(index) = self.surfaces.as_deref_mut() else { return 0 };
        if index.id != build.target || build.tiles.len() != build.slots.len() {
            return 0;
        }
        let mut installed = 0;
        for (slot, tile) in build.slots.into_iter().zip(build.tiles) {
            installed += usize::from(index.install(slot, tile));
        }
        installed
    }
}

impl SurfaceBuild {
    /// Builds the tiles, in pieces side by side on `executor`. Any thread.
    pub fn run(&mut self, executor: &impl Executor) {
        if self.tiles.len() == self.slots.len() {
            return;
        }
        let layers: Vec<&Layer> = self.snapshot.layers().collect();
        let source = SnapshotBricks { snapshot: &self.snapshot, layers: &layers };
        let pieces = (executor.width() * 4).clamp(1, self.slots.len());
        let per = self.slots.len().div_ceil(pieces);
        let (slots, shape, world) = (&self.slots, &self.shape, self.snapshot.bounds());
        let build = |piece: usize| -> Vec<Tile> {
            let end = ((piece + 1) * per).min(slots.len());
            slots[(piece * per).min(end)..end].iter().map(|&slot| build_tile(&source, shape, world, slot)).collect()
        };
        self.tiles = executor.map(pieces, &build).into_iter().flatten().collect();
    }

    /// Tiles in the build.
    pub fn tiles(&self) -> usize {
        self.slots.len()
    }

    /// The sequence number of the world it builds from.
    pub fn sequence(&self) -> u64 {
        self.snapshot.sequence()
    }
}

/// A snapshot's bricks, deltas applied.
struct SnapshotBricks<'s> {
    snapshot: &'s WorldSnapshot,
    layers: &'s [&'s Layer],
}

impl BrickSource for SnapshotBricks<'_> {
    fn brick_view<'a>(&'a self, q: IVec3, buffer: &'a mut [MaterialId; BRICK_VOLUME]) -> BrickView<'a> {
        let b = q >> BRICK_LOG2 as i32;
        let content = self.snapshot.base_brick(b);
        let stack = BrickStack::of(self.layers, BrickKey::of_brick(b));
        match (&content, stack.is_empty()) {
            (BrickContent::Uniform(m), true) => return BrickView::Uniform(*m),
            (BrickContent::Uniform(m), false) => buffer.fill(*m),
            (BrickContent::Dense(brick), _) => buffer.copy_from_slice(brick.voxels()),
        }
        for d in stack.visible() {
            buffer[usize::from(d.local)] = d.material;
        }
        BrickView::Voxels(buffer)
    }
}

// Tiles and bricks share a footprint: a tile's column of bricks is one brick
// wide, which `build_tile` relies on.
const _: () = assert!(TILE_LOG2 == BRICK_LOG2);
