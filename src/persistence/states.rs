//! Opaque states saved beside the world (the geology processes' random
//! numbers, queues and memory), each under a name, with the sequence number
//! of the world it belongs to.
//!
//! ```text
//! table "states" (&str -> record)  key = the state's name
//!   kind 6: [sequence: u64][length: varint][zstd of the state's bytes]
//! ```
//!
//! A state is written by the writer thread in its own transaction, after the
//! batches handed over before it (compressed there: the caller only hands
//! the bytes over). Opening keeps the records as stored (what the file holds,
//! at most [`MAX_STATES`] of them) and decodes one only when it is asked for
//! by name ([`WorldStore::saved_state`]): a state that fails its checksum or
//! decompression is an error there, and the world opens all the same; what
//! decoding one may allocate is bounded by [`MAX_STATE`] and by its
//! compressed length.

use super::store::WorldStore;
use crate::codec::{self, DecodeError, Reader, Writer};
use redb::{ReadableTable, TableDefinition};
use std::collections::BTreeMap;
use std::path::Path;

pub(crate) const STATES: TableDefinition<&str, &[u8]> = TableDefinition::new("states");

const STATE: u8 = 6;

/// A state's bytes at most (decompressed): a flow memory of the default
/// world's every column is 17 MB.
pub const MAX_STATE: usize = 256 << 20;

/// States a file may hold: past it, the rest are left out and named in
/// [`WorldStore::state_errors`].
pub const MAX_STATES: usize = 1024;

/// A state saved with the world.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedState {
    /// The sequence number of the world it was saved with: the state goes
    /// on exactly from a world at this sequence.
    pub sequence: u64,
    /// What the owner wrote.
    pub bytes: Vec<u8>,
}

/// The states' records read from a file (not decoded), and the ones left
/// out.
#[derive(Clone, Debug, Default)]
pub(crate) struct States {
    pub records: BTreeMap<String, Vec<u8>>,
    pub refused: Vec<(String, DecodeError)>,
}

/// The record of a state.
pub(crate) fn encode(sequence: u64, bytes: &[u8]) -> Vec<u8> {
    let mut w = Writer::default();
    w.u64(sequence);
    w.varint(bytes.len() as u64);
    w.bytes.extend_from_slice(&codec::compress(bytes, 3));
    codec::frame(STATE, &w.bytes)
}

/// A state from its record: the declared length is checked against
/// [`MAX_STATE`] and against what the compressed bytes can hold before
/// anything is allocated.
pub(crate) fn decode(record: &[u8]) -> Result<SavedState, DecodeError> {
    let mut r = Reader::new(codec::unframe(STATE, record)?);
    let sequence = r.u64()?;
    let len = r.bounded(MAX_STATE as u64, "state length")? as usize;
    let compressed = r.remaining();
    // zstd's best ratio is about 1:32,000 (runs of one byte): anything
    // beyond that was not written by this crate.
    if len > compressed.len().saturating_mul(1 << 15) {
        return Err(DecodeError::Invalid("state length beyond what its bytes hold"));
    }
    Ok(SavedState { sequence, bytes: codec::decompress(compressed, len)? })
}

/// Reads every state of the file (none when it has no such table).
pub(crate) fn read(read: &redb::ReadTransaction, path: &Path) -> Result<States, super::StoreError> {
    let fail =
        |e: &dyn std::fmt::Display| super::StoreError::NotADatabase { path: path.to_path_buf(), detail: e.to_string() };
    let table = match read.open_table(STATES) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(States::default()),
        Err(e) => return Err(fail(&e)),
    };
    let mut states = States::default();
    for entry in table.iter().map_err(|e| fail(&e))? {
        let (k, v) = entry.map_err(|e| fail(&e))?;
        let name = k.value().to_string();
        if states.records.len() >= MAX_STATES {
            states.refused.push((name, DecodeError::Invalid("more states than MAX_STATES")));
            continue;
        }
        states.records.insert(name, v.value().to_vec());
    }
    Ok(states)
}

