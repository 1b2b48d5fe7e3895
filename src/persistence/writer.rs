//! The writer thread: group commits of change batches, checkpoints, syncs.
//!
//! # Invariants
//!
//! - `LOG_CAPPED`: no log entry holds more than `max_batch` changes; a larger
//!   batch is logged as consecutive entries.
//! - `WRITER_WATCHED`: the thread never ends silently: an error or a panic is
//!   put in [`Shared`] before it ends, and the handle checks it on every call.
//! - `NO_LOST_REQUEST`: a checkpoint request is a flag, not a queue slot.

use super::error::{Record, StoreError};
use super::format::{self, CHECKPOINT_KEY, HEADER_KEY, Header, LOG, META, NODES};
use super::options::{Durability, StoreOptions};
use super::shared::{Command, Shared};
use crate::base::{BaseIndex, BrickContent};
use crate::codec::world::brick_record;
use crate::codec::{DecodeError, decode_node, encode_batch};
use crate::coords::Aabb;
use crate::coords::brick::{BRICK_LOG2, BRICK_VOLUME, BrickKey, Clip, local_index};
use crate::hash::{FastMap, fast_map};
use crate::material::MaterialId;
use crate::storage::{ChangeBatch, WorldSnapshot};
use glam::IVec3;
use redb::{Database, ReadableDatabase, ReadableTable};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Commands handled in one transaction at most.
const GROUP: usize = 1024;

/// Brick records a checkpoint installs per transaction, alongside the log
/// commit of that moment: small enough to add a few milliseconds to it.
const INSTALL_CHUNK: usize = 384;

/// A checkpoint whose bricks are going in, a chunk per transaction.
struct Installing {
    sequence: u64,
    records: Records,
    next: usize,
}

/// Node records by key, as a checkpoint writes them.
type Records = Vec<(u64, Vec<u8>)>;

/// A checkpoint being prepared on its own thread: the brick records of the
/// world as of `sequence`.
struct Preparing {
    sequence: u64,
    /// Full checkpoints written since this one began: a newer full checkpoint
    /// makes it stale.
    epoch: u64,
    thread: std::thread::JoinHandle<Result<Records, StoreError>>,
}

/// The writer's state; lives on its thread.
pub(crate) struct Writer {
    db: Arc<Database>,
    path: PathBuf,
    bounds: Aabb,
    root_level: u32,
    durability: Durability,
    checkpoint_every: usize,
    /// The most changes one log entry holds (`LOG_CAPPED`).
    max_batch: usize,
    shared: Arc<Shared>,
    /// The last sequence number in the log (committed; synced unless `unsynced`).
    logged: u64,
    unsynced: bool,
    last_sync: Instant,
    /// Changes logged since the checkpoint, by brick (local brick coordinates).
    dirty: FastMap<IVec3, Vec<(u16, MaterialId)>>,
    since_checkpoint: usize,
    preparing: Option<Preparing>,
    installing: Option<Installing>,
    /// Full checkpoints written so far.
    epoch: u64,
}

impl Writer {
    pub fn new(
        db: Database,
        path: PathBuf,
        bounds: Aabb,
        logged: u64,
        options: &StoreOptions,
        shared: Arc<Shared>,
    ) -> Self {
        Self {
            db: Arc::new(db),
            path,
            bounds,
            root_level: BaseIndex::check_bounds(bounds).unwrap_or(BRICK_LOG2),
            durability: options.durability,
            checkpoint_every: options.checkpoint_every.max(1),
            max_batch: options.max_batch.max(1),
            shared,
            logged,
            unsynced: false,
            last_sync: Instant::now(),
            dirty: fast_map(),
            since_checkpoint: 0,
            preparing: None,
            installing: None,
            epoch: 0,
        }
    }

