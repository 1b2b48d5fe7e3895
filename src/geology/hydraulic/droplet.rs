//! One droplet's run: its steps, what it takes and lays at each, and where
//! its load ends. The physics is the module's (see `hydraulic.rs`); this
//! file is its voxel bookkeeping.
//!
//! # Invariants
//!
//! - `CONSERVATION` (the module's): every voxel taken goes into the
//!   droplet's [`Bag`]; [`Rain::droplet`] returns with the bag empty.
//! - `CORNERS`: the corners a step reuses were read after the last edit: a
//!   step that edited the terrain reads the next corners afresh.
//! - `FEW_READS`: a step reads the surfaces of the four corners and of the
//!   columns it takes a whole voxel from, not of the brush's every column:
//!   the brush erodes at the hardness of the rock under the droplet (reading
//!   25 columns a step made the model too slow for a frame).

use super::brush::{Brush, random_heading};
use super::flow::{Bag, ColumnMemory, FlowMemory, OWED_CAP};
use super::{HydraulicLedger, HydraulicSettings, HydraulicStats};
use crate::geology::rng::Rng;
use crate::geology::terrain::Terrain;
use crate::material::{Form, MaterialId};
use crate::surface::Surface;
use glam::{IVec2, Vec2};

/// A frame's rain: the process's state, borrowed for its droplets.
pub(super) struct Rain<'a, 'w> {
    /// The world.
    pub(super) terrain: &'a mut Terrain<'w>,
    /// The settings.
    pub(super) s: &'a HydraulicSettings,
    /// The brush of `s.brush_radius`.
    pub(super) brush: &'a Brush,
    /// The columns' flow and fractions.
    pub(super) memory: &'a mut FlowMemory,
    /// The droplets' random numbers.
    pub(super) rng: &'a mut Rng,
    /// The counts.
    pub(super) stats: &'a mut HydraulicStats,
    /// The counts per material id.
    pub(super) ledger: &'a mut Vec<HydraulicLedger>,
    /// The columns a brush brought to a whole voxel (reused).
    pub(super) crossed: &'a mut Vec<IVec2>,
}

/// A droplet in flight.
struct Droplet {
    /// Where it is (column centres at `+0.5`).
    pos: Vec2,
    /// Its heading, a unit vector (zero before the first step).
    dir: Vec2,
    speed: f32,
    water: f32,
    /// What it carries, in voxels, continuous: what its capacity sees.
    load: f32,
    /// The whole voxels it carries.
    bag: Bag,
}

impl Rain<'_, '_> {
    /// Runs a droplet from column `start` to its end: dried up, out of steps,
    /// settled in standing water or over the edge of the world.
    pub(super) fn droplet(&mut self, start: IVec2) {
        let s = self.s;
        let before = self.terrain.edit_count();
        let mut d = Droplet {
            pos: start.as_vec2() + Vec2::splat(0.5),
            dir: Vec2::ZERO,
            speed: 1.0,
            water: 1.0,
            load: 0.0,
            bag: Bag::default(),
        };
        let (mut dry, mut wet) = (0u32, 0u32);
        let mut last;
        // The corners read last: the next step's corners share columns with them.
        let mut known = Corners::NONE;
        loop {
            let cell = floor(d.pos);
            last = cell;
            let here = Corners::around(self.terrain, self.memory, d.pos, &known);
            // `cell` is one of the corners around `pos`, and inside the world.
            let Some(Some(surface)) = here.find(cell) else { break };
            let Some(top) = surface.top else { break };
            let submerged = surface.liquid.is_some();
            let steps = if submerged { (&mut wet, s.water_steps) } else { (&mut dry, s.max_steps) };
            if *steps.0 >= steps.1 {
                break;
            }
            *steps.0 += 1;
            // A column outside the world or without terrain is as high as this one.
            let level = top as f32 + self.memory.get(cell).owed;
            let (height, grad) = here.height_and_gradient(d.pos, level);
            let flow = if submerged { ColumnMemory::default() } else { self.memory.get(cell) };
            let hardness = self.terrain.properties(surface.material).hardness;
            self.steer(&mut d, grad, flow);
            let next = d.pos + d.dir;
            if !self.terrain.has_column(floor(next)) {
                // Over the edge of the world, load and all.
                self.carry_out(&mut d);
                break;
            }
            let ahead = Corners::around(self.terrain, self.memory, next, &here);
            let (next_height, _) = ahead.height_and_gradient(next, level);
            let dh = next_height - height;
            let edits = self.terrain.edit_count();
            // In standing water a droplet carries nothing: it lays its load.
            let capacity = if submerged { 0.0 } else { (-dh).max(s.min_slope) * d.speed * d.water * s.capacity };
            if !submerged {
                self.memory.add_flow(cell, d.water, d.dir, s.memory_columns);
            }
            self.exchange(&mut d, (&here, cell), (dh, capacity), (flow.discharge, hardness));
            known = if self.terrain.edit_count() == edits { ahead } else { Corners::NONE };
            d.speed = (d.speed * d.speed - dh * s.gravity).max(0.0).sqrt();
            d.water *= 1.0 - s.evaporation;
            d.pos = next;
        }
        // Dried up, settled or ran out of steps: the load is laid where it is.
        self.settle(&mut d, last);
        debug_assert_eq!(d.bag.count(), 0, "CONSERVATION: a droplet ends with an empty bag");
        self.stats.edits += (self.terrain.edit_count() - before) as u64;
    }

