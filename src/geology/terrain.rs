//! The processes' view of the world: voxel columns read through the storage
//! and this frame's pending edits, with a cache of column surfaces.
//!
//! # Invariants
//!
//! - A pending edit is inside the world, and reads see it: every process
//!   reads the world as the edits made so far this frame left it, so two
//!   processes never both remove the same voxel.
//! - `Workspace::edits` lists each edit once per write, in order; replaying it
//!   gives the pending map's values (the last write wins).
//! - A cached surface (a column's, or its tile's) is a hint, checked on
//!   every use (two reads): edits made elsewhere only cost a short walk to
//!   the true surface.

use crate::coords::Aabb;
use crate::hash::{FastMap, fixed_hasher};
use crate::material::{Form, MaterialId, MaterialProperties, Palette};
use crate::storage::{DeltaStorage, Reader};
use glam::{IVec2, IVec3};

/// Columns whose surface a workspace remembers; past this the cache is
/// emptied (it refills as the processes read).
const SURFACE_CAP: usize = 1 << 20;

/// The four horizontal neighbours of a column.
pub(crate) const DIRECTIONS: [IVec2; 4] = [IVec2::X, IVec2::NEG_X, IVec2::Y, IVec2::NEG_Y];

/// Columns share a surface hint per tile of `2^TILE_SHIFT` columns a side.
const TILE_SHIFT: i32 = 4;

/// What the processes keep between frames and share within one: the pending
/// edits and the surface cache. With the plugin it is a resource; without it,
/// own one and drain [`Workspace::take_edits`] into the storage.
#[cfg_attr(feature = "plugin", derive(bevy::prelude::Resource))]
pub struct Workspace {
    pending: FastMap<IVec3, MaterialId>,
    edits: Vec<(IVec3, MaterialId)>,
    surfaces: FastMap<IVec2, i32>,
    tiles: FastMap<IVec2, i32>,
}

impl Default for Workspace {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Workspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workspace").field("edits", &self.edits.len()).field("surfaces", &self.surfaces.len()).finish()
    }
}

impl Workspace {
    /// A workspace with nothing pending.
    pub fn new() -> Self {
        Self {
            pending: FastMap::with_hasher(fixed_hasher()),
            edits: Vec::new(),
            surfaces: FastMap::with_hasher(fixed_hasher()),
            tiles: FastMap::with_hasher(fixed_hasher()),
        }
    }

    /// Drains the edits made since the last call, in order: the batch to send
    /// (or to apply with `batch_update`).
    pub fn take_edits(&mut self) -> Vec<(IVec3, MaterialId)> {
        self.pending.clear();
        std::mem::take(&mut self.edits)
    }

    /// Drains the edits made since the last call, in order, keeping the
    /// buffer for the next frame.
    pub fn drain_edits(&mut self) -> std::vec::Drain<'_, (IVec3, MaterialId)> {
        self.pending.clear();
        self.edits.drain(..)
    }

    /// Edits pending.
    pub fn pending(&self) -> usize {
        self.edits.len()
    }
}

/// The world as the processes see it: reads through this frame's pending
/// edits, writes into them.
pub struct Terrain<'w> {
    reader: Reader<'w>,
    bounds: Aabb,
    now: std::time::Duration,
    palette: &'w Palette,
    workspace: &'w mut Workspace,
}

impl<'w> Terrain<'w> {
    /// A view of `storage` with `palette`'s material properties; edits go to
    /// `workspace`.
    pub fn new(storage: &'w DeltaStorage, palette: &'w Palette, workspace: &'w mut Workspace) -> Self {
        Self { reader: storage.reader(), bounds: storage.bounds(), now: storage.now(), palette, workspace }
    }

    /// The world's bounds.
    pub fn bounds(&self) -> Aabb {
        self.bounds
    }

    /// The storage's clock ([`DeltaStorage::now`]).
    pub fn now(&self) -> std::time::Duration {
        self.now
    }

    /// Edits written through this view's workspace and not yet taken.
    pub fn edit_count(&self) -> usize {
        self.workspace.edits.len()
    }

    /// Whether column `(x, z)` is inside the world.
    pub fn has_column(&self, c: IVec2) -> bool {
        let (min, max) = (self.bounds.min, self.bounds.max);
        c.x >= min.x && c.x < max.x && c.y >= min.z && c.y < max.z
    }

    /// The material at `p` (air outside the world).
    #[inline]
    pub fn get(&mut self, p: IVec3) -> MaterialId {
        if let Some(&m) = self.workspace.pending.get(&p) {
            return m;
        }
        self.reader.get(p).unwrap_or(MaterialId::AIR)
    }

