//! Selection: a consolidation's input layers merged into one delta per voxel,
//! the strategy's pick among them, and the split into writes for the base and
//! the deltas that stay in the overlay. Pure and `O(deltas)`.
//!
//! The work is cut into chunks of bricks (in Morton order) that are merged and
//! split independently, so an [`Executor`](super::Executor) can run them side
//! by side; only the pick's global figures (the age cut, the densest chunks)
//! are computed between the two passes, from per-chunk figures.

use super::AppliedStrategy;
use crate::base::BrickWrite;
use crate::coords::brick::BrickKey;
use crate::hash::{FastMap, fixed_hasher};
use crate::overlay::{Delta, Layer};
use crate::parallel::Executor;
use glam::IVec3;
use std::collections::HashSet;
use std::ops::Range;

/// What a selection needs besides the layers, captured when the consolidation
/// began.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SelectionParams {
    pub strategy: AppliedStrategy,
    /// Storage clock (ms) when the consolidation began.
    pub now: u64,
    pub max_age_ms: u64,
    /// Edge of a spatial chunk, in bricks.
    pub chunk_bricks: i32,
    pub spatial_share: f32,
    /// Deltas a backpressure consolidation leaves in the overlay.
    pub keep: usize,
}

/// A brick to merge: its Morton code, key, and the deltas its layers hold.
pub(crate) type BrickToMerge = (u64, BrickKey, usize);

/// Every brick some layer holds, in Morton order, each once.
pub(crate) fn bricks_to_merge(layers: &[&Layer]) -> Vec<BrickToMerge> {
    let mut keys: Vec<BrickToMerge> = Vec::with_capacity(layers.iter().map(|l| l.brick_count()).sum());
    for (i, layer) in layers.iter().enumerate() {
        for (key, deltas) in layer.iter() {
            if !layers[..i].iter().any(|l| l.brick(key).is_some()) {
                let more: usize = layers[i + 1..].iter().filter_map(|l| l.brick(key)).map(|b| b.0.len()).sum();
                keys.push((key.code(), key, deltas.len() + more));
            }
        }
    }
    keys.sort_unstable_by_key(|k| k.0);
    keys
}

/// Cuts the bricks into at most `pieces` runs of about equal delta counts.
pub(crate) fn cut(bricks: &[BrickToMerge], pieces: usize) -> Vec<Range<usize>> {
    let total: usize = bricks.iter().map(|b| b.2).sum();
    let per = total.div_ceil(pieces.max(1)).max(1);
    let mut out = Vec::with_capacity(pieces);
    let (mut start, mut acc) = (0, 0);
    for (i, b) in bricks.iter().enumerate() {
        acc += b.2;
        if acc >= per {
            out.push(start..i + 1);
            (start, acc) = (i + 1, 0);
        }
    }
    if start < bricks.len() {
        out.push(start..bricks.len());
    }
    out
}

/// A run of bricks merged: each voxel's visible delta.
#[derive(Debug, Default)]
pub(crate) struct MergedChunk {
    /// Key and range of each brick's deltas.
    bricks: Vec<(BrickKey, Range<usize>)>,
    deltas: Vec<Delta>,
}

/// Merges bricks of `layers` (top first; the base lies directly beneath the
/// last): the top layer's material over the bottom layer's `beneath` (the base's
/// value), dropped when the two are equal (the voxel reads as the base).
pub(crate) fn merge(layers: &[&Layer], bricks: &[BrickToMerge]) -> MergedChunk {
    let mut merged = MergedChunk {
        bricks: Vec::with_capacity(bricks.len()),
        deltas: Vec::with_capacity(bricks.iter().map(|b| b.2).sum()),
    };
    let mut stack: Vec<&[Delta]> = Vec::with_capacity(layers.len());
    for &(_, key, _) in bricks {
        let start = merged.deltas.len();
        stack.clear();
        stack.extend(layers.iter().filter_map(|l| l.brick(key).map(|b| b.0)));
        if let [only] = stack[..] {
            merged.deltas.extend_from_slice(only);
        } else {
            merge_brick(&stack, &mut merged.deltas);
        }
        if merged.deltas.len() > start {
            merged.bricks.push((key, start..merged.deltas.len()));
        }
    }
    merged
}

