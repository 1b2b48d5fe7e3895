//! The storage's side of the surface index: enabling it, reading surfaces,
//! and keeping built columns exact as writes are applied (see the `surface`
//! module for the index itself).

use super::DeltaStorage;
use crate::base::BrickView;
use crate::coords::Aabb;
use crate::coords::brick::{BRICK_LOG2, BRICK_SIZE, BRICK_VOLUME, BrickKey, voxel_index};
use crate::material::{MaterialId, Palette};
use crate::surface::{
    Classes, Column, MaterialClass, Surface, SurfaceChange, SurfaceChanges, SurfaceCursor, SurfaceIndex, SurfaceLog,
    TILE, TILE_LOG2, Tile,
};
use glam::{IVec2, IVec3};

/// Heights a column key keeps: local heights are below 2^21.
const Y_BITS: u32 = 21;

impl DeltaStorage {
    /// Keeps a surface index of the world, with the material classes of
    /// `palette` (terrain, liquid, gas, from each material's `form`): from now
    /// on [`surface`](Self::surface) answers in two indexes, and
    /// [`surface_changes`](Self::surface_changes) says which columns' surfaces
    /// changed. Columns are built a tile at a time on first use; enabling it
    /// again with another palette starts over (the log goes on numbering, with
    /// nothing logged for the change of classes itself), with the same
    /// palette does nothing.
    pub fn enable_surfaces(&mut self, palette: &Palette) {
        let classes = Classes::of(palette);
        if self.surfaces.as_ref().is_some_and(|s| s.classes == classes) {
            return;
        }
        let start = self.surface_log_end();
        self.surfaces = Some(Box::new(SurfaceIndex::new(self.bounds(), classes, start)));
    }

    /// A cursor at the end of the surface log: a reader from here reads only
    /// the changes after now (a process restored with a reloaded world).
    pub fn surface_cursor(&self) -> SurfaceCursor {
        SurfaceCursor(self.surface_log_end())
    }

    /// Where the surface log's numbering stands.
    fn surface_log_end(&self) -> u64 {
        self.surfaces.as_deref().map_or(self.surface_log_next, |s| s.log.end())
    }

    /// True while a surface index is kept with the classes of `palette`.
    pub fn surfaces_indexed_with(&self, palette: &Palette) -> bool {
        self.surfaces.as_ref().is_some_and(|s| s.classes.match_palette(palette))
    }

    /// Gives `other` a surface index of the same classes as this one's, if
    /// this storage keeps one (a replica replacing its world keeps its index).
    #[cfg(feature = "replication")]
    pub(crate) fn carry_surfaces_to(&self, other: &mut DeltaStorage) {
        if let Some(index) = &self.surfaces {
            let start = index.log.end();
            other.surfaces = Some(Box::new(SurfaceIndex::new(other.bounds(), index.classes.clone(), start)));
        }
    }

    /// Drops the surface index (and its memory).
    pub fn disable_surfaces(&mut self) {
        self.surface_log_next = self.surface_log_end();
        self.surfaces = None;
    }

    /// True while a surface index is kept.
    pub fn surfaces_enabled(&self) -> bool {
        self.surfaces.is_some()
    }

    /// The surface of column `(x, z)` (world coordinates): its topmost terrain
    /// voxel and the liquid resting on it. `None` outside the world, or when
    /// no surface index is kept ([`enable_surfaces`](Self::enable_surfaces)).
    ///
    /// Exact, however the world was written: the index is updated as writes
    /// are applied. The first read in a tile of `16 x 16` columns builds the
    /// tile (a region read of its voxels); every other costs two indexes.
    ///
    /// ```
    /// use bevy_delta_overlay::{DeltaConfig, DeltaStorage, Palette, WorldGen, materials};
    /// use glam::IVec3;
    /// let generator = WorldGen { size: IVec3::new(64, 64, 64), sea_level: 0, ..Default::default() };
    /// let mut world = DeltaStorage::new(generator.build()?, DeltaConfig::default());
    /// world.enable_surfaces(&Palette::shipped());
    /// let before = world.surface(10, 20).unwrap().top.unwrap();
    /// world.update(IVec3::new(10, before + 3, 20), materials::BASALT)?; // a floating rock
    /// assert_eq!(world.surface(10, 20).unwrap().top, Some(before + 3));
    /// # Ok::<(), bevy_delta_overlay::VoxelError>(())
    /// ```
    pub fn surface(&self, x: i32, z: i32) -> Option<Surface> {
        let index = self.surfaces.as_deref()?;
        let b = self.bounds();
        if x < b.min.x || x >= b.max.x || z < b.min.z || z >= b.max.z {
            return None;
        }
        let (slot, i) = index.locate(x, z);
        let column = index.tile(slot, || self.build_tile(index, slot)).0[i];
        Some(Surface::of(column, b.min.y))
    }

