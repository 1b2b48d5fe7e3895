//! What travels between server and clients: every message a checksummed
//! record of the crate's codec, so a damaged or hostile message is caught by
//! the receiver, counted, and never half applied.
//!
//! ```text
//! server -> client
//!   kind 10 snapshot begins: [sequence: u64][bounds: 6 x i32][nodes: varint][bytes: varint]
//!   kind 11 snapshot chunk:  [nodes n: varint] n x ([key: varint][record length: varint][record])
//!   kind 12 snapshot ends:   [sequence: u64][digest: u64] (the world's digest as of `sequence`)
//!   kind 3  changes:         a change batch (codec::changes), after the snapshot's sequence
//!   kind 13 edits refused:   [reason: u8][count: varint][first refused position: 3 x i32]
//!   kind 14 audit:           [sequence: u64][region: 6 x i32][digest: u64] the digest of a
//!                            region of the server's world as of `sequence`
//! client -> server
//!   kind 20 edit request:    [edits n: varint][body form: u8] body: n x ([x, y, z: i32][material: u16]),
//!                            form 0 as is, form 1 [body length: varint][zstd(body)]
//!                            (absolute positions: the server refuses those outside the world)
//!   kind 21 resync request:  (empty) a gap was seen: send a snapshot again
//!   kind 22 progress:        [sequence: u64][received: u64] the client's world is the server's
//!                            as of `sequence`; it has received `received` bytes of server messages
//!                            since it connected (the server's flow control)
//! ```
//!
//! Node records are the file's (codec::brick), so a snapshot is sent as it
//! would be stored; keys are `level << 56 | Morton code of (corner >> level)`.

use crate::codec::{DecodeError, Reader, Writer, frame, unframe_any};
use crate::coords::Aabb;
use crate::material::{MaterialId, MaterialUpdate};
use glam::IVec3;

pub(crate) const SNAPSHOT_BEGIN: u8 = 10;
pub(crate) const SNAPSHOT_CHUNK: u8 = 11;
pub(crate) const SNAPSHOT_END: u8 = 12;
pub(crate) const CHANGES: u8 = 3;
pub(crate) const REFUSED: u8 = 13;
pub(crate) const AUDIT: u8 = 14;
pub(crate) const EDITS: u8 = 20;
pub(crate) const RESYNC: u8 = 21;
pub(crate) const PROGRESS: u8 = 22;

/// A node record is at most this long (a brick's worst case, with margin).
pub(crate) const MAX_RECORD: usize = 64 << 10;

/// Why the server refused edits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefusedReason {
    /// Outside the world's bounds.
    OutOfBounds,
    /// More edits than the client's rate allows.
    RateLimited,
    /// The authorization hook said no.
    Unauthorized,
    /// Sent before the client had the world.
    NotJoined,
    /// The server took all the edits it takes in a frame (from every client
    /// together), or its ingest backlog is full: send them again later.
    ServerBusy,
    /// A material the server's palette does not hold.
    UnknownMaterial,
}

impl RefusedReason {
    fn to_u8(self) -> u8 {
        match self {
            Self::OutOfBounds => 0,
            Self::RateLimited => 1,
            Self::Unauthorized => 2,
            Self::NotJoined => 3,
            Self::ServerBusy => 4,
            Self::UnknownMaterial => 5,
        }
    }

    fn from_u8(v: u8) -> Result<Self, DecodeError> {
        Ok(match v {
            0 => Self::OutOfBounds,
            1 => Self::RateLimited,
            2 => Self::Unauthorized,
            3 => Self::NotJoined,
            4 => Self::ServerBusy,
            5 => Self::UnknownMaterial,
            _ => return Err(DecodeError::Invalid("unknown refusal reason")),
        })
    }
}

