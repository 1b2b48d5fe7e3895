//! The erosion brush, and the droplets' deterministic headings.
//!
//! # Invariants
//!
//! - `WEIGHTS`: a brush's weights are positive and sum to 1 (to rounding):
//!   weight `∝ radius - distance` over the columns closer than `radius` to the
//!   centre (Beyer 2015; Lague's `erosionRadius`), the centre always in.
//! - `NO_PLATFORM_MATH`: nothing here calls the C library's maths: the weights
//!   use IEEE `sqrt` (correctly rounded, so the same bits everywhere), a
//!   random heading comes from rejection sampling in the unit disc and a
//!   `sqrt`. No `cos`, `sin`, `exp` or `pow`, whose results differ between
//!   platforms' libraries, decides where a droplet goes.

use crate::geology::rng::Rng;
use glam::{IVec2, Vec2};

/// The largest brush radius taken (a larger setting is clamped): 8 covers
/// 197 columns, already wider than a valley of the default world.
pub(crate) const MAX_RADIUS: u32 = 8;

/// The columns a droplet erodes or deposits over, and each one's share:
/// built once per radius, then read at every step (no allocation per step).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Brush {
    /// The radius it was built for (after clamping).
    radius: u32,
    /// Offsets from the centre column and their weights, centre first.
    taps: Vec<(IVec2, f32)>,
}

impl Default for Brush {
    fn default() -> Self {
        Self::new(0)
    }
}

impl Brush {
    /// The brush of `radius` columns: radius 0 or 1 is the centre column
    /// alone (weight 1); otherwise every column whose centre is closer than
    /// `radius` to the centre's, weighted `radius - distance`, normalised.
    pub(crate) fn new(radius: u32) -> Self {
        let radius = radius.min(MAX_RADIUS);
        let r = radius as i32;
        let mut taps = vec![(IVec2::ZERO, 1.0)];
        for dz in -r..=r {
            for dx in -r..=r {
                let distance = ((dx * dx + dz * dz) as f32).sqrt();
                if (dx, dz) != (0, 0) && distance < radius as f32 {
                    taps.push((IVec2::new(dx, dz), radius as f32 - distance));
                }
            }
        }
        if radius > 1 {
            taps[0].1 = radius as f32;
        }
        let sum: f32 = taps.iter().map(|t| t.1).sum();
        for t in &mut taps {
            t.1 /= sum;
        }
        debug_assert!(taps.iter().all(|t| t.1 > 0.0), "WEIGHTS: a brush's weights are positive");
        Self { radius, taps }
    }

    /// The radius it was built for, clamped to [`MAX_RADIUS`].
    pub(crate) fn radius(&self) -> u32 {
        self.radius
    }

    /// Whether it was built for the setting `radius`.
    pub(crate) fn fits(&self, radius: u32) -> bool {
        self.radius == radius.min(MAX_RADIUS)
    }

    /// The offsets from the centre and their weights, centre first.
    #[inline]
    pub(crate) fn taps(&self) -> &[(IVec2, f32)] {
        &self.taps
    }

    /// The columns and weights around `centre`, centre first.
    #[inline]
    pub(crate) fn around(&self, centre: IVec2) -> impl Iterator<Item = (IVec2, f32)> + '_ {
        self.taps.iter().map(move |&(d, w)| (centre + d, w))
    }

    /// Columns it covers.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.taps.len()
    }
}

/// A random unit vector, uniform in direction: a point drawn in the square
/// `[-1, 1)²` until it falls inside the unit disc (and not at its very
/// centre), then normalised. Deterministic everywhere (`NO_PLATFORM_MATH`);
/// `π/4` of draws succeed, and after 64 misses (chance below 10⁻⁴²) it
/// returns `+x`.
pub(crate) fn random_heading(rng: &mut Rng) -> Vec2 {
    for _ in 0..64 {
        let v = Vec2::new(rng.unit() * 2.0 - 1.0, rng.unit() * 2.0 - 1.0);
        let len2 = v.length_squared();
        if len2 <= 1.0 && len2 > 1e-6 {
            return v / len2.sqrt();
        }
    }
    Vec2::X
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lagues_radius_3_brush_covers_25_columns_and_sums_to_one() {
        let b = Brush::new(3);
        assert_eq!(b.len(), 25);
        let sum: f32 = b.around(IVec2::ZERO).map(|t| t.1).sum();
        assert!((sum - 1.0).abs() < 1e-5, "{sum}");
        let centre = b.around(IVec2::ZERO).next().unwrap();
        assert_eq!(centre.0, IVec2::ZERO);
        assert!(b.around(IVec2::ZERO).all(|t| t.1 <= centre.1));
        assert_eq!(Brush::new(0).len(), 1);
        assert_eq!(Brush::new(1).len(), 1);
        assert_eq!(Brush::new(99).radius(), MAX_RADIUS);
    }

    #[test]
    fn random_headings_are_unit_and_spread() {
        let mut rng = Rng::new(3);
        let mut quadrants = [0; 4];
        for _ in 0..4000 {
            let v = random_heading(&mut rng);
            assert!((v.length() - 1.0).abs() < 1e-5);
            quadrants[usize::from(v.x < 0.0) + 2 * usize::from(v.y < 0.0)] += 1;
        }
        assert!(quadrants.iter().all(|&q| (850..1150).contains(&q)), "{quadrants:?}");
    }
}