    /// The surface index, for the processes' reads.
    #[inline]
    #[cfg_attr(not(feature = "geology"), allow(dead_code))]
    pub(crate) fn surface_index(&self) -> Option<&SurfaceIndex> {
        self.surfaces.as_deref()
    }

    // A paged world's (feature `paging`) only.
    #[cfg(feature = "paging")]
    /// The surface index's heap bytes (0 without one).
    pub(crate) fn surface_bytes(&self) -> usize {
        self.surfaces.as_deref().map_or(0, SurfaceIndex::bytes)
    }

    /// Tile `slot` of `index` (this storage's), built on first use.
    #[inline]
    #[cfg_attr(not(feature = "geology"), allow(dead_code))]
    pub(crate) fn surface_tile<'a>(&'a self, index: &'a SurfaceIndex, slot: usize) -> &'a Tile {
        index.tile(slot, || self.build_tile(index, slot))
    }

    /// The surface changes since `cursor` (and moves it past them): columns
    /// whose top, liquid or top material changed, in order, every change since
    /// the index was kept (a write builds its column's tile first). The log
    /// keeps the last 65,536 changes, and a reader that fell further behind is
    /// told how many it missed. Without a surface index: none, and a cursor
    /// behind the last change logged before the index was dropped is told
    /// what it missed.
    pub fn surface_changes(&self, cursor: &mut SurfaceCursor) -> SurfaceChanges<'_> {
        match self.surfaces.as_deref() {
            Some(index) => index.log.since(cursor),
            None => SurfaceLog::nothing_since(cursor, self.surface_log_next),
        }
    }

    /// Tiles (`16 x 16` columns) of the surface index built so far.
    pub fn surface_tiles(&self) -> usize {
        self.surfaces.as_deref().map_or(0, SurfaceIndex::built_tiles)
    }

    /// Builds tile `slot` from the world as it is now (see [`build_tile`]).
    fn build_tile(&self, index: &SurfaceIndex, slot: usize) -> Tile {
        build_tile(self, index, self.bounds(), slot)
    }

    /// The brick at local corner `q` (in the world) with its deltas applied:
    /// the base's view when no layer holds it, else a copy in `buffer`.
    fn brick_view<'a>(&'a self, q: IVec3, buffer: &'a mut [MaterialId; BRICK_VOLUME]) -> BrickView<'a> {
        let (key, _) = BrickKey::split(q);
        let base = self.base.brick_local(q);
        let stack = self.overlay.stack(key);
        if stack.is_empty() {
            return base;
        }
        match base.voxels() {
            Some(v) => buffer.copy_from_slice(v),
            None => buffer.fill(base.get(0)),
        }
        for d in stack.visible() {
            buffer[usize::from(d.local)] = d.material;
        }
        BrickView::Voxels(buffer)
    }

    /// Builds the unbuilt tiles of the columns of local positions `written`
    /// from the world as it is, before those writes are applied: every write
    /// then lands in a built tile, so the log lists every change of a surface
    /// whatever was read before (the processes' behaviour does not depend on
    /// which tiles were built).
    pub(super) fn build_surface_tiles_of(&self, written: impl Iterator<Item = IVec3>) {
        let Some(index) = self.surfaces.as_deref() else { return };
        let b = self.bounds();
        for q in written {
            let slot = index.locate(b.min.x + q.x, b.min.z + q.z).0;
            if index.built(slot).is_none() {
                index.tile(slot, || self.build_tile(index, slot));
            }
        }
    }

    /// Notes a change at local position `q` for the surface index (its tile
    /// is built: [`build_surface_tiles_of`](Self::build_surface_tiles_of)).
    #[inline]
    pub(super) fn note_surface(&mut self, q: IVec3) {
        let Some(index) = self.surfaces.as_deref() else { return };
        let b = self.bounds();
        debug_assert!(
            index.built(index.locate(b.min.x + q.x, b.min.z + q.z).0).is_some(),
            "a write to an unbuilt tile"
        );
        self.surface_dirty.push((q.x as u64) << (2 * Y_BITS) | (q.z as u64) << Y_BITS | q.y as u64);
    }

    /// Brings every column noted since the last call up to date, reading the
    /// world as it is now, and logs the columns whose surface changed.
    pub(super) fn settle_surfaces(&mut self) {
        if self.surface_dirty.is_empty() {
            return;
        }
        let (Some(mut index), mut dirty) = (self.surfaces.take(), std::mem::take(&mut self.surface_dirty)) else {
            return;
        };
        dirty.sort_unstable();
        dirty.dedup();
        let (span, origin) = (index.span(), self.bounds().min);
        let mut heights = Vec::new();
        let mut start = 0;
        while start < dirty.len() {
            let column = dirty[start] >> Y_BITS;
            let end = start + dirty[start..].partition_point(|k| k >> Y_BITS == column);
            heights.clear();
            heights.extend(dirty[start..end].iter().map(|k| origin.y + (k & ((1 << Y_BITS) - 1)) as i32));
            start = end;
            let c = IVec2::new(origin.x, origin.z)
                + IVec2::new((column >> Y_BITS) as i32, (column & ((1 << Y_BITS) - 1)) as i32);
            let (slot, i) = index.locate(c.x, c.y);
            let Some(old) = index.built(slot).map(|t| t.0[i]) else { continue };
            let classes = &index.classes;
            let new = old.after(&heights, span, |y| {
                let m = self.read_local(IVec3::new(c.x, y, c.y) - origin);
                (classes.get(m), m)
            });
            #[cfg(debug_assertions)]
            debug_assert_eq!(
                new,
                Column::scan(span, |y| {
                    let m = self.read_local(IVec3::new(c.x, y, c.y) - origin);
                    (index.classes.get(m), m)
                }),
                "EXACT: column {c} after its changes equals a scan of it"
            );
            if new != old {
                if let Some(tile) = index.built_mut(slot) {
                    tile.0[i] = new;
                }
                let change = SurfaceChange {
                    column: c,
                    before: Surface::of(old, span.bottom).top,
                    after: Surface::of(new, span.bottom).top,
                };
                index.log.push(change);
            }
        }
        dirty.clear();
        self.surface_dirty = dirty;
        self.surfaces = Some(index);
    }
}