/// A decoded server message.
#[derive(Debug)]
pub(crate) enum Downlink {
    SnapshotBegin {
        sequence: u64,
        bounds: Aabb,
        nodes: u64,
        bytes: u64,
    },
    SnapshotChunk(Vec<(u64, Vec<u8>)>),
    SnapshotEnd {
        sequence: u64,
        digest: u64,
    },
    Audit {
        sequence: u64,
        region: Aabb,
        digest: u64,
    },
    /// A change batch record, decoded once the bounds are known.
    Changes(Vec<u8>),
    Refused {
        reason: RefusedReason,
        count: u64,
        first: IVec3,
    },
}

pub(crate) fn snapshot_begin(sequence: u64, bounds: Aabb, nodes: u64, bytes: u64) -> Vec<u8> {
    let mut w = Writer::default();
    w.u64(sequence);
    for c in bounds.min.to_array().into_iter().chain(bounds.max.to_array()) {
        w.i32(c);
    }
    w.varint(nodes);
    w.varint(bytes);
    frame(SNAPSHOT_BEGIN, &w.bytes)
}

/// A chunk of node records.
pub(crate) fn snapshot_chunk(records: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut w = Writer::default();
    w.varint(records.len() as u64);
    for (key, record) in records {
        w.varint(*key);
        w.slice(record);
    }
    frame(SNAPSHOT_CHUNK, &w.bytes)
}

pub(crate) fn snapshot_end(sequence: u64, digest: u64) -> Vec<u8> {
    let mut w = Writer::default();
    w.u64(sequence);
    w.u64(digest);
    frame(SNAPSHOT_END, &w.bytes)
}

pub(crate) fn audit(sequence: u64, region: Aabb, digest: u64) -> Vec<u8> {
    let mut w = Writer::default();
    w.u64(sequence);
    for c in region.min.to_array().into_iter().chain(region.max.to_array()) {
        w.i32(c);
    }
    w.u64(digest);
    frame(AUDIT, &w.bytes)
}

/// A box read from the wire: refused unless `min < max` on every axis.
fn read_box(r: &mut Reader<'_>) -> Result<Aabb, DecodeError> {
    let mut c = [0i32; 6];
    for v in &mut c {
        *v = r.i32()?;
    }
    let (min, max) = (IVec3::new(c[0], c[1], c[2]), IVec3::new(c[3], c[4], c[5]));
    if min.cmpge(max).any() {
        return Err(DecodeError::Invalid("an empty or inverted box"));
    }
    Ok(Aabb::new(min, max))
}

pub(crate) fn refused(reason: RefusedReason, count: u64, first: IVec3) -> Vec<u8> {
    let mut w = Writer::default();
    w.u8(reason.to_u8());
    w.varint(count);
    for c in first.to_array() {
        w.i32(c);
    }
    frame(REFUSED, &w.bytes)
}

pub(crate) fn decode_from_server(message: &[u8]) -> Result<Downlink, DecodeError> {
    let (kind, payload) = unframe_any(message)?;
    let mut r = Reader::new(payload);
    let out = match kind {
        SNAPSHOT_BEGIN => {
            let sequence = r.u64()?;
            let bounds = read_box(&mut r)?;
            Downlink::SnapshotBegin { sequence, bounds, nodes: r.varint()?, bytes: r.varint()? }
        }
        SNAPSHOT_CHUNK => {
            let n = r.bounded(1 << 16, "snapshot chunk of too many nodes")? as usize;
            // A record takes at least 3 bytes (key, length, one byte): the
            // vector is never larger than the message could fill.
            let mut records = Vec::with_capacity(n.min(r.remaining().len() / 3));
            for _ in 0..n {
                let key = r.varint()?;
                let record = r.slice(MAX_RECORD)?;
                if record.is_empty() {
                    return Err(DecodeError::Invalid("an empty node record"));
                }
                records.push((key, record.to_vec()));
            }
            Downlink::SnapshotChunk(records)
        }
        SNAPSHOT_END => Downlink::SnapshotEnd { sequence: r.u64()?, digest: r.u64()? },
        AUDIT => Downlink::Audit { sequence: r.u64()?, region: read_box(&mut r)?, digest: r.u64()? },
        CHANGES => return Ok(Downlink::Changes(message.to_vec())),
        REFUSED => {
            let reason = RefusedReason::from_u8(r.u8()?)?;
            let count = r.varint()?;
            Downlink::Refused { reason, count, first: IVec3::new(r.i32()?, r.i32()?, r.i32()?) }
        }
        found => return Err(DecodeError::Kind { found }),
    };
    if !r.is_empty() {
        return Err(DecodeError::Invalid("bytes after a server message"));
    }
    Ok(out)
}

