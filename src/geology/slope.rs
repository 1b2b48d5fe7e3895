//! The slope rule thermal erosion and deposition share, in whole voxels.
//!
//! A loose top at height `h` is unstable when, in one of the eight
//! directions, a column `k` steps away (`1 <= k <= reach`, with no column as
//! high as `h` between) lies lower by more than the material's
//! [`Repose::allowed`] drop: `floor(slope * run) + 1`, the run being `k`
//! columns along an axis and `k * sqrt(2)` along a diagonal, and `slope` the
//! tangent of the angle of repose. The `+ 1` is the grid's resolution (a
//! staircase at exactly the angle, its heights rounded down, drops up to
//! that much); measured over runs of up to `reach` columns it resolves the
//! angle to `atan(slope + 1 / reach)` at worst, so angles under 45° mean
//! something: at the default reach of 4 ([`DEFAULT_REACH`]), a tower of 34°
//! sediment relaxes to flanks of 36° to 37° along the axes and 35° along the
//! diagonals (`tests/geology_slopes.rs`; a reach of 8 gives 34° to 36° and 32°
//! to 33° for twice the reads: a check reads up to `8 * reach` columns).
//!
//! An unstable top sheds one voxel at a time ([`shed`]) towards a direction
//! picked at random in proportion to its excess drop (no direction is
//! favoured on a tie), rolling down that direction to the first column at
//! least two voxels lower: it always lands lower than it was, so shedding
//! ends.
//!
//! # Invariants
//!
//! - `DETERMINISTIC`: the allowed drops are integers, computed once per frame
//!   from the palette's slopes (themselves from IEEE-exact arithmetic); the
//!   rule compares integers only.
//! - `EXACT`: an [`Around`] is the neighbourhood as the world has it while
//!   only [`shed`] writes: it updates its own record of every column it lays
//!   on.

use super::queue::ColumnQueue;
use super::rng::Rng;
use super::terrain::{DIRECTIONS8, Terrain};
use crate::material::{Form, MaterialId, MaterialProperties};
use crate::surface::Surface;
use glam::IVec2;

/// The farthest a slope is measured, in columns: `reach` settings above it
/// count as this.
pub const MAX_REACH: i32 = 8;

/// The processes' default reach: the angle within 3° of the material's for
/// half the reads of [`MAX_REACH`] (the slope checks are most of thermal
/// erosion's time).
pub const DEFAULT_REACH: i32 = 4;

const REACH: usize = MAX_REACH as usize;

/// The steepest drops a loose material rests at, over runs of `1..=MAX_REACH`
/// steps along an axis (`[0]`) and a diagonal (`[1]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Repose([[i32; REACH]; 2]);

impl Repose {
    /// Every drop rests: a vertical angle, or a material that is not loose.
    pub const VERTICAL: Self = Self([[i32::MAX; REACH]; 2]);

    /// The drops for a slope (rise over run): `floor(slope * run) + 1`. NaN
    /// and negative slopes lie flat (one voxel a step), infinite ones stand.
    pub fn from_slope(slope: f32) -> Self {
        let slope = if slope >= 0.0 { f64::from(slope) } else { 0.0 };
        let mut out = Self::VERTICAL;
        for k in 1..=REACH {
            for (d, run) in [1.0, std::f64::consts::SQRT_2].into_iter().enumerate() {
                let drop = slope * run * k as f64;
                // Truncation is floor for a drop >= 0: no library call.
                out.0[d][k - 1] = if drop < 1e9 { drop as i32 + 1 } else { i32::MAX };
            }
        }
        out
    }

    /// The steepest drop over `k` steps (`1..=MAX_REACH`) in direction `d`
    /// of [`DIRECTIONS8`] that rests.
    #[inline]
    pub fn allowed(&self, d: usize, k: usize) -> i32 {
        self.0[usize::from(d >= 4)][k - 1]
    }

    /// The gentler of two, drop by drop.
    pub fn min(self, other: Self) -> Self {
        let mut out = self;
        for (row, o) in out.0.iter_mut().zip(other.0) {
            for (a, b) in row.iter_mut().zip(o) {
                *a = (*a).min(b);
            }
        }
        out
    }
}

/// The palette's loose materials' [`Repose`], by material id (not loose:
/// [`Repose::VERTICAL`]), and the gentlest of them: built once a frame, into
/// a buffer the process keeps.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReposeTable {
    by_id: Vec<Repose>,
    /// The gentlest loose material's drops.
    pub least: Option<Repose>,
}

impl ReposeTable {
    /// Rebuilds the table for `terrain`'s palette, each loose material resting
    /// at the slope `slope` gives it.
    pub fn refresh(&mut self, terrain: &Terrain<'_>, slope: impl Fn(&MaterialProperties) -> f32) {
        let palette = terrain.palette();
        self.by_id.clear();
        self.least = None;
        for e in palette.entries() {
            let props = palette.properties(MaterialId(e.id));
            let at = usize::from(e.id);
            if self.by_id.len() <= at {
                self.by_id.resize(at + 1, Repose::VERTICAL);
            }
            if props.form == Form::Loose {
                let r = Repose::from_slope(slope(props));
                self.by_id[at] = r;
                self.least = Some(self.least.map_or(r, |l| l.min(r)));
            }
        }
    }

    /// The drops material `m` rests at (vertical when it is not loose).
    #[inline]
    pub fn of(&self, m: MaterialId) -> Repose {
        self.by_id.get(usize::from(m.0)).copied().unwrap_or(Repose::VERTICAL)
    }
}