/// Merges one brick's slices (top first) into `out`.
fn merge_brick(stack: &[&[Delta]], out: &mut Vec<Delta>) {
    let mut heads = vec![0usize; stack.len()];
    loop {
        let Some(next) = stack.iter().zip(heads.iter()).filter_map(|(s, &h)| s.get(h).map(|d| d.local)).min() else {
            return;
        };
        let (mut top, mut bottom) = (None, None);
        for (s, h) in stack.iter().zip(heads.iter_mut()) {
            if let Some(d) = s.get(*h).filter(|d| d.local == next) {
                top.get_or_insert(*d);
                bottom = Some(*d);
                *h += 1;
            }
        }
        if let (Some(mut d), Some(b)) = (top, bottom) {
            d.beneath = b.beneath;
            if d.material != d.beneath {
                out.push(d);
            }
        }
    }
}

/// Figures of a merged chunk that a pick needs from every chunk.
#[derive(Debug)]
pub(crate) struct ChunkFigures {
    deltas: usize,
    /// Write times, for the age cut (lazy, backpressure).
    times: Vec<u64>,
    /// Deltas per spatial chunk (spatial).
    per_chunk: FastMap<IVec3, usize>,
}

/// The figures of `chunk` that `params`' strategy needs.
pub(crate) fn figures(chunk: &MergedChunk, params: &SelectionParams) -> ChunkFigures {
    let mut f =
        ChunkFigures { deltas: chunk.deltas.len(), times: Vec::new(), per_chunk: FastMap::with_hasher(fixed_hasher()) };
    match params.strategy {
        AppliedStrategy::LazyThreshold { .. } | AppliedStrategy::Backpressure => {
            f.times = chunk.deltas.iter().map(Delta::written_at).collect();
        }
        AppliedStrategy::SpatialClustering { .. } => {
            let mut counts = FastMap::with_hasher(fixed_hasher());
            for (key, range) in &chunk.bricks {
                *counts.entry(spatial_chunk(*key, params)).or_default() += range.len();
            }
            f.per_chunk = counts;
        }
        _ => {}
    }
    f
}

fn spatial_chunk(key: BrickKey, params: &SelectionParams) -> IVec3 {
    key.brick() / params.chunk_bricks.max(1)
}

/// How one chunk picks its deltas.
#[derive(Clone, Debug)]
pub(crate) enum ChunkPick {
    All,
    /// Written before `cut`, and the first `at_cut` written exactly at it.
    Older {
        cut: u64,
        at_cut: usize,
    },
    /// At least `age` ms old at `now`.
    Aged {
        now: u64,
        age: u64,
    },
    /// In one of these spatial chunks of `edge` bricks.
    Chunks {
        chosen: std::sync::Arc<HashSet<IVec3, ahash::RandomState>>,
        edge: i32,
    },
}

/// Each chunk's pick, from every chunk's figures (in chunk order).
pub(crate) fn plan(figures: &mut [ChunkFigures], params: &SelectionParams) -> Vec<ChunkPick> {
    let total: usize = figures.iter().map(|f| f.deltas).sum();
    let n = figures.len();
    match params.strategy {
        AppliedStrategy::Flush => vec![ChunkPick::All; n],
        AppliedStrategy::TimeBasedBatching { .. } => {
            vec![ChunkPick::Aged { now: params.now, age: params.max_age_ms }; n]
        }
        AppliedStrategy::LazyThreshold { .. } => oldest(figures, total.div_ceil(2)),
        AppliedStrategy::Backpressure => oldest(figures, total.saturating_sub(params.keep)),
        AppliedStrategy::SpatialClustering { .. } => {
            let mut counts: FastMap<IVec3, usize> = FastMap::with_hasher(fixed_hasher());
            for f in figures.iter_mut() {
                for (chunk, c) in f.per_chunk.drain() {
                    *counts.entry(chunk).or_default() += c;
                }
            }
            let mut chunks: Vec<(IVec3, usize)> = counts.into_iter().collect();
            // Densest first; ties by position so the choice is reproducible.
            chunks.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.to_array().cmp(&b.0.to_array())));
            let target = ((total as f64) * f64::from(params.spatial_share)).ceil() as usize;
            let mut taken = 0;
            let mut chosen = HashSet::with_hasher(fixed_hasher());
            for (chunk, count) in chunks {
                if taken >= target.max(1) {
                    break;
                }
                chosen.insert(chunk);
                taken += count;
            }
            vec![ChunkPick::Chunks { chosen: std::sync::Arc::new(chosen), edge: params.chunk_bricks.max(1) }; n]
        }
    }
}

