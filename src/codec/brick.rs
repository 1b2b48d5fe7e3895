//! Bricks and uniform nodes as records.
//!
//! ```text
//! uniform node: kind 1, [material: u16]
//! brick:        kind 2, [raw length: varint][zstd(raw)]
//!   raw:        [palette length n: varint][palette: n x u16][index bits b: u8]
//!               [4096 + 73 palette indices, b bits each, little-endian bit order:
//!                the voxels, then the LOD pyramid's levels 2, 3 and 4]
//! ```
//!
//! A geology brick holds two or three materials, so packing alone takes it from
//! 8 KiB to 1-1.5 KiB, and zstd (level 3) roughly halves that again. The
//! pyramid is stored (its cells are the brick's own materials, so it packs to a
//! few bytes) so that loading a brick computes nothing.

use super::{DecodeError, Reader, Writer, compress, decompress, frame};
use crate::base::{Brick, BrickContent, BrickView, PYRAMID_CELLS};
use crate::coords::BRICK_VOLUME;
use crate::coords::brick::Clip;
use crate::hash::fast_map;
use crate::material::MaterialId;

const UNIFORM: u8 = 1;
const BRICK: u8 = 2;
/// Indices a brick record packs: its voxels and its pyramid.
const INDICES: usize = BRICK_VOLUME + PYRAMID_CELLS;
/// The largest raw brick: a 4096-entry palette and 12-bit indices.
const MAX_RAW: usize = 3 + 2 * BRICK_VOLUME + 1 + (INDICES * 12).div_ceil(8);

/// A uniform node's or a brick's record (see the module docs). A brick given
/// as voxels has its pyramid computed (`clip` says which voxels are in the
/// world), and is written as a uniform node when they are one material.
pub(crate) fn encode_node(node: BrickView<'_>, clip: Clip) -> Vec<u8> {
    match node {
        BrickView::Uniform(m) => frame(UNIFORM, &m.0.to_le_bytes()),
        BrickView::Voxels(voxels) => {
            let brick = Brick::from_voxels_clipped(voxels, clip);
            match brick.uniform_within(clip) {
                Some(m) => encode_node(BrickView::Uniform(m), clip),
                None => encode_node(BrickView::Brick(&brick), clip),
            }
        }
        BrickView::Brick(brick) => {
            let mut palette: Vec<MaterialId> = Vec::new();
            let mut index = fast_map();
            let mut indices = [0u16; INDICES];
            // Geology comes in runs: the last voxel's index answers most lookups.
            let mut last: Option<(MaterialId, u16)> = None;
            for (i, v) in brick.voxels().iter().copied().chain(brick.pyramid()).enumerate() {
                indices[i] = match last {
                    Some((m, at)) if m == v => at,
                    _ => {
                        let at = *index.entry(v).or_insert_with(|| {
                            palette.push(v);
                            (palette.len() - 1) as u16
                        });
                        last = Some((v, at));
                        at
                    }
                };
            }
            let bits = (usize::BITS - (palette.len() - 1).leading_zeros()) as u8;
            let mut raw = Writer::default();
            raw.varint(palette.len() as u64);
            for m in &palette {
                raw.u16(m.0);
            }
            raw.u8(bits);
            let (mut acc, mut filled) = (0u64, 0u32);
            for &i in &indices {
                acc |= u64::from(i) << filled;
                filled += u32::from(bits);
                while filled >= 8 {
                    raw.u8(acc as u8);
                    acc >>= 8;
                    filled -= 8;
                }
            }
            if filled > 0 {
                raw.u8(acc as u8);
            }
            let mut out = Writer::default();
            out.varint(raw.bytes.len() as u64);
            out.bytes.extend_from_slice(&compress(&raw.bytes, 3));
            frame(BRICK, &out.bytes)
        }
    }
}

/// The content of a node record: a brick as stored (pyramid included, not
/// collapsed: the caller knows its clip).
pub(crate) fn decode_node(record: &[u8]) -> Result<BrickContent, DecodeError> {
    let (kind, payload) = super::unframe_any(record)?;
    let mut r = Reader::new(payload);
    match kind {
        UNIFORM => {
            let m = r.u16()?;
            if !r.is_empty() {
                return Err(DecodeError::Invalid("bytes after a uniform node"));
            }
            Ok(BrickContent::Uniform(MaterialId(m)))
        }
        BRICK => {
            let len = r.bounded(MAX_RAW as u64, "brick longer than the format allows")? as usize;
            let raw = decompress(r.remaining(), len)?;
            let mut r = Reader::new(&raw);
            let n = r.bounded(BRICK_VOLUME as u64, "brick palette larger than a brick")? as usize;
            if n == 0 {
                return Err(DecodeError::Invalid("empty brick palette"));
            }
            let palette: Vec<u16> = (0..n).map(|_| r.u16()).collect::<Result<_, _>>()?;
            let bits = u32::from(r.u8()?);
            if bits != usize::BITS - (n - 1).leading_zeros() {
                return Err(DecodeError::Invalid("brick index width does not fit its palette"));
            }
            let packed = r.take((INDICES * bits as usize).div_ceil(8))?;
            if !r.is_empty() {
                return Err(DecodeError::Invalid("bytes after a brick"));
            }
            let mut values = [MaterialId::AIR; INDICES];
            unpack(packed, bits, &palette, &mut values)?;
            let mut brick = std::sync::Arc::new(Brick::filled(MaterialId::AIR));
            std::sync::Arc::make_mut(&mut brick).set_parts(&values);
            Ok(BrickContent::Dense(brick))
        }
        found => Err(DecodeError::Kind { found }),
    }
}