/// A decoded client message.
#[derive(Debug)]
pub(crate) enum Uplink {
    /// Edits in the order they were made.
    Edits(Vec<MaterialUpdate>),
    Resync,
    Progress {
        sequence: u64,
        received: u64,
    },
}

/// Bytes an edit takes before compression.
const EDIT_BYTES: usize = 14;

pub(crate) fn edits(edits: &[MaterialUpdate]) -> Vec<u8> {
    let mut w = Writer::default();
    write_edits(&mut w, edits);
    frame(EDITS, &w.bytes)
}

/// Edits as a message's last field: `[n: varint][body form: u8]` and the
/// body (`n x ([x, y, z: i32][material: u16])`, form 1 compressed).
pub(crate) fn write_edits(w: &mut Writer, edits: &[MaterialUpdate]) {
    let mut body = Vec::with_capacity(edits.len() * EDIT_BYTES);
    for e in edits {
        for c in e.position.to_array() {
            body.extend_from_slice(&c.to_le_bytes());
        }
        body.extend_from_slice(&e.material.0.to_le_bytes());
    }
    w.varint(edits.len() as u64);
    if body.len() > 96 {
        w.u8(1);
        w.varint(body.len() as u64);
        w.bytes.extend_from_slice(&crate::codec::compress(&body, 1));
    } else {
        w.u8(0);
        w.bytes.extend_from_slice(&body);
    }
}

/// Reads what [`write_edits`] wrote, the rest of `r`: at most `max_edits`
/// (the body's length is bounded by its count before it is decompressed).
pub(crate) fn read_edits(mut r: Reader<'_>, max_edits: usize) -> Result<Vec<MaterialUpdate>, DecodeError> {
    let n = r.bounded(max_edits as u64, "more edits than the cap")? as usize;
    let owned;
    let body = match r.u8()? {
        0 => r.remaining(),
        1 => {
            let len = r.bounded((n * EDIT_BYTES) as u64, "edits body longer than its edits")? as usize;
            // zstd expands by at most about 2^15 (a run-length block): a
            // length past it is a lie, refused before it is allocated.
            if len > r.remaining().len().saturating_mul(1 << 15) {
                return Err(DecodeError::Invalid("edits body longer than its bytes can expand to"));
            }
            owned = crate::codec::decompress(r.remaining(), len)?;
            &owned[..]
        }
        _ => return Err(DecodeError::Invalid("unknown edits body form")),
    };
    if body.len() != n * EDIT_BYTES {
        return Err(DecodeError::Invalid("edits body does not hold its edits"));
    }
    let mut r = Reader::new(body);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let p = IVec3::new(r.i32()?, r.i32()?, r.i32()?);
        out.push(MaterialUpdate::new(p, MaterialId(r.u16()?)));
    }
    Ok(out)
}

pub(crate) fn resync() -> Vec<u8> {
    frame(RESYNC, &[])
}

pub(crate) fn progress(sequence: u64, received: u64) -> Vec<u8> {
    let mut w = Writer::default();
    w.u64(sequence);
    w.u64(received);
    frame(PROGRESS, &w.bytes)
}

