//! The processes' random numbers: splitmix64, small, fast and the same on
//! every platform, so a seed gives the same world everywhere.

/// A deterministic random number generator (splitmix64).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// Where it stands: `Rng::new(state)` goes on from here.
    pub(crate) fn state(&self) -> u64 {
        self.0
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// A column of `bounds`, uniform.
    pub(crate) fn column(&mut self, bounds: crate::coords::Aabb) -> glam::IVec2 {
        glam::IVec2::new(self.range(bounds.min.x, bounds.max.x), self.range(bounds.min.z, bounds.max.z))
    }

    /// Uniform in `[lo, hi)` (`lo` when the range is empty).
    pub(crate) fn range(&mut self, lo: i32, hi: i32) -> i32 {
        let span = (i64::from(hi) - i64::from(lo)).max(1) as u64;
        (i64::from(lo) + (self.next_u64() % span) as i64) as i32
    }
}
