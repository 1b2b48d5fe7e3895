//! A mutation fuzzer for the file decoders, on stable Rust (no cargo-fuzz).
//!
//! Each decoder gets arbitrary bytes and mutations of valid records (bit
//! flips, truncations, splices, count fields set large, bodies rewritten and
//! framed again with a good checksum so the mutation reaches the parser). A
//! counting global allocator measures every decode: its largest allocation
//! and its peak of live bytes must stay under `FIXED + PER_BYTE x input
//! length`, and no decode may panic. Allocations made by zstd's C code are not
//! seen (they are its own, bounded by the frame's window); the output buffers
//! the codec asks for are.
//!
//! `DELTA_FUZZ_ITERS` sets the iterations per decoder (10,000 by default, a
//! few seconds each in a debug build); `scripts/fuzz.sh` runs 1,000,000 each
//! in release. `DELTA_FUZZ_SEED` changes the seed.

use bevy_delta_overlay::fuzzing::{self, DecodeError};
use bevy_delta_overlay::{Aabb, ChangeBatch, MaterialId, MaterialUpdate, Palette};
use glam::IVec3;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering::Relaxed};

/// Counts the live bytes, their peak and the largest allocation while on.
struct Counting;

static ON: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);
static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ON.load(Relaxed) {
            let live = LIVE.fetch_add(layout.size() as isize, Relaxed) + layout.size() as isize;
            PEAK.fetch_max(live, Relaxed);
            LARGEST.fetch_max(layout.size(), Relaxed);
        }
        // SAFETY: the caller's layout, passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ON.load(Relaxed) {
            LIVE.fetch_sub(layout.size() as isize, Relaxed);
        }
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if ON.load(Relaxed) {
            let live = LIVE.fetch_add(new_size as isize - layout.size() as isize, Relaxed) + new_size as isize
                - layout.size() as isize;
            PEAK.fetch_max(live, Relaxed);
            LARGEST.fetch_max(new_size, Relaxed);
        }
        // SAFETY: as `GlobalAlloc::realloc` requires of its caller.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// One measured decode at a time: the counters are global.
static MEASURING: Mutex<()> = Mutex::new(());

/// Allocation allowed to any decode, whatever its input.
const FIXED: usize = 1 << 20;
/// Allocation allowed per input byte (a batch's body may expand 256 times, and
/// a change takes 16 bytes decoded for 2 encoded).
const PER_BYTE: usize = 4096;

/// Runs `decode` on `input`, measured; panics (naming the input) past the bound
/// or when the decoder panics.
fn measured<T>(what: &str, input: &[u8], decode: impl FnOnce() -> T) -> T {
    let bound = FIXED + PER_BYTE * input.len();
    LIVE.store(0, Relaxed);
    PEAK.store(0, Relaxed);
    LARGEST.store(0, Relaxed);
    ON.store(true, Relaxed);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode));
    ON.store(false, Relaxed);
    let (peak, largest) = (PEAK.load(Relaxed).max(0) as usize, LARGEST.load(Relaxed));
    let shown = &input[..input.len().min(64)];
    let Ok(value) = result else { panic!("{what}: the decoder panicked on {} bytes {shown:02x?}", input.len()) };
    assert!(
        peak <= bound && largest <= bound,
        "{what}: {} bytes allocated {largest} at once, {peak} at peak (bound {bound}): {shown:02x?}",
        input.len()
    );
    value
}

/// xorshift64*: deterministic, seeded.
struct Rng(u64);