/// Unpacks `out.len()` palette indices of `bits` bits each (little-endian bit
/// order) into their materials.
///
/// # Errors
/// [`DecodeError::Invalid`] for an index past the palette.
fn unpack(packed: &[u8], bits: u32, palette: &[u16], out: &mut [MaterialId]) -> Result<(), DecodeError> {
    let past = DecodeError::Invalid("brick index past its palette");
    match bits {
        0 => out.fill(MaterialId(*palette.first().ok_or(past)?)),
        // Widths that divide a byte: one table lookup per byte, built from the
        // palette for this brick (256 entries of up to 8 materials).
        1 | 2 | 4 | 8 => {
            let per = (8 / bits) as usize;
            let mask = ((1u16 << bits) - 1) as u8;
            let mut table = [[MaterialId::AIR; 8]; 256];
            let mut bad = [false; 256];
            for (byte, (entry, bad)) in table.iter_mut().zip(bad.iter_mut()).enumerate() {
                for (k, slot) in entry.iter_mut().take(per).enumerate() {
                    match palette.get(usize::from((byte as u8 >> (k as u32 * bits)) & mask)) {
                        Some(&m) => *slot = MaterialId(m),
                        None => *bad = true,
                    }
                }
            }
            let whole = out.len() / per;
            let (head, tail) = out.split_at_mut(whole * per);
            for (chunk, &byte) in head.chunks_exact_mut(per).zip(packed) {
                if bad[usize::from(byte)] {
                    return Err(past);
                }
                chunk.copy_from_slice(&table[usize::from(byte)][..per]);
            }
            if !tail.is_empty() {
                let byte = *packed.get(whole).ok_or(DecodeError::Truncated)?;
                for (k, slot) in tail.iter_mut().enumerate() {
                    let i = usize::from((byte >> (k as u32 * bits)) & mask);
                    *slot = MaterialId(*palette.get(i).ok_or(past)?);
                }
            }
        }
        _ => {
            let mask = (1u64 << bits) - 1;
            let (mut acc, mut have, mut next) = (0u64, 0u32, 0usize);
            for v in out.iter_mut() {
                while have < bits {
                    acc |= u64::from(*packed.get(next).ok_or(DecodeError::Truncated)?) << have;
                    next += 1;
                    have += 8;
                }
                *v = MaterialId(*palette.get((acc & mask) as usize).ok_or(past)?);
                acc >>= bits;
                have -= bits;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bricks_round_trip_and_damage_is_caught() {
        let mut voxels = [MaterialId(3); BRICK_VOLUME];
        for (i, v) in voxels.iter_mut().enumerate() {
            if i % 7 == 0 {
                *v = MaterialId(9);
            }
            if i > 3000 {
                *v = MaterialId(i as u16);
            }
        }
        let brick = Brick::from_voxels(&voxels);
        for node in [BrickView::Brick(&brick), BrickView::Uniform(MaterialId(5))] {
            let record = encode_node(node, Clip::FULL);
            match (decode_node(&record), node) {
                (Ok(BrickContent::Dense(s)), BrickView::Brick(b)) => {
                    assert_eq!(s.voxels(), b.voxels());
                    assert!(s.pyramid().eq(b.pyramid()));
                }
                (Ok(BrickContent::Uniform(m)), BrickView::Uniform(n)) => assert_eq!(m, n),
                other => panic!("{other:?}"),
            }
            for i in 0..record.len() {
                let mut bad = record.clone();
                bad[i] ^= 0x10;
                assert!(decode_node(&bad).is_err(), "flip at {i}");
            }
            assert_eq!(decode_node(&record[..record.len() - 1]).err(), Some(DecodeError::Checksum));
        }
        let small = encode_node(BrickView::Brick(&Brick::filled(MaterialId(1))), Clip::FULL);
        assert!(small.len() < 64, "a one-material brick packs to nothing: {} bytes", small.len());
        for bits in [1u32, 2, 3, 4, 5, 8, 12] {
            let values: Vec<u16> = (0..INDICES as u32).map(|i| ((i * 7 + 3) % (1 << bits)) as u16).collect();
            let mut w = Writer::default();
            let (mut acc, mut filled) = (0u64, 0u32);
            for &v in &values {
                acc |= u64::from(v) << filled;
                filled += bits;
                while filled >= 8 {
                    w.u8(acc as u8);
                    acc >>= 8;
                    filled -= 8;
                }
            }
            if filled > 0 {
                w.u8(acc as u8);
            }
            let palette: Vec<u16> = (0..1u32 << bits).map(|i| i as u16 + 100).collect();
            let mut out = [MaterialId::AIR; INDICES];
            unpack(&w.bytes, bits, &palette, &mut out).unwrap();
            assert!(out.iter().map(|m| m.0 - 100).eq(values.iter().copied()), "{bits} bits");
            if bits < 12 {
                assert!(
                    unpack(&w.bytes, bits, &palette[..palette.len() - 1], &mut out).is_err(),
                    "{bits} bits, short palette"
                );
            }
        }
    }
}
