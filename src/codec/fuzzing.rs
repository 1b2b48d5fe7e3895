//! The file decoders, reachable from `tests/fuzz_decoders.rs` (a mutation
//! fuzzer on stable Rust). Not an API: hidden from the docs, no stability
//! promise, every function a thin call into the codec.
//!
//! # Invariants
//!
//! - `SAME_CODE`: each function calls the decoder or encoder the files and the
//!   wire use, with nothing added, so what the fuzzer finds is what they do.

use crate::base::{Brick, BrickView};
use crate::coords::Aabb;
use crate::coords::brick::{BRICK_VOLUME, Clip};
use crate::material::MaterialId;
use crate::storage::ChangeBatch;
use glam::IVec3;

pub use super::DecodeError;

/// The record kinds: a uniform node, a brick, a change batch.
pub const KINDS: [u8; 3] = [1, 2, 3];

/// Frames `payload` as a record of `kind` (kind, payload, checksum).
pub fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    super::frame(kind, payload)
}

/// A brick's record (its pyramid computed), or a uniform node's when its
/// voxels are one material.
pub fn encode_brick(voxels: &[MaterialId; BRICK_VOLUME]) -> Vec<u8> {
    super::encode_node(BrickView::Brick(&Brick::from_voxels(voxels)), Clip::FULL)
}

/// Decodes a node record; `Ok(true)` for a dense brick.
///
/// # Errors
/// The decoder's.
pub fn decode_node(record: &[u8]) -> Result<bool, DecodeError> {
    super::decode_node(record).map(|c| matches!(c, crate::base::BrickContent::Dense(_)))
}

/// A change batch's record, positions relative to `bounds`.
pub fn encode_batch(batch: &ChangeBatch, bounds: Aabb) -> Vec<u8> {
    super::encode_batch(batch, bounds)
}

/// Decodes a change batch record; the number of changes.
///
/// # Errors
/// The decoder's.
pub fn decode_batch(record: &[u8], bounds: Aabb, max_changes: usize) -> Result<usize, DecodeError> {
    super::decode_batch(record, bounds, max_changes).map(|b| b.len())
}

/// The key of the node of `level` at local corner `min`.
pub fn node_key(level: u32, min: IVec3) -> u64 {
    super::world::node_key(level, min)
}

/// Builds a world of `bounds` from node records, as a file's nodes are read;
/// `Err` with the failing node's level and code (`None` for the bounds).
///
/// # Errors
/// The builder's.
pub fn build_world(bounds: Aabb, records: &[(u64, Vec<u8>)]) -> Result<(), Option<(u32, u64, DecodeError)>> {
    super::world::build(bounds, records).map(|_| ()).map_err(|e| match e {
        super::world::BuildError::Bounds => None,
        super::world::BuildError::Node(level, code, error) => Some((level, code, error)),
    })
}

/// A file's header record: bounds, the default generator, a palette.
#[cfg(feature = "persistence")]
pub fn encode_header(bounds: Aabb, palette: &str) -> Vec<u8> {
    use crate::persistence::format::{Header, encode_header};
    encode_header(&Header { bounds, generator: Some(crate::WorldGen::default()), palette: Some(palette.into()) })
}

/// Decodes a file's header record; `Ok(false)` for another format version.
///
/// # Errors
/// The decoder's.
#[cfg(feature = "persistence")]
pub fn decode_header(record: &[u8]) -> Result<bool, DecodeError> {
    crate::persistence::format::decode_header(record).map(|h| h.is_ok())
}

/// Decodes a server-to-client wire message; `Ok` when it decoded.
///
/// # Errors
/// The decoder's.
#[cfg(feature = "replication")]
pub fn decode_from_server(message: &[u8]) -> Result<(), DecodeError> {
    crate::replication::wire::decode_from_server(message).map(|_| ())
}

/// Decodes a client-to-server wire message; the edits it held.
///
/// # Errors
/// The decoder's.
#[cfg(feature = "replication")]
pub fn decode_from_client(message: &[u8], max_edits: usize) -> Result<usize, DecodeError> {
    use crate::replication::wire::{Uplink, decode_from_client};
    decode_from_client(message, max_edits).map(|m| match m {
        Uplink::Edits(e) => e.len(),
        _ => 0,
    })
}

/// Valid server messages for seeds: a snapshot of a small generated world
/// (begin, chunks, end), a change batch after it, an audit, a refusal.
#[cfg(feature = "replication")]
pub fn server_messages() -> Vec<Vec<u8>> {
    crate::replication::fuzz_seeds::server_messages()
}

/// Valid client messages for seeds: edit requests (plain and compressed), a
/// resync request, a progress report.
#[cfg(feature = "replication")]
pub fn client_messages() -> Vec<Vec<u8>> {
    crate::replication::fuzz_seeds::client_messages()
}

/// Feeds `messages` to a fresh client, as its state machine reads a server's
/// stream; returns the node records it kept (each decodes to at most one
/// brick when the snapshot ends).
#[cfg(feature = "replication")]
pub fn client_session(messages: &[Vec<u8>]) -> usize {
    crate::replication::fuzz_seeds::client_session(messages)
}
