//! Which deltas a consolidation takes.

/// How a consolidation chooses the deltas it merges (the seed's
/// `DeltaCompactionStrategy`, plus `Adaptive`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CompactionStrategy {
    /// The oldest half of the deltas, by last write (selected in `O(n)`, no sort).
    LazyThreshold,
    /// Whole chunks (`chunk_size³`), densest first, until `spatial_share` of the
    /// deltas is taken: bricks touched once, rebuilt once.
    SpatialClustering,
    /// Every delta older than `max_age` on the storage clock.
    TimeBasedBatching,
    /// Picks one of the three from the current state (the seed's rules): more than
    /// `adaptive_spatial_above` deltas → spatial; mean age above `adaptive_age` →
    /// time; otherwise lazy. The choice is applied and reported.
    #[default]
    Adaptive,
}

/// The strategy a consolidation actually applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AppliedStrategy {
    /// [`CompactionStrategy::LazyThreshold`], asked for or chosen by `Adaptive`.
    LazyThreshold {
        /// True when `Adaptive` chose it.
        adaptive: bool,
    },
    /// [`CompactionStrategy::SpatialClustering`].
    SpatialClustering {
        /// True when `Adaptive` chose it.
        adaptive: bool,
    },
    /// [`CompactionStrategy::TimeBasedBatching`].
    TimeBasedBatching {
        /// True when `Adaptive` chose it.
        adaptive: bool,
    },
    /// Everything, by `flush`.
    Flush,
    /// The oldest deltas, down to half the hard cap, synchronously, because the cap
    /// was reached.
    Backpressure,
}

impl AppliedStrategy {
    /// Index into per-strategy counters: lazy, spatial, time, flush, backpressure.
    pub const fn index(self) -> usize {
        match self {
            Self::LazyThreshold { .. } => 0,
            Self::SpatialClustering { .. } => 1,
            Self::TimeBasedBatching { .. } => 2,
            Self::Flush => 3,
            Self::Backpressure => 4,
        }
    }

    /// Short name for logs and panels.
    pub const fn name(self) -> &'static str {
        match self {
            Self::LazyThreshold { adaptive: false } => "lazy",
            Self::LazyThreshold { adaptive: true } => "adaptive: lazy",
            Self::SpatialClustering { adaptive: false } => "spatial",
            Self::SpatialClustering { adaptive: true } => "adaptive: spatial",
            Self::TimeBasedBatching { adaptive: false } => "time",
            Self::TimeBasedBatching { adaptive: true } => "adaptive: time",
            Self::Flush => "flush",
            Self::Backpressure => "backpressure",
        }
    }
}

/// Names matching [`AppliedStrategy::index`].
pub const STRATEGY_NAMES: [&str; 5] = ["lazy", "spatial", "time", "flush", "backpressure"];
