//! The processes' view of the world: voxels and column surfaces read through
//! the storage and this frame's pending edits.
//!
//! # Invariants
//!
//! - A pending edit is inside the world, and reads see it: every process
//!   reads the world as the edits made so far this frame left it, so two
//!   processes never both remove the same voxel.
//! - `Workspace::edits` lists each edit once per write, in order; replaying it
//!   gives the pending map's values (the last write wins).
//! - A column's surface is exact: the storage's surface index for columns no
//!   pending edit touched, the workspace's own record (kept by the index's
//!   rule, [`Column::after`]) for those one did. Whatever was read before, a
//!   column reads the same: terrain above an air gap (an overhang) is its top.
//! - `WATER`: the write helpers neither make nor destroy liquid.
//!   [`Terrain::remove_top`] under liquid lets the liquid fill the hole and
//!   drains its top voxel; [`Terrain::lay`] under liquid lifts the voxel it
//!   displaces onto the liquid's top; [`Terrain::collapse`] sinks what is
//!   above. Liquid moves at most one column sideways, to level the surface
//!   (a write changes the liquid top of at most one neighbour, never whether
//!   it holds liquid, nor its terrain). Only [`Terrain::set`], the raw write,
//!   can make or destroy liquid: no process calls it on liquid.

use crate::coords::Aabb;
use crate::hash::{FastMap, fast_map};
use crate::material::{MaterialId, MaterialProperties, MaterialUpdate, Palette};
use crate::storage::{DeltaStorage, Reader};
use crate::surface::{Column, MaterialClass, Span, Surface, SurfaceChanges, SurfaceCursor, SurfaceIndex, Tile};
use glam::{IVec2, IVec3};

/// The four horizontal neighbours of a column.
pub(crate) const DIRECTIONS: [IVec2; 4] = [IVec2::X, IVec2::NEG_X, IVec2::Y, IVec2::NEG_Y];

/// The eight neighbours of a column: the four of [`DIRECTIONS`], then the
/// four diagonals.
pub(crate) const DIRECTIONS8: [IVec2; 8] = [
    IVec2::X,
    IVec2::NEG_X,
    IVec2::Y,
    IVec2::NEG_Y,
    IVec2::new(1, 1),
    IVec2::new(-1, -1),
    IVec2::new(1, -1),
    IVec2::new(-1, 1),
];

/// What the processes keep between frames and share within one: the pending
/// edits and the surfaces of the columns they touched. With the plugin it is a
/// resource; without it, own one and drain [`Workspace::take_edits`] into the
/// storage.
#[cfg_attr(feature = "plugin", derive(bevy::prelude::Resource))]
pub struct Workspace {
    pending: FastMap<IVec3, MaterialId>,
    edits: Vec<MaterialUpdate>,
    /// The surfaces of the columns pending edits touched.
    columns: FastMap<IVec2, Column>,
    /// A bit per column of the world: set when the column is in `columns` (a
    /// read of any other skips the map).
    touched: Vec<u64>,
    /// Columns along x of the world `touched` was sized for.
    width: usize,
    /// That world's smallest column.
    origin: IVec2,
}

impl Default for Workspace {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Workspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workspace").field("edits", &self.edits.len()).field("columns", &self.columns.len()).finish()
    }
}

impl Workspace {
    /// A workspace with nothing pending.
    pub fn new() -> Self {
        Self {
            pending: fast_map(),
            edits: Vec::new(),
            columns: fast_map(),
            touched: Vec::new(),
            width: 0,
            origin: IVec2::ZERO,
        }
    }

    /// Sizes the column bits for a world of `bounds`; when the world's shape
    /// changed, drops everything pending (it was for the last world).
    fn fit(&mut self, bounds: Aabb) {
        let size = bounds.size();
        let (x, z) = (size.x.max(0) as usize, size.z.max(0) as usize);
        let words = (x * z).div_ceil(64);
        let origin = IVec2::new(bounds.min.x, bounds.min.z);
        if self.width != x || self.touched.len() != words || self.origin != origin {
            // Another world: what was pending was for the last one.
            self.edits.clear();
            self.width = x;
            self.origin = origin;
            self.touched = vec![0; words];
            self.columns.clear();
            self.pending.clear();
        }
    }

