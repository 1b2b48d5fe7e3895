//! A paged world's file (features `paging` and `persistence`): the edits,
//! and only the edits, in one redb file; the generator makes the rest.
//!
//! ```text
//! table "meta"  (&str -> record)
//!   "header"       the world store's header (format version, bounds, generator)
//!   "edit batch"   kind 7: [number: u64]  the last batch of edits the file holds
//! table "edit tiles" ((i32, i32) -> record)  key = tile (x, z) from the world's minimum
//!   kind 6: [edits: varint][raw bytes: varint][zstd of raw]
//!   raw = per edit, ascending: [index - previous index: varint][material: u16]
//!   index = (y - min.y) << 8 | (z - tile z) << 4 | (x - tile x)
//! ```
//!
//! A tile is 16 x 16 columns whatever the sector size, so the file does not
//! depend on how the world is paged. A batch of edits is merged into its
//! tiles by a writer thread, in one transaction with the batch's number,
//! synced before it is acknowledged; the pager reads a sector's tiles and
//! that number in one read transaction (the snapshot a sector is made from).
//!
//! # Invariants
//!
//! - `ACKNOWLEDGED_DURABLE`: [`SectorFile::acknowledged`] is a batch number
//!   whose transaction (and every earlier one) is synced.
//! - `CHECKED_AT_OPEN`: every record decodes at open, or the file is refused
//!   ([`StoreError::Corrupt`] names the tile), before anything is written.
//! - `DECODE_BOUNDED`: a tile's record decodes at most a tile's voxels, each
//!   inside the world, whatever its bytes say; its raw bytes are allocated
//!   only up to what the compressed bytes it holds can expand to.

use crate::codec::{DecodeError, Reader, Writer, compress, decompress, frame, unframe};
use crate::coords::Aabb;
use crate::hash::{FastMap, fast_map};
use crate::material::MaterialId;
use crate::persistence::error::{Mismatch, Record, StoreError, database, not_a_database};
use crate::persistence::format::{self, HEADER_KEY, Header, META};
use crate::persistence::recover::CopyOnWrite;
use crate::persistence::store::sync_parent;
use crate::worldgen::WorldGen;
use glam::IVec3;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

use super::edits::{FlushBatch, MAX_BATCH};

const TILES: TableDefinition<(i32, i32), &[u8]> = TableDefinition::new("edit tiles");
const BATCH_KEY: &str = "edit batch";
const TILE: u8 = 6;
const BATCH: u8 = 7;
/// Batches waiting for the writer at most: a flush past it waits for the
/// next one (its edits stay in memory), the frame never does.
const QUEUE: usize = 2;

/// Where a paged world's sectors read their edits from; shared with the
/// pager thread.
pub(super) struct FileSource {
    db: Arc<Database>,
    path: PathBuf,
    bounds: Aabb,
    /// The file's bytes on disk, measured at open and after each commit (a
    /// reader per frame makes no system call).
    file_bytes: AtomicU64,
}

impl FileSource {
    fn measure(&self) {
        let len = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        self.file_bytes.store(len, Ordering::Relaxed);
    }
}

