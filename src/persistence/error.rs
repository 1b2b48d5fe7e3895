//! The persistence layer's one error type.

use crate::codec::DecodeError;
use crate::storage::FeedError;
use std::path::{Path, PathBuf};

/// What of a file differs from what the caller expected (see
/// [`StoreOptions::expect_same_world`](super::StoreOptions::expect_same_world)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mismatch {
    /// The file's world was generated from another [`WorldGen`](crate::WorldGen)
    /// (or was not generated).
    Generator,
    /// The file keeps another palette.
    Palette,
    /// The storage handed to [`WorldStore::commit`](super::WorldStore::commit)
    /// has other bounds than the file's world.
    Bounds,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Generator => write!(f, "its world was generated from other parameters than the ones given"),
            Self::Palette => write!(f, "it keeps another palette than the one given"),
            Self::Bounds => write!(f, "the storage handed over is not the file's world (other bounds)"),
        }
    }
}

/// Which record of a world store a problem was found in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Record {
    /// The header: format version, bounds, generator, palette.
    Header,
    /// The sequence number the stored nodes hold the world at.
    Checkpoint,
    /// A stored node of the world.
    Node {
        /// log2 of its edge.
        level: u32,
        /// Its Morton code at that level.
        code: u64,
    },
    /// A log entry.
    Log {
        /// Its first change's sequence number.
        first: u64,
    },
    /// The edits a paged world's file keeps for the 16 x 16 columns of tile
    /// (`x`, `z`), counted in tiles from the world's minimum corner
    /// (feature `paging`).
    EditTile {
        /// Tiles along x.
        x: i32,
        /// Tiles along z.
        z: i32,
    },
    /// The last batch of edits a paged world's file holds (feature
    /// `paging`).
    EditBatch,
}

impl std::fmt::Display for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Record::Header => write!(f, "the header"),
            Record::Checkpoint => write!(f, "the checkpoint record"),
            Record::Node { level, code } => write!(f, "node {code:#x} at level {level}"),
            Record::Log { first } => write!(f, "the log entry starting at sequence {first}"),
            Record::EditTile { x, z } => write!(f, "the edits of tile ({x}, {z})"),
            Record::EditBatch => write!(f, "the number of the last batch of edits"),
        }
    }
}

/// Why a world store could not be opened, read or written. Every variant names
/// the file; a file refused at open is left untouched.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// The file could not be read, created or renamed.
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
    /// The file is not a redb database, is damaged below the records (its
    /// structure, or a truncation), or was not closed by this crate's commits
    /// (it would need a repair that writes it).
    NotADatabase {
        /// The file.
        path: PathBuf,
        /// What the database engine said.
        detail: String,
    },
    /// A redb database, but not a world store (no header).
    NotAWorldStore {
        /// The file.
        path: PathBuf,
    },
    /// A world store of another format version.
    FormatVersion {
        /// The file.
        path: PathBuf,
        /// The version it holds.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// A record failed its checksum or did not decode: the bytes were damaged.
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Which record.
        record: Record,
        /// How it failed.
        error: DecodeError,
    },
    /// The log does not follow on from the checkpoint or from itself: a change
    /// is missing.
    LogGap {
        /// The file.
        path: PathBuf,
        /// The sequence number expected next.
        expected: u64,
        /// The first sequence number of the entry found.
        found: u64,
    },
    /// The database engine failed while the store was open (a full disk, an
    /// I/O error): what was acknowledged is on disk, nothing after it.
    Database {
        /// The file.
        path: PathBuf,
        /// What the database engine said.
        detail: String,
    },
    /// The writer thread stopped after an earlier error (see
    /// [`WorldStore::error`](super::WorldStore::error)).
    WriterStopped {
        /// The file.
        path: PathBuf,
    },
    /// The writer thread panicked (a bug, or a resource the system refused,
    /// such as a thread): what was acknowledged is on disk, nothing after it.
    /// Reported by [`WorldStore::error`](super::WorldStore::error); every
    /// later call returns [`StoreError::WriterStopped`].
    WriterPanicked {
        /// The file.
        path: PathBuf,
        /// The panic's message.
        detail: String,
    },
    /// [`WorldStore::commit`](super::WorldStore::commit) refused a batch the
    /// file could not read back (a change outside the world, a batch that does
    /// not follow the last one handed over). Nothing of it was logged; the
    /// store goes on.
    Batch {
        /// The file.
        path: PathBuf,
        /// What is wrong with the batch.
        error: FeedError,
    },
    /// The file is not the world the caller expected; it was not changed.
    Mismatch {
        /// The file.
        path: PathBuf,
        /// What differs.
        what: Mismatch,
    },
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io { path, error } => write!(f, "{}: {error}", path.display()),
            Self::NotADatabase { path, detail } => {
                write!(
                    f,
                    "{}: not a readable world store database ({detail}); the file was not changed",
                    path.display()
                )
            }
            Self::NotAWorldStore { path } => {
                write!(f, "{}: a database, but not a world store (no header); the file was not changed", path.display())
            }
            Self::FormatVersion { path, found, supported } => write!(
                f,
                "{}: world store format {found}, this build reads format {supported}; the file was not changed",
                path.display()
            ),
            Self::Corrupt { path, record, error } => {
                write!(f, "{}: {record} is damaged ({error}); the file was not changed", path.display())
            }
            Self::LogGap { path, expected, found } => write!(
                f,
                "{}: the log jumps from sequence {} to {found}; the file was not changed",
                path.display(),
                expected.saturating_sub(1)
            ),
            Self::Database { path, detail } => write!(f, "{}: the database failed: {detail}", path.display()),
            Self::WriterStopped { path } => write!(f, "{}: the store's writer stopped after an error", path.display()),
            Self::WriterPanicked { path, detail } => {
                write!(
                    f,
                    "{}: the store's writer panicked ({detail}); nothing after the last acknowledgement is saved",
                    path.display()
                )
            }
            Self::Batch { path, error } => write!(f, "{}: batch refused, nothing logged: {error}", path.display()),
            Self::Mismatch { path, what } => {
                write!(f, "{}: not the world expected: {what}; the file was not changed", path.display())
            }
        }
    }
}