    /// Forgets the pending edits' reads (not the edits).
    fn forget(&mut self) {
        self.pending.clear();
        // Clear the bits set, not the whole world's.
        for c in self.columns.keys() {
            let (x, z) = ((c.x - self.origin.x) as usize, (c.y - self.origin.y) as usize);
            if let Some(word) = self.touched.get_mut((x + self.width * z) / 64) {
                *word = 0;
            }
        }
        self.columns.clear();
    }

    /// Drains the edits made since the last call, in order: the batch to send
    /// (or to apply with `batch_update`).
    pub fn take_edits(&mut self) -> Vec<MaterialUpdate> {
        self.forget();
        std::mem::take(&mut self.edits)
    }

    /// Drains the edits made since the last call, in order, keeping the
    /// buffer for the next frame.
    pub fn drain_edits(&mut self) -> std::vec::Drain<'_, MaterialUpdate> {
        self.forget();
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
    storage: &'w DeltaStorage,
    reader: Reader<'w>,
    bounds: Aabb,
    now: std::time::Duration,
    palette: &'w Palette,
    workspace: &'w mut Workspace,
    /// The storage's surface index, when it keeps one of this palette's
    /// classes: its surfaces are read; otherwise columns are scanned.
    index: Option<&'w SurfaceIndex>,
    /// The tile of the index read last (reads come in neighbourhoods).
    last: Option<(usize, &'w Tile)>,
}

impl<'w> Terrain<'w> {
    /// A view of `storage` with `palette`'s material properties; edits go to
    /// `workspace`. Surfaces come from the storage's surface index when it
    /// keeps one for this palette ([`DeltaStorage::enable_surfaces`]), and from
    /// scans of the column otherwise (exact, and slower). The change-driven
    /// processes (thermal erosion, deposition) learn what changed from the
    /// index's log: without an index they see only their random trickle, so
    /// keep one (the plugins do) for the world the processes are built for.
    pub fn new(storage: &'w DeltaStorage, palette: &'w Palette, workspace: &'w mut Workspace) -> Self {
        let index = storage.surface_index().filter(|_| storage.surfaces_indexed_with(palette));
        workspace.fit(storage.bounds());
        Self {
            storage,
            reader: storage.reader(),
            bounds: storage.bounds(),
            now: storage.now(),
            palette,
            workspace,
            index,
            last: None,
        }
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
    #[inline]
    pub fn has_column(&self, c: IVec2) -> bool {
        let (min, max) = (self.bounds.min, self.bounds.max);
        c.x >= min.x && c.x < max.x && c.y >= min.z && c.y < max.z
    }

    /// The material at `p` (air outside the world).
    #[inline]
    pub fn get(&mut self, p: IVec3) -> MaterialId {
        // A pending edit's column has its bit set: elsewhere, skip the map.
        let c = IVec2::new(p.x, p.z);
        if self.has_column(c)
            && self.is_touched(c)
            && let Some(&m) = self.workspace.pending.get(&p)
        {
            return m;
        }
        self.reader.get(p).unwrap_or(MaterialId::AIR)
    }

    /// Whether column `c` (in the world) has a pending edit.
    #[inline]
    fn is_touched(&self, c: IVec2) -> bool {
        let bit = self.column_bit(c);
        self.workspace.touched[bit / 64] & (1 << (bit % 64)) != 0
    }

    /// The palette the processes read.
    pub fn palette(&self) -> &'w Palette {
        self.palette
    }

    /// The properties of a material.
    #[inline]
    pub fn properties(&self, m: MaterialId) -> &'w MaterialProperties {
        self.palette.properties(m)
    }

    /// What the surface index makes of a material.
    #[inline]
    fn class(&self, m: MaterialId) -> MaterialClass {
        self.palette.properties(m).form.into()
    }

    /// Whether the voxel at `p` is terrain (not a fluid). Outside the world:
    /// no.
    #[inline]
    pub fn is_matter(&mut self, p: IVec3) -> bool {
        let m = self.get(p);
        self.bounds.contains(p) && self.palette.properties(m).is_matter()
    }

    /// The heights of every column.
    fn span(&self) -> Span {
        Span { bottom: self.bounds.min.y, ceiling: self.bounds.max.y - 1 }
    }

