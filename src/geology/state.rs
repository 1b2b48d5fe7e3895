//! A process's state as bytes: what it saves with the world so a reloaded
//! world continues exactly as an uninterrupted run would (random numbers,
//! queues, flow memory, bodies), and reads back.
//!
//! The encoding is the plainest that is compact: fixed-width little-endian
//! numbers, lengths before sequences, in the order the process writes them.
//! A process writes a version byte first, so a later layout can refuse an
//! older one by name.
//!
//! # Invariants
//!
//! - `BOUNDED`: a [`StateReader`] never allocates more than its input
//!   justifies: a length is refused unless the bytes left hold that many
//!   items of the smallest size the caller names.
//! - `EXACT`: a float is written as its bits, so a restored process computes
//!   with the very values it saved.

use glam::{IVec2, IVec3, Vec2};
use std::time::Duration;

/// Why saved state could not be read back: the process keeps a fresh state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateError {
    /// The bytes ended before the state did.
    Truncated,
    /// A value no save writes (a version, a length, a tag), named.
    Invalid(&'static str),
    /// Bytes were left after the state.
    Trailing(usize),
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Truncated => write!(f, "the saved state ends early"),
            Self::Invalid(what) => write!(f, "the saved state has an invalid {what}"),
            Self::Trailing(n) => write!(f, "the saved state has {n} bytes after its end"),
        }
    }
}

impl std::error::Error for StateError {}

/// Writes a process's state (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct StateWriter {
    bytes: Vec<u8>,
}

impl StateWriter {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// The bytes written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// A byte.
    pub fn u8(&mut self, v: u8) {
        self.bytes.push(v);
    }

    /// A `u32`.
    pub fn u32(&mut self, v: u32) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    /// A `u64`.
    pub fn u64(&mut self, v: u64) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    /// An `i32`.
    pub fn i32(&mut self, v: i32) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    /// An `f32`, as its bits (`EXACT`).
    pub fn f32(&mut self, v: f32) {
        self.u32(v.to_bits());
    }

    /// A length (of what follows).
    pub fn len_of(&mut self, n: usize) {
        self.u64(n as u64);
    }

    /// A column.
    pub fn ivec2(&mut self, v: IVec2) {
        self.i32(v.x);
        self.i32(v.y);
    }

    /// A position.
    pub fn ivec3(&mut self, v: IVec3) {
        self.i32(v.x);
        self.i32(v.y);
        self.i32(v.z);
    }

    /// A vector, as bits.
    pub fn vec2(&mut self, v: Vec2) {
        self.f32(v.x);
        self.f32(v.y);
    }

    /// A duration, in nanoseconds (saturating past 584 years).
    pub fn duration(&mut self, v: Duration) {
        self.u64(u64::try_from(v.as_nanos()).unwrap_or(u64::MAX));
    }

    /// `None` as 0, `Some` as 1 and the value `put` writes.
    pub fn option<T>(&mut self, v: Option<T>, put: impl FnOnce(&mut Self, T)) {
        match v {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                put(self, v);
            }
        }
    }
}

/// Reads what a [`StateWriter`] wrote, bounded by its input (`BOUNDED`).
#[derive(Clone, Debug)]
pub struct StateReader<'a> {
    bytes: &'a [u8],
}

