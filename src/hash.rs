//! The crate's hash map: ahash with fixed seeds.
//!
//! Fixed seeds make iteration order, and so every choice among equals, the same
//! from run to run and machine to machine: a simulation's result depends on its
//! seed, not on a hasher's. Keys come from the simulation or from input that
//! was validated and capped before it reaches a map, so flooding a bucket is
//! bounded by those caps, not by the hasher.

use std::collections::HashMap;

/// A hash map with [`fixed_hasher`] seeds.
pub(crate) type FastMap<K, V> = HashMap<K, V, ahash::RandomState>;

/// An ahash state with fixed seeds.
pub(crate) fn fixed_hasher() -> ahash::RandomState {
    ahash::RandomState::with_seeds(
        0x243f_6a88_85a3_08d3,
        0x1319_8a2e_0370_7344,
        0xa409_3822_299f_31d0,
        0x082e_fa98_ec4e_6c89,
    )
}

/// An empty [`FastMap`].
pub(crate) fn fast_map<K, V>() -> FastMap<K, V> {
    FastMap::with_hasher(fixed_hasher())
}

/// A set keyed with ahash (fixed seeds, as [`FastMap`]).
#[cfg(any(feature = "replication", feature = "paging"))]
pub(crate) type FastSet<K> = std::collections::HashSet<K, ahash::RandomState>;

/// An empty [`FastSet`].
#[cfg(any(feature = "replication", feature = "paging"))]
pub(crate) fn fast_set<K>() -> FastSet<K> {
    FastSet::with_hasher(fixed_hasher())
}