impl StoreError {
    /// Whether the file's content is the problem (damaged, not a world store,
    /// another format version, another world): a file that setting aside
    /// would cure. `false` for a failure of the system or of the running store
    /// (I/O, the database engine, the writer, a refused batch), where the file
    /// may be sound.
    ///
    /// ```
    /// use bevy_delta_overlay::persistence::StoreError;
    /// let damaged = StoreError::NotAWorldStore { path: "world.redb".into() };
    /// assert!(damaged.is_bad_file());
    /// let stopped = StoreError::WriterStopped { path: "world.redb".into() };
    /// assert!(!stopped.is_bad_file());
    /// ```
    pub fn is_bad_file(&self) -> bool {
        matches!(
            self,
            Self::NotADatabase { .. }
                | Self::NotAWorldStore { .. }
                | Self::FormatVersion { .. }
                | Self::Corrupt { .. }
                | Self::LogGap { .. }
                | Self::Mismatch { .. }
        )
    }

    /// The same error, for a second owner (an I/O error is rebuilt from its
    /// kind and message: `std::io::Error` is not `Clone`).
    pub(crate) fn duplicate(&self) -> Self {
        match self {
            Self::Io { path, error } => {
                Self::Io { path: path.clone(), error: std::io::Error::new(error.kind(), error.to_string()) }
            }
            Self::NotADatabase { path, detail } => Self::NotADatabase { path: path.clone(), detail: detail.clone() },
            Self::NotAWorldStore { path } => Self::NotAWorldStore { path: path.clone() },
            Self::FormatVersion { path, found, supported } => {
                Self::FormatVersion { path: path.clone(), found: *found, supported: *supported }
            }
            Self::Corrupt { path, record, error } => {
                Self::Corrupt { path: path.clone(), record: *record, error: *error }
            }
            Self::LogGap { path, expected, found } => {
                Self::LogGap { path: path.clone(), expected: *expected, found: *found }
            }
            Self::Database { path, detail } => Self::Database { path: path.clone(), detail: detail.clone() },
            Self::WriterStopped { path } => Self::WriterStopped { path: path.clone() },
            Self::WriterPanicked { path, detail } => {
                Self::WriterPanicked { path: path.clone(), detail: detail.clone() }
            }
            Self::Batch { path, error } => Self::Batch { path: path.clone(), error: *error },
            Self::Mismatch { path, what } => Self::Mismatch { path: path.clone(), what: *what },
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { error, .. } => Some(error),
            Self::Corrupt { error, .. } => Some(error),
            Self::Batch { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// A database the engine could not open, as the error a caller can act on.
pub(crate) fn database(path: &Path, e: redb::DatabaseError) -> StoreError {
    let detail = match e {
        redb::DatabaseError::RepairAborted => {
            "it was not closed by this crate's commits and would need a repair, which writes the file".to_string()
        }
        redb::DatabaseError::Storage(redb::StorageError::Io(error))
            if error.kind() != std::io::ErrorKind::InvalidData && error.kind() != std::io::ErrorKind::UnexpectedEof =>
        {
            return StoreError::Io { path: path.to_path_buf(), error };
        }
        other => other.to_string(),
    };
    StoreError::NotADatabase { path: path.to_path_buf(), detail }
}

/// A file the engine could not read as a database.
pub(crate) fn not_a_database(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::NotADatabase { path: path.to_path_buf(), detail: e.to_string() }
}
