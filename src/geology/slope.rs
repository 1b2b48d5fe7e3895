//! The slope rule thermal erosion and deposition share: a loose top at height
//! `h` is unstable when a column `d` away (`1 <= d <= reach`, in one of the
//! four directions, with no column as high as `h` between) lies lower by more
//! than `slope * d + 1` voxels, `slope` being the tangent of the angle of
//! repose. The `+ 1` is the grid's resolution: a one-voxel step is 45° over
//! one column whatever the material.
//!
//! A check reads the neighbourhood once ([`Around`]): where the top slides,
//! and which neighbours may now slide onto it, come from the same reads.

use super::queue::ColumnQueue;
use super::terrain::{DIRECTIONS, Terrain};
use crate::material::Form;
use crate::material::MaterialId;
use crate::surface::Surface;
use glam::IVec2;

/// The farthest a slope is measured, in columns: `reach` settings above it
/// count as this.
pub const MAX_REACH: i32 = 8;

/// The surfaces around a column, nearest first in each direction, up to the
/// reach or the world's edge.
pub(crate) struct Around {
    centre: IVec2,
    len: [usize; 4],
    columns: [[Surface; MAX_REACH as usize]; 4],
    /// The height that stands for "no terrain".
    floor: i32,
}

impl Around {
    /// Reads the columns within `reach` of `c`.
    pub fn read(terrain: &mut Terrain<'_>, c: IVec2, reach: i32) -> Self {
        let reach = reach.clamp(1, MAX_REACH);
        let none = Surface { top: None, material: MaterialId::AIR, liquid: None };
        let mut around = Self {
            centre: c,
            len: [0; 4],
            columns: [[none; MAX_REACH as usize]; 4],
            floor: terrain.bounds().min.y - 1,
        };
        for (d, dir) in DIRECTIONS.into_iter().enumerate() {
            for k in 1..=reach {
                let Some(s) = terrain.surface_of(c + dir * k) else { break };
                around.columns[d][around.len[d]] = s;
                around.len[d] += 1;
            }
        }
        around
    }

    /// Where a voxel on top of the centre, at height `h`, slides on a slope
    /// steeper than `slope`: the nearest column where the drop exceeds the
    /// rule's, in the direction where it exceeds it most (the first direction
    /// on a tie). It lands lower than it was, so slides end. The same answer
    /// as [`slide_target`], from the reads made.
    pub fn slide_target(&self, h: i32, slope: f32) -> Option<IVec2> {
        let mut best: Option<(f32, IVec2)> = None;
        for (d, dir) in DIRECTIONS.into_iter().enumerate() {
            for (k, s) in self.columns[d][..self.len[d]].iter().enumerate() {
                let k = k as i32 + 1;
                let hn = s.top.unwrap_or(self.floor);
                if hn >= h {
                    break;
                }
                let excess = (h - hn) as f32 - (slope * k as f32 + 1.0);
                if excess > 0.0 {
                    if best.is_none_or(|(e, _)| excess > e) {
                        best = Some((excess, self.centre + dir * k));
                    }
                    break;
                }
            }
        }
        best.map(|(_, to)| to)
    }

    /// Queues, with `mark`, the neighbours that may slide onto the centre
    /// (whose top is `h`) on a slope steeper than `slope`: their loose top
    /// stands more than `slope * d + 1` above `h`, `d` columns away, and (when
    /// `wet`) under liquid. A filter before their own check, which reads more.
    pub fn queue_uphill(&self, terrain: &Terrain<'_>, h: i32, slope: f32, wet: bool, queue: UphillQueue<'_>) {
        for (d, dir) in DIRECTIONS.into_iter().enumerate() {
            for (k, s) in self.columns[d][..self.len[d]].iter().enumerate() {
                let k = k as i32 + 1;
                let Some(hn) = s.top else { continue };
                if (hn - h) as f32 > slope * k as f32 + 1.0
                    && terrain.properties(s.material).form == Form::Loose
                    && (!wet || s.liquid.is_some())
                {
                    queue.queue.push(self.centre + dir * k, queue.mark, queue.cap);
                }
            }
        }
    }
}

/// Where [`Around::queue_uphill`] queues, with what mark, up to what cap.
pub(crate) struct UphillQueue<'q> {
    pub queue: &'q mut ColumnQueue,
    pub mark: u8,
    pub cap: usize,
}

/// Where a voxel on top of column `c` (at height `h`) slides on a slope
/// steeper than `slope`, by the rule above: [`Around::slide_target`], reading
/// only up to the first column as high as `h` in each direction.
pub(crate) fn slide_target(terrain: &mut Terrain<'_>, c: IVec2, h: i32, slope: f32, reach: i32) -> Option<IVec2> {
    let mut best: Option<(f32, IVec2)> = None;
    let floor = terrain.bounds().min.y - 1;
    for dir in DIRECTIONS {
        for k in 1..=reach.clamp(1, MAX_REACH) {
            let n = c + dir * k;
            if !terrain.has_column(n) {
                break;
            }
            let hn = terrain.surface(n).unwrap_or(floor);
            if hn >= h {
                break;
            }
            let excess = (h - hn) as f32 - (slope * k as f32 + 1.0);
            if excess > 0.0 {
                if best.is_none_or(|(e, _)| excess > e) {
                    best = Some((excess, n));
                }
                break;
            }
        }
    }
    best.map(|(_, to)| to)
}

/// The gentlest angle of repose of the palette's loose materials, as a slope
/// (rise over run); infinite when none is loose.
pub(crate) fn least_repose_slope(terrain: &Terrain<'_>) -> f32 {
    let palette = terrain.palette();
    let loose = palette.entries().iter().map(|e| palette.properties(MaterialId(e.id)));
    loose.filter(|p| p.form == Form::Loose).map(|p| p.repose_slope).fold(f32::INFINITY, f32::min)
}
