//! The overlay's side of a consolidation: freezing deltas for a job, spending
//! them once the base holds them, thawing them when the job is cancelled.

use super::delta::{heap_capacity, mask_of};
use super::{BrickDeltas, BrickKey, BrickWrite, Delta, FrozenDeltas, Overlay};

impl BrickDeltas {
    /// Removes the brick's frozen deltas and refreshes its mask; returns how
    /// many it removed.
    fn drop_frozen(&mut self) -> usize {
        let before = self.deltas.len();
        self.deltas.retain(|d| !d.is_frozen());
        self.mask = mask_of(&self.deltas);
        before - self.deltas.len()
    }
}

impl Overlay {
    /// Freezes the active deltas `pick` accepts, in bricks `pick_brick` accepts,
    /// and copies them out for the job; purges spent deltas on the way:
    /// `O(deltas)`. Expects no live frozen delta (one consolidation at a time).
    pub fn freeze(
        &mut self,
        mut pick_brick: impl FnMut(BrickKey) -> bool,
        mut pick: impl FnMut(&Delta) -> bool,
    ) -> FrozenDeltas {
        debug_assert_eq!(self.frozen, 0, "one consolidation at a time");
        let mut out = FrozenDeltas::default();
        let purge = self.spent > 0;
        let (mut time_taken, mut capacity_freed) = (0, 0);
        self.bricks.retain(|key, brick| {
            if purge {
                brick.drop_frozen();
                if brick.deltas.is_empty() {
                    capacity_freed += heap_capacity(&brick.deltas);
                    return false;
                }
            }
            if pick_brick(*key) {
                let start = out.writes.len();
                for d in brick.deltas.iter_mut().filter(|d| !d.is_frozen() && pick(d)) {
                    d.slot |= 1;
                    time_taken += u64::from(d.written_at);
                    out.writes.push(BrickWrite { local: d.local(), material: d.material });
                }
                if out.writes.len() > start {
                    out.bricks.push((*key, start..out.writes.len()));
                }
            }
            true
        });
        self.spent = 0;
        self.capacity -= capacity_freed;
        self.time_sum -= time_taken;
        self.frozen = out.writes.len();
        self.active -= self.frozen;
        out
    }

    /// The job in flight is finished: the base holds its frozen deltas, which are
    /// spent from now on (`SPENT`). `O(1)`: the next freeze purges them.
    pub fn spend_frozen(&mut self) {
        self.spent += self.frozen;
        self.frozen = 0;
    }

    /// The frozen deltas of `bricks` are in the base and nothing else reads them
    /// (a synchronous consolidation): drops them now, `O(deltas in bricks)`,
    /// rather than keep them spent until the next freeze.
    pub fn drop_frozen(&mut self, bricks: impl IntoIterator<Item = BrickKey>) {
        for key in bricks {
            let Some(brick) = self.bricks.get_mut(&key) else {
                continue;
            };
            self.frozen -= brick.drop_frozen();
            if brick.deltas.is_empty() {
                self.capacity -= heap_capacity(&brick.deltas);
                self.bricks.remove(&key);
            }
        }
        debug_assert_eq!(self.frozen, 0, "every frozen brick was listed");
    }

    /// Returns the frozen deltas of `bricks` to the active layer (a cancelled
    /// job). A newer active delta of the same voxel stays on top and now lies on
    /// the base: it takes the frozen delta's `beneath`, and is removed when it
    /// equals it. Returns the number of such reverts.
    pub fn thaw(&mut self, bricks: &[BrickKey]) -> u64 {
        let mut reverts = 0;
        for key in bricks {
            let Some(brick) = self.bricks.get_mut(key) else {
                continue;
            };
            let deltas = &mut brick.deltas;
            let mut out = 0;
            for i in 0..deltas.len() {
                let d = deltas[i];
                if !d.is_frozen() {
                    deltas[out] = d;
                    out += 1;
                    continue;
                }
                self.frozen -= 1;
                if out > 0 && deltas[out - 1].local() == d.local() {
                    // The newer active delta, just kept.
                    let newer = &mut deltas[out - 1];
                    newer.beneath = d.beneath;
                    if newer.material == newer.beneath {
                        self.active -= 1;
                        self.time_sum -= u64::from(newer.written_at);
                        reverts += 1;
                        out -= 1;
                    }
                } else {
                    deltas[out] = Delta { slot: d.slot & !1, ..d };
                    out += 1;
                    self.active += 1;
                    self.time_sum += u64::from(d.written_at);
                }
            }
            deltas.truncate(out);
            brick.mask = mask_of(deltas);
            if deltas.is_empty() {
                self.capacity -= heap_capacity(deltas);
                self.bricks.remove(key);
            }
        }
        debug_assert_eq!(self.frozen, 0, "every frozen brick was listed");
        reverts
    }
}