    /// The bit of column `c` in the workspace's `touched` (`c` in the world).
    #[inline]
    fn column_bit(&self, c: IVec2) -> usize {
        (c.x - self.bounds.min.x) as usize + self.workspace.width * (c.y - self.bounds.min.z) as usize
    }

    /// Column `c`'s surface as the storage has it (no pending edit).
    #[inline]
    fn stored_column(&mut self, c: IVec2) -> Column {
        if let Some(index) = self.index {
            let (slot, i) = index.locate(c.x, c.y);
            let tile = match self.last {
                Some((last, tile)) if last == slot => tile,
                _ => {
                    let tile = self.storage.surface_tile(index, slot);
                    self.last = Some((slot, tile));
                    tile
                }
            };
            return tile.0[i];
        }
        let span = self.span();
        Column::scan(span, |y| {
            let m = self.reader.get(IVec3::new(c.x, y, c.y)).unwrap_or(MaterialId::AIR);
            (self.class(m), m)
        })
    }

    /// Column `c`'s surface, pending edits included (`c` in the world).
    #[inline]
    fn column(&mut self, c: IVec2) -> Column {
        if self.is_touched(c)
            && let Some(&column) = self.workspace.columns.get(&c)
        {
            return column;
        }
        self.stored_column(c)
    }

    /// Column `c`'s surface: its topmost terrain voxel and the liquid resting
    /// on it, pending edits included; `None` outside the world.
    pub fn surface_of(&mut self, c: IVec2) -> Option<Surface> {
        self.has_column(c).then(|| Surface::of(self.column(c), self.bounds.min.y))
    }

    /// The height of the topmost terrain voxel of column `c`; `None` when the
    /// column is outside the world or holds no terrain. Exact, overhangs
    /// included (see the module docs).
    #[inline]
    pub fn surface(&mut self, c: IVec2) -> Option<i32> {
        if !self.has_column(c) {
            return None;
        }
        let top = self.column(c).top;
        (top >= self.bounds.min.y).then_some(top)
    }

