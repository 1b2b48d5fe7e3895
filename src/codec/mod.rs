//! Compact, checksummed encodings of what leaves the process: bricks (files,
//! snapshots on the wire) and change batches (a file's log, the wire). Pure
//! functions over bytes: no I/O, no Bevy.
//!
//! # Framing
//!
//! Every record is framed the same way, so corruption anywhere in a value is
//! caught before anything is decoded:
//!
//! ```text
//! [kind: u8][payload: n bytes][xxh3-64 of kind and payload: u64 LE]
//! ```
//!
//! Decoders trust nothing: every length is checked against what remains and
//! against a cap before anything is allocated, and decompression is given an
//! exact output bound.

mod brick;
mod bytes;
mod changes;
#[doc(hidden)]
pub mod fuzzing;
pub(crate) mod world;

pub(crate) use brick::{decode_node, encode_node};
pub(crate) use bytes::{Reader, Writer};
pub(crate) use changes::{decode_batch, encode_batch};

use xxhash_rust::xxh3::xxh3_64;

/// Why bytes did not decode. Nothing is applied from a record that fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Shorter than its framing or its own lengths say.
    Truncated,
    /// The checksum does not match: the bytes were changed after encoding.
    Checksum,
    /// Another kind of record than expected here.
    Kind {
        /// The kind found.
        found: u8,
    },
    /// A value outside what the format allows (a length past its cap, a
    /// palette index past the palette, a position outside the world...).
    Invalid(&'static str),
    /// The compressed part did not decompress to the size it declared.
    Compression,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Truncated => write!(f, "record is truncated"),
            Self::Checksum => write!(f, "record checksum mismatch (the bytes were changed)"),
            Self::Kind { found } => write!(f, "unexpected record kind {found}"),
            Self::Invalid(what) => write!(f, "invalid record: {what}"),
            Self::Compression => write!(f, "compressed data is damaged"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Frames `payload` as a record of `kind`.
pub(crate) fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 9);
    out.push(kind);
    out.extend_from_slice(payload);
    let sum = xxh3_64(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// The kind and payload of a record, once its checksum holds.
pub(crate) fn unframe_any(record: &[u8]) -> Result<(u8, &[u8]), DecodeError> {
    if record.len() < 9 {
        return Err(DecodeError::Truncated);
    }
    let (body, sum) = record.split_at(record.len() - 8);
    let mut expected = [0u8; 8];
    expected.copy_from_slice(sum);
    if xxh3_64(body) != u64::from_le_bytes(expected) {
        return Err(DecodeError::Checksum);
    }
    Ok((body[0], &body[1..]))
}

/// The payload of a record of `kind`, once its checksum holds.
pub(crate) fn unframe(kind: u8, record: &[u8]) -> Result<&[u8], DecodeError> {
    match unframe_any(record)? {
        (k, payload) if k == kind => Ok(payload),
        (found, _) => Err(DecodeError::Kind { found }),
    }
}

thread_local! {
    /// zstd contexts, one per thread and reused: creating one costs more than
    /// decompressing a brick.
    static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> = const { std::cell::RefCell::new(None) };
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { std::cell::RefCell::new(None) };
}

/// Compresses `raw` with zstd at `level` (1 is fast; 3 is denser).
pub(crate) fn compress(raw: &[u8], level: i32) -> Vec<u8> {
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_none() {
            *c = zstd::bulk::Compressor::new(level).ok();
        }
        let out = c.as_mut().and_then(|c| c.set_compression_level(level).ok().and(c.compress(raw).ok()));
        // Compressing a slice in memory fails only when memory does; the bytes
        // then go uncompressed is not an option for the format, so retry plainly.
        out.unwrap_or_else(|| zstd::bulk::compress(raw, level).unwrap_or_default())
    })
}

/// Decompresses exactly `len` bytes.
pub(crate) fn decompress(data: &[u8], len: usize) -> Result<Vec<u8>, DecodeError> {
    DECOMPRESSOR.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_none() {
            *d = zstd::bulk::Decompressor::new().ok();
        }
        let out = match d.as_mut() {
            Some(d) => d.decompress(data, len),
            None => zstd::bulk::decompress(data, len),
        }
        .map_err(|_| DecodeError::Compression)?;
        if out.len() != len {
            return Err(DecodeError::Compression);
        }
        Ok(out)
    })
}
