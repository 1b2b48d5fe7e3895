//! Opening, creating and loading a world store; the handle the caller keeps.

use super::error::{Record, StoreError};
use super::format::{self, CHECKPOINT_KEY, HEADER_KEY, Header, LOG, META, NODES};
use super::recover::CopyOnWrite;
use super::writer::{self, Command, Shared};
use crate::codec::DecodeError;
use crate::codec::world::BuildError;
use crate::consolidation::DeltaConfig;
use crate::storage::{ChangeBatch, DeltaStorage, FeedError};
use crate::worldgen::WorldGen;
use redb::{ReadableDatabase, ReadableTable};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::{Duration, Instant};

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

/// How a [`WorldStore`] works.
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
    /// The largest batch read back from the log; a larger one is damage.
    /// Default 2^24 changes.
    pub max_batch: usize,
    /// The database's page cache, in bytes. Default 64 MiB.
    pub cache_bytes: usize,
    /// The world generated when the file does not exist.
    pub generator: WorldGen,
    /// The palette's RON text, kept in the header of a new file.
    pub palette: Option<String>,
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
            config: DeltaConfig::default(),
        }
    }
}

/// What [`WorldStore::open`] did.
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

/// What reading a file gives.
struct Loaded {
    header: Header,
    storage: DeltaStorage,
    /// The log's batches, not in the stored nodes yet.
    pending: Vec<ChangeBatch>,
    replayed: usize,
}

/// A world in one redb file: the world as of a checkpoint, plus the log of
/// change batches after it. See the [module docs](super).
///
/// ```no_run
/// use bevy_delta_overlay::materials;
/// use bevy_delta_overlay::persistence::{StoreError, StoreOptions, WorldStore};
/// use glam::IVec3;
/// let (mut store, mut world, _opened) = WorldStore::open("world.redb", StoreOptions::default())?;
/// world.record_changes(1 << 20);
/// world.update(IVec3::new(1, 2, 3), materials::MAGMA).unwrap();
/// store.commit(world.take_changes(), &mut world)?; // returns at once
/// let durable = store.sync()?; // waits for the disk
/// assert_eq!(durable, world.sequence());
/// # Ok::<(), StoreError>(())
/// ```
pub struct WorldStore {
    path: PathBuf,
    header: Header,
    shared: Arc<Shared>,
    tx: Option<SyncSender<Command>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for WorldStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorldStore").field("path", &self.path).field("durable", &self.durable()).finish_non_exhaustive()
    }
}