/// Decodes a client message; a request of more than `max_edits` edits, or any
/// damage, is an error (positions are checked by the caller).
pub(crate) fn decode_from_client(message: &[u8], max_edits: usize) -> Result<Uplink, DecodeError> {
    let (kind, payload) = unframe_any(message)?;
    match kind {
        EDITS => Ok(Uplink::Edits(read_edits(Reader::new(payload), max_edits)?)),
        RESYNC if payload.is_empty() => Ok(Uplink::Resync),
        PROGRESS => {
            let mut r = Reader::new(payload);
            let (sequence, received) = (r.u64()?, r.u64()?);
            if !r.is_empty() {
                return Err(DecodeError::Invalid("bytes after a progress report"));
            }
            Ok(Uplink::Progress { sequence, received })
        }
        found => Err(DecodeError::Kind { found }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn messages() -> Vec<Vec<u8>> {
        let edits: Vec<MaterialUpdate> =
            (0..40).map(|i| MaterialUpdate::new(IVec3::new(i, -i, 3 * i), MaterialId((i % 5) as u16))).collect();
        vec![
            super::edits(&edits[..3]),
            super::edits(&edits),
            resync(),
            progress(77, 1 << 40),
            snapshot_begin(9, Aabb::new(IVec3::splat(-5), IVec3::splat(40)), 3, 900),
            snapshot_chunk(&[(1, vec![1, 2, 3]), (2, vec![4; 100])]),
            snapshot_end(9, 0xfeed),
            refused(RefusedReason::RateLimited, 12, IVec3::new(1, 2, 3)),
            audit(9, Aabb::new(IVec3::ZERO, IVec3::splat(64)), 77),
        ]
    }

    #[test]
    fn messages_round_trip() {
        let m = messages();
        let Ok(Uplink::Edits(e)) = decode_from_client(&m[1], 1000) else { panic!() };
        assert_eq!(e.len(), 40);
        assert_eq!(e[7], MaterialUpdate::new(IVec3::new(7, -7, 21), MaterialId(2)));
        assert!(matches!(
            decode_from_client(&m[3], 1000),
            Ok(Uplink::Progress { sequence: 77, received: 1099511627776 })
        ));
        assert!(decode_from_client(&m[1], 39).is_err(), "over the per-request cap");
        let Ok(Downlink::SnapshotChunk(c)) = decode_from_server(&m[5]) else { panic!() };
        assert_eq!(c[1], (2, vec![4; 100]));
        assert!(matches!(
            decode_from_server(&m[7]),
            Ok(Downlink::Refused { reason: RefusedReason::RateLimited, count: 12, .. })
        ));
    }

    #[test]
    fn inverted_boxes_and_empty_records_are_refused() {
        let inverted = Aabb::new(IVec3::splat(40), IVec3::splat(-5));
        assert!(decode_from_server(&snapshot_begin(1, inverted, 1, 10)).is_err());
        assert!(decode_from_server(&audit(1, Aabb::new(IVec3::ZERO, IVec3::new(4, 0, 4)), 1)).is_err());
        assert!(decode_from_server(&snapshot_chunk(&[(1, vec![])])).is_err());
        let Ok(Downlink::SnapshotEnd { sequence: 9, digest: 0xfeed }) = decode_from_server(&messages()[6]) else {
            panic!("a snapshot's end carries its digest")
        };
    }

    proptest! {
        /// Any damage to a message (a flipped bit, a cut) is an error, never a
        /// panic and never a different message.
        #[test]
        fn damaged_messages_are_errors(which in 0usize..9, at in any::<prop::sample::Index>(), bit in 0u8..8, cut in any::<bool>()) {
            let mut m = messages().swap_remove(which);
            let i = at.index(m.len());
            if cut {
                m.truncate(i);
            } else {
                m[i] ^= 1 << bit;
            }
            if which < 4 {
                prop_assert!(decode_from_client(&m, 1 << 16).is_err());
            } else {
                prop_assert!(decode_from_server(&m).is_err());
            }
        }

        /// Random bytes never panic the decoders.
        #[test]
        fn random_bytes_do_not_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode_from_client(&bytes, 1 << 16);
            let _ = decode_from_server(&bytes);
        }
    }
}
