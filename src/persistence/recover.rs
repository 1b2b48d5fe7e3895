//! Checking a file a crash left open, without writing it and without a copy.
//!
//! redb opens a file its writer did not close only for writing: the recovery
//! writes its header and allocator state. The file is checked through
//! [`CopyOnWrite`], a storage backend that reads the file and keeps every write
//! in memory, so the check writes nothing to disk, needs no free space, and
//! leaves nothing behind whatever happens to the process meanwhile.
//!
//! # Invariants
//!
//! - `READ_ONLY`: the file is opened read-only; no byte of it changes.
//! - `WRITES_SEEN`: a read returns the last write to each byte, else the file's
//!   byte, else zero (past the file's end, up to the length last set).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Mutex;

/// The granularity of the writes kept.
const PAGE: u64 = 4096;

/// A file seen through an in-memory layer of writes (see the module docs).
#[derive(Debug)]
pub(crate) struct CopyOnWrite {
    file: File,
    file_len: u64,
    state: Mutex<State>,
}

/// The writes and the length, as the database engine set them.
#[derive(Debug, Default)]
struct State {
    len: u64,
    pages: HashMap<u64, Box<[u8]>>,
}

impl CopyOnWrite {
    /// The file at `path`, opened read-only (`READ_ONLY`).
    pub(crate) fn open(path: &Path) -> std::io::Result<Self> {
        let file = File::open(path)?;
        let file_len = file.metadata()?.len();
        Ok(Self { file, file_len, state: Mutex::new(State { len: file_len, pages: HashMap::new() }) })
    }

    fn state(&self) -> std::io::Result<std::sync::MutexGuard<'_, State>> {
        self.state.lock().map_err(|_| std::io::Error::other("a reader of the file panicked"))
    }

    /// Fills `out` with the file's bytes at `offset`, zeros past its end.
    fn read_file(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        out.fill(0);
        if offset >= self.file_len {
            return Ok(());
        }
        let n = usize::try_from((self.file_len - offset).min(out.len() as u64)).unwrap_or(out.len());
        read_exact_at(&self.file, offset, &mut out[..n])
    }

    /// A page's bytes as the engine last saw them.
    fn page(&self, state: &State, index: u64) -> std::io::Result<Box<[u8]>> {
        if let Some(p) = state.pages.get(&index) {
            return Ok(p.clone());
        }
        let mut p = vec![0u8; PAGE as usize].into_boxed_slice();
        self.read_file(index * PAGE, &mut p)?;
        Ok(p)
    }
}

/// Reads exactly `out.len()` bytes at `offset`. Callers hold the state's lock,
/// so the file's one cursor is never shared.
fn read_exact_at(mut file: &File, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(out)
}

fn out_of_range() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "read past the end of the file")
}

impl redb::StorageBackend for CopyOnWrite {
    fn len(&self) -> std::io::Result<u64> {
        Ok(self.state()?.len)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        let state = self.state()?;
        let end = offset.checked_add(out.len() as u64).ok_or_else(out_of_range)?;
        if end > state.len {
            return Err(out_of_range());
        }
        if state.pages.is_empty() {
            return self.read_file(offset, out);
        }
        // Page by page (`WRITES_SEEN`).
        let mut at = offset;
        let mut rest = out;
        while !rest.is_empty() {
            let (index, within) = (at / PAGE, (at % PAGE) as usize);
            let n = rest.len().min(PAGE as usize - within);
            let (head, tail) = rest.split_at_mut(n);
            match state.pages.get(&index) {
                Some(p) => head.copy_from_slice(&p[within..within + n]),
                None => self.read_file(at, head)?,
            }
            rest = tail;
            at += n as u64;
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> std::io::Result<()> {
        let mut state = self.state()?;
        if len < state.len {
            // Bytes cut off read as zeros if the length grows again.
            let first_gone = len.div_ceil(PAGE);
            state.pages.retain(|&i, _| i < first_gone);
            if !len.is_multiple_of(PAGE) {
                let index = len / PAGE;
                let mut p = self.page(&state, index)?;
                p[(len % PAGE) as usize..].fill(0);
                state.pages.insert(index, p);
            }
            // The file's bytes past the new length are gone too.
            for index in first_gone..self.file_len.div_ceil(PAGE) {
                state.pages.insert(index, vec![0u8; PAGE as usize].into_boxed_slice());
            }
        }
        state.len = len;
        Ok(())
    }

    fn sync_data(&self) -> std::io::Result<()> {
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        let mut state = self.state()?;
        let end = offset.checked_add(data.len() as u64).ok_or_else(out_of_range)?;
        if end > state.len {
            return Err(out_of_range());
        }
        let mut at = offset;
        let mut rest = data;
        while !rest.is_empty() {
            let (index, within) = (at / PAGE, (at % PAGE) as usize);
            let n = rest.len().min(PAGE as usize - within);
            let mut p = self.page(&state, index)?;
            p[within..within + n].copy_from_slice(&rest[..n]);
            state.pages.insert(index, p);
            rest = &rest[n..];
            at += n as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::StorageBackend;

    #[test]
    fn writes_are_seen_and_the_file_is_not_touched() {
        let path = std::env::temp_dir().join(format!("bdo-cow-{}", std::process::id()));
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let cow = CopyOnWrite::open(&path).unwrap();
        cow.write(4090, &[1; 20]).unwrap();
        cow.set_len(20_000).unwrap();
        cow.write(15_000, &[7; 3]).unwrap();
        let mut out = vec![0u8; 20_000];
        cow.read(0, &mut out).unwrap();
        let mut expected = bytes.clone();
        expected.resize(20_000, 0);
        expected[4090..4110].fill(1);
        expected[15_000..15_003].fill(7);
        assert_eq!(out, expected);
        cow.set_len(5000).unwrap();
        cow.set_len(9000).unwrap();
        let mut out = vec![0u8; 9000];
        cow.read(0, &mut out).unwrap();
        expected.truncate(5000);
        expected.resize(9000, 0);
        assert_eq!(out, expected);
        assert!(cow.read(8999, &mut [0; 2]).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        let _ = std::fs::remove_file(&path);
    }
}
