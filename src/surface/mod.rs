//! The surface index: per column of the world, the topmost terrain voxel
//! (height and material) and the top of the liquid resting on it, as
//! Minecraft keeps heightmaps beside each chunk's blocks.
//!
//! What is terrain, liquid or gas comes from the palette's
//! [`Form`]: `Solid`, `Loose` and `Molten` are terrain,
//! `Liquid` is liquid, `Gas` is gas (an id the palette does not list is
//! terrain, as the palette's properties treat it).
//!
//! # Invariants
//!
//! - `EXACT`: a built column equals a top-down scan of the world's column as
//!   it is (`Column::scan`): the storage updates built columns as writes are
//!   applied (single writes, batches, `apply_changes`), with the rule of
//!   `Column::after`.
//! - `LAZY`: columns are built a tile (`16 x 16` columns) at a time, on first
//!   use (a read, or a write to one of its columns, which builds it first from
//!   the world as it was), or ahead from a snapshot; a tile never used costs a
//!   pointer.
//! - `LOGGED`: every change of a column's surface while the index is kept is
//!   appended to a bounded log, in order (a written column's tile is built);
//!   readers follow it with a cursor.
//!
//! # Costs
//!
//! | operation | cost |
//! | --- | --- |
//! | a column's surface, tile built | two indexes |
//! | a tile's first use | a region read of the tile's voxels and a scan: about 0.1 ms for 16 x 256 x 16 |
//! | a write to a built column | reads of the changed voxels, and a walk only where the top is removed or liquid meets new liquid |
//! | memory | 12 bytes a column of built tiles (3 KiB a tile) |

mod column;
mod log;

pub use log::{SurfaceChange, SurfaceChanges, SurfaceCursor};

pub(crate) use column::{Column, Span};
pub(crate) use log::SurfaceLog;

use crate::coords::Aabb;
use crate::coords::brick::BRICK_LOG2;
use crate::material::{Form, MaterialId, Palette};
use glam::{IVec2, IVec3};
use std::sync::OnceLock;

/// What the surface index makes of a material.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MaterialClass {
    /// Empty space: not terrain, nothing rests in it.
    Gas,
    /// Fills space and rests on terrain: water.
    Liquid,
    /// Everything else: rock, loose grains, magma.
    Terrain,
}

impl From<Form> for MaterialClass {
    fn from(form: Form) -> Self {
        match form {
            Form::Gas => Self::Gas,
            Form::Liquid => Self::Liquid,
            Form::Molten | Form::Loose | Form::Solid => Self::Terrain,
        }
    }
}

/// The class of every material id, from a palette.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Classes(Vec<MaterialClass>);

impl Classes {
    /// The classes `palette` gives.
    pub fn of(palette: &Palette) -> Self {
        let size = palette.entries().iter().map(|e| usize::from(e.id) + 1).max().unwrap_or(0);
        Self((0..size).map(|id| palette.properties(MaterialId(id as u16)).form.into()).collect())
    }

    /// True when `palette` gives these classes (no allocation: what a frame
    /// checks before reading surfaces).
    pub fn match_palette(&self, palette: &Palette) -> bool {
        let size = palette.entries().iter().map(|e| usize::from(e.id) + 1).max().unwrap_or(0);
        size == self.0.len()
            && self.0.iter().enumerate().all(|(id, c)| *c == palette.properties(MaterialId(id as u16)).form.into())
    }

    /// The class of `m`.
    #[inline]
    pub fn get(&self, m: MaterialId) -> MaterialClass {
        self.0.get(usize::from(m.0)).copied().unwrap_or(MaterialClass::Terrain)
    }
}

/// A column's surface, as [`DeltaStorage::surface`](crate::DeltaStorage::surface)
/// gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Surface {
    /// The height of the topmost terrain voxel; `None` when the column holds
    /// no terrain.
    pub top: Option<i32>,
    /// The material at `top` (air when there is no terrain).
    pub material: MaterialId,
    /// The height of the top of the liquid resting on the terrain (or on the
    /// world's floor): the voxels above `top` up to it are all liquid. `None`
    /// when no liquid rests there.
    pub liquid: Option<i32>,
}

impl Surface {
    pub(crate) fn of(column: Column, bottom: i32) -> Self {
        Self {
            top: (column.top >= bottom).then_some(column.top),
            material: column.material,
            liquid: (column.liquid > column.top).then_some(column.liquid),
        }
    }

    /// The height of the highest voxel of terrain or liquid (`top` under no
    /// liquid): where something laid on the column lands, less one.
    pub fn level(&self) -> Option<i32> {
        self.liquid.or(self.top)
    }
}

/// A number no other index of this process has.
fn next_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Columns per tile side, log2: a tile is a brick's footprint.
pub(crate) const TILE_LOG2: u32 = BRICK_LOG2;
/// Columns per tile side.
pub(crate) const TILE: i32 = 1 << TILE_LOG2;