    /// Remembers a logged batch's changes for the next checkpoint (the log
    /// found at open goes through here too: it is not in the bricks yet).
    pub fn note_logged(&mut self, b: &ChangeBatch) {
        for c in b.changes() {
            let q = c.position - self.bounds.min;
            let brick = q >> BRICK_LOG2 as i32;
            self.dirty.entry(brick).or_default().push((local_index(q) as u16, c.material));
        }
        self.since_checkpoint += b.len();
    }

    /// Serves commands until shut down or disconnected; any failure stops it
    /// (what was synced stays on disk, the handle reports the error). A
    /// checkpoint still being prepared is waited for, so the database is
    /// closed when this returns.
    pub fn run(mut self, rx: Receiver<Command>) {
        // A panic (a bug, a thread the system would not start) is an error
        // like any other (`WRITER_WATCHED`); the database closes as it unwinds.
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.serve(&rx))) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => self.shared.fail(e),
            Err(panic) => {
                let detail = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "no message".into());
                self.shared.fail(StoreError::WriterPanicked { path: self.path.clone(), detail });
            }
        }
        if let Some(p) = self.preparing.take() {
            let _ = p.thread.join();
        }
    }

    fn serve(&mut self, rx: &Receiver<Command>) -> Result<(), StoreError> {
        let tick = match self.durability {
            Durability::EveryCommit => Duration::from_millis(20),
            Durability::Interval(d) => d.clamp(Duration::from_millis(1), Duration::from_millis(20)),
        };
        loop {
            #[cfg(test)]
            drop(self.shared.faults.pause.lock());
            let first = match rx.recv_timeout(tick) {
                Ok(c) => Some(c),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => Some(Command::Shutdown),
            };
            let (mut batches, mut syncs, mut shutdown, mut checkpoint) = (Vec::new(), Vec::new(), false, false);
            let mut states = Vec::new();
            for command in first.into_iter().chain(std::iter::from_fn(|| rx.try_recv().ok())).take(GROUP) {
                match command {
                    Command::Batch(b) => batches.push(b),
                    Command::Wake => {}
                    Command::Sync(reply) => syncs.push(reply),
                    Command::Shutdown => shutdown = true,
                    Command::State(name, sequence, bytes) => states.push((name, sequence, bytes)),
                }
            }
            checkpoint |= self.shared.take_checkpoint_request();
            if let Some(snapshot) = self.shared.take_snapshot() {
                self.full_checkpoint(&snapshot)?;
            }
            // What a full checkpoint holds already is not logged again.
            batches = batches.into_iter().filter_map(|b| after(&b, self.logged)).collect();
            if self.preparing.as_ref().is_some_and(|p| p.thread.is_finished() || shutdown) {
                self.prepared()?;
            }
            // One transaction for the batches and a chunk of the checkpoint
            // going in; at shutdown, the whole of it.
            loop {
                if !batches.is_empty() || self.installing.is_some() {
                    self.commit_step(&batches)?;
                    batches.clear();
                }
                if !shutdown || self.installing.is_none() {
                    break;
                }
            }
            // After the batches handed over before them.
            self.write_states(&states)?;
            if checkpoint || self.since_checkpoint >= self.checkpoint_every {
                self.begin_checkpoint()?;
                if shutdown {
                    // A clean close leaves a short log: fold it now.
                    self.prepared()?;
                    while self.installing.is_some() {
                        self.commit_step(&[])?;
                    }
                }
            }
            if let Durability::Interval(d) = self.durability
                && self.unsynced
                && self.last_sync.elapsed() >= d
            {
                self.sync()?;
            }
            if !syncs.is_empty() || shutdown {
                self.sync()?;
                for reply in syncs {
                    let _ = reply.send(self.logged);
                }
            }
            if shutdown {
                return Ok(());
            }
        }
    }

    /// Writes states handed over (compressed here), in one transaction.
    fn write_states(&mut self, states: &[(String, u64, Option<Vec<u8>>)]) -> Result<(), StoreError> {
        if states.is_empty() {
            return Ok(());
        }
        let immediate = self.immediate_now();
        let txn = self.begin(immediate)?;
        {
            let mut table = txn.open_table(super::states::STATES).map_err(|e| failed(&self.path, e))?;
            for (name, sequence, bytes) in states {
                match bytes {
                    Some(bytes) => {
                        let record = super::states::encode(*sequence, bytes);
                        table.insert(name.as_str(), record.as_slice()).map_err(|e| failed(&self.path, e))?;
                    }
                    None => {
                        table.remove(name.as_str()).map_err(|e| failed(&self.path, e))?;
                    }
                }
            }
        }
        self.commit(txn, immediate)
    }

    fn begin(&self, immediate: bool) -> Result<redb::WriteTransaction, StoreError> {
        let mut txn = self.db.begin_write().map_err(|e| failed(&self.path, e))?;
        // The allocator state goes into every commit: a crash then needs no
        // repair, so the next open can check the file without writing it.
        txn.set_quick_repair(true);
        let durability = if immediate { redb::Durability::Immediate } else { redb::Durability::None };
        txn.set_durability(durability).map_err(|e| failed(&self.path, e))?;
        Ok(txn)
    }

    fn commit(&mut self, txn: redb::WriteTransaction, immediate: bool) -> Result<(), StoreError> {
        txn.commit().map_err(|e| failed(&self.path, e))?;
        if immediate {
            self.unsynced = false;
            self.last_sync = Instant::now();
            self.shared.durable.store(self.logged, Ordering::Release);
        } else {
            self.unsynced = true;
        }
        Ok(())
    }

    fn immediate_now(&self) -> bool {
        match self.durability {
            Durability::EveryCommit => true,
            Durability::Interval(d) => self.last_sync.elapsed() >= d,
        }
    }

    /// One transaction: `batches` appended to the log, and the next chunk of
    /// the checkpoint being installed; with its last chunk, the log trimmed up
    /// to the checkpoint and the checkpoint moved (synced whatever the mode:
    /// the trim must never outrun the bricks).
    fn commit_step(&mut self, batches: &[Arc<ChangeBatch>]) -> Result<(), StoreError> {
        let finishing = self.installing.as_ref().is_some_and(|i| i.next + INSTALL_CHUNK >= i.records.len());
        let immediate = finishing || self.immediate_now();
        let txn = self.begin(immediate)?;
        {
            let mut log = txn.open_table(LOG).map_err(|e| failed(&self.path, e))?;
            for b in batches {
                if b.first_sequence() != self.logged + 1 {
                    return Err(StoreError::LogGap {
                        path: self.path.clone(),
                        expected: self.logged + 1,
                        found: b.first_sequence(),
                    });
                }
                // `LOG_CAPPED`: a larger batch goes in as consecutive entries.
                if b.len() <= self.max_batch {
                    log.insert(b.first_sequence(), encode_batch(b, self.bounds).as_slice())
                        .map_err(|e| failed(&self.path, e))?;
                } else {
                    for (i, part) in b.changes().chunks(self.max_batch).enumerate() {
                        let first = b.first_sequence() + (i * self.max_batch) as u64;
                        let entry = encode_batch(&ChangeBatch::new(first, part.to_vec()), self.bounds);
                        log.insert(first, entry.as_slice()).map_err(|e| failed(&self.path, e))?;
                    }
                }
                self.logged = b.last_sequence();
                self.note_logged(b);
            }
            if let Some(installing) = &mut self.installing {
                let mut nodes = txn.open_table(NODES).map_err(|e| failed(&self.path, e))?;
                let end = (installing.next + INSTALL_CHUNK).min(installing.records.len());
                for (key, record) in &installing.records[installing.next..end] {
                    nodes.insert(*key, record.as_slice()).map_err(|e| failed(&self.path, e))?;
                }
                installing.next = end;
                if finishing {
                    // Every brick of the checkpoint is in: what the log holds up
                    // to it is in the bricks, and may go.
                    log.retain_in(..=installing.sequence, |_, _| false).map_err(|e| failed(&self.path, e))?;
                    let mut meta = txn.open_table(META).map_err(|e| failed(&self.path, e))?;
                    meta.insert(CHECKPOINT_KEY, format::encode_checkpoint(installing.sequence).as_slice())
                        .map_err(|e| failed(&self.path, e))?;
                }
            }
        }
        self.commit(txn, immediate)?;
        if finishing {
            self.installing = None;
        }
        Ok(())
    }

    /// Syncs what was committed without a sync.
    fn sync(&mut self) -> Result<(), StoreError> {
        if !self.unsynced {
            return Ok(());
        }
        let txn = self.begin(true)?;
        self.commit(txn, true)
    }

    /// Starts folding the changes logged so far into the stored bricks, on a
    /// thread of its own that reads through a read transaction: commits go on
    /// meanwhile, and the bricks then go in a chunk per commit (see
    /// `commit_step`). One checkpoint at a time.
    ///
    /// Installing in chunks is safe because the log keeps every change after
    /// the checkpoint until the last chunk is in: replaying the log in order
    /// gives each voxel its last logged value whether or not its brick was
    /// folded already, and voxels without a logged change read the same from a
    /// folded brick or an old one.
    fn begin_checkpoint(&mut self) -> Result<(), StoreError> {
        if self.preparing.is_some() || self.installing.is_some() || self.dirty.is_empty() {
            return Ok(());
        }
        let dirty = std::mem::replace(&mut self.dirty, fast_map());
        self.since_checkpoint = 0;
        let (db, path, bounds, root_level) = (Arc::clone(&self.db), self.path.clone(), self.bounds, self.root_level);
        let spawned = std::thread::Builder::new().name("delta_overlay checkpoint".into()).spawn(move || {
            let read = db.begin_read().map_err(|e| failed(&path, e))?;
            let nodes = read.open_table(NODES).map_err(|e| failed(&path, e))?;
            let mut bricks: Vec<_> = dirty.into_iter().collect();
            bricks.sort_unstable_by_key(|(b, _)| BrickKey::of_brick(*b).code());
            let mut records = Vec::with_capacity(bricks.len());
            for (brick, changes) in bricks {
                let mut voxels = stored_brick(&nodes, &path, root_level, brick)?;
                for (local, m) in changes {
                    voxels[usize::from(local)] = m;
                }
                let min = brick << BRICK_LOG2 as i32;
                records.push((format::node_key(BRICK_LOG2, min), brick_record(&voxels, Clip::of(min, bounds.size()))));
            }
            Ok(records)
        });
        // Without a thread the fold's changes are gone from `dirty`: stop
        // before a later checkpoint could trim them from the log unfolded
        // (the log still holds them, so nothing acknowledged is lost).
        let thread = spawned.map_err(|error| StoreError::Io { path: self.path.clone(), error })?;
        self.preparing = Some(Preparing { sequence: self.logged, epoch: self.epoch, thread });
        Ok(())
    }

    /// Takes a prepared checkpoint's records to install, unless a full
    /// checkpoint superseded it (the log still holds its changes).
    fn prepared(&mut self) -> Result<(), StoreError> {
        let Some(p) = self.preparing.take() else { return Ok(()) };
        let records = match p.thread.join() {
            Ok(result) => result?,
            Err(_) => return Err(failed(&self.path, "the checkpoint thread panicked")),
        };
        if p.epoch == self.epoch {
            self.installing = Some(Installing { sequence: p.sequence, records, next: 0 });
        }
        Ok(())
    }

    /// Rewrites the world from a snapshot: every node, an empty log, the
    /// checkpoint at the snapshot's sequence, in one synced transaction.
    fn full_checkpoint(&mut self, snapshot: &WorldSnapshot) -> Result<(), StoreError> {
        #[cfg(test)]
        if self.shared.faults.panic_in_full_checkpoint.load(Ordering::Acquire) {
            panic!("injected: a thread could not be spawned");
        }
        self.logged = write_snapshot(&self.db, &self.path, None, snapshot)?;
        self.epoch += 1;
        self.installing = None;
        self.dirty.clear();
        self.since_checkpoint = 0;
        self.unsynced = false;
        self.last_sync = Instant::now();
        self.shared.durable.store(self.logged, Ordering::Release);
        Ok(())
    }
}