    /// Turns the droplet: its inertia, the downhill gradient and the
    /// remembered flow's momentum; a random heading on a flat.
    fn steer(&mut self, d: &mut Droplet, grad: Vec2, flow: ColumnMemory) {
        let s = self.s;
        let pull = flow.momentum / (flow.discharge + 1.0) * s.flow_steering;
        d.dir = d.dir * s.inertia + (pull - grad) * (1.0 - s.inertia);
        let len = d.dir.length();
        if len.is_nan() || len <= 1e-6 {
            d.dir = random_heading(self.rng);
        } else {
            d.dir /= len;
        }
    }

    /// What a step over `cell` leaves or takes, given the drop `dh` to the
    /// next position, the droplet's `capacity`, the column's remembered
    /// `discharge` and its top's `hardness`.
    fn exchange(
        &mut self,
        d: &mut Droplet,
        (here, cell): (&Corners, IVec2),
        (dh, capacity): (f32, f32),
        (discharge, hardness): (f32, f32),
    ) {
        let s = self.s;
        if dh > 0.0 {
            // Uphill: fill the pit behind, at most what it takes.
            let amount = dh.min(d.load);
            d.load -= amount;
            for (c, w) in here.weights(d.pos) {
                self.give(d, c, amount * w);
            }
        } else if d.load > capacity {
            let amount = (d.load - capacity) * s.deposit_rate;
            d.load -= amount;
            self.spread(d, cell, amount);
        } else {
            let boost = 1.0 + s.flow_erosion * discharge / (discharge + s.flow_half.max(1e-3));
            let amount = ((capacity - d.load) * s.erode_rate * boost).min(-dh);
            d.load += self.erode(d, cell, amount * (1.0 - hardness.clamp(0.0, 1.0)));
        }
    }

    /// The share of the brush around `centre` inside the world.
    fn inside(&self, centre: IVec2) -> f32 {
        let r = IVec2::splat(self.brush.radius() as i32);
        if self.terrain.has_column(centre - r) && self.terrain.has_column(centre + r) {
            return 1.0;
        }
        self.brush.around(centre).filter(|t| self.terrain.has_column(t.0)).map(|t| t.1).sum()
    }

    /// Lays `amount` over the brush around `centre` (the columns inside the
    /// world, renormalised): owed to each column, and the whole voxels owed
    /// laid from the bag.
    fn spread(&mut self, d: &mut Droplet, centre: IVec2, amount: f32) {
        let inside = self.inside(centre);
        if amount <= 0.0 || inside <= 0.0 {
            return;
        }
        let terrain = &*self.terrain;
        let brush = (centre, self.brush.taps());
        self.memory.owe_over(brush, amount / inside, self.s.memory_columns, |c| terrain.has_column(c), self.crossed);
        for k in 0..self.crossed.len() {
            let c = self.crossed[k];
            self.lay_owed(d, c);
        }
    }

    /// Owes column `c` `amount` more, and lays the whole voxels it is owed
    /// from the bag (`OWED`).
    fn give(&mut self, d: &mut Droplet, c: IVec2, amount: f32) {
        if amount <= 0.0 {
            return;
        }
        let owed = self.memory.owed_mut(c, self.s.memory_columns);
        *owed = (*owed + amount).min(OWED_CAP);
        self.lay_owed(d, c);
    }