/// A paged world's file: the source of its edits and the writer of new
/// ones; see the [module docs](self).
pub(super) struct SectorFile {
    pub source: Arc<FileSource>,
    jobs: Option<SyncSender<(u64, FlushBatch)>>,
    acknowledged: Arc<AtomicU64>,
    failed: Arc<Mutex<Option<StoreError>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SectorFile {
    /// Opens the file at `path` (creating it for the world `generator`
    /// makes), checks every record and starts the writer.
    pub fn open(path: &Path, generator: &WorldGen) -> Result<Self, StoreError> {
        let path = path.to_path_buf();
        if !path.exists() {
            create(&path, generator)?;
        }
        // The database engine panics on some damaged files rather than
        // returning an error: it becomes the error it should have been.
        let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&path, generator)));
        let (db, last) = opened.unwrap_or_else(|_| {
            Err(StoreError::NotADatabase { path: path.clone(), detail: "the database engine failed reading it".into() })
        })?;
        let source = Arc::new(FileSource {
            db: Arc::new(db),
            path: path.clone(),
            bounds: generator.bounds(),
            file_bytes: AtomicU64::new(0),
        });
        source.measure();
        let acknowledged = Arc::new(AtomicU64::new(last));
        let failed = Arc::new(Mutex::new(None));
        let (jobs, rx) = sync_channel(QUEUE);
        let writer = (Arc::clone(&source), Arc::clone(&acknowledged), Arc::clone(&failed));
        let thread = std::thread::Builder::new()
            .name("delta_overlay paged file".into())
            .spawn(move || run(&writer.0, rx, &writer.1, &writer.2))
            .map_err(|error| StoreError::Io { path, error })?;
        Ok(Self { source, jobs: Some(jobs), acknowledged, failed, thread: Some(thread) })
    }

    /// Hands batch `number` to the writer; `Ok(false)` when its queue is
    /// full (nothing is handed: the caller keeps the edits for later).
    pub fn hand(&self, number: u64, batch: FlushBatch) -> Result<bool, StoreError> {
        self.error()?;
        let Some(jobs) = &self.jobs else { return Err(self.stopped()) };
        match jobs.try_send((number, batch)) {
            Ok(()) => Ok(true),
            Err(TrySendError::Full(_)) => Ok(false),
            Err(TrySendError::Disconnected(_)) => Err(self.error().err().unwrap_or_else(|| self.stopped())),
        }
    }

    /// Hands batch `number` to the writer, waiting for room: for a close.
    pub fn hand_waiting(&self, number: u64, batch: FlushBatch) -> Result<(), StoreError> {
        self.error()?;
        let sent = self.jobs.as_ref().is_some_and(|jobs| jobs.send((number, batch)).is_ok());
        if sent { Ok(()) } else { Err(self.error().err().unwrap_or_else(|| self.stopped())) }
    }

    /// The last batch synced (`ACKNOWLEDGED_DURABLE`).
    pub fn acknowledged(&self) -> u64 {
        self.acknowledged.load(Ordering::Acquire)
    }

    /// What stopped the writer, if it stopped.
    pub fn error(&self) -> Result<(), StoreError> {
        match self.failed.lock().ok().and_then(|f| f.as_ref().map(StoreError::duplicate)) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn stopped(&self) -> StoreError {
        StoreError::WriterStopped { path: self.source.path.clone() }
    }

    /// The file's bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.source.file_bytes.load(Ordering::Relaxed)
    }
}

impl Drop for SectorFile {
    /// Lets the writer finish the batches handed to it, then joins it.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl FileSource {
    /// The edits of every tile in `sector`, and the number of the last batch
    /// the file held when they were read.
    pub fn read_sector(&self, sector: Aabb) -> Result<(u64, Vec<(IVec3, MaterialId)>), StoreError> {
        let path = &self.path;
        let read = self.db.begin_read().map_err(|e| not_a_database(path, e))?;
        let last = read_batch(&read, path)?;
        let tiles = read.open_table(TILES).map_err(|e| not_a_database(path, e))?;
        let (lo, hi) = (tile_of(self.bounds, sector.min), tile_of(self.bounds, sector.max - IVec3::ONE));
        let mut edits = Vec::new();
        for x in lo.0..=hi.0 {
            for entry in tiles.range((x, lo.1)..=(x, hi.1)).map_err(|e| not_a_database(path, e))? {
                let (k, v) = entry.map_err(|e| not_a_database(path, e))?;
                let (x, z) = k.value();
                decode_tile(v.value(), self.bounds, (x, z), |p, m| edits.push((p, m))).map_err(|error| {
                    StoreError::Corrupt { path: path.clone(), record: Record::EditTile { x, z }, error }
                })?;
            }
        }
        Ok((last, edits))
    }
}

impl super::sector::EditSource for FileSource {
    fn read(&self, sector: Aabb) -> Result<(u64, Vec<(IVec3, MaterialId)>), String> {
        self.read_sector(sector).map_err(|e| e.to_string())
    }
}

