//! What a [`WorldStore`](super::WorldStore) is asked to do, and what opening
//! one did; whether a file holds the world expected.

use super::error::Mismatch;
use super::format::Header;
use crate::consolidation::DeltaConfig;
use crate::worldgen::WorldGen;
use std::time::Duration;

/// How commits reach the disk, and what a crash can lose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Every group commit is synced before it is acknowledged. A crash loses
    /// only changes that were not acknowledged yet: the batches queued for the
    /// writer and the commit in progress (about a frame's worth).
    EveryCommit,
    /// Group commits are written without a sync, and the first commit after
    /// each interval is synced; acknowledgements come with the synced commits.
    /// Faster on slow disks; a crash loses what was not acknowledged, up to an
    /// interval's changes.
    Interval(Duration),
}

/// How a [`WorldStore`](super::WorldStore) works.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// When commits are synced. Default [`Durability::EveryCommit`].
    pub durability: Durability,
    /// Changes logged before a checkpoint folds them into the stored bricks and
    /// trims the log, so the log and the file stay bounded. Default 2^20.
    pub checkpoint_every: usize,
    /// Batches queued for the writer; past that, the next batch is replaced by
    /// a snapshot of the world (written as a full checkpoint), so a slow disk
    /// costs a rewrite, never a lost change or a blocked frame. Default 256.
    pub queue_capacity: usize,
    /// The largest log entry, in changes: a larger batch is logged as several
    /// entries, and an entry read back larger than this is damage (so reopen
    /// with the same or a larger value). Default 2^24 changes.
    pub max_batch: usize,
    /// The database's page cache, in bytes. Default 64 MiB.
    pub cache_bytes: usize,
    /// The world generated when the file does not exist.
    pub generator: WorldGen,
    /// The palette's RON text, kept in the header of a new file.
    pub palette: Option<String>,
    /// Whether an existing file must hold the world these options describe:
    /// generated from `generator` and, when `palette` is given, keeping the
    /// same palette (compared as parsed when both parse, else as text; a file
    /// that keeps none is taken with any). A file
    /// that differs is refused with [`StoreError::Mismatch`](super::StoreError::Mismatch) and left as it
    /// was. Default `true`; `false` loads whatever world the file holds.
    pub expect_same_world: bool,
    /// The configuration of the storage returned.
    pub config: DeltaConfig,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            durability: Durability::EveryCommit,
            checkpoint_every: 1 << 20,
            queue_capacity: 256,
            max_batch: 1 << 24,
            cache_bytes: 64 << 20,
            generator: WorldGen::default(),
            palette: None,
            expect_same_world: true,
            config: DeltaConfig::default(),
        }
    }
}

/// What [`WorldStore::open`](super::WorldStore::open) did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opened {
    /// The file did not exist: the world was generated and written.
    Created {
        /// Time to generate the world.
        generated: Duration,
        /// Time to write it.
        written: Duration,
    },
    /// The file held a world: it was loaded.
    Loaded {
        /// The sequence number of its last change.
        sequence: u64,
        /// Log entries replayed on top of the stored nodes.
        replayed: usize,
        /// Time to read, check and rebuild it.
        took: Duration,
    },
}

/// Whether the file's header is the world `options` describe (see
/// [`StoreOptions::expect_same_world`]).
pub(crate) fn expect_same_world(header: &Header, options: &StoreOptions) -> Result<(), Mismatch> {
    if header.generator.as_ref() != Some(&options.generator) {
        return Err(Mismatch::Generator);
    }
    let Some(expected) = &options.palette else { return Ok(()) };
    let same = match (&header.palette, crate::Palette::from_ron_str(expected)) {
        // A file that keeps no palette is taken with any.
        (None, _) => true,
        (Some(found), Ok(expected)) => match crate::Palette::from_ron_str(found) {
            Ok(found) => found.entries() == expected.entries(),
            Err(_) => false,
        },
        (Some(found), Err(_)) => found == expected,
    };
    if same { Ok(()) } else { Err(Mismatch::Palette) }
}
