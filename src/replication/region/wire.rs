//! What travels between a region server and its clients, framed and
//! checksummed as the whole-world messages are (`replication/wire.rs`).
//!
//! ```text
//! server -> client
//!   kind 15 world:    [seed: u64][min: 3 x i32][size: 3 x i32][sea level: i32][sector columns: i32]
//!                     the generator a client makes its world from
//!   kind 16 sector:   [epoch: u64][x, z: i32][last: u8][edits] part of one sector's every edit,
//!                     answering the client's region of `epoch`; `last` ends it
//!   kind 17 changes:  [edits] the edits accepted this frame in the client's sectors sent
//!   kind 18 again:    (empty) changes were lost: every sector is sent again, none is received until then
//! client -> server
//!   kind 23 region:   [epoch: u64][n: varint] n x [x, z: i32] the sectors it follows, nearest first
//!   kind 24 received: [bytes: u64] server message bytes received since it connected
//! ```
//!
//! `[edits]` is the edit request's body (`replication/wire.rs`): a count, a
//! form and the positions and materials, compressed past 96 bytes.

use crate::codec::{DecodeError, Reader, Writer, frame, unframe_any};
use crate::material::MaterialUpdate;
use crate::replication::wire::{read_edits, write_edits};
use crate::worldgen::WorldGen;
use glam::{IVec2, IVec3};

const WORLD: u8 = 15;
const SECTOR: u8 = 16;
const CHANGES: u8 = 17;
const AGAIN: u8 = 18;
const REGION: u8 = 23;
const RECEIVED: u8 = 24;

/// Edits in one sector or changes message at most (a sector's edits, a
/// frame's changes, are sent in parts): a client applies messages whole,
/// so this is by how much a frame may pass its budget.
pub(crate) const PART: usize = 1 << 12;

/// Sectors a region names at most.
pub(crate) const MAX_REGION: usize = 4096;

/// A decoded server message.
#[derive(Debug, PartialEq)]
pub(crate) enum Down {
    World { generator: WorldGen, sector_columns: i32 },
    Sector { epoch: u64, key: IVec2, last: bool, edits: Vec<MaterialUpdate> },
    Changes(Vec<MaterialUpdate>),
    Again,
}

/// A decoded client message.
#[derive(Debug, PartialEq)]
pub(crate) enum Up {
    Region { epoch: u64, sectors: Vec<IVec2> },
    Received(u64),
}

pub(crate) fn world(generator: &WorldGen, sector_columns: i32) -> Vec<u8> {
    let mut w = Writer::default();
    w.u64(generator.seed);
    for c in generator.min.to_array().into_iter().chain(generator.size.to_array()) {
        w.i32(c);
    }
    w.i32(generator.sea_level);
    w.i32(sector_columns);
    frame(WORLD, &w.bytes)
}

#[cfg(test)]
pub(crate) fn sector(epoch: u64, key: IVec2, last: bool, edits: &[MaterialUpdate]) -> Vec<u8> {
    sector_part(epoch, key, last, &edits_field(edits))
}

/// Edits as a message's last field, encoded once for every client a
/// sector is sent to.
pub(crate) fn edits_field(edits: &[MaterialUpdate]) -> Vec<u8> {
    let mut w = Writer::default();
    write_edits(&mut w, edits);
    w.bytes
}

/// A part of a sector's edits, `edits` from [`edits_field`].
pub(crate) fn sector_part(epoch: u64, key: IVec2, last: bool, edits: &[u8]) -> Vec<u8> {
    let mut w = Writer::default();
    w.u64(epoch);
    w.i32(key.x);
    w.i32(key.y);
    w.u8(u8::from(last));
    w.bytes.extend_from_slice(edits);
    frame(SECTOR, &w.bytes)
}

pub(crate) fn changes(edits: &[MaterialUpdate]) -> Vec<u8> {
    let mut w = Writer::default();
    write_edits(&mut w, edits);
    frame(CHANGES, &w.bytes)
}

pub(crate) fn again() -> Vec<u8> {
    frame(AGAIN, &[])
}

pub(crate) fn region(epoch: u64, sectors: &[IVec2]) -> Vec<u8> {
    let mut w = Writer::default();
    w.u64(epoch);
    w.varint(sectors.len() as u64);
    for k in sectors {
        w.i32(k.x);
        w.i32(k.y);
    }
    frame(REGION, &w.bytes)
}

pub(crate) fn received(bytes: u64) -> Vec<u8> {
    let mut w = Writer::default();
    w.u64(bytes);
    frame(RECEIVED, &w.bytes)
}

fn ivec3(r: &mut Reader<'_>) -> Result<IVec3, DecodeError> {
    Ok(IVec3::new(r.i32()?, r.i32()?, r.i32()?))
}

