//! Deterministic 2D value noise (no external crate: a hash, a smoothstep, a lerp).

/// Smooth value noise on an integer lattice, hashed from a seed.
#[derive(Clone, Copy, Debug)]
pub(super) struct ValueNoise {
    seed: u64,
}

impl ValueNoise {
    pub fn new(seed: u64) -> Self {
        Self { seed }
    }

    /// Lattice value in `[-1, 1]`.
    fn lattice(&self, x: i32, z: i32) -> f32 {
        // SplitMix64 finaliser over the packed coordinates.
        let mut h = self.seed ^ ((x as u32 as u64) << 32 | z as u32 as u64);
        h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^= h >> 31;
        (h >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    /// Noise at `(x, z)` with lattice spacing `scale`, in `[-1, 1]`.
    fn sample(&self, x: f32, z: f32, scale: f32) -> f32 {
        let (x, z) = (x / scale, z / scale);
        let (x0, z0) = (fast_floor(x), fast_floor(z));
        let (tx, tz) = (x - x0, z - z0);
        let (sx, sz) = (tx * tx * (3.0 - 2.0 * tx), tz * tz * (3.0 - 2.0 * tz));
        let (ix, iz) = (x0 as i32, z0 as i32);
        let a = self.lattice(ix, iz);
        let b = self.lattice(ix + 1, iz);
        let c = self.lattice(ix, iz + 1);
        let d = self.lattice(ix + 1, iz + 1);
        let top = a + (b - a) * sx;
        let bottom = c + (d - c) * sx;
        top + (bottom - top) * sz
    }

    /// Two octaves: broad folds plus finer relief, in `[-1, 1]`.
    pub fn fbm(&self, x: f32, z: f32) -> f32 {
        (self.sample(x, z, 160.0) * 2.0 + self.sample(x + 1000.0, z - 1000.0, 40.0)) / 3.0
    }
}

/// `x.floor()` for `|x| < 2^31`, inlined: without SSE4.1 `f32::floor` is a libm
/// call, which showed up as a fifth of the world build in a profile.
#[inline]
pub(super) fn fast_floor(x: f32) -> f32 {
    let t = x as i32 as f32;
    if t > x { t - 1.0 } else { t }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fast_floor_matches_floor() {
        for x in [-2.5f32, -2.0, -0.1, 0.0, 0.1, 0.9999, 1.0, 12345.6, -12345.6] {
            assert_eq!(super::fast_floor(x), x.floor(), "{x}");
        }
    }
}
