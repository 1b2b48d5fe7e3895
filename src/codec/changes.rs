//! Change batches as records: a file's log entries and the wire's messages.
//!
//! ```text
//! kind 3: [first sequence: varint][changes c: varint][body form: u8]
//!         form 0: [body]; form 1: [body length: varint][zstd(body)]
//! body:   [palette length p: varint][palette: p x u16][bricks g: varint]
//!         g x ([brick code - previous brick code: varint][changes n: varint]
//!              n x ([in-brick index - previous index: varint][palette index: varint]))
//! ```
//!
//! Changes are grouped by brick (Morton order) and sorted by voxel inside; the
//! changes of one voxel keep their order, so a decoded batch makes the same
//! world and covers the same sequence numbers, but the order between different
//! voxels is not kept (it never changes the world). Positions are relative to
//! the world's minimum corner, so both ends must agree on the bounds. An
//! erosion frame packs to one or two bytes a change before compression.
//!
//! # Invariants
//!
//! - `BOUNDED_EXPANSION`: a compressed body is at most [`MAX_EXPANSION`] times
//!   its compressed bytes plus [`EXPANSION_SLACK`]; the encoder writes a body
//!   that would compress further uncompressed (form 0), and the decoder refuses
//!   a record that declares more before decompressing anything. Decoding then
//!   allocates a bounded multiple of the record's length, whatever the counts
//!   it declares.

use super::{DecodeError, Reader, Writer, compress, decompress, frame, unframe};
use crate::coords::brick::{BRICK_VOLUME, BrickKey};
use crate::coords::{Aabb, morton};
use crate::hash::fast_map;
use crate::material::{MaterialId, MaterialUpdate};
use crate::storage::ChangeBatch;

const BATCH: u8 = 3;
/// Bodies shorter than this are not worth compressing.
const COMPRESS_ABOVE: usize = 96;
/// A compressed body expands at most this many times (`BOUNDED_EXPANSION`);
/// only a frame of thousands of writes of one material in a row compresses
/// better, and it is then stored plain at one or two bytes a change.
pub(crate) const MAX_EXPANSION: usize = 256;
/// Plus this many bytes, so small records are never refused for their ratio.
pub(crate) const EXPANSION_SLACK: usize = 4096;
/// The fewest body bytes a change takes: its in-brick step and its palette
/// index, one varint byte each.
const MIN_CHANGE_BYTES: usize = 2;

/// The largest body `compressed` bytes may declare (`BOUNDED_EXPANSION`).
fn expansion_bound(compressed: usize) -> usize {
    compressed.saturating_mul(MAX_EXPANSION).saturating_add(EXPANSION_SLACK)
}

/// A batch's record (see the module docs).
pub(crate) fn encode_batch(batch: &ChangeBatch, bounds: Aabb) -> Vec<u8> {
    let changes = batch.changes();
    let mut order: Vec<(u64, u16, u32)> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (key, local) = BrickKey::split(c.position - bounds.min);
            (key.code(), local, i as u32)
        })
        .collect();
    // Stable on (brick, voxel): writes to one voxel keep their order.
    order.sort_by_key(|&(code, local, _)| (code, local));
    let mut palette: Vec<MaterialId> = Vec::new();
    let mut index = fast_map();
    let mut body = Writer::default();
    let mut groups = Writer::default();
    let (mut count, mut prev_code) = (0u64, 0u64);
    let mut i = 0;
    while i < order.len() {
        let code = order[i].0;
        let n = order[i..].partition_point(|o| o.0 == code);
        groups.varint(code - prev_code);
        groups.varint(n as u64);
        prev_code = code;
        count += 1;
        let mut prev_local = 0;
        for &(_, local, at) in &order[i..i + n] {
            let m = changes[at as usize].material;
            let p = *index.entry(m).or_insert_with(|| {
                palette.push(m);
                palette.len() as u64 - 1
            });
            groups.varint(u64::from(local - prev_local));
            groups.varint(p);
            prev_local = local;
        }
        i += n;
    }
    body.varint(palette.len() as u64);
    for m in &palette {
        body.u16(m.0);
    }
    body.varint(count);
    body.bytes.extend_from_slice(&groups.bytes);
    let mut out = Writer::default();
    out.varint(batch.first_sequence());
    out.varint(changes.len() as u64);
    let packed = (body.bytes.len() > COMPRESS_ABOVE).then(|| compress(&body.bytes, 1));
    match packed {
        Some(packed) if body.bytes.len() <= expansion_bound(packed.len()) => {
            out.u8(1);
            out.varint(body.bytes.len() as u64);
            out.bytes.extend_from_slice(&packed);
        }
        _ => {
            out.u8(0);
            out.bytes.extend_from_slice(&body.bytes);
        }
    }
    frame(BATCH, &out.bytes)
}