impl Rng {
    fn new(salt: u64) -> Self {
        let seed = std::env::var("DELTA_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_u64);
        Self((seed ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn iterations() -> usize {
    std::env::var("DELTA_FUZZ_ITERS").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000)
}

/// A varint, as the codec writes counts and lengths.
fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    out
}

/// One to four mutations of `input`, `seeds` giving splices.
fn mutate(rng: &mut Rng, mut input: Vec<u8>, seeds: &[Vec<u8>]) -> Vec<u8> {
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(input.len() + 1);
        match rng.below(7) {
            0 if !input.is_empty() => {
                let i = at.min(input.len() - 1);
                input[i] ^= 1 << rng.below(8);
            }
            1 if !input.is_empty() => {
                let i = at.min(input.len() - 1);
                input[i] = rng.next() as u8;
            }
            2 => input.truncate(at),
            3 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len());
                let piece = other[from..(from + 1 + rng.below(64)).min(other.len())].to_vec();
                input.splice(at..at, piece);
            }
            // A count or length field set large: a varint where one starts.
            4 => {
                let big = [1u64 << 24, 1 << 32, u64::MAX, 4096, 65_536][rng.below(5)];
                let end = (at + 1).min(input.len());
                input.splice(at..end, varint(big));
            }
            5 if at < input.len() => {
                let end = (at + 1 + rng.below(16)).min(input.len());
                input.drain(at..end);
            }
            _ => {
                let n = 1 + rng.below(16);
                let piece = rng.bytes(n);
                input.splice(at..at, piece);
            }
        }
    }
    input
}

/// The inputs of one iteration: random bytes, a mutated seed, or a mutated
/// payload framed again (a good checksum, so the parser sees the damage).
fn input(rng: &mut Rng, seeds: &[Vec<u8>], payloads: &[(u8, Vec<u8>)]) -> Vec<u8> {
    match rng.below(10) {
        0 => {
            let n = rng.below(80);
            rng.bytes(n)
        }
        1..=4 => {
            let seed = seeds[rng.below(seeds.len())].clone();
            mutate(rng, seed, seeds)
        }
        _ => {
            let (kind, payload) = &payloads[rng.below(payloads.len())];
            let kind = if rng.below(16) == 0 { rng.next() as u8 } else { *kind };
            fuzzing::frame(kind, &mutate(rng, payload.clone(), seeds))
        }
    }
}

/// The payload of a framed record (kind and checksum off).
fn payload(record: &[u8]) -> (u8, Vec<u8>) {
    (record[0], record[1..record.len() - 8].to_vec())
}

/// Raw brick bodies (palette, index width, packed indices) compressed, as a
/// brick record's payload: mutations of the raw part reach the unpacker.
fn brick_payloads(rng: &mut Rng) -> Vec<(u8, Vec<u8>)> {
    (0..16)
        .map(|i| {
            let n = 1 + rng.below(if i < 8 { 4 } else { 300 });
            let mut raw = varint(n as u64);
            raw.extend(rng.bytes(2 * n));
            let bits = usize::BITS - (n - 1).leading_zeros();
            raw.push(if rng.below(8) == 0 { rng.next() as u8 } else { bits as u8 });
            raw.extend(rng.bytes(((4096 + 73) * bits as usize).div_ceil(8)));
            let mut p = varint(raw.len() as u64);
            p.extend(zstd::bulk::compress(&raw, 3).unwrap());
            (2, p)
        })
        .collect()
}

fn brick_seeds(rng: &mut Rng) -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for materials in [1u16, 2, 3, 5, 17, 300, 4096] {
        let mut voxels = [MaterialId(0); 4096];
        for v in voxels.iter_mut() {
            *v = MaterialId(rng.below(materials as usize) as u16 * 3);
        }
        seeds.push(fuzzing::encode_brick(&voxels));
    }
    seeds.push(fuzzing::frame(1, &7u16.to_le_bytes()));
    seeds
}

fn bounds() -> Aabb {
    Aabb::new(IVec3::new(-20, 0, 3), IVec3::new(44, 32, 51))
}

#[test]
fn brick_records() {
    let _one = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = Rng::new(1);
    let seeds = brick_seeds(&mut rng);
    let mut payloads: Vec<_> = seeds.iter().map(|s| payload(s)).collect();
    payloads.extend(brick_payloads(&mut rng));
    for _ in 0..iterations() {
        let record = input(&mut rng, &seeds, &payloads);
        let _ = measured("brick", &record, || fuzzing::decode_node(&record));
    }
}