/// Decodes a server message; any damage is an error (what the values mean
/// for the client's world is checked by the client).
pub(crate) fn decode_down(message: &[u8]) -> Result<Down, DecodeError> {
    let (kind, payload) = unframe_any(message)?;
    let mut r = Reader::new(payload);
    let out = match kind {
        WORLD => {
            let (seed, min, size) = (r.u64()?, ivec3(&mut r)?, ivec3(&mut r)?);
            let generator = WorldGen { seed, min, size, sea_level: r.i32()? };
            Down::World { generator, sector_columns: r.i32()? }
        }
        SECTOR => {
            let (epoch, key) = (r.u64()?, IVec2::new(r.i32()?, r.i32()?));
            let last = match r.u8()? {
                0 => false,
                1 => true,
                _ => return Err(DecodeError::Invalid("a sector part's end flag is not 0 or 1")),
            };
            return Ok(Down::Sector { epoch, key, last, edits: read_edits(r, PART)? });
        }
        CHANGES => return Ok(Down::Changes(read_edits(r, PART)?)),
        AGAIN => Down::Again,
        found => return Err(DecodeError::Kind { found }),
    };
    if !r.is_empty() {
        return Err(DecodeError::Invalid("bytes after a server message"));
    }
    Ok(out)
}

/// Decodes a client message: a region of more than [`MAX_REGION`] sectors,
/// or any damage, is an error.
pub(crate) fn decode_up(message: &[u8]) -> Result<Up, DecodeError> {
    let (kind, payload) = unframe_any(message)?;
    let mut r = Reader::new(payload);
    let out = match kind {
        REGION => {
            let epoch = r.u64()?;
            let n = r.bounded(MAX_REGION as u64, "a region of too many sectors")? as usize;
            // Eight bytes a sector: never more than the message holds.
            let mut sectors = Vec::with_capacity(n.min(r.remaining().len() / 8));
            for _ in 0..n {
                sectors.push(IVec2::new(r.i32()?, r.i32()?));
            }
            Up::Region { epoch, sectors }
        }
        RECEIVED => Up::Received(r.u64()?),
        found => return Err(DecodeError::Kind { found }),
    };
    if !r.is_empty() {
        return Err(DecodeError::Invalid("bytes after a client message"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::material::MaterialId;
    use proptest::prelude::*;

    fn edits(n: i32) -> Vec<MaterialUpdate> {
        (0..n).map(|i| MaterialUpdate::new(IVec3::new(i, 7 - i, 3 * i), MaterialId((i % 9) as u16))).collect()
    }

    fn messages() -> Vec<Vec<u8>> {
        let generator =
            WorldGen { seed: 9, min: IVec3::new(-16, 0, 32), size: IVec3::new(512, 64, 256), sea_level: 20 };
        vec![
            region(3, &[IVec2::new(1, 2), IVec2::new(-1, 0)]),
            received(1 << 33),
            world(&generator, 64),
            sector(3, IVec2::new(1, 2), true, &edits(50)),
            sector(4, IVec2::ZERO, false, &edits(2)),
            changes(&edits(300)),
            again(),
        ]
    }

    #[test]
    fn messages_round_trip() {
        let m = messages();
        assert_eq!(decode_up(&m[0]), Ok(Up::Region { epoch: 3, sectors: vec![IVec2::new(1, 2), IVec2::new(-1, 0)] }));
        assert_eq!(decode_up(&m[1]), Ok(Up::Received(1 << 33)));
        let Ok(Down::World { generator, sector_columns: 64 }) = decode_down(&m[2]) else { panic!() };
        assert_eq!(generator.min, IVec3::new(-16, 0, 32));
        assert_eq!(
            decode_down(&m[3]),
            Ok(Down::Sector { epoch: 3, key: IVec2::new(1, 2), last: true, edits: edits(50) })
        );
        assert_eq!(decode_down(&m[5]), Ok(Down::Changes(edits(300))));
    }

    #[test]
    fn caps_hold_before_allocating() {
        let too_many = vec![IVec2::ZERO; MAX_REGION + 1];
        assert!(decode_up(&region(1, &too_many)).is_err());
        assert!(decode_down(&sector(1, IVec2::ZERO, true, &edits(PART as i32 + 1))).is_err());
        // A count the body cannot hold: refused, not allocated.
        let mut w = Writer::default();
        w.varint(PART as u64);
        w.u8(1);
        w.varint((PART * 14) as u64);
        w.bytes.extend_from_slice(&[0x28, 0xb5]);
        assert!(decode_down(&frame(CHANGES, &w.bytes)).is_err());
    }

    proptest! {
        /// Any damage to a message (a flipped bit, a cut) is an error.
        #[test]
        fn damaged_messages_are_errors(which in 0usize..7, at in any::<prop::sample::Index>(), bit in 0u8..8, cut in any::<bool>()) {
            let mut m = messages().swap_remove(which);
            let i = at.index(m.len());
            if cut {
                m.truncate(i);
            } else {
                m[i] ^= 1 << bit;
            }
            if which < 2 {
                prop_assert!(decode_up(&m).is_err());
            } else {
                prop_assert!(decode_down(&m).is_err());
            }
        }

        /// Random bytes never panic the decoders.
        #[test]
        fn random_bytes_do_not_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode_up(&bytes);
            let _ = decode_down(&bytes);
        }
    }
}
