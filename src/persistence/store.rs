//! Opening, creating and loading a world store; the handle the caller keeps.

use super::error::{Mismatch, Record, StoreError, database, not_a_database};
use super::format::{self, CHECKPOINT_KEY, HEADER_KEY, Header, LOG, META, NODES};
use super::options::expect_same_world;
use super::options::{Opened, StoreOptions};
use super::recover::CopyOnWrite;
use super::shared::{Command, Shared};
use super::states::{self, States};
use super::writer;
use crate::codec::DecodeError;
use crate::codec::world::BuildError;
use crate::storage::{ChangeBatch, DeltaStorage, FeedError};
use crate::worldgen::WorldGen;
use redb::{ReadableDatabase, ReadableTable};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::Instant;

/// What reading a file gives.
struct Loaded {
    header: Header,
    storage: DeltaStorage,
    /// The log's batches, not in the stored nodes yet.
    pending: Vec<ChangeBatch>,
    replayed: usize,
    states: States,
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
    /// The last sequence number the writer was given, by a batch or a snapshot.
    handed: u64,
    /// The last sequence number the writer was given by a batch (or found in
    /// the file): no later batch may overlap it.
    by_batch: u64,
    pub(super) shared: Arc<Shared>,
    tx: Option<SyncSender<Command>>,
    pub(super) thread: Option<std::thread::JoinHandle<()>>,
    /// The states saved beside the world, as the file was opened.
    states: States,
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
        sync_parent(&path).map_err(|error| StoreError::Io { path: path.clone(), error })?;
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
        let Loaded { header, storage, pending, replayed, states } = loaded;
        let sequence = storage.sequence();
        let mut store = Self::start(path, header, sequence, pending, &options)?;
        store.states = states;
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
        if options.expect_same_world {
            expect_same_world(&header, options).map_err(|what| StoreError::Mismatch { path: path.clone(), what })?;
        }
        let checkpoint = meta
            .get(CHECKPOINT_KEY)
            .map_err(|e| not_a_database(&path, e))?
            .ok_or(StoreError::NotAWorldStore { path: path.clone() })
            .and_then(|b| format::decode_checkpoint(b.value()).map_err(|e| corrupt(Record::Checkpoint, e)))?;
        // The nodes, decoded (and their bricks built) on every core.
        let states = states::read(&read, &path)?;
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
        Ok(Loaded { header, storage, pending, replayed, states })
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
        let states = States::default();
        Ok(Self {
            path,
            header,
            handed: sequence,
            by_batch: sequence,
            shared,
            tx: Some(tx),
            thread: Some(thread),
            states,
        })
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
    /// crash (as [`Durability`](super::Durability) says). O(1).
    pub fn durable(&self) -> u64 {
        self.shared.durable.load(Ordering::Acquire)
    }

    /// The writer's error, if it stopped; it stays stopped.
    pub fn error(&self) -> Option<String> {
        self.shared.error.lock().ok().and_then(|e| e.as_ref().map(|e| e.to_string()))
    }