fn batch_seeds(rng: &mut Rng) -> Vec<Vec<u8>> {
    let b = bounds();
    let s = b.size();
    [0usize, 1, 5, 40, 700, 5000]
        .iter()
        .map(|&n| {
            let changes = (0..n)
                .map(|i| {
                    let p = IVec3::new(rng.below(s.x as usize) as i32, (i % 3) as i32, rng.below(s.z as usize) as i32);
                    MaterialUpdate::new(b.min + p, MaterialId(rng.below(6) as u16))
                })
                .collect();
            fuzzing::encode_batch(&ChangeBatch::new(1 + rng.below(1000) as u64, changes), b)
        })
        .collect()
}

/// Batch payloads built by hand: plain and compressed bodies, counts that
/// fit them or not.
fn batch_payloads(rng: &mut Rng) -> Vec<(u8, Vec<u8>)> {
    (0..16)
        .map(|i| {
            let n = rng.below(200);
            let body = rng.bytes(n);
            let mut p = varint(1 + rng.below(100) as u64);
            p.extend(varint(if i % 2 == 0 { rng.below(300) as u64 } else { 1 << 24 }));
            if i % 4 < 2 {
                p.push(0);
                p.extend(&body);
            } else {
                p.push(1);
                p.extend(varint(body.len() as u64 + [0, 1 << 20][i % 2]));
                p.extend(zstd::bulk::compress(&body, 1).unwrap());
            }
            (3, p)
        })
        .collect()
}

#[test]
fn change_batch_records() {
    let _one = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = Rng::new(2);
    let seeds = batch_seeds(&mut rng);
    let mut payloads: Vec<_> = seeds.iter().map(|s| payload(s)).collect();
    payloads.extend(batch_payloads(&mut rng));
    for _ in 0..iterations() {
        let record = input(&mut rng, &seeds, &payloads);
        let _ = measured("batch", &record, || fuzzing::decode_batch(&record, bounds(), 1 << 24));
    }
}

/// Node records keyed from the input: `[key: 8][length: 1][record]...`,
/// records taken whole from the seeds (mutated) when the length byte is odd.
fn world_input(rng: &mut Rng, bricks: &[Vec<u8>]) -> Vec<(u64, Vec<u8>)> {
    let keys: Vec<u64> = (0..4)
        .flat_map(|l| (0..8).map(move |i| (l, i)))
        .map(|(l, i)| fuzzing::node_key(4 + l, IVec3::new(i % 3 * 16, 0, i / 3 * 16)))
        .collect();
    (0..rng.below(12))
        .map(|_| {
            let key = match rng.below(8) {
                0 => rng.next(),
                1 => keys[rng.below(keys.len())] ^ 1 << rng.below(64),
                _ => keys[rng.below(keys.len())],
            };
            let seed = bricks[rng.below(bricks.len())].clone();
            (key, if rng.below(3) == 0 { mutate(rng, seed, bricks) } else { seed })
        })
        .collect()
}

#[test]
fn world_and_node_records() {
    let _one = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = Rng::new(3);
    let bricks = brick_seeds(&mut rng);
    // Whole worlds are slower to build: a tenth of the iterations.
    for _ in 0..iterations().div_ceil(10) {
        let records = world_input(&mut rng, &bricks);
        let len: usize = records.iter().map(|(_, r)| r.len() + 8).sum();
        let _ = measured("world", &vec![0; len], || fuzzing::build_world(bounds(), &records));
    }
    // A header's record, mutated as the others are.
    let header = fuzzing::encode_header(bounds(), "[(id: 0, name: \"air\", colour: (1, 2, 3))]");
    let seeds = vec![header.clone()];
    let payloads = vec![payload(&header)];
    for _ in 0..iterations() {
        let record = input(&mut rng, &seeds, &payloads);
        let _ = measured("header", &record, || fuzzing::decode_header(&record));
    }
}