/// Writes the header and batch 0 beside `path`, then renames it into place.
fn create(path: &Path, generator: &WorldGen) -> Result<(), StoreError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".creating");
    let tmp = PathBuf::from(tmp);
    let io = |error| StoreError::Io { path: tmp.clone(), error };
    if tmp.exists() {
        std::fs::remove_file(&tmp).map_err(io)?;
    }
    let db = Database::create(&tmp).map_err(|e| database(&tmp, e))?;
    let header = Header { bounds: generator.bounds(), generator: Some(generator.clone()), palette: None };
    let failed = |e: &dyn std::fmt::Display| StoreError::Database { path: tmp.clone(), detail: e.to_string() };
    let txn = db.begin_write().map_err(|e| failed(&e))?;
    {
        let mut meta = txn.open_table(META).map_err(|e| failed(&e))?;
        meta.insert(HEADER_KEY, format::encode_header(&header).as_slice()).map_err(|e| failed(&e))?;
        meta.insert(BATCH_KEY, frame(BATCH, &0u64.to_le_bytes()).as_slice()).map_err(|e| failed(&e))?;
        txn.open_table(TILES).map_err(|e| failed(&e))?;
    }
    txn.commit().map_err(|e| failed(&e))?;
    drop(db);
    std::fs::rename(&tmp, path).map_err(|error| StoreError::Io { path: path.to_path_buf(), error })?;
    sync_parent(path).map_err(|error| StoreError::Io { path: path.to_path_buf(), error })
}

/// Checks the file's header and every tile (`CHECKED_AT_OPEN`) without
/// writing it (a file a crash left open is read through an in-memory layer
/// of the recovery's writes), then opens it for writing; the database and
/// its last batch.
fn check(path: &Path, generator: &WorldGen) -> Result<(Database, u64), StoreError> {
    let last = match Database::builder().open_read_only(path) {
        Ok(db) => check_records(&db, path, generator)?,
        Err(redb::DatabaseError::RepairAborted) => {
            let backend =
                CopyOnWrite::open(path).map_err(|error| StoreError::Io { path: path.to_path_buf(), error })?;
            let db = Database::builder()
                .set_repair_callback(|session| session.abort())
                .create_with_backend(backend)
                .map_err(|e| database(path, e))?;
            check_records(&db, path, generator)?
        }
        Err(e) => return Err(database(path, e)),
    };
    // Every commit leaves the allocator state in the file (quick repair):
    // one that needs a full repair was not written by this crate.
    let db =
        Database::builder().set_repair_callback(|session| session.abort()).open(path).map_err(|e| database(path, e))?;
    Ok((db, last))
}

fn check_records(db: &impl ReadableDatabase, path: &Path, generator: &WorldGen) -> Result<u64, StoreError> {
    let not_ours = || StoreError::NotAWorldStore { path: path.to_path_buf() };
    let read = db.begin_read().map_err(|e| not_a_database(path, e))?;
    let meta = match read.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Err(not_ours()),
        Err(e) => return Err(not_a_database(path, e)),
    };
    let header = meta.get(HEADER_KEY).map_err(|e| not_a_database(path, e))?.ok_or_else(not_ours)?;
    let corrupt = |record, error| StoreError::Corrupt { path: path.to_path_buf(), record, error };
    let header = match format::decode_header(header.value()) {
        Ok(Ok(h)) => h,
        Ok(Err(found)) => {
            return Err(StoreError::FormatVersion {
                path: path.to_path_buf(),
                found,
                supported: format::FORMAT_VERSION,
            });
        }
        Err(e) => return Err(corrupt(Record::Header, e)),
    };
    if header.generator.as_ref() != Some(generator) || header.bounds != generator.bounds() {
        return Err(StoreError::Mismatch { path: path.to_path_buf(), what: Mismatch::Generator });
    }
    if meta.get(BATCH_KEY).map_err(|e| not_a_database(path, e))?.is_none() {
        return Err(not_ours());
    }
    let last = read_batch(&read, path)?;
    let tiles = match read.open_table(TILES) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Err(not_ours()),
        Err(e) => return Err(not_a_database(path, e)),
    };
    for entry in tiles.range::<(i32, i32)>(..).map_err(|e| not_a_database(path, e))? {
        let (k, v) = entry.map_err(|e| not_a_database(path, e))?;
        let (x, z) = k.value();
        decode_tile(v.value(), header.bounds, (x, z), |_, _| {}).map_err(|e| corrupt(Record::EditTile { x, z }, e))?;
    }
    Ok(last)
}

fn read_batch(read: &redb::ReadTransaction, path: &Path) -> Result<u64, StoreError> {
    let meta = read.open_table(META).map_err(|e| not_a_database(path, e))?;
    let Some(bytes) = meta.get(BATCH_KEY).map_err(|e| not_a_database(path, e))? else { return Ok(0) };
    let corrupt = |error| StoreError::Corrupt { path: path.to_path_buf(), record: Record::EditBatch, error };
    let mut r = Reader::new(unframe(BATCH, bytes.value()).map_err(corrupt)?);
    let last = r.u64().map_err(corrupt)?;
    if !r.is_empty() {
        return Err(corrupt(DecodeError::Invalid("bytes after the batch number")));
    }
    // One a frame for billions of years does not reach it: a larger number
    // is damage, and would leave no numbers to go on with.
    if last >= MAX_BATCH {
        return Err(corrupt(DecodeError::Invalid("a batch number no file reaches")));
    }
    Ok(last)
}