/// Where a tile's bricks are read from: the storage, or a snapshot of it.
pub(super) trait BrickSource {
    /// The brick at local corner `q` (in the world) with its deltas applied:
    /// a view of the base's brick when no delta falls in it, else a copy in
    /// `buffer`.
    fn brick_view<'a>(&'a self, q: IVec3, buffer: &'a mut [MaterialId; BRICK_VOLUME]) -> BrickView<'a>;
}

impl BrickSource for DeltaStorage {
    fn brick_view<'a>(&'a self, q: IVec3, buffer: &'a mut [MaterialId; BRICK_VOLUME]) -> BrickView<'a> {
        DeltaStorage::brick_view(self, q, buffer)
    }
}

/// Builds tile `slot` of `index` (over the world `world`) from `source`, brick by brick, from the top of the world down: a
/// uniform brick settles its sixteen voxels of every column at once, a
/// dense one (with its deltas applied) is read voxel by voxel, and the walk
/// stops once every column has found its terrain.
pub(super) fn build_tile(source: &impl BrickSource, index: &SurfaceIndex, world: Aabb, slot: usize) -> Tile {
    let span = index.span();
    let area = index.tile_box(slot);
    let origin = world.min;
    let blank = Column { top: span.bottom - 1, liquid: span.bottom - 1, material: MaterialId::AIR };
    let mut tile = Tile(Box::new([blank; (TILE * TILE) as usize]));
    // Per column: found its top, and the top of the liquid run just above.
    let mut found = [false; (TILE * TILE) as usize];
    let mut run: [Option<i32>; (TILE * TILE) as usize] = [None; (TILE * TILE) as usize];
    let size = (area.max - area.min).as_uvec3();
    let mut left = (size.x * size.z) as usize;
    let mut buffer = Box::new([MaterialId::AIR; BRICK_VOLUME]);
    let corner = area.min - origin;
    for by in (0..=(world.size().y - 1) >> BRICK_LOG2).rev() {
        let q = IVec3::new(corner.x, by << BRICK_LOG2, corner.z);
        let view = source.brick_view(q, &mut buffer);
        let (y0, y1) = (origin.y + q.y, (origin.y + q.y + BRICK_SIZE).min(area.max.y));
        for i in 0..(TILE * TILE) as usize {
            let (x, z) = (i as u32 & (TILE as u32 - 1), i as u32 >> TILE_LOG2);
            if found[i] || x >= size.x || z >= size.z {
                continue;
            }
            for y in (y0..y1).rev() {
                let m = view.get(voxel_index(x as usize, (y - y0) as usize, z as usize));
                match index.classes.get(m) {
                    MaterialClass::Gas => run[i] = None,
                    MaterialClass::Liquid => run[i] = run[i].or(Some(y)),
                    MaterialClass::Terrain => {
                        tile.0[i] = Column { top: y, liquid: run[i].unwrap_or(y), material: m };
                        found[i] = true;
                        left -= 1;
                        break;
                    }
                }
                if matches!(view, BrickView::Uniform(_)) && !found[i] {
                    // The whole brick is this one class: its lowest voxel
                    // leaves the column as its highest did.
                    break;
                }
            }
        }
        if left == 0 {
            break;
        }
    }
    // Columns without terrain: liquid from the floor, if the run reaches it.
    for i in 0..(TILE * TILE) as usize {
        if !found[i] {
            tile.0[i].liquid = run[i].unwrap_or(span.bottom - 1);
        }
    }
    tile
}
