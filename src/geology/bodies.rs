//! The shapes of intrusions: which voxels a body melts, step by step as it
//! grows. A *stock* is a rising column of discs; a *dike* a thin vertical
//! sheet rising along its strike; a *sill* a thin feeder pipe rising to a
//! bedding plane, then a sheet spreading ring by ring along it.
//!
//! # Invariants
//!
//! - `STEPS`: a body grows by whole steps, `0..=last`, each step's voxels
//!   listed once (a step is a layer of a stock or dike, a layer of a sill's
//!   feeder, or one ring of its sheet; rings are disjoint by construction:
//!   ring `r` holds the columns with `r² <= dx² + dz² < (r + 1)²`).
//! - `EXACT`: the shapes use integer arithmetic, IEEE division and square
//!   roots only (correctly rounded everywhere), no `sin`/`cos`: a dike's strike
//!   is one of [`STRIKES`] or a vector the settings give, so a seed decides the
//!   same world on every platform.

use super::rng::Rng;
use super::state::{StateError, StateReader, StateWriter};
use super::terrain::Terrain;
use crate::coords::Aabb;
use glam::{IVec2, IVec3};

/// What a body is, as a setting: one shape, or a seeded mix.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "plugin", derive(bevy::reflect::Reflect))]
pub enum IntrusionShape {
    /// A rising column of discs of the settings' radius (±20% per layer).
    Stock,
    /// A vertical sheet `thickness` voxels thin, `2 * radius` long along its
    /// strike, rising from the source.
    Dike,
    /// A feeder pipe `thickness` wide rising to a bedding plane (the highest
    /// contact of two materials in the source's column below the body's top),
    /// then a sheet `thickness` thick spreading along it to `radius`.
    Sill,
    /// Each body one of the three, chosen by the seed with equal odds.
    #[default]
    Mixed,
}

/// The strikes a dike takes when the settings give none: eight directions
/// about 22.5° apart, as integer vectors `(x, z)`.
pub(super) const STRIKES: [IVec2; 8] = [
    IVec2::new(1, 0),
    IVec2::new(2, 1),
    IVec2::new(1, 1),
    IVec2::new(1, 2),
    IVec2::new(0, 1),
    IVec2::new(-1, 2),
    IVec2::new(-1, 1),
    IVec2::new(-2, 1),
];

/// A body's shape, decided when it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Stock,
    /// Along `strike` (not zero).
    Dike {
        strike: IVec2,
    },
    /// Along the bedding plane at `level` (the sheet's lowest layer).
    Sill {
        level: i32,
    },
}

/// A body growing: its form, where it grows from, how far it got.
#[derive(Clone, Debug)]
pub(super) struct Body {
    pub kind: Kind,
    pub source: IVec3,
    /// The next step to melt.
    pub next: i32,
    /// The steps the clock allows so far (fractional).
    pub front: f32,
    /// The last step.
    pub last: i32,
    /// The voxels it melted, in order: the body whose margins cool first.
    pub voxels: Vec<IVec3>,
}

impl Body {
    /// Writes the body.
    pub fn save(&self, out: &mut StateWriter) {
        match self.kind {
            Kind::Stock => out.u8(0),
            Kind::Dike { strike } => {
                out.u8(1);
                out.ivec2(strike);
            }
            Kind::Sill { level } => {
                out.u8(2);
                out.i32(level);
            }
        }
        out.ivec3(self.source);
        out.i32(self.next);
        out.f32(self.front);
        out.i32(self.last);
        out.len_of(self.voxels.len());
        self.voxels.iter().for_each(|&p| out.ivec3(p));
    }