/// The writer: merges each group of batches into their tiles in one synced
/// transaction, then acknowledges it. An error stops it (`failed`).
fn run(
    source: &FileSource,
    rx: Receiver<(u64, FlushBatch)>,
    acknowledged: &AtomicU64,
    failed: &Mutex<Option<StoreError>>,
) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while let Ok(more) = rx.try_recv() {
            group.push(more);
        }
        let last = group.iter().map(|(n, _)| *n).max().unwrap_or(0);
        let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| write(source, &group, last)))
            .unwrap_or_else(|_| {
                Err(StoreError::WriterPanicked { path: source.path.clone(), detail: "writing edits".into() })
            });
        match written {
            Ok(()) => {
                source.measure();
                acknowledged.store(last, Ordering::Release);
            }
            Err(e) => {
                if let Ok(mut f) = failed.lock() {
                    *f = Some(e);
                }
                return;
            }
        }
    }
}

/// One transaction: every batch of `group` (in order) merged into its
/// tiles, and `last` as the file's last batch.
fn write(source: &FileSource, group: &[(u64, FlushBatch)], last: u64) -> Result<(), StoreError> {
    let path = &source.path;
    let failed = |e: &dyn std::fmt::Display| StoreError::Database { path: path.clone(), detail: e.to_string() };
    let mut by_tile: FastMap<(i32, i32), BTreeMap<u64, u16>> = fast_map();
    for (_, batch) in group {
        for (p, m) in batch.iter().flat_map(|(_, edits)| edits.iter()) {
            let tile = tile_of(source.bounds, *p);
            by_tile.entry(tile).or_default().insert(index_of(source.bounds, *p), m.0);
        }
    }
    let mut txn = source.db.begin_write().map_err(|e| failed(&e))?;
    txn.set_quick_repair(true);
    txn.set_durability(redb::Durability::Immediate).map_err(|e| failed(&e))?;
    {
        let mut tiles = txn.open_table(TILES).map_err(|e| failed(&e))?;
        for ((x, z), edits) in by_tile {
            let mut merged = BTreeMap::new();
            if let Some(old) = tiles.get((x, z)).map_err(|e| failed(&e))? {
                decode_tile(old.value(), source.bounds, (x, z), |p, m| {
                    merged.insert(index_of(source.bounds, p), m.0);
                })
                .map_err(|error| StoreError::Corrupt {
                    path: path.clone(),
                    record: Record::EditTile { x, z },
                    error,
                })?;
            }
            merged.extend(edits);
            tiles.insert((x, z), encode_tile(&merged).as_slice()).map_err(|e| failed(&e))?;
        }
        let mut meta = txn.open_table(META).map_err(|e| failed(&e))?;
        meta.insert(BATCH_KEY, frame(BATCH, &last.to_le_bytes()).as_slice()).map_err(|e| failed(&e))?;
    }
    txn.commit().map_err(|e| failed(&e))
}

/// The tile holding `p`, in tiles from the world's minimum.
fn tile_of(bounds: Aabb, p: IVec3) -> (i32, i32) {
    let q = p - bounds.min;
    (q.x >> 4, q.z >> 4)
}

/// `p`'s index in its tile.
fn index_of(bounds: Aabb, p: IVec3) -> u64 {
    let q = p - bounds.min;
    (q.y as u64) << 8 | ((q.z & 15) as u64) << 4 | (q.x & 15) as u64
}

fn encode_tile(edits: &BTreeMap<u64, u16>) -> Vec<u8> {
    let mut raw = Writer::default();
    let mut previous = 0;
    for (&index, &m) in edits {
        raw.varint(index - previous);
        raw.u16(m);
        previous = index;
    }
    let mut w = Writer::default();
    w.varint(edits.len() as u64);
    w.varint(raw.bytes.len() as u64);
    w.bytes.extend_from_slice(&compress(&raw.bytes, 1));
    frame(TILE, &w.bytes)
}