/// The `want` oldest deltas (by last write): a linear-time selection of the cut,
/// not a sort. Deltas written exactly at the cut are taken in brick order.
fn oldest(figures: &mut [ChunkFigures], want: usize) -> Vec<ChunkPick> {
    let mut times: Vec<u64> = figures.iter().flat_map(|f| f.times.iter().copied()).collect();
    if want == 0 || times.is_empty() {
        return vec![ChunkPick::Older { cut: 0, at_cut: 0 }; figures.len()];
    }
    let want = want.min(times.len());
    // The selection reorders `times`; each chunk's own times stay in order.
    let (_, &mut cut, _) = times.select_nth_unstable(want - 1);
    let older = times.iter().filter(|&&t| t < cut).count();
    let mut left = want - older;
    // Each chunk takes deltas at the cut until the quota is spent, in order.
    figures
        .iter_mut()
        .map(|f| {
            let at_cut_here = std::mem::take(&mut f.times).into_iter().filter(|&t| t == cut).count();
            let take = at_cut_here.min(left);
            left -= take;
            ChunkPick::Older { cut, at_cut: take }
        })
        .collect()
}

/// A chunk split by its pick.
#[derive(Debug, Default)]
pub(crate) struct SplitChunk {
    /// Every brick with picked deltas, and the range of its writes.
    pub bricks: Vec<(BrickKey, Range<usize>)>,
    /// The picked deltas as writes, brick after brick, in voxel order.
    pub writes: Vec<BrickWrite>,
    /// The deltas not picked, by brick.
    pub kept: Vec<(BrickKey, Range<usize>)>,
    pub kept_deltas: Vec<Delta>,
}

/// Splits a merged chunk by its pick.
pub(crate) fn split(chunk: &MergedChunk, pick: &ChunkPick) -> SplitChunk {
    let mut out = SplitChunk::default();
    let mut at_cut_left = match pick {
        ChunkPick::Older { at_cut, .. } => *at_cut,
        _ => 0,
    };
    for (key, range) in &chunk.bricks {
        let in_chosen = match pick {
            ChunkPick::Chunks { chosen, edge } => chosen.contains(&(key.brick() / *edge)),
            _ => false,
        };
        let (start, kept_start) = (out.writes.len(), out.kept_deltas.len());
        for d in &chunk.deltas[range.clone()] {
            let picked = match pick {
                ChunkPick::All => true,
                ChunkPick::Older { cut, .. } => {
                    let t = d.written_at();
                    t < *cut
                        || (t == *cut && at_cut_left > 0 && {
                            at_cut_left -= 1;
                            true
                        })
                }
                ChunkPick::Aged { now, age } => now.saturating_sub(d.written_at()) >= *age,
                ChunkPick::Chunks { .. } => in_chosen,
            };
            if picked {
                out.writes.push(BrickWrite { local: d.local, material: d.material });
            } else {
                out.kept_deltas.push(*d);
            }
        }
        if out.writes.len() > start {
            out.bricks.push((*key, start..out.writes.len()));
        }
        if out.kept_deltas.len() > kept_start {
            out.kept.push((*key, kept_start..out.kept_deltas.len()));
        }
    }
    out
}

/// Builds the layer of every kept delta.
pub(crate) fn remainder(chunks: &[SplitChunk]) -> Layer {
    let mut layer = Layer::with_capacity(chunks.iter().map(|c| c.kept.len()).sum());
    for c in chunks {
        for (key, range) in &c.kept {
            layer.push_brick(*key, &c.kept_deltas[range.clone()]);
        }
    }
    layer
}

/// Merges and splits `layers` as `params` picks, in pieces `exec` runs side by
/// side; the pieces come back in Morton order.
pub(crate) fn select(layers: &[&Layer], params: &SelectionParams, exec: &impl Executor) -> Vec<SplitChunk> {
    let bricks = bricks_to_merge(layers);
    let runs = cut(&bricks, exec.width() * 4);
    let merged: Vec<MergedChunk> = exec.map(runs.len(), &|i| merge(layers, &bricks[runs[i].clone()]));
    let mut figs: Vec<ChunkFigures> = exec.map(merged.len(), &|i| figures(&merged[i], params));
    let picks = plan(&mut figs, params);
    exec.map(merged.len(), &|i| split(&merged[i], &picks[i]))
}