impl<'a> StateReader<'a> {
    /// A reader of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len()
    }

    /// `Ok` when every byte was read.
    ///
    /// # Errors
    /// [`StateError::Trailing`] with the count of bytes left.
    pub fn finish(self) -> Result<(), StateError> {
        if self.bytes.is_empty() { Ok(()) } else { Err(StateError::Trailing(self.bytes.len())) }
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], StateError> {
        let (head, rest) = self.bytes.split_first_chunk::<N>().ok_or(StateError::Truncated)?;
        self.bytes = rest;
        Ok(*head)
    }

    /// A byte.
    ///
    /// # Errors
    /// [`StateError::Truncated`] at the end of the input (so for every read).
    pub fn u8(&mut self) -> Result<u8, StateError> {
        Ok(self.take::<1>()?[0])
    }

    /// A `u32`.
    ///
    /// # Errors
    /// As [`u8`](Self::u8).
    pub fn u32(&mut self) -> Result<u32, StateError> {
        Ok(u32::from_le_bytes(self.take()?))
    }

    /// A `u64`.
    ///
    /// # Errors
    /// As [`u8`](Self::u8).
    pub fn u64(&mut self) -> Result<u64, StateError> {
        Ok(u64::from_le_bytes(self.take()?))
    }

    /// An `i32`.
    ///
    /// # Errors
    /// As [`u8`](Self::u8).
    pub fn i32(&mut self) -> Result<i32, StateError> {
        Ok(i32::from_le_bytes(self.take()?))
    }

    /// An `f32` (`EXACT`).
    ///
    /// # Errors
    /// As [`u8`](Self::u8).
    pub fn f32(&mut self) -> Result<f32, StateError> {
        Ok(f32::from_bits(self.u32()?))
    }

    /// A length of items at least `item_bytes` long each: refused when the
    /// input left cannot hold them (`BOUNDED`).
    ///
    /// # Errors
    /// [`StateError::Invalid`] (`"length"`) for a length the input cannot
    /// hold; as [`u8`](Self::u8).
    pub fn len_of(&mut self, item_bytes: usize) -> Result<usize, StateError> {
        let n = self.u64()?;
        let fits = usize::try_from(n)
            .ok()
            .filter(|&n| n.checked_mul(item_bytes.max(1)).is_some_and(|b| b <= self.bytes.len()));
        fits.ok_or(StateError::Invalid("length"))
    }

    /// A column.
    ///
    /// # Errors
    /// As [`u8`](Self::u8).
    pub fn ivec2(&mut self) -> Result<IVec2, StateError> {
        Ok(IVec2::new(self.i32()?, self.i32()?))
    }

    /// A position.
    ///
    /// # Errors
    /// As [`u8`](Self::u8).
    pub fn ivec3(&mut self) -> Result<IVec3, StateError> {
        Ok(IVec3::new(self.i32()?, self.i32()?, self.i32()?))
    }

    /// A vector.
    ///
    /// # Errors
    /// As [`u8`](Self::u8).
    pub fn vec2(&mut self) -> Result<Vec2, StateError> {
        Ok(Vec2::new(self.f32()?, self.f32()?))
    }

    /// A duration.
    ///
    /// # Errors
    /// As [`u8`](Self::u8).
    pub fn duration(&mut self) -> Result<Duration, StateError> {
        Ok(Duration::from_nanos(self.u64()?))
    }

    /// What [`StateWriter::option`] wrote, the value read by `get`.
    ///
    /// # Errors
    /// [`StateError::Invalid`] (`"option"`) for a tag other than 0 or 1; what
    /// `get` returns.
    pub fn option<T>(&mut self, get: impl FnOnce(&mut Self) -> Result<T, StateError>) -> Result<Option<T>, StateError> {
        match self.u8()? {
            0 => Ok(None),
            1 => get(self).map(Some),
            _ => Err(StateError::Invalid("option")),
        }
    }

    /// A version byte, refused unless it is `expected`.
    ///
    /// # Errors
    /// [`StateError::Invalid`] (`"version"`); as [`u8`](Self::u8).
    pub fn version(&mut self, expected: u8) -> Result<(), StateError> {
        if self.u8()? == expected { Ok(()) } else { Err(StateError::Invalid("version")) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back_and_lengths_are_bounded_by_the_input() {
        let mut w = StateWriter::new();
        w.u8(1);
        w.u64(u64::MAX);
        w.f32(f32::from_bits(0x7fc0_0001));
        w.ivec3(IVec3::new(-1, 2, -3));
        w.option(Some(Duration::from_millis(1500)), StateWriter::duration);
        w.option(None::<u8>, StateWriter::u8);
        w.len_of(2);
        w.ivec2(IVec2::ONE);
        w.ivec2(IVec2::NEG_ONE);
        let bytes = w.into_bytes();
        let mut r = StateReader::new(&bytes);
        r.version(1).unwrap();
        assert_eq!(r.u64(), Ok(u64::MAX));
        assert_eq!(r.f32().unwrap().to_bits(), 0x7fc0_0001);
        assert_eq!(r.ivec3(), Ok(IVec3::new(-1, 2, -3)));
        assert_eq!(r.option(StateReader::duration), Ok(Some(Duration::from_millis(1500))));
        assert_eq!(r.option(StateReader::u8), Ok(None));
        assert_eq!(r.len_of(8), Ok(2));
        assert_eq!((r.ivec2(), r.ivec2()), (Ok(IVec2::ONE), Ok(IVec2::NEG_ONE)));
        assert_eq!(r.finish(), Ok(()));

        // A length of 2^40 items in 8 bytes: refused, nothing allocated.
        let mut w = StateWriter::new();
        w.len_of(1 << 40);
        let bytes = w.into_bytes();
        assert_eq!(StateReader::new(&bytes).len_of(1), Err(StateError::Invalid("length")));
        assert_eq!(StateReader::new(&[1, 2]).u32(), Err(StateError::Truncated));
        assert_eq!(StateReader::new(&[2]).version(1), Err(StateError::Invalid("version")));
        assert_eq!(StateReader::new(&[0, 0]).finish(), Err(StateError::Trailing(2)));
    }
}