    /// The writer's error, typed, once it stopped (`None` while it runs): what
    /// [`error`](Self::error) says, as the [`StoreError`] it was
    /// ([`StoreError::WriterPanicked`] for a panic or a thread that ended).
    pub fn writer_error(&self) -> Option<StoreError> {
        let stopped = self.check().err()?;
        let recorded = self.shared.error.lock().ok().and_then(|e| e.as_ref().map(StoreError::duplicate));
        Some(recorded.unwrap_or(stopped))
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
    /// [`StoreError::Batch`] for a batch the file could not read back: a change
    /// outside the world, or a batch that does not start right after the last
    /// one handed over (nothing of it is logged, the store goes on);
    /// [`StoreError::Mismatch`] when `storage` is not the file's world;
    /// [`StoreError::WriterStopped`] after the writer failed (see
    /// [`error`](Self::error)).
    pub fn commit(&mut self, batch: impl Into<Arc<ChangeBatch>>, storage: &mut DeltaStorage) -> Result<(), StoreError> {
        let batch = batch.into();
        self.check()?;
        if batch.is_empty() {
            return Ok(());
        }
        if storage.bounds() != self.header.bounds {
            return Err(StoreError::Mismatch { path: self.path.clone(), what: Mismatch::Bounds });
        }
        let Some(batch) = self.admit(&batch)? else { return Ok(()) };
        let tx = self.tx.as_ref().ok_or(StoreError::WriterStopped { path: self.path.clone() })?;
        if batch.is_complete() && !self.shared.snapshot_pending() {
            let last = batch.last_sequence();
            match tx.try_send(Command::Batch(batch.clone())) {
                Ok(()) => {
                    (self.handed, self.by_batch) = (last, last);
                    return Ok(());
                }
                Err(TrySendError::Disconnected(_)) => {
                    self.check()?;
                    return Err(StoreError::WriterStopped { path: self.path.clone() });
                }
                Err(TrySendError::Full(_)) => {}
            }
        }
        // The snapshot holds the batch only if `storage` is where it came from.
        if storage.sequence() < batch.last_sequence() {
            let error = FeedError::Gap { expected: storage.sequence() + 1, found: batch.first_sequence() };
            return Err(StoreError::Batch { path: self.path.clone(), error });
        }
        self.shared.put_snapshot(storage.snapshot());
        self.handed = storage.sequence();
        Ok(())
    }

    /// Hands the writer the whole of `storage` (a snapshot, written as a full
    /// checkpoint) instead of its next batch: after a batch was refused (a
    /// feed drained elsewhere, a batch lost), the file catches up with the
    /// world, and the next batch is expected right after `storage`'s sequence.
    /// Returns at once, like [`commit`](Self::commit).
    ///
    /// # Errors
    /// [`StoreError::Mismatch`] when `storage` is not the file's world (other
    /// bounds); [`StoreError::Batch`] when it is behind what was handed over
    /// already (not the same history); [`StoreError::WriterStopped`] after the
    /// writer failed.
    pub fn resync(&mut self, storage: &DeltaStorage) -> Result<(), StoreError> {
        self.check()?;
        if storage.bounds() != self.header.bounds {
            return Err(StoreError::Mismatch { path: self.path.clone(), what: Mismatch::Bounds });
        }
        if storage.sequence() < self.handed {
            let error = FeedError::Gap { expected: self.handed + 1, found: storage.sequence() + 1 };
            return Err(StoreError::Batch { path: self.path.clone(), error });
        }
        self.shared.put_snapshot(storage.snapshot());
        self.handed = storage.sequence();
        let tx = self.tx.as_ref().ok_or(StoreError::WriterStopped { path: self.path.clone() })?;
        // Only a wake-up: a full queue wakes the writer anyway.
        match tx.try_send(Command::Wake) {
            Ok(()) | Err(TrySendError::Full(_)) => Ok(()),
            Err(TrySendError::Disconnected(_)) => Err(StoreError::WriterStopped { path: self.path.clone() }),
        }
    }

    /// The part of `batch` the writer does not hold yet (`None`: a snapshot
    /// handed over holds all of it), or why the file could not read it back
    /// (`COMMIT_CHECKED`). A batch may overlap what a snapshot handed over,
    /// never what a batch did.
    fn admit(&self, batch: &Arc<ChangeBatch>) -> Result<Option<Arc<ChangeBatch>>, StoreError> {
        let refuse = |error| StoreError::Batch { path: self.path.clone(), error };
        let (first, expected) = (batch.first_sequence(), self.handed + 1);
        if first > expected || first <= self.by_batch {
            return Err(refuse(FeedError::Gap { expected, found: first }));
        }
        if !batch.is_complete() {
            // Written as a snapshot of the storage: its changes are not logged.
            return Ok(Some(Arc::clone(batch)));
        }
        let bounds = self.header.bounds;
        if let Some((sequence, c)) = batch.iter().find(|(_, c)| !bounds.contains(c.position)) {
            return Err(refuse(FeedError::OutOfBounds { sequence, position: c.position }));
        }
        Ok(writer::after(batch, self.handed))
    }

    /// Asks the writer to fold the log into the stored bricks now (it also does
    /// so on its own every `checkpoint_every` changes). The request is a flag
    /// the writer reads on its next round: a full queue never drops it.
    ///
    /// # Errors
    /// [`StoreError::WriterStopped`] after the writer failed.
    pub fn checkpoint(&mut self) -> Result<(), StoreError> {
        self.check()?;
        let tx = self.tx.as_ref().ok_or(StoreError::WriterStopped { path: self.path.clone() })?;
        self.shared.request_checkpoint();
        // Only a wake-up: a full queue wakes the writer anyway.
        match tx.try_send(Command::Wake) {
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

    /// The channel to the writer (`None` once closed).
    pub(super) fn sender(&self) -> Option<&SyncSender<Command>> {
        self.tx.as_ref()
    }

    /// The states read when the file was opened.
    pub(super) fn states(&self) -> &States {
        &self.states
    }

    /// `Err` once the writer failed, panicked or ended (`WRITER_WATCHED`).
    pub(super) fn check(&self) -> Result<(), StoreError> {
        if !self.shared.failed() && self.thread.as_ref().is_some_and(|t| t.is_finished()) {
            // Only a shutdown ends it, and the handle has not asked for one.
            let detail = "the writer thread ended".to_string();
            self.shared.fail(StoreError::WriterPanicked { path: self.path.clone(), detail });
        }
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

/// Makes a rename into `path`'s directory durable: on Unix a directory entry
/// reaches the disk when the directory is synced, not when the file is.
pub(crate) fn sync_parent(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::File::open(parent)?.sync_all()?;
        #[cfg(test)]
        if let Ok(mut synced) = super::tests::DIRS_SYNCED.lock() {
            synced.push(parent.to_path_buf());
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