/// A brick's stored voxels: its own record, or the uniform node above it.
fn stored_brick(
    nodes: &impl ReadableTable<u64, &'static [u8]>,
    path: &Path,
    root_level: u32,
    brick: IVec3,
) -> Result<Box<[MaterialId; BRICK_VOLUME]>, StoreError> {
    let min = brick << BRICK_LOG2 as i32;
    for level in BRICK_LOG2..=root_level {
        let node_min = (min >> level as i32) << level as i32;
        let key = format::node_key(level, node_min);
        let Some(bytes) = nodes.get(key).map_err(|e| failed(path, e))? else { continue };
        let (_, code, _) = format::node_of_key(key);
        let corrupt =
            |error| StoreError::Corrupt { path: path.to_path_buf(), record: Record::Node { level, code }, error };
        return match decode_node(bytes.value()).map_err(corrupt)? {
            BrickContent::Dense(b) if level == BRICK_LOG2 => Ok(Box::new(*b.voxels())),
            BrickContent::Uniform(m) => Ok(Box::new([m; BRICK_VOLUME])),
            _ => Err(corrupt(DecodeError::Invalid("a brick above the brick level"))),
        };
    }
    Err(StoreError::Corrupt {
        path: path.to_path_buf(),
        record: Record::Node { level: BRICK_LOG2, code: BrickKey::of_brick(brick).code() },
        error: DecodeError::Invalid("no stored node covers this brick"),
    })
}