    /// Lays on column `c` the whole voxels it is owed, as far as the bag
    /// holds them.
    fn lay_owed(&mut self, d: &mut Droplet, c: IVec2) {
        let owed = self.memory.owed_mut(c, self.s.memory_columns);
        let n = (owed.max(0.0) as u32).min(d.bag.count());
        *owed -= n as f32;
        for _ in 0..n {
            let Some(material) = d.bag.take() else { break };
            self.lay(c, material);
        }
    }

    /// Erodes `amount` (already scaled by the hardness of the rock under
    /// the droplet, `FEW_READS`) over the brush around `centre`; takes the
    /// whole voxels owed. Returns what it took, continuous (the droplet's
    /// new load).
    fn erode(&mut self, d: &mut Droplet, centre: IVec2, amount: f32) -> f32 {
        let inside = self.inside(centre);
        if amount <= 0.0 || inside <= 0.0 {
            return 0.0;
        }
        let terrain = &*self.terrain;
        let brush = (centre, self.brush.taps());
        self.memory.owe_over(brush, -amount / inside, self.s.memory_columns, |c| terrain.has_column(c), self.crossed);
        for k in 0..self.crossed.len() {
            let c = self.crossed[k];
            let n = (-self.memory.owed(c)).max(0.0) as u32;
            if n > 0 {
                let got = self.take(d, c, n);
                *self.memory.owed_mut(c, self.s.memory_columns) += got as f32;
            }
        }
        amount
    }

    /// Takes up to `n` voxels off column `c` into the bag; stops at a top
    /// that never erodes or that the bag has no room for. Returns how many.
    fn take(&mut self, d: &mut Droplet, c: IVec2, n: u32) -> u32 {
        for i in 0..n {
            let Some(Surface { top: Some(y), material, .. }) = self.terrain.surface_of(c) else { return i };
            let p = self.terrain.properties(material);
            let into = p.erodes_to.unwrap_or(if p.form == Form::Loose { material } else { self.s.deposit_as });
            if p.hardness >= 1.0 || !d.bag.has_room_for(into) {
                return i;
            }
            self.terrain.remove_top(c, y);
            d.bag.put(into);
            self.stats.eroded += 1;
            ledger(self.ledger, material).taken += 1;
            ledger(self.ledger, into).became += 1;
        }
        n
    }

    /// Lays one voxel of `m` on column `c`, or counts it carried out when
    /// the column is full to the top of the world.
    fn lay(&mut self, c: IVec2, m: MaterialId) {
        if self.terrain.lay(c, m) {
            self.stats.deposited += 1;
            ledger(self.ledger, m).laid += 1;
        } else {
            self.stats.carried_out += 1;
            ledger(self.ledger, m).carried_out += 1;
        }
    }

    /// The droplet leaves the world: its bag is carried out.
    fn carry_out(&mut self, d: &mut Droplet) {
        while let Some(m) = d.bag.take() {
            self.stats.carried_out += 1;
            ledger(self.ledger, m).carried_out += 1;
        }
        d.load = 0.0;
    }

    /// The droplet ends at `cell`: its load is laid over the brush, and what
    /// is left in the bag on the columns of the brush owed most.
    fn settle(&mut self, d: &mut Droplet, cell: IVec2) {
        let load = std::mem::take(&mut d.load);
        self.spread(d, cell, load);
        while d.bag.count() > 0 {
            let brush = self.brush;
            let mut best: Option<(IVec2, f32)> = None;
            for (c, _) in brush.around(cell) {
                if self.terrain.has_column(c) {
                    let owed = self.memory.owed(c);
                    if best.is_none_or(|b| owed > b.1) {
                        best = Some((c, owed));
                    }
                }
            }
            let (Some((c, _)), Some(m)) = (best, d.bag.take()) else { break };
            let owed = self.memory.owed_mut(c, self.s.memory_columns);
            *owed = (*owed - 1.0).max(-OWED_CAP);
            self.lay(c, m);
        }
    }
}

/// Material `m`'s counts (grown to hold it: an allocation per new largest id,
/// not per step).
fn ledger(ledger: &mut Vec<HydraulicLedger>, m: MaterialId) -> &mut HydraulicLedger {
    let i = usize::from(m.0);
    if ledger.len() <= i {
        ledger.resize(i + 1, HydraulicLedger::default());
    }
    &mut ledger[i]
}

