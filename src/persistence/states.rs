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
//! the bytes over). A state that fails its checksum or decompression is left
//! out of [`WorldStore::saved_state`] and named in
//! [`WorldStore::state_errors`]: the world still opens.

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

/// A state saved with the world.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedState {
    /// The sequence number of the world it was saved with: the state goes
    /// on exactly from a world at this sequence.
    pub sequence: u64,
    /// What the owner wrote.
    pub bytes: Vec<u8>,
}

/// The states read from a file, and the ones refused.
#[derive(Clone, Debug, Default)]
pub(crate) struct States {
    pub saved: BTreeMap<String, SavedState>,
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
        match decode(v.value()) {
            Ok(state) => {
                states.saved.insert(name, state);
            }
            Err(e) => states.refused.push((name, e)),
        }
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
    /// the writer failed; [`StoreError::Batch`](super::StoreError::Batch) is
    /// not used: a state larger than [`MAX_STATE`] is refused as
    /// [`StoreError::Io`](super::StoreError::Io) (invalid input).
    pub fn save_state(&mut self, name: &str, sequence: u64, bytes: Vec<u8>) -> Result<(), super::StoreError> {
        self.check()?;
        if bytes.len() > MAX_STATE {
            let error = std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("state {name} over MAX_STATE"));
            return Err(super::StoreError::Io { path: self.path().to_path_buf(), error });
        }
        let stopped = || super::StoreError::WriterStopped { path: self.path().to_path_buf() };
        let tx = self.sender().ok_or_else(stopped)?;
        tx.send(super::shared::Command::State(name.to_string(), sequence, bytes)).map_err(|_| stopped())
    }

    /// The state saved under `name` when the file was opened (`None`: none,
    /// or refused: see [`state_errors`](Self::state_errors)).
    pub fn saved_state(&self, name: &str) -> Option<&SavedState> {
        self.states().saved.get(name)
    }

    /// The states found damaged when the file was opened, by name: left out,
    /// the world opened all the same.
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
}
