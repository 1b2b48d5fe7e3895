//! The log of surface changes: bounded, in order, read with cursors.

use glam::IVec2;
use std::collections::VecDeque;

/// A column whose surface changed: its top before and after (`None`: no
/// terrain). A top that rose buried what was there; one that fell exposed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SurfaceChange {
    /// The column, `(x, z)` in world coordinates.
    pub column: IVec2,
    /// The top before the change.
    pub before: Option<i32>,
    /// The top after it.
    pub after: Option<i32>,
}

/// Where a reader of the log is: the number of the next change it reads.
/// `Default` starts at the beginning of the world's log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "plugin", derive(bevy::reflect::Reflect))]
pub struct SurfaceCursor(pub u64);

/// The log: the last [`SurfaceLog::CAPACITY`] changes; older ones are
/// dropped first, and a reader that fell behind is told how many it missed.
#[derive(Clone, Debug, Default)]
pub(crate) struct SurfaceLog {
    /// The number of the first change kept.
    first: u64,
    changes: VecDeque<SurfaceChange>,
}

impl SurfaceLog {
    // A paged world's (feature `paging`) only.
    #[cfg(feature = "paging")]
    /// Its heap bytes.
    pub fn bytes(&self) -> usize {
        self.changes.capacity() * std::mem::size_of::<SurfaceChange>()
    }

    /// Changes kept: about two frames of a busy simulation.
    pub const CAPACITY: usize = 1 << 16;

    /// A log with nothing in it.
    pub const EMPTY: SurfaceLog = SurfaceLog { first: 0, changes: VecDeque::new() };

    /// An empty log whose first change will be number `first`: a new index
    /// goes on numbering where the one it replaces stopped, so readers'
    /// cursors stay valid.
    pub fn starting_at(first: u64) -> Self {
        Self { first, changes: VecDeque::new() }
    }

    /// The number the next change will get.
    pub fn end(&self) -> u64 {
        self.first + self.changes.len() as u64
    }

    /// Appends a change, dropping the oldest past the capacity.
    pub fn push(&mut self, change: SurfaceChange) {
        if self.changes.len() == Self::CAPACITY {
            self.changes.pop_front();
            self.first += 1;
        }
        self.changes.push_back(change);
    }

    /// No changes, for a reader at `cursor` when no log is kept and the last
    /// one ended at `end`: it missed what it had not read of that one, and its
    /// cursor moves to `end` (never back).
    pub fn nothing_since(cursor: &mut SurfaceCursor, end: u64) -> SurfaceChanges<'static> {
        static EMPTY: SurfaceLog = SurfaceLog::EMPTY;
        let missed = end.saturating_sub(cursor.0);
        cursor.0 = cursor.0.max(end);
        SurfaceChanges { changes: EMPTY.changes.range(..), missed }
    }

    /// The changes from `cursor` on, and moves the cursor past them.
    pub fn since(&self, cursor: &mut SurfaceCursor) -> SurfaceChanges<'_> {
        let end = self.first + self.changes.len() as u64;
        let from = cursor.0.clamp(self.first, end);
        let missed = from - cursor.0.min(from);
        *cursor = SurfaceCursor(end);
        SurfaceChanges { changes: self.changes.range((from - self.first) as usize..), missed }
    }
}

/// Surface changes read from the log: an iterator, in order.
#[derive(Clone, Debug)]
pub struct SurfaceChanges<'a> {
    changes: std::collections::vec_deque::Iter<'a, SurfaceChange>,
    /// Changes the reader missed: dropped from the log before it read them.
    pub missed: u64,
}

impl<'a> Iterator for SurfaceChanges<'a> {
    type Item = &'a SurfaceChange;

    fn next(&mut self) -> Option<Self::Item> {
        self.changes.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.changes.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(x: i32) -> SurfaceChange {
        SurfaceChange { column: IVec2::new(x, 0), before: None, after: Some(x) }
    }

    #[test]
    fn readers_follow_the_log_and_learn_what_they_missed() {
        let mut log = SurfaceLog::default();
        let mut cursor = SurfaceCursor::default();
        log.push(change(1));
        log.push(change(2));
        let read: Vec<i32> = log.since(&mut cursor).map(|c| c.column.x).collect();
        assert_eq!(read, [1, 2]);
        assert_eq!(log.since(&mut cursor).count(), 0);
        for x in 0..SurfaceLog::CAPACITY as i32 + 5 {
            log.push(change(x));
        }
        let changes = log.since(&mut cursor);
        assert_eq!((changes.missed, changes.count()), (5, SurfaceLog::CAPACITY));
    }
}