    /// The surface changes the storage applied since `cursor` (pending edits
    /// are not in them), and moves the cursor past them.
    pub fn surface_changes(&self, cursor: &mut SurfaceCursor) -> SurfaceChanges<'w> {
        self.storage.surface_changes(cursor)
    }

    /// Writes `m` at `p`; a position outside the world is ignored (and a
    /// debug build panics: the processes never make one).
    pub fn set(&mut self, p: IVec3, m: MaterialId) {
        debug_assert!(self.bounds.contains(p), "a process wrote outside the world at {p}");
        if !self.bounds.contains(p) {
            return;
        }
        let c = IVec2::new(p.x, p.z);
        let before = self.column(c);
        self.workspace.pending.insert(p, m);
        self.workspace.edits.push(MaterialUpdate::new(p, m));
        // Marked before the walk below reads the column: its reads see `p`.
        let bit = self.column_bit(c);
        self.workspace.touched[bit / 64] |= 1 << (bit % 64);
        let span = self.span();
        let after = before.after(&[p.y], span, |y| {
            let m = self.get(IVec3::new(c.x, y, c.y));
            (self.class(m), m)
        });
        #[cfg(debug_assertions)]
        {
            let scan = Column::scan(span, |y| {
                let m = self.get(IVec3::new(c.x, y, c.y));
                (self.class(m), m)
            });
            debug_assert_eq!(after, scan, "the workspace's surface of column {c} equals a scan of it");
        }
        self.workspace.columns.insert(c, after);
    }

    /// Removes the top voxel of column `c` (at height `y`, its surface) and
    /// returns what was removed. In the open it becomes air. Under liquid the
    /// liquid fills it, and the liquid's top voxel becomes air, in this column
    /// or in the neighbour (of four) whose liquid stands highest if it stands
    /// higher and keeps some liquid: the liquid is neither made nor destroyed
    /// (see `WATER` in the module docs).
    pub fn remove_top(&mut self, c: IVec2, y: i32) -> MaterialId {
        let p = IVec3::new(c.x, y, c.y);
        let column = self.column(c);
        let removed = if column.top == y { column.material } else { self.get(p) };
        let level = self.liquid_top(c, y);
        if level <= y {
            self.set(p, MaterialId::AIR);
            return removed;
        }
        let liquid = self.get(p + IVec3::Y);
        // The liquid's top voxel that drains: the highest neighbour's, which
        // keeps some liquid after, or this column's own.
        let mut drain = (level, c);
        for n in DIRECTIONS.map(|d| c + d) {
            if let Some(Surface { top, liquid: Some(l), .. }) = self.surface_of(n)
                && l > drain.0
                && l - 1 > top.unwrap_or(self.bounds.min.y - 1)
            {
                drain = (l, n);
            }
        }
        self.set(p, liquid);
        self.set(IVec3::new(drain.1.x, drain.0, drain.1.y), MaterialId::AIR);
        removed
    }

    /// Lays `m` on top of column `c`; `false` when there is no room (the
    /// column is full to the top of the world, or the liquid it would
    /// displace has nowhere to go). Under liquid, the liquid voxel it takes
    /// the place of rises onto the liquid's top, in this column or in the
    /// neighbour (of four, holding liquid) whose liquid stands lowest if it
    /// stands lower: the liquid is neither made nor destroyed.
    pub fn lay(&mut self, c: IVec2, m: MaterialId) -> bool {
        let y = self.surface(c).map_or(self.bounds.min.y, |s| s + 1);
        if y >= self.bounds.max.y {
            return false;
        }
        let p = IVec3::new(c.x, y, c.y);
        let level = self.liquid_top(c, y - 1);
        if level < y {
            self.set(p, m);
            return true;
        }
        let ceiling = self.bounds.max.y - 1;
        let mut rise = (level < ceiling).then_some((level, c));
        for n in DIRECTIONS.map(|d| c + d) {
            if let Some(Surface { liquid: Some(l), .. }) = self.surface_of(n)
                && l < ceiling
                && rise.is_none_or(|(r, _)| l < r)
            {
                rise = Some((l, n));
            }
        }
        let Some((l, to)) = rise else { return false };
        let liquid = self.get(p);
        self.set(p, m);
        self.set(IVec3::new(to.x, l + 1, to.y), liquid);
        true
    }

    /// Removes the `n` voxels of column `c` at heights `y .. y + n`: what
    /// stands above them (terrain and liquid) sinks by `n`, and the top `n`
    /// voxels become air. Compaction's loss of volume: nothing but the `n`
    /// voxels leaves the world. Writes only the voxels that change.
    pub fn collapse(&mut self, c: IVec2, y: i32, n: i32) {
        let (floor, ceiling) = (self.bounds.min.y, self.bounds.max.y - 1);
        if n <= 0 || !self.has_column(c) || y < floor || y > ceiling {
            return;
        }
        let column = self.column(c);
        // The highest voxel that is not gas.
        let level = column.liquid.max(column.top);
        for at in y..=level {
            let from = at + n;
            let m = if from <= level { self.get(IVec3::new(c.x, from, c.y)) } else { MaterialId::AIR };
            let p = IVec3::new(c.x, at, c.y);
            if self.get(p) != m {
                self.set(p, m);
            }
        }
    }

    /// The top of the liquid resting on height `y` of column `c` (`y` when
    /// none does): the liquid run `y + 1 ..= top`.
    fn liquid_top(&mut self, c: IVec2, y: i32) -> i32 {
        let column = self.column(c);
        if column.top == y {
            return column.liquid;
        }
        // Not the surface (a caller's own height): walk the run.
        let mut top = y;
        while top + 1 < self.bounds.max.y {
            let above = self.get(IVec3::new(c.x, top + 1, c.y));
            if self.class(above) != MaterialClass::Liquid {
                break;
            }
            top += 1;
        }
        top
    }

    /// Whether the voxel above column `c`'s surface `y` is a liquid (the
    /// column is under water).
    pub fn submerged(&mut self, c: IVec2, y: i32) -> bool {
        if self.has_column(c) {
            let column = self.column(c);
            if column.top == y {
                return column.liquid > y;
            }
        }
        let above = self.get(IVec3::new(c.x, y + 1, c.y));
        y + 1 < self.bounds.max.y && self.class(above) == MaterialClass::Liquid
    }
}