/// `v.floor().as_ivec2()` without a call to the C library's `floorf` (the
/// default x86-64 target has no rounding instruction): the same for every
/// position a droplet takes (well inside `i32`, NaN giving 0 either way).
#[inline]
fn floor(v: Vec2) -> IVec2 {
    let whole = |x: f32| {
        let t = x as i32;
        t - i32::from((t as f32) > x)
    };
    IVec2::new(whole(v.x), whole(v.y))
}

/// The surfaces of the four columns around a position (column centres at
/// `+0.5`) and their owed fractions: what a droplet's height and slope are
/// interpolated from. A column's height is its top plus what it owes (the
/// brush's fraction not yet a whole voxel), so droplets see the continuous
/// terrain the model has made, not only its whole voxels.
#[derive(Clone, Copy)]
pub(super) struct Corners {
    /// The corner with the smallest coordinates.
    min: IVec2,
    /// `(0, 0), (1, 0), (0, 1), (1, 1)` from `min`; `None` outside the world.
    surfaces: [Option<Surface>; 4],
    /// Which of `surfaces` were read (an edit drops a column's).
    read: [bool; 4],
    /// The columns' owed fractions, read afresh for every position.
    owed: [f32; 4],
}

const OFFSETS: [IVec2; 4] = [IVec2::new(0, 0), IVec2::new(1, 0), IVec2::new(0, 1), IVec2::new(1, 1)];

impl Corners {
    pub(super) const NONE: Self = Self { min: IVec2::ZERO, surfaces: [None; 4], read: [false; 4], owed: [0.0; 4] };

    /// The corners around `pos`, taking what `known` read of them (the
    /// droplet's last corners: the next ones share columns with them).
    fn around(terrain: &mut Terrain<'_>, memory: &mut FlowMemory, pos: Vec2, known: &Corners) -> Self {
        let min = floor(pos - Vec2::splat(0.5));
        let mut out = Self { min, ..Self::NONE };
        for (k, offset) in OFFSETS.into_iter().enumerate() {
            let c = min + offset;
            out.surfaces[k] = match known.find(c) {
                Some(s) => s,
                None => terrain.surface_of(c),
            };
            out.read[k] = true;
            out.owed[k] = memory.owed(c);
        }
        out
    }

    /// Column `c`'s surface, if read here.
    fn find(&self, c: IVec2) -> Option<Option<Surface>> {
        let d = c - self.min;
        if !(0..=1).contains(&d.x) || !(0..=1).contains(&d.y) {
            return None;
        }
        let k = (d.x + 2 * d.y) as usize;
        self.read[k].then_some(self.surfaces[k])
    }

    /// The height and its gradient at `pos` (inside these corners), a column
    /// outside the world or without terrain taking the height `fallback`.
    fn height_and_gradient(&self, pos: Vec2, fallback: f32) -> (f32, Vec2) {
        let p = pos - Vec2::splat(0.5) - self.min.as_vec2();
        let (u, v) = (p.x, p.y);
        let h = |k: usize| self.surfaces[k].and_then(|s| s.top).map_or(fallback, |y| y as f32 + self.owed[k]);
        let (h00, h10, h01, h11) = (h(0), h(1), h(2), h(3));
        let height = h00 * (1.0 - u) * (1.0 - v) + h10 * u * (1.0 - v) + h01 * (1.0 - u) * v + h11 * u * v;
        let grad = Vec2::new((h10 - h00) * (1.0 - v) + (h11 - h01) * v, (h01 - h00) * (1.0 - u) + (h11 - h10) * u);
        (height, grad)
    }

    /// The four columns around `pos` (inside these corners) and their
    /// bilinear weights, zero for a column outside the world.
    fn weights(&self, pos: Vec2) -> [(IVec2, f32); 4] {
        let p = pos - Vec2::splat(0.5) - self.min.as_vec2();
        let (u, v) = (p.x, p.y);
        let w = [(1.0 - u) * (1.0 - v), u * (1.0 - v), (1.0 - u) * v, u * v];
        std::array::from_fn(|k| (self.min + OFFSETS[k], if self.surfaces[k].is_some() { w[k] } else { 0.0 }))
    }
}