    /// Reads what [`save`](Self::save) wrote, for a world of `bounds`:
    /// refused unless it is a body `new` and `grow` could have made there
    /// (its source and voxels in the world, its steps within the world's
    /// height and a sheet's reach, a strike of sane length), so the growth's
    /// arithmetic cannot overflow on hostile bytes.
    pub fn restore(input: &mut StateReader<'_>, bounds: Aabb) -> Result<Self, StateError> {
        let kind = match input.u8()? {
            0 => Kind::Stock,
            1 => Kind::Dike { strike: input.ivec2()? },
            2 => Kind::Sill { level: input.i32()? },
            _ => return Err(StateError::Invalid("body kind")),
        };
        let (source, next, front, last) = (input.ivec3()?, input.i32()?, input.f32()?, input.i32()?);
        let steps = bounds.size().y.max(0).saturating_add(MAX_RADIUS_STEPS);
        let valid = bounds.contains(source)
            && (0..=steps).contains(&last)
            && (0..=last.saturating_add(1)).contains(&next)
            && (0.0..=last as f32).contains(&front)
            && match kind {
                Kind::Stock => true,
                Kind::Dike { strike } => {
                    strike != IVec2::ZERO && strike.x.unsigned_abs().max(strike.y.unsigned_abs()) <= MAX_STRIKE
                }
                Kind::Sill { level } => (bounds.min.y..bounds.max.y).contains(&level),
            };
        if !valid {
            return Err(StateError::Invalid("intrusion body"));
        }
        let n = input.len_of(12)?;
        let voxels: Vec<IVec3> = (0..n).map(|_| input.ivec3()).collect::<Result<_, _>>()?;
        if !voxels.iter().all(|&p| bounds.contains(p)) {
            return Err(StateError::Invalid("intrusion body (a voxel outside the world)"));
        }
        Ok(Self { kind, source, next, front, last, voxels })
    }
}

/// A restored body's steps beyond the world's height at most: a sill's rings.
const MAX_RADIUS_STEPS: i32 = 4096;

/// A restored dike's strike's largest component at most.
const MAX_STRIKE: u32 = 1 << 10;

/// The geometry a body needs from the settings.
#[derive(Clone, Copy, Debug)]
pub(super) struct Geometry {
    pub radius: f32,
    pub thickness: i32,
}

impl Body {
    /// A body of `shape` (resolved with `rng` when mixed) from `source` up to
    /// `top` (`top > source.y`).
    pub fn new(
        terrain: &mut Terrain<'_>,
        (shape, strike): (IntrusionShape, Option<IVec2>),
        geometry: Geometry,
        (source, top): (IVec3, i32),
        rng: &mut Rng,
    ) -> Self {
        let shape = match shape {
            IntrusionShape::Mixed => {
                [IntrusionShape::Stock, IntrusionShape::Dike, IntrusionShape::Sill][rng.range(0, 3) as usize]
            }
            s => s,
        };
        let kind = match shape {
            IntrusionShape::Dike => {
                let strike = strike.filter(|s| *s != IVec2::ZERO);
                Kind::Dike { strike: strike.unwrap_or_else(|| STRIKES[rng.range(0, STRIKES.len() as i32) as usize]) }
            }
            IntrusionShape::Sill => Kind::Sill { level: bedding_plane(terrain, source, top, geometry.thickness) },
            _ => Kind::Stock,
        };
        let last = match kind {
            // The feeder's layers below the sheet, then one step a ring.
            Kind::Sill { level } => level - source.y + geometry.radius.max(0.0) as i32,
            _ => top - source.y,
        };
        Self { kind, source, next: 0, front: 0.0, last, voxels: Vec::new() }
    }

    /// Whether every step is melted.
    pub fn grown(&self) -> bool {
        self.next > self.last
    }

    /// The voxels of step `k` (some may lie outside the world: the caller
    /// checks), pushed onto `out`.
    pub fn step(&self, k: i32, g: Geometry, rng: &mut Rng, out: &mut Vec<IVec3>) {
        let s = self.source;
        match self.kind {
            Kind::Stock => {
                // Each layer a little wider or narrower: a body, not a cylinder.
                let r = g.radius.max(0.5) * (0.8 + 0.4 * rng.unit());
                disc(IVec3::new(s.x, s.y + k, s.z), r, out);
            }
            Kind::Dike { strike } => sheet(IVec3::new(s.x, s.y + k, s.z), strike, g, out),
            Kind::Sill { level } if s.y + k < level => {
                // The feeder: a pipe `thickness` wide.
                let t = g.thickness.max(1);
                for dz in -t / 2..t - t / 2 {
                    for dx in -t / 2..t - t / 2 {
                        out.push(IVec3::new(s.x + dx, s.y + k, s.z + dz));
                    }
                }
            }
            Kind::Sill { level } => {
                let r = s.y + k - level;
                for y in level..level + g.thickness.max(1) {
                    ring(IVec3::new(s.x, y, s.z), r, out);
                }
            }
        }
    }