impl WorldStore {
    /// Hands the writer `bytes` to save under `name` beside the world at
    /// `sequence` (the world's sequence number when the state was taken),
    /// replacing what was saved under that name. The writer compresses and
    /// writes it after every batch handed over before it; [`sync`](Self::sync)
    /// waits for it. Waits only for room in the writer's queue.
    ///
    /// # Errors
    /// [`StoreError::WriterStopped`](super::StoreError::WriterStopped) after
    /// the writer failed; a state larger than [`MAX_STATE`] is refused as
    /// [`StoreError::Io`](super::StoreError::Io) (invalid input), and what
    /// was saved under `name` before is removed: an older state is never
    /// taken for this one.
    pub fn save_state(&mut self, name: &str, sequence: u64, bytes: Vec<u8>) -> Result<(), super::StoreError> {
        self.check()?;
        let stopped = || super::StoreError::WriterStopped { path: self.path().to_path_buf() };
        let tx = self.sender().ok_or_else(stopped)?;
        if bytes.len() > MAX_STATE {
            tx.send(super::shared::Command::State(name.to_string(), sequence, None)).map_err(|_| stopped())?;
            let error = std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("state {name} over MAX_STATE"));
            return Err(super::StoreError::Io { path: self.path().to_path_buf(), error });
        }
        tx.send(super::shared::Command::State(name.to_string(), sequence, Some(bytes))).map_err(|_| stopped())
    }

    /// The state saved under `name` when the file was opened, decoded now
    /// (`None`: none was).
    ///
    /// # Errors
    /// The [`DecodeError`] of a damaged state: the world is not affected.
    pub fn saved_state(&self, name: &str) -> Option<Result<SavedState, DecodeError>> {
        self.states().records.get(name).map(|record| decode(record))
    }

    /// The states left out when the file was opened (past [`MAX_STATES`]),
    /// by name.
    pub fn state_errors(&self) -> &[(String, DecodeError)] {
        &self.states().refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_reads_back_and_a_bomb_is_refused_before_it_allocates() {
        let bytes: Vec<u8> = (0..10_000u32).flat_map(|i| (i % 7).to_le_bytes()).collect();
        let record = encode(42, &bytes);
        assert_eq!(decode(&record), Ok(SavedState { sequence: 42, bytes: bytes.clone() }));
        // Declares MAX_STATE bytes in a few compressed ones.
        let mut w = Writer::default();
        w.u64(1);
        w.varint(MAX_STATE as u64);
        w.bytes.extend_from_slice(&codec::compress(&[0u8; 16], 3));
        let bomb = codec::frame(STATE, &w.bytes);
        assert_eq!(decode(&bomb), Err(DecodeError::Invalid("state length beyond what its bytes hold")));
        let mut flipped = record.clone();
        flipped[3] ^= 1;
        assert_eq!(decode(&flipped), Err(DecodeError::Checksum));
    }

    fn options() -> super::super::StoreOptions {
        let generator = crate::worldgen::WorldGen { size: glam::IVec3::new(32, 24, 32), ..Default::default() };
        super::super::StoreOptions { generator, ..Default::default() }
    }

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("bdo-states-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// From the review: opening decoded every state under any name and kept
    /// them all (a few KiB of file per 256 MiB held). Now opening keeps the
    /// records as stored and decodes one when it is asked for.
    #[test]
    fn opening_holds_the_records_as_stored_and_decodes_one_when_asked() {
        let d = dir("lazy");
        let path = d.join("world.redb");
        {
            let (mut store, _world, _) = WorldStore::open(&path, options()).unwrap();
            for i in 0..4 {
                store.save_state(&format!("junk/{i}"), 0, vec![0u8; 4 << 20]).unwrap();
            }
            store.sync().unwrap();
        }
        let (store, _world, _) = WorldStore::open(&path, options()).unwrap();
        let held: usize = store.states().records.values().map(Vec::len).sum();
        assert!(held < 64 << 10, "opening holds {held} bytes of states nobody asked for");
        let state = store.saved_state("junk/2").unwrap().unwrap();
        assert_eq!(state.bytes.len(), 4 << 20);
        assert!(store.saved_state("nobody").is_none());
        let _ = std::fs::remove_dir_all(&d);
    }

    /// A state refused for its size removes what was saved under its name:
    /// the next open never takes the older one for it.
    #[test]
    fn a_state_too_large_to_save_removes_the_older_one() {
        let d = dir("remove");
        let path = d.join("world.redb");
        {
            let (mut store, _world, _) = WorldStore::open(&path, options()).unwrap();
            store.save_state("process", 0, vec![1, 2, 3]).unwrap();
            store.sync().unwrap();
            assert!(store.save_state("process", 0, vec![0u8; MAX_STATE + 1]).is_err());
            store.sync().unwrap();
        }
        let (store, _world, _) = WorldStore::open(&path, options()).unwrap();
        assert!(store.saved_state("process").is_none());
        let _ = std::fs::remove_dir_all(&d);
    }
}