/// The surfaces around a column, nearest first in each of the eight
/// directions, up to the reach or the world's edge.
pub(crate) struct Around {
    centre: IVec2,
    len: [usize; 8],
    columns: [[Surface; REACH]; 8],
    /// The height that stands for "no terrain".
    floor: i32,
}

impl Around {
    /// Reads the columns within `reach` of `c`; with `below`, each direction
    /// only up to the first column as high as it (what [`shed`] needs from a
    /// top at `below`, or lower: the rule looks no further), which spares
    /// most reads off a slope's downhill side.
    pub fn read(terrain: &mut Terrain<'_>, c: IVec2, reach: i32, below: Option<i32>) -> Self {
        let reach = reach.clamp(1, MAX_REACH);
        let none = Surface { top: None, material: MaterialId::AIR, liquid: None };
        let mut around =
            Self { centre: c, len: [0; 8], columns: [[none; REACH]; 8], floor: terrain.bounds().min.y - 1 };
        for (d, dir) in DIRECTIONS8.into_iter().enumerate() {
            for k in 1..=reach {
                let Some(s) = terrain.surface_of(c + dir * k) else { break };
                if below.is_some_and(|h| s.top.unwrap_or(around.floor) >= h) {
                    break;
                }
                around.columns[d][around.len[d]] = s;
                around.len[d] += 1;
            }
        }
        around
    }

    /// The height of column `k` (from 1) in direction `d`.
    #[inline]
    fn height(&self, d: usize, k: usize) -> i32 {
        self.columns[d][k - 1].top.unwrap_or(self.floor)
    }

    /// How far the drop from height `h` exceeds the allowed one in direction
    /// `d`, at most (0: it rests that way), and the first column at least two
    /// lower, where a voxel shed that way lands.
    fn excess(&self, d: usize, h: i32, repose: &Repose) -> (i32, usize) {
        let (mut most, mut land) = (0, 0);
        for k in 1..=self.len[d] {
            let drop = h - self.height(d, k);
            if drop <= 0 {
                break;
            }
            if land == 0 && drop >= 2 {
                land = k;
            }
            most = most.max(drop.saturating_sub(repose.allowed(d, k)));
        }
        (most, land)
    }

    /// Whether a top at `h` resting at `repose` is unstable here.
    pub fn unstable(&self, h: i32, repose: &Repose) -> bool {
        (0..8).any(|d| self.excess(d, h, repose).0 > 0)
    }

    /// Where a voxel shed from a top at `h` goes, and which direction: a
    /// direction picked in proportion to the excess drops; `None` when the
    /// top rests.
    fn target(&self, h: i32, repose: &Repose, rng: &mut Rng) -> Option<(usize, usize)> {
        let mut excess = [(0, 0); 8];
        let mut total = 0;
        for (d, e) in excess.iter_mut().enumerate() {
            *e = self.excess(d, h, repose);
            total += e.0.min(1 << 20);
        }
        if total == 0 {
            return None;
        }
        let mut pick = rng.range(0, total);
        for (d, (e, land)) in excess.into_iter().enumerate() {
            let e = e.min(1 << 20);
            if pick < e {
                return Some((d, land));
            }
            pick -= e;
        }
        None
    }

    /// Queues, with `mark`, the neighbours that may slide onto the centre
    /// (whose top is `h`) on a slope steeper than `repose`: their loose top
    /// stands more than the allowed drop above `h`, and (when `wet`) under
    /// liquid. A filter before their own check, which reads more.
    pub fn queue_uphill(&self, terrain: &Terrain<'_>, h: i32, repose: &Repose, wet: bool, queue: UphillQueue<'_>) {
        for (d, dir) in DIRECTIONS8.into_iter().enumerate() {
            for k in 1..=self.len[d] {
                let s = self.columns[d][k - 1];
                let Some(hn) = s.top else { continue };
                if hn - h > repose.allowed(d, k)
                    && terrain.properties(s.material).form == Form::Loose
                    && (!wet || s.liquid.is_some())
                {
                    queue.queue.push(self.centre + dir * k as i32, queue.mark, queue.cap);
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

/// Sheds the top of column `c` while it is unstable: at most `max` voxels,
/// each to the column it rolls to (see the module docs). `repose` gives the
/// drops the top rests at, `None` when it does not move (not loose, not under
/// water for deposition). Returns the voxels moved.
pub(crate) fn shed(
    terrain: &mut Terrain<'_>,
    around: &mut Around,
    max: u32,
    rng: &mut Rng,
    repose: impl Fn(&Surface) -> Option<Repose>,
) -> u32 {
    let c = around.centre;
    let mut moved = 0;
    while moved < max {
        let Some(surface) = terrain.surface_of(c) else { break };
        let (Some(h), Some(r)) = (surface.top, repose(&surface)) else { break };
        let Some((d, k)) = around.target(h, &r, rng) else { break };
        let to = c + DIRECTIONS8[d] * k as i32;
        let m = terrain.remove_top(c, h);
        if !terrain.lay(to, m) {
            // No room for the liquid it would displace: put it back.
            terrain.lay(c, m);
            break;
        }
        // EXACT: the landing column's record follows the write.
        around.columns[d][k - 1] = terrain.surface_of(to).unwrap_or(around.columns[d][k - 1]);
        moved += 1;
    }
    moved
}