impl WorldStore {
    /// Opens the world store at `path`, or creates it (generating
    /// `options.generator`'s world) when there is no file. Returns the store,
    /// the world, and what was done.
    ///
    /// An existing file is read and checked in full through a read-only handle
    /// first (every record's checksum, the log's continuity), so a damaged file,
    /// a file of another format, or a file that is not a database is refused
    /// with an error naming the problem, and left untouched.
    ///
    /// # Errors
    /// See [`StoreError`].
    pub fn open(path: impl AsRef<Path>, options: StoreOptions) -> Result<(Self, DeltaStorage, Opened), StoreError> {
        let path = path.as_ref().to_path_buf();
        if !path.exists() {
            return Self::create(path, options);
        }
        // The database engine panics on some damaged files (a malformed
        // allocator state, an offset past a page) instead of returning an
        // error. Reading is read-only, so a panic here leaves the file as it
        // was; it becomes the error it should have been.
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Self::load(path.clone(), options))) {
            Ok(result) => result,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Err(StoreError::NotADatabase { path, detail: format!("the database engine failed reading it: {what}") })
            }
        }
    }

    fn create(path: PathBuf, options: StoreOptions) -> Result<(Self, DeltaStorage, Opened), StoreError> {
        let start = Instant::now();
        let base = options.generator.build().map_err(|e| StoreError::Io {
            path: path.clone(),
            error: std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()),
        })?;
        let generated = start.elapsed();
        let storage = DeltaStorage::new(base, options.config.clone());
        let header = Header {
            bounds: storage.bounds(),
            generator: Some(options.generator.clone()),
            palette: options.palette.clone(),
        };
        // Written beside the target and renamed into place: a crash while
        // creating leaves no half-written world under the name.
        let mut tmp = path.clone().into_os_string();
        tmp.push(".creating");
        let tmp = PathBuf::from(tmp);
        let io = |error| StoreError::Io { path: tmp.clone(), error };
        if tmp.exists() {
            std::fs::remove_file(&tmp).map_err(io)?;
        }
        let db = builder(&options).create(&tmp).map_err(|e| database(&tmp, e))?;
        writer::write_snapshot(&db, &tmp, Some(&header), &storage.snapshot())?;
        drop(db);
        std::fs::rename(&tmp, &path).map_err(|error| StoreError::Io { path: path.clone(), error })?;
        let store = Self::start(path, header, 0, Vec::new(), &options)?;
        let written = start.elapsed() - generated;
        Ok((store, storage, Opened::Created { generated, written }))
    }

    fn load(path: PathBuf, options: StoreOptions) -> Result<(Self, DeltaStorage, Opened), StoreError> {
        let start = Instant::now();
        let loaded = match builder(&options).open_read_only(&path) {
            Ok(db) => Self::read(&db, &path, &options)?,
            // A file whose writer did not close it (a crash, a kill): redb opens
            // such a file only for writing, which writes it. Its recovery runs
            // over an in-memory layer of writes (see `recover.rs`), so a damaged
            // file is never written, no copy is made, and nothing is left
            // behind if the process dies meanwhile.
            Err(redb::DatabaseError::RepairAborted) => {
                let backend = CopyOnWrite::open(&path).map_err(|error| StoreError::Io { path: path.clone(), error })?;
                let db = builder(&options)
                    .set_repair_callback(|session| session.abort())
                    .create_with_backend(backend)
                    .map_err(|e| database(&path, e))?;
                Self::read(&db, &path, &options)?
            }
            Err(e) => return Err(database(&path, e)),
        };
        let Loaded { header, storage, pending, replayed } = loaded;
        let sequence = storage.sequence();
        let store = Self::start(path, header, sequence, pending, &options)?;
        Ok((store, storage, Opened::Loaded { sequence, replayed, took: start.elapsed() }))
    }

    /// Reads and checks every record of an opened database, and rebuilds the
    /// world. Nothing is written.
    fn read(db: &impl ReadableDatabase, path: &Path, options: &StoreOptions) -> Result<Loaded, StoreError> {
        let path = path.to_path_buf();
        let read = db.begin_read().map_err(|e| not_a_database(&path, e))?;
        let meta = match read.open_table(META) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Err(StoreError::NotAWorldStore { path }),
            Err(e) => return Err(not_a_database(&path, e)),
        };
        let corrupt = |record, error| StoreError::Corrupt { path: path.clone(), record, error };
        let header_bytes = meta.get(HEADER_KEY).map_err(|e| not_a_database(&path, e))?;
        let Some(header_bytes) = header_bytes else { return Err(StoreError::NotAWorldStore { path }) };
        let header = match format::decode_header(header_bytes.value()) {
            Ok(Ok(h)) => h,
            Ok(Err(found)) => {
                return Err(StoreError::FormatVersion { path, found, supported: format::FORMAT_VERSION });
            }
            Err(e) => return Err(corrupt(Record::Header, e)),
        };
        let checkpoint = meta
            .get(CHECKPOINT_KEY)
            .map_err(|e| not_a_database(&path, e))?
            .ok_or(StoreError::NotAWorldStore { path: path.clone() })
            .and_then(|b| format::decode_checkpoint(b.value()).map_err(|e| corrupt(Record::Checkpoint, e)))?;
        // The nodes, decoded (and their bricks built) on every core.
        let nodes_table = read.open_table(NODES).map_err(|e| not_a_database(&path, e))?;
        let mut records: Vec<(u64, Vec<u8>)> = Vec::new();
        for entry in nodes_table.iter().map_err(|e| not_a_database(&path, e))? {
            let (k, v) = entry.map_err(|e| not_a_database(&path, e))?;
            records.push((k.value(), v.value().to_vec()));
        }
        let base = crate::codec::world::build(header.bounds, &records).map_err(|e| match e {
            BuildError::Node(level, code, error) => corrupt(Record::Node { level, code }, error),
            BuildError::Bounds => {
                corrupt(Record::Header, DecodeError::Invalid("world bounds outside the addressable range"))
            }
        })?;
        let mut storage = DeltaStorage::resume(base, options.config.clone(), checkpoint);
        let log = read.open_table(LOG).map_err(|e| not_a_database(&path, e))?;
        let mut replayed = 0;
        // The log's changes are not in the stored bricks yet: the writer's next
        // checkpoint must fold them in with its own.
        let mut pending = Vec::new();
        for entry in log.iter().map_err(|e| not_a_database(&path, e))? {
            let (k, v) = entry.map_err(|e| not_a_database(&path, e))?;
            let first = k.value();
            let batch = crate::codec::decode_batch(v.value(), header.bounds, options.max_batch)
                .map_err(|e| corrupt(Record::Log { first }, e))?;
            if batch.first_sequence() != first {
                return Err(corrupt(Record::Log { first }, DecodeError::Invalid("entry keyed by another sequence")));
            }
            match storage.apply_changes(&batch) {
                Ok(()) => {
                    replayed += 1;
                    pending.push(batch);
                }
                Err(FeedError::Gap { expected, found }) => return Err(StoreError::LogGap { path, expected, found }),
                Err(_) => {
                    return Err(corrupt(Record::Log { first }, DecodeError::Invalid("change outside the world")));
                }
            }
        }
        Ok(Loaded { header, storage, pending, replayed })
    }

    /// Opens the checked file for writing and starts the writer.
    fn start(
        path: PathBuf,
        header: Header,
        sequence: u64,
        logged: Vec<ChangeBatch>,
        options: &StoreOptions,
    ) -> Result<Self, StoreError> {
        // Every commit of this crate leaves the allocator state in the file, so a
        // file that needs a repair was not written by it: refuse, don't repair.
        let db = builder(options)
            .set_repair_callback(|session| session.abort())
            .open(&path)
            .map_err(|e| database(&path, e))?;
        let shared = Arc::new(Shared::new(sequence));
        let (tx, rx) = std::sync::mpsc::sync_channel(options.queue_capacity.max(1));
        let mut state = writer::Writer::new(db, path.clone(), header.bounds, sequence, options, Arc::clone(&shared));
        for batch in &logged {
            state.note_logged(batch);
        }
        let thread = std::thread::Builder::new()
            .name("delta_overlay store".into())
            .spawn(move || state.run(rx))
            .map_err(|error| StoreError::Io { path: path.clone(), error })?;
        Ok(Self { path, header, shared, tx: Some(tx), thread: Some(thread) })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The palette's RON text kept in the header, if any.
    pub fn palette(&self) -> Option<&str> {
        self.header.palette.as_deref()
    }

    /// The generator the world was created from, if it was generated.
    pub fn generator(&self) -> Option<&WorldGen> {
        self.header.generator.as_ref()
    }

    /// The highest sequence number on disk: every change up to it survives a
    /// crash (as [`Durability`] says). O(1).
    pub fn durable(&self) -> u64 {
        self.shared.durable.load(Ordering::Acquire)
    }

    /// The writer's error, if it stopped; it stays stopped.
    pub fn error(&self) -> Option<String> {
        self.shared.error.lock().ok().and_then(|e| e.as_ref().map(|e| e.to_string()))
    }

    /// Hands a drained batch of `storage`'s changes to the writer, which commits
    /// it on its thread (batches queued meanwhile share one transaction).
    /// Returns at once; [`durable`](Self::durable) says when it is on disk.
    ///
    /// When the batch is incomplete (the feed overflowed) or the queue is full,
    /// a snapshot of `storage` is handed over instead and written as a full
    /// checkpoint: nothing is lost, and the frame does not wait.
    ///
    /// # Errors
    /// [`StoreError::WriterStopped`] after the writer failed; see
    /// [`error`](Self::error).
    pub fn commit(&mut self, batch: impl Into<Arc<ChangeBatch>>, storage: &mut DeltaStorage) -> Result<(), StoreError> {
        let batch = batch.into();
        self.check()?;
        if batch.is_empty() {
            return Ok(());
        }
        let tx = self.tx.as_ref().ok_or(StoreError::WriterStopped { path: self.path.clone() })?;
        if batch.is_complete() && !self.shared.snapshot_pending() {
            match tx.try_send(Command::Batch(batch)) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Disconnected(_)) => {
                    return Err(StoreError::WriterStopped { path: self.path.clone() });
                }
                Err(TrySendError::Full(_)) => {}
            }
        }
        self.shared.put_snapshot(storage.snapshot());
        Ok(())
    }

    /// Asks the writer to fold the log into the stored bricks now (it also does
    /// so on its own every `checkpoint_every` changes).
    ///
    /// # Errors
    /// [`StoreError::WriterStopped`] after the writer failed.
    pub fn checkpoint(&mut self) -> Result<(), StoreError> {
        self.check()?;
        let tx = self.tx.as_ref().ok_or(StoreError::WriterStopped { path: self.path.clone() })?;
        // A full queue has a checkpoint coming anyway.
        match tx.try_send(Command::Checkpoint) {
            Ok(()) | Err(TrySendError::Full(_)) => Ok(()),
            Err(TrySendError::Disconnected(_)) => Err(StoreError::WriterStopped { path: self.path.clone() }),
        }
    }

    /// Waits until everything handed over so far is on disk and synced, and
    /// returns the durable sequence number. A clean shutdown calls this.
    ///
    /// # Errors
    /// [`StoreError::WriterStopped`] after the writer failed.
    pub fn sync(&mut self) -> Result<u64, StoreError> {
        self.check()?;
        let tx = self.tx.as_ref().ok_or(StoreError::WriterStopped { path: self.path.clone() })?;
        let (reply, done) = std::sync::mpsc::channel();
        tx.send(Command::Sync(reply)).map_err(|_| StoreError::WriterStopped { path: self.path.clone() })?;
        let durable = done.recv().map_err(|_| StoreError::WriterStopped { path: self.path.clone() })?;
        self.check()?;
        Ok(durable)
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.shared.failed() { Err(StoreError::WriterStopped { path: self.path.clone() }) } else { Ok(()) }
    }
}

impl Drop for WorldStore {
    /// Commits what is queued, syncs, and stops the writer.
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Command::Shutdown);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn builder(options: &StoreOptions) -> redb::Builder {
    let mut b = redb::Database::builder();
    b.set_cache_size(options.cache_bytes);
    b
}

fn database(path: &Path, e: redb::DatabaseError) -> StoreError {
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

fn not_a_database(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::NotADatabase { path: path.to_path_buf(), detail: e.to_string() }
}