    /// The properties of a material.
    #[inline]
    pub fn properties(&self, m: MaterialId) -> &'w MaterialProperties {
        self.palette.properties(m)
    }

    /// Whether the voxel at `p` is terrain (not a fluid). Outside the world:
    /// no.
    #[inline]
    pub fn is_matter(&mut self, p: IVec3) -> bool {
        let m = self.get(p);
        self.bounds.contains(p) && self.palette.properties(m).is_matter()
    }

    /// Writes `m` at `p`; a position outside the world is ignored (and a
    /// debug build panics: the processes never make one).
    pub fn set(&mut self, p: IVec3, m: MaterialId) {
        debug_assert!(self.bounds.contains(p), "a process wrote outside the world at {p}");
        if self.bounds.contains(p) {
            self.workspace.pending.insert(p, m);
            self.workspace.edits.push((p, m));
        }
    }

    /// The height of the topmost terrain voxel of column `c`; `None` when the
    /// column is outside the world or holds no terrain.
    ///
    /// The walk starts from a hint: the column's cached surface, else the
    /// last surface found in its tile of `16 x 16` columns (neighbours differ
    /// by a few voxels, where a walk from the top of the world reads a hundred),
    /// else the top of the world. From a hint in terrain it walks up, from one
    /// in a fluid down; a walk down from a tile's hint that meets molten rock
    /// started inside the crust, and starts again from the top. Terrain
    /// floating above an air gap over the hint (an overhang) is not seen.
    pub fn surface(&mut self, c: IVec2) -> Option<i32> {
        if !self.has_column(c) {
            return None;
        }
        let (bottom, top) = (self.bounds.min.y, self.bounds.max.y - 1);
        let tile = c >> TILE_SHIFT;
        let cached = self.workspace.surfaces.get(&c).copied();
        let tile_hint = if cached.is_none() { self.workspace.tiles.get(&tile).copied() } else { None };
        let y = match self.walk(c, cached.or(tile_hint).unwrap_or(top), tile_hint.is_some()) {
            Some(y) => y,
            None => self.walk(c, top, false).unwrap_or(bottom - 1),
        };
        if self.workspace.surfaces.len() >= SURFACE_CAP {
            self.workspace.surfaces.clear();
            self.workspace.tiles.clear();
        }
        self.workspace.surfaces.insert(c, y);
        if y >= bottom {
            self.workspace.tiles.insert(tile, y);
        }
        (y >= bottom).then_some(y)
    }

    /// Walks column `c` from height `from` to its surface (`bottom - 1` when
    /// it holds no terrain); `None` when `careful` and the walk down met
    /// molten rock.
    fn walk(&mut self, c: IVec2, from: i32, careful: bool) -> Option<i32> {
        let (bottom, top) = (self.bounds.min.y, self.bounds.max.y - 1);
        let at = |y| IVec3::new(c.x, y, c.y);
        let mut y = from.clamp(bottom, top);
        if self.is_matter(at(y)) {
            while y < top && self.is_matter(at(y + 1)) {
                y += 1;
            }
            return Some(y);
        }
        while y >= bottom {
            let form = self.palette.properties(self.get(at(y))).form;
            if careful && form == Form::Molten {
                return None;
            }
            if form.is_matter() {
                break;
            }
            y -= 1;
        }
        Some(y)
    }

    /// Visits, in each of the four directions, the columns within `reach` of
    /// `c` whose surface is lower than `h`, nearest first, up to the first that
    /// is not (the way a voxel can slide over): `visit(distance, column,
    /// surface)` returns whether to stop looking in that direction.
    pub(crate) fn downhill(&mut self, c: IVec2, h: i32, reach: i32, mut visit: impl FnMut(i32, IVec2, i32) -> bool) {
        for d in DIRECTIONS {
            for k in 1..=reach.max(1) {
                let n = c + d * k;
                if !self.has_column(n) {
                    break;
                }
                let hn = self.surface(n).unwrap_or(self.bounds.min.y - 1);
                if hn >= h || visit(k, n, hn) {
                    break;
                }
            }
        }
    }

    /// Removes the top voxel of column `c` (at height `y`): it becomes the
    /// fluid above it, or air. Returns what was removed.
    pub fn remove_top(&mut self, c: IVec2, y: i32) -> MaterialId {
        let p = IVec3::new(c.x, y, c.y);
        let removed = self.get(p);
        let above = self.get(p + IVec3::Y);
        let fill = if y + 1 < self.bounds.max.y && self.properties(above).form == Form::Liquid {
            above
        } else {
            MaterialId::AIR
        };
        self.set(p, fill);
        self.workspace.surfaces.insert(c, y - 1);
        removed
    }

    /// Lays `m` on top of column `c`; `false` when there is no room (the
    /// column is full to the top of the world).
    pub fn lay(&mut self, c: IVec2, m: MaterialId) -> bool {
        let y = self.surface(c).map_or(self.bounds.min.y, |s| s + 1);
        if y >= self.bounds.max.y {
            return false;
        }
        self.set(IVec3::new(c.x, y, c.y), m);
        self.workspace.surfaces.insert(c, y);
        true
    }

    /// Whether the voxel above column `c`'s surface `y` is a liquid (the
    /// column is under water).
    pub fn submerged(&mut self, c: IVec2, y: i32) -> bool {
        let above = self.get(IVec3::new(c.x, y + 1, c.y));
        y + 1 < self.bounds.max.y && self.properties(above).form == Form::Liquid
    }
}
