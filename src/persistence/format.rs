//! The file's tables and records.
//!
//! ```text
//! table "meta"  (&str -> record)
//!   "header"      kind 4: [format version: u32][bounds: 6 x i32][generator?: u8 flag,
//!                          seed u64, min 3 x i32, size 3 x i32, sea level i32]
//!                          [palette?: u8 flag, RON text: varint length + bytes]
//!   "checkpoint"  kind 5: [sequence: u64]   the nodes hold the world as of it
//! table "nodes" (u64 -> record)  key = level << 56 | Morton code of (corner >> level)
//!   kind 1 uniform node, kind 2 brick (codec::brick); finer nodes override coarser
//! table "log"   (u64 -> record)  key = first sequence number of the batch
//!   kind 3 change batch (codec::changes), every one after the checkpoint, gapless
//! ```
//!
//! Every record is framed with a checksum (see `codec`).

use crate::codec::{DecodeError, Reader, Writer, frame, unframe};
use crate::coords::Aabb;
use crate::worldgen::WorldGen;
use glam::IVec3;
use redb::TableDefinition;

/// The format this build reads and writes.
pub(crate) const FORMAT_VERSION: u32 = 1;

pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
pub(crate) const NODES: TableDefinition<u64, &[u8]> = TableDefinition::new("nodes");
pub(crate) const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");

pub(crate) const HEADER_KEY: &str = "header";
pub(crate) const CHECKPOINT_KEY: &str = "checkpoint";

const HEADER: u8 = 4;
const CHECKPOINT: u8 = 5;
/// A palette's RON text is at most this long.
const MAX_PALETTE: usize = 1 << 20;

pub(crate) use crate::codec::world::{node_key, node_of_key};

/// What the header holds.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Header {
    pub bounds: Aabb,
    pub generator: Option<WorldGen>,
    pub palette: Option<String>,
}

pub(crate) fn encode_header(h: &Header) -> Vec<u8> {
    let mut w = Writer::default();
    w.bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    for v in [h.bounds.min, h.bounds.max] {
        for c in v.to_array() {
            w.i32(c);
        }
    }
    match &h.generator {
        Some(g) => {
            w.u8(1);
            w.u64(g.seed);
            for c in g.min.to_array().into_iter().chain(g.size.to_array()) {
                w.i32(c);
            }
            w.i32(g.sea_level);
        }
        None => w.u8(0),
    }
    match &h.palette {
        Some(p) => {
            w.u8(1);
            w.slice(p.as_bytes());
        }
        None => w.u8(0),
    }
    frame(HEADER, &w.bytes)
}

/// The header, or why not; `Ok(Err(version))` for a well-formed header of
/// another format version.
pub(crate) fn decode_header(record: &[u8]) -> Result<Result<Header, u32>, DecodeError> {
    let mut r = Reader::new(unframe(HEADER, record)?);
    let version = u32::from_le_bytes(r.take(4)?.try_into().map_err(|_| DecodeError::Truncated)?);
    if version != FORMAT_VERSION {
        return Ok(Err(version));
    }
    let ivec = |r: &mut Reader<'_>| -> Result<IVec3, DecodeError> { Ok(IVec3::new(r.i32()?, r.i32()?, r.i32()?)) };
    let bounds = Aabb::new(ivec(&mut r)?, ivec(&mut r)?);
    let generator = match r.u8()? {
        0 => None,
        1 => {
            let seed = r.u64()?;
            let min = ivec(&mut r)?;
            let size = ivec(&mut r)?;
            Some(WorldGen { seed, min, size, sea_level: r.i32()? })
        }
        _ => return Err(DecodeError::Invalid("header generator flag")),
    };
    let palette = match r.u8()? {
        0 => None,
        1 => Some(
            String::from_utf8(r.slice(MAX_PALETTE)?.to_vec())
                .map_err(|_| DecodeError::Invalid("palette is not UTF-8"))?,
        ),
        _ => return Err(DecodeError::Invalid("header palette flag")),
    };
    if !r.is_empty() {
        return Err(DecodeError::Invalid("bytes after the header"));
    }
    Ok(Ok(Header { bounds, generator, palette }))
}

pub(crate) fn encode_checkpoint(sequence: u64) -> Vec<u8> {
    frame(CHECKPOINT, &sequence.to_le_bytes())
}

pub(crate) fn decode_checkpoint(record: &[u8]) -> Result<u64, DecodeError> {
    let mut r = Reader::new(unframe(CHECKPOINT, record)?);
    let s = r.u64()?;
    if !r.is_empty() {
        return Err(DecodeError::Invalid("bytes after the checkpoint"));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_and_other_versions_are_recognised() {
        let h = Header {
            bounds: Aabb::new(IVec3::new(-40, 0, 3), IVec3::new(60, 44, 70)),
            generator: Some(WorldGen::default()),
            palette: Some("[]".into()),
        };
        assert_eq!(decode_header(&encode_header(&h)), Ok(Ok(h.clone())));
        let mut payload = encode_header(&h);
        payload.truncate(payload.len() - 8);
        payload[1..5].copy_from_slice(&7u32.to_le_bytes());
        let other = frame(HEADER, &payload[1..]);
        assert_eq!(decode_header(&other), Ok(Err(7)));
    }
}