/// Calls `f` with every edit of tile `tile`'s record (`DECODE_BOUNDED`).
fn decode_tile(
    record: &[u8],
    bounds: Aabb,
    tile: (i32, i32),
    mut f: impl FnMut(IVec3, MaterialId),
) -> Result<(), DecodeError> {
    let mut r = Reader::new(unframe(TILE, record)?);
    let height = bounds.size().y.max(0) as u64;
    let count = r.bounded(256 * height, "more edits than the tile has voxels")?;
    // An edit is at most a 10-byte varint and a material.
    let raw_len = r.bounded(count * 12, "raw bytes longer than the edits can take")?;
    // zstd's best ratio is about 1:32,000: a length past it was not written
    // here, and is refused before it is allocated.
    if raw_len > (r.remaining().len() as u64).saturating_mul(1 << 15) {
        return Err(DecodeError::Invalid("raw bytes beyond what the record holds"));
    }
    let raw = decompress(r.remaining(), raw_len as usize)?;
    let mut raw = Reader::new(&raw);
    // The tile's corner, checked before anything is computed from it.
    let corner = (i64::from(bounds.min.x) + i64::from(tile.0) * 16, i64::from(bounds.min.z) + i64::from(tile.1) * 16);
    if tile.0 < 0 || tile.1 < 0 || corner.0 >= i64::from(bounds.max.x) || corner.1 >= i64::from(bounds.max.z) {
        return Err(DecodeError::Invalid("a tile outside the world"));
    }
    let corner = IVec3::new(corner.0 as i32, bounds.min.y, corner.1 as i32);
    let mut index = 0u64;
    for i in 0..count {
        let step = raw.varint()?;
        if i > 0 && step == 0 {
            return Err(DecodeError::Invalid("edits not in ascending order"));
        }
        index = index.checked_add(step).ok_or(DecodeError::Invalid("edit index past the tile"))?;
        let m = MaterialId(raw.u16()?);
        if index >> 8 >= height {
            return Err(DecodeError::Invalid("edit above the world"));
        }
        let p = corner + IVec3::new((index & 15) as i32, (index >> 8) as i32, (index >> 4 & 15) as i32);
        if !bounds.contains(p) {
            return Err(DecodeError::Invalid("edit outside the world"));
        }
        f(p, m);
    }
    if !raw.is_empty() {
        return Err(DecodeError::Invalid("bytes after the edits"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tile_round_trips_and_hostile_counts_are_refused_before_allocating() {
        let bounds = Aabb::new(IVec3::new(-40, -8, 16), IVec3::new(60, 56, 100));
        let edits: BTreeMap<u64, u16> = [(0, 3), (5, 1), (0x3f_ff, 9)].into_iter().collect();
        let record = encode_tile(&edits);
        let mut back = BTreeMap::new();
        decode_tile(&record, bounds, (2, 1), |p, m| {
            back.insert(index_of(bounds, p), m.0);
        })
        .unwrap();
        assert_eq!(back, edits);
        // A count past the tile's voxels, and raw bytes past what the count
        // can take: refused by their bounds, not by running out of memory.
        let mut w = Writer::default();
        w.varint(u64::MAX / 2);
        let huge = frame(TILE, &w.bytes);
        assert!(matches!(decode_tile(&huge, bounds, (0, 0), |_, _| {}), Err(DecodeError::Invalid(_))));
        let mut w = Writer::default();
        w.varint(1);
        w.varint(1 << 40);
        let long = frame(TILE, &w.bytes);
        assert!(matches!(decode_tile(&long, bounds, (0, 0), |_, _| {}), Err(DecodeError::Invalid(_))));
        // In a world 2^20 voxels high a tile may hold 2^28 edits: raw bytes
        // the count allows but four bytes cannot hold are refused unallocated.
        let tall = Aabb::new(IVec3::ZERO, IVec3::new(16, 1 << 20, 16));
        let mut w = Writer::default();
        w.varint(1 << 28);
        w.varint(3 << 30);
        w.bytes.extend_from_slice(&[0x28, 0xb5, 0x2f, 0xfd]);
        let inflated = frame(TILE, &w.bytes);
        assert!(matches!(decode_tile(&inflated, tall, (0, 0), |_, _| {}), Err(DecodeError::Invalid(_))));
        // An edit in a partial tile past the world's edge.
        let outside: BTreeMap<u64, u16> = [(15, 1)].into_iter().collect();
        assert!(decode_tile(&encode_tile(&outside), bounds, (6, 0), |_, _| {}).is_err());
    }
}