/// The part of `b` after sequence `s`, if any (`b` complete).
pub(crate) fn after(b: &Arc<ChangeBatch>, s: u64) -> Option<Arc<ChangeBatch>> {
    if b.last_sequence() <= s {
        return None;
    }
    if b.first_sequence() > s {
        return Some(Arc::clone(b));
    }
    let skip = (s + 1 - b.first_sequence()) as usize;
    Some(Arc::new(ChangeBatch::new(s + 1, b.changes()[skip..].to_vec())))
}

/// Writes a whole world (and the header, when given) in one synced
/// transaction, replacing every node and log entry; returns its sequence.
pub(crate) fn write_snapshot(
    db: &Database,
    path: &Path,
    header: Option<&Header>,
    snapshot: &WorldSnapshot,
) -> Result<u64, StoreError> {
    let mut txn = db.begin_write().map_err(|e| failed(path, e))?;
    txn.set_quick_repair(true);
    txn.set_durability(redb::Durability::Immediate).map_err(|e| failed(path, e))?;
    {
        let mut meta = txn.open_table(META).map_err(|e| failed(path, e))?;
        if let Some(h) = header {
            meta.insert(HEADER_KEY, format::encode_header(h).as_slice()).map_err(|e| failed(path, e))?;
        }
        let mut nodes = txn.open_table(NODES).map_err(|e| failed(path, e))?;
        nodes.retain(|_, _| false).map_err(|e| failed(path, e))?;
        let mut result = Ok(());
        crate::codec::world::for_each_record(snapshot, |key, record| {
            if result.is_ok() {
                result = nodes.insert(key, record.as_slice()).map(|_| ());
            }
        });
        result.map_err(|e| failed(path, e))?;
        let mut log = txn.open_table(LOG).map_err(|e| failed(path, e))?;
        log.retain(|_, _| false).map_err(|e| failed(path, e))?;
        meta.insert(CHECKPOINT_KEY, format::encode_checkpoint(snapshot.sequence()).as_slice())
            .map_err(|e| failed(path, e))?;
    }
    txn.commit().map_err(|e| failed(path, e))?;
    Ok(snapshot.sequence())
}

fn failed(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Database { path: path.to_path_buf(), detail: e.to_string() }
}