/// The columns of one tile, `x | z << 4`.
#[derive(Clone, Debug)]
pub(crate) struct Tile(pub Box<[Column; (TILE * TILE) as usize]>);

/// The index of a world's surfaces; see the module docs.
#[derive(Debug)]
pub(crate) struct SurfaceIndex {
    pub classes: Classes,
    bounds: Aabb,
    /// Tiles per axis (x, z).
    dims: IVec2,
    tiles: Vec<OnceLock<Tile>>,
    /// Tiles built (a count kept, not a walk of `tiles`).
    built: std::sync::atomic::AtomicUsize,
    /// Tells this index from any other (a build for another is refused).
    pub id: u64,
    pub log: SurfaceLog,
}

impl Clone for SurfaceIndex {
    fn clone(&self) -> Self {
        Self {
            classes: self.classes.clone(),
            bounds: self.bounds,
            dims: self.dims,
            tiles: self.tiles.iter().map(|t| t.get().cloned().map(OnceLock::from).unwrap_or_default()).collect(),
            built: std::sync::atomic::AtomicUsize::new(self.built.load(std::sync::atomic::Ordering::Relaxed)),
            id: next_id(),
            log: self.log.clone(),
        }
    }
}

impl SurfaceIndex {
    /// An index of the world `bounds` with no tile built, its log numbering
    /// changes from `log_start`.
    pub fn new(bounds: Aabb, classes: Classes, log_start: u64) -> Self {
        let size = bounds.size();
        let dims = IVec2::new(size.x, size.z).map(|v| (v + TILE - 1) >> TILE_LOG2);
        let count = dims.x as usize * dims.y as usize;
        Self {
            classes,
            bounds,
            dims,
            tiles: (0..count).map(|_| OnceLock::new()).collect(),
            built: std::sync::atomic::AtomicUsize::new(0),
            id: next_id(),
            log: SurfaceLog::starting_at(log_start),
        }
    }

    /// Tiles in the index.
    pub fn len(&self) -> usize {
        self.tiles.len()
    }

    // A paged world's (feature `paging`) only.
    #[cfg(feature = "paging")]
    /// Its heap bytes: the slots, the built tiles, the log.
    pub fn bytes(&self) -> usize {
        let built = self.built_tiles();
        self.tiles.capacity() * std::mem::size_of::<OnceLock<Tile>>()
            + built * std::mem::size_of::<[Column; (TILE * TILE) as usize]>()
            + self.log.bytes()
    }

    /// Installs `tile` at `slot` unless the tile is built already (a write
    /// builds a tile before it lands, so an unbuilt tile was not written since
    /// any earlier snapshot).
    pub fn install(&mut self, slot: usize, tile: Tile) -> bool {
        if self.tiles[slot].get().is_some() {
            return false;
        }
        self.tiles[slot] = OnceLock::from(tile);
        *self.built.get_mut() += 1;
        true
    }

    /// The heights of every column.
    pub fn span(&self) -> Span {
        Span { bottom: self.bounds.min.y, ceiling: self.bounds.max.y - 1 }
    }

    /// The tile slot and in-tile index of world column `(x, z)` (in the world).
    #[inline]
    pub fn locate(&self, x: i32, z: i32) -> (usize, usize) {
        let (lx, lz) = (x - self.bounds.min.x, z - self.bounds.min.z);
        let tile = (lx >> TILE_LOG2) + self.dims.x * (lz >> TILE_LOG2);
        (tile as usize, ((lx & (TILE - 1)) | (lz & (TILE - 1)) << TILE_LOG2) as usize)
    }

    /// The tile at `slot`, built by `build` on first use.
    #[inline]
    pub fn tile(&self, slot: usize, build: impl FnOnce() -> Tile) -> &Tile {
        self.tiles[slot].get_or_init(|| {
            self.built.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            build()
        })
    }

    /// The tile at `slot`, if built.
    #[inline]
    pub fn built(&self, slot: usize) -> Option<&Tile> {
        self.tiles[slot].get()
    }

    /// The tile at `slot`, if built, to update.
    #[inline]
    pub fn built_mut(&mut self, slot: usize) -> Option<&mut Tile> {
        self.tiles[slot].get_mut()
    }

    /// The world box of tile `slot`'s columns, every height.
    pub fn tile_box(&self, slot: usize) -> Aabb {
        let t = IVec2::new(slot as i32 % self.dims.x, slot as i32 / self.dims.x) << TILE_LOG2 as i32;
        let min = self.bounds.min + IVec3::new(t.x, 0, t.y);
        Aabb::new(min, IVec3::new(min.x + TILE, self.bounds.max.y, min.z + TILE)).intersection(&self.bounds)
    }

    /// Tiles built so far.
    pub fn built_tiles(&self) -> usize {
        self.built.load(std::sync::atomic::Ordering::Relaxed)
    }
}
