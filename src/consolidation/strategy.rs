//! Which deltas a consolidation takes: the strategies, and `Adaptive`'s choice.

/// How a consolidation chooses the deltas it merges into the base (the seed's
/// `DeltaCompactionStrategy`, plus `Adaptive`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "plugin", derive(bevy::reflect::Reflect))]
pub enum ConsolidationStrategy {
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
#[cfg_attr(feature = "plugin", derive(bevy::reflect::Reflect))]
pub enum AppliedStrategy {
    /// [`ConsolidationStrategy::LazyThreshold`], asked for or chosen by `Adaptive`.
    LazyThreshold {
        /// True when `Adaptive` chose it.
        adaptive: bool,
    },
    /// [`ConsolidationStrategy::SpatialClustering`].
    SpatialClustering {
        /// True when `Adaptive` chose it.
        adaptive: bool,
    },
    /// [`ConsolidationStrategy::TimeBasedBatching`].
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

    /// True when `Adaptive` made the choice.
    pub const fn is_adaptive(self) -> bool {
        matches!(
            self,
            Self::LazyThreshold { adaptive: true }
                | Self::SpatialClustering { adaptive: true }
                | Self::TimeBasedBatching { adaptive: true }
        )
    }
}

/// What `Adaptive` looks at.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AdaptiveInputs {
    pub deltas: usize,
    pub mean_age_ms: u64,
    pub spatial_above: usize,
    pub age_ms: u64,
}

/// The concrete strategy `strategy` stands for (`Adaptive` decides here).
pub(crate) fn resolve(strategy: ConsolidationStrategy, inputs: AdaptiveInputs) -> AppliedStrategy {
    let adaptive = strategy == ConsolidationStrategy::Adaptive;
    let concrete = if adaptive {
        if inputs.deltas > inputs.spatial_above {
            ConsolidationStrategy::SpatialClustering
        } else if inputs.mean_age_ms > inputs.age_ms {
            ConsolidationStrategy::TimeBasedBatching
        } else {
            ConsolidationStrategy::LazyThreshold
        }
    } else {
        strategy
    };
    match concrete {
        ConsolidationStrategy::SpatialClustering => AppliedStrategy::SpatialClustering { adaptive },
        ConsolidationStrategy::TimeBasedBatching => AppliedStrategy::TimeBasedBatching { adaptive },
        _ => AppliedStrategy::LazyThreshold { adaptive },
    }
}