/// The batch of a record, every position checked against `bounds`; a record
/// of more than `max_changes` changes is refused before anything is allocated,
/// and what is allocated is bounded by the record's length
/// (`BOUNDED_EXPANSION`), not by the counts it declares.
pub(crate) fn decode_batch(record: &[u8], bounds: Aabb, max_changes: usize) -> Result<ChangeBatch, DecodeError> {
    let mut r = Reader::new(unframe(BATCH, record)?);
    let first = r.varint()?;
    if first == 0 || first == u64::MAX {
        return Err(DecodeError::Invalid("change batch numbered outside 1..u64::MAX"));
    }
    let count = r.bounded(max_changes as u64, "change batch larger than the cap")? as usize;
    if first.checked_add(count as u64).is_none() {
        return Err(DecodeError::Invalid("change batch numbered past u64::MAX"));
    }
    let owned;
    let body = match r.u8()? {
        0 => r.remaining(),
        1 => {
            // Each change takes at most 2 + 3 bytes, each brick 10 + 5, plus the palette.
            let bound = 16 + 20 * count + 2 * count.min(1 << 16);
            let len = r.bounded(bound as u64, "change batch body longer than its changes allow")? as usize;
            if len > expansion_bound(r.remaining().len()) {
                return Err(DecodeError::Invalid("change batch body expands past the ratio the format allows"));
            }
            owned = decompress(r.remaining(), len)?;
            &owned[..]
        }
        _ => return Err(DecodeError::Invalid("unknown change batch body form")),
    };
    let mut r = Reader::new(body);
    let p = r.bounded(count.min(1 << 16) as u64, "palette larger than the batch")? as usize;
    let palette: Vec<MaterialId> =
        r.take(2 * p)?.chunks_exact(2).map(|b| MaterialId(u16::from_le_bytes([b[0], b[1]]))).collect();
    let groups = r.bounded(count as u64, "more bricks than changes")?;
    // Never more than the body can hold: a small record declaring a huge count
    // fails on its bytes, not on the allocator.
    let mut changes = Vec::with_capacity(count.min(r.remaining().len() / MIN_CHANGE_BYTES));
    let mut code = 0u64;
    let size = bounds.size();
    for g in 0..groups {
        let step = r.varint()?;
        if g > 0 && step == 0 {
            return Err(DecodeError::Invalid("a brick listed twice"));
        }
        code = code
            .checked_add(step)
            .filter(|&c| c < morton::CODE_END >> 3)
            .ok_or(DecodeError::Invalid("brick code out of range"))?;
        let brick = BrickKey::of_code(code);
        let n = r.bounded((count - changes.len()) as u64, "more changes than declared")?;
        let mut local = 0u64;
        for _ in 0..n {
            local = local
                .checked_add(r.varint()?)
                .filter(|&l| l < BRICK_VOLUME as u64)
                .ok_or(DecodeError::Invalid("in-brick index past the brick"))?;
            let m = *palette.get(r.varint()? as usize).ok_or(DecodeError::Invalid("palette index past the palette"))?;
            let q = brick.position(local as u16);
            if q.cmpge(size).any() {
                return Err(DecodeError::Invalid("change outside the world"));
            }
            changes.push(MaterialUpdate { position: bounds.min + q, material: m });
        }
    }
    if changes.len() != count || !r.is_empty() {
        return Err(DecodeError::Invalid("change count does not match the body"));
    }
    Ok(ChangeBatch::new(first, changes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use glam::IVec3;

    #[test]
    fn batches_round_trip_keeping_each_voxels_order() {
        let bounds = Aabb::new(IVec3::new(-40, -3, 7), IVec3::new(60, 44, 70));
        let c = |x, y, z, m| MaterialUpdate::new(IVec3::new(x, y, z), MaterialId(m));
        let changes = vec![c(1, 1, 8, 2), c(59, 43, 69, 3), c(1, 1, 8, 4), c(-40, -3, 7, 2), c(1, 1, 8, 2)];
        let batch = ChangeBatch::new(17, changes.clone());
        let record = encode_batch(&batch, bounds);
        let back = decode_batch(&record, bounds, 1000).unwrap();
        assert_eq!(back.sequences(), 17..=21);
        let at = |b: &ChangeBatch, p: IVec3| {
            b.changes().iter().filter(|c| c.position == p).map(|c| c.material).collect::<Vec<_>>()
        };
        for p in [IVec3::new(1, 1, 8), IVec3::new(59, 43, 69), IVec3::new(-40, -3, 7)] {
            assert_eq!(at(&back, p), at(&batch, p));
        }
        assert_eq!(
            decode_batch(&record, bounds, 4).err(),
            Some(DecodeError::Invalid("change batch larger than the cap"))
        );
        let smaller = Aabb::new(bounds.min, bounds.max - IVec3::ONE);
        assert!(decode_batch(&record, smaller, 1000).is_err(), "a change outside the world");
        for i in 0..record.len() {
            let mut bad = record.clone();
            bad[i] ^= 0x04;
            assert!(decode_batch(&bad, bounds, 1000).is_err(), "flip at {i}");
        }
        // Big enough to compress.
        let many: Vec<MaterialUpdate> =
            (0..2000).map(|i| c(i % 100 - 40, (i / 100) % 47 - 3, 7 + i / 4700, (i % 3) as u16)).collect();
        let big = ChangeBatch::new(1, many);
        let record = encode_batch(&big, bounds);
        assert!(record.len() < 2 * 2000, "{} bytes for 2000 changes", record.len());
        assert_eq!(decode_batch(&record, bounds, 10_000).unwrap().len(), 2000);
        let empty = decode_batch(&encode_batch(&ChangeBatch::new(5, vec![]), bounds), bounds, 1).unwrap();
        assert!(empty.is_empty() && empty.first_sequence() == 5);
    }

    /// A 17-byte record declaring 2^24 changes made the decoder reserve 256 MiB;
    /// a 10 KiB record declaring a 320 MiB body was decompressed into it. Both
    /// are refused on their bytes now (the allocations are measured by
    /// `tests/fuzz_decoders.rs`).
    #[test]
    fn declared_sizes_never_outrun_the_record() {
        let bounds = Aabb::new(IVec3::ZERO, IVec3::splat(64));
        let mut w = Writer::default();
        w.varint(1);
        w.varint(1 << 24);
        w.u8(0);
        assert!(decode_batch(&frame(BATCH, &w.bytes), bounds, 1 << 24).is_err());
        let body = vec![0u8; 1 << 20];
        let packed = compress(&body, 1);
        let mut w = Writer::default();
        w.varint(1);
        w.varint(1 << 20);
        w.u8(1);
        w.varint(body.len() as u64);
        w.bytes.extend_from_slice(&packed);
        assert_eq!(
            decode_batch(&frame(BATCH, &w.bytes), bounds, 1 << 24).err(),
            Some(DecodeError::Invalid("change batch body expands past the ratio the format allows"))
        );
        // A fill of one material compresses past the ratio: it is stored
        // plain, and reads back.
        let fill: Vec<MaterialUpdate> = (0..64 * 64 * 64)
            .map(|i| MaterialUpdate::new(IVec3::new(i % 64, (i / 64) % 64, i / 4096), MaterialId(2)))
            .collect();
        let record = encode_batch(&ChangeBatch::new(1, fill), bounds);
        assert_eq!(record[1 + 1 + 3], 0, "stored plain");
        assert_eq!(decode_batch(&record, bounds, 1 << 20).map(|b| b.len()), Ok(64 * 64 * 64));
    }

    /// Found by `tests/fuzz_decoders.rs`: an in-brick step near `u64::MAX`
    /// overflowed the running index (a panic in debug builds; in release the
    /// index wrapped back into the brick and the record was accepted).
    #[test]
    fn an_in_brick_step_past_u64_is_refused() {
        let bounds = Aabb::new(IVec3::ZERO, IVec3::splat(64));
        let mut w = Writer::default();
        w.varint(1);
        w.varint(2);
        w.u8(0);
        w.varint(1);
        w.u16(5);
        w.varint(1);
        w.varint(0);
        w.varint(2);
        for step in [5, u64::MAX - 2] {
            w.varint(step);
            w.varint(0);
        }
        assert_eq!(
            decode_batch(&frame(BATCH, &w.bytes), bounds, 10).err(),
            Some(DecodeError::Invalid("in-brick index past the brick"))
        );
    }
}