#[test]
fn palette_files() {
    let _one = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = Rng::new(4);
    let shipped = include_str!("../assets/materials.ron").as_bytes().to_vec();
    let seeds =
        vec![shipped, b"[(id: 3, name: \"x\", colour: (1, 2, 3), form: Loose, angle_of_repose: 30.0)]".to_vec()];
    // Palettes are text: no framing, so no payload route.
    for _ in 0..iterations() {
        let bytes = if rng.below(10) == 0 {
            let n = rng.below(80);
            rng.bytes(n)
        } else {
            let seed = seeds[rng.below(2)].clone();
            mutate(&mut rng, seed, &seeds)
        };
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let _ = measured("palette", text.as_bytes(), || Palette::from_ron_str(&text).map(|p| p.entries().len()));
    }
}

/// The two records the review found, measured: a 17-byte batch record that
/// declared 2^24 changes (256 MiB reserved), and a small zstd frame that
/// declared a 320 MiB body (decompressed into before it was refused).
#[test]
fn declared_sizes_do_not_allocate() {
    let _one = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let mut p = varint(1);
    p.extend(varint(1 << 24));
    p.extend([0, 0, 0]);
    let small = fuzzing::frame(3, &p);
    assert_eq!(small.len(), 17);
    assert!(measured("17 bytes", &small, || fuzzing::decode_batch(&small, bounds(), 1 << 24)).is_err());
    let body = vec![0u8; 16 << 20];
    let mut p = varint(1);
    p.extend(varint(1 << 24));
    p.push(1);
    p.extend(varint(body.len() as u64));
    p.extend(zstd::bulk::compress(&body, 19).unwrap());
    let bomb = fuzzing::frame(3, &p);
    assert!(bomb.len() < 10 << 10, "{} bytes", bomb.len());
    let e = measured("bomb", &bomb, || fuzzing::decode_batch(&bomb, bounds(), 1 << 24));
    assert!(matches!(e, Err(DecodeError::Invalid(_))), "{e:?}");
}

/// The wire, server to client: every message kind, mutated and re-framed.
#[cfg(feature = "replication")]
#[test]
fn wire_messages_from_the_server() {
    let _one = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = Rng::new(5);
    let seeds = fuzzing::server_messages();
    let mut payloads: Vec<_> = seeds.iter().map(|s| payload(s)).collect();
    // A snapshot chunk that declares the most records in a few bytes.
    let mut chunk = varint((1 << 16) - 1);
    chunk.extend([1, 1, 7]);
    payloads.push((11, chunk));
    for _ in 0..iterations() {
        let message = input(&mut rng, &seeds, &payloads);
        let _ = measured("downlink", &message, || fuzzing::decode_from_server(&message));
    }
}

/// The wire, client to server: edit requests (plain and compressed), resync
/// requests, progress reports, mutated and re-framed.
#[cfg(feature = "replication")]
#[test]
fn wire_messages_from_a_client() {
    let _one = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = Rng::new(6);
    let seeds = fuzzing::client_messages();
    let payloads: Vec<_> = seeds.iter().map(|s| payload(s)).collect();
    for _ in 0..iterations() {
        let message = input(&mut rng, &seeds, &payloads);
        let _ = measured("uplink", &message, || fuzzing::decode_from_client(&message, 1 << 16));
    }
}

/// A client reading a hostile server's stream: a valid join's messages with
/// some mutated, repeated or replaced, measured over the whole stream (what
/// the client keeps, and the world it builds at the snapshot's end).
#[cfg(feature = "replication")]
#[test]
fn a_client_reading_a_hostile_stream() {
    let _one = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let mut rng = Rng::new(7);
    let seeds = fuzzing::server_messages();
    let payloads: Vec<_> = seeds.iter().map(|s| payload(s)).collect();
    // Whole sessions build worlds: a tenth of the iterations.
    for _ in 0..iterations().div_ceil(10) {
        let mut stream = seeds.clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(stream.len());
            match rng.below(3) {
                0 => stream[at] = input(&mut rng, &seeds, &payloads),
                1 => stream.insert(at, stream[rng.below(stream.len())].clone()),
                _ => {
                    stream.remove(at);
                }
            }
        }
        let len: usize = stream.iter().map(Vec::len).sum();
        let _ = measured("session", &vec![0; len], || fuzzing::client_session(&stream));
    }
}