    /// Where the body has got to: the top of a rising stock or dike, the
    /// centre of a spreading sill.
    pub fn front(&self) -> IVec3 {
        let y = match self.kind {
            Kind::Sill { level } => (self.source.y + self.next).min(level),
            _ => self.source.y + self.next,
        };
        IVec3::new(self.source.x, y, self.source.z)
    }
}

/// The columns of a disc of radius `r` around `centre`, at its height.
fn disc(centre: IVec3, r: f32, out: &mut Vec<IVec3>) {
    let ri = r.ceil() as i32;
    for dz in -ri..=ri {
        for dx in -ri..=ri {
            if (dx * dx + dz * dz) as f32 <= r * r {
                out.push(centre + IVec3::new(dx, 0, dz));
            }
        }
    }
}

/// Ring `r` around `centre`: the columns with `r² <= dx² + dz² < (r + 1)²`.
fn ring(centre: IVec3, r: i32, out: &mut Vec<IVec3>) {
    let (inner, outer) = (r * r, (r + 1) * (r + 1));
    for dz in -r..=r {
        for dx in -r..=r {
            let d = dx * dx + dz * dz;
            if d >= inner && d < outer {
                out.push(centre + IVec3::new(dx, 0, dz));
            }
        }
    }
}

/// One layer of a dike: the columns within `radius` of `centre` along
/// `strike` and within `[-thickness / 2, thickness / 2)` across it.
fn sheet(centre: IVec3, strike: IVec2, g: Geometry, out: &mut Vec<IVec3>) {
    let n = ((strike.x * strike.x + strike.y * strike.y) as f32).sqrt();
    let half = g.thickness.max(1) as f32 / 2.0;
    let reach = g.radius.max(0.5).ceil() as i32 + g.thickness.max(1);
    for dz in -reach..=reach {
        for dx in -reach..=reach {
            let along = (dx * strike.x + dz * strike.y) as f32 / n;
            let across = (dz * strike.x - dx * strike.y) as f32 / n;
            if along.abs() <= g.radius && across >= -half && across < half {
                out.push(centre + IVec3::new(dx, 0, dz));
            }
        }
    }
}

/// The level a sill spreads along: the highest contact of two materials in
/// the source's column with room for the sheet below `top`; halfway up when
/// the column is one material.
fn bedding_plane(terrain: &mut Terrain<'_>, source: IVec3, top: i32, thickness: i32) -> i32 {
    let highest = top - thickness.max(1) + 1;
    let at = |t: &mut Terrain<'_>, y| t.get(IVec3::new(source.x, y, source.z));
    let mut y = highest;
    while y > source.y + 1 {
        if at(terrain, y) != at(terrain, y - 1) {
            return y;
        }
        y -= 1;
    }
    (source.y + 1 + highest.max(source.y + 1)) / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_tile_the_disc_once() {
        let mut all = Vec::new();
        for r in 0..=6 {
            ring(IVec3::ZERO, r, &mut all);
        }
        let mut sorted: Vec<_> = all.iter().map(|p| (p.x, p.z)).collect();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), all.len(), "STEPS: a column is in one ring");
        assert!(all.iter().all(|p| p.x * p.x + p.z * p.z < 49));
        assert_eq!(all.len(), (-7..=7).flat_map(|x| (-7..=7).map(move |z| x * x + z * z)).filter(|&d| d < 49).count());
    }

    #[test]
    fn a_dike_layer_is_thin_across_its_strike_and_long_along_it() {
        let g = Geometry { radius: 8.0, thickness: 2 };
        for strike in STRIKES {
            let mut out = Vec::new();
            sheet(IVec3::ZERO, strike, g, &mut out);
            let n = (strike.as_vec2()).length();
            let widest = out.iter().map(|p| ((p.z * strike.x - p.x * strike.y) as f32 / n).abs()).fold(0.0, f32::max);
            let longest = out.iter().map(|p| ((p.x * strike.x + p.z * strike.y) as f32 / n).abs()).fold(0.0, f32::max);
            assert!(widest <= 1.0 && longest >= 7.0, "{strike}: {widest} across, {longest} along");
            assert!(out.len() >= 30 && out.len() <= 60, "{strike}: {}", out.len());
        }
    }
}
