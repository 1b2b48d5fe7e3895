//! The work list of the change-driven processes: columns waiting for a check.
//!
//! # Invariants
//!
//! - `ONCE`: a column is in the queue at most once; queueing it again before
//!   its check merges the marks (what the check should look at) and keeps its
//!   place.
//! - `BOUNDED`: at most `cap` columns; past it the oldest is dropped (and
//!   counted), as a check that old is the least likely still to matter. The
//!   random trickle of each process finds what a dropped check would have.

use super::state::{StateError, StateReader, StateWriter};
use crate::hash::{FastMap, fast_map};
use glam::IVec2;
use std::collections::VecDeque;

/// Columns waiting for a check, oldest first, each once, with a mark of what
/// to check (a bit set the process defines).
#[derive(Clone)]
pub(crate) struct ColumnQueue {
    order: VecDeque<IVec2>,
    marks: FastMap<IVec2, u8>,
    /// Columns dropped because the queue was full.
    pub dropped: u64,
}

impl Default for ColumnQueue {
    fn default() -> Self {
        Self { order: VecDeque::new(), marks: fast_map(), dropped: 0 }
    }
}

impl std::fmt::Debug for ColumnQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ColumnQueue").field("len", &self.order.len()).field("dropped", &self.dropped).finish()
    }
}

impl ColumnQueue {
    /// Queues `column` with `mark` (or adds `mark` to it where it is queued);
    /// past `cap` columns the oldest is dropped.
    pub fn push(&mut self, column: IVec2, mark: u8, cap: usize) {
        let cap = cap.max(1);
        // The cap may have been lowered since the last push.
        self.trim(cap);
        if let Some(m) = self.marks.get_mut(&column) {
            *m |= mark;
            return;
        }
        self.trim(cap - 1);
        self.marks.insert(column, mark);
        self.order.push_back(column);
        debug_assert_eq!(self.order.len(), self.marks.len(), "ONCE");
    }

    /// Writes the columns in order with their marks (not `dropped`: a count
    /// of this run).
    pub fn save(&self, out: &mut StateWriter) {
        out.len_of(self.order.len());
        for c in &self.order {
            out.ivec2(*c);
            out.u8(self.marks.get(c).copied().unwrap_or(0));
        }
    }

    /// Reads what [`save`](Self::save) wrote (`ONCE` checked).
    pub fn restore(input: &mut StateReader<'_>) -> Result<Self, StateError> {
        let mut queue = Self::default();
        for _ in 0..input.len_of(9)? {
            let (c, mark) = (input.ivec2()?, input.u8()?);
            if queue.marks.insert(c, mark).is_some() {
                return Err(StateError::Invalid("queue (a column twice)"));
            }
            queue.order.push_back(c);
        }
        Ok(queue)
    }

    /// Drops the oldest columns past `len`.
    fn trim(&mut self, len: usize) {
        while self.order.len() > len {
            let Some(old) = self.order.pop_front() else { break };
            self.marks.remove(&old);
            self.dropped += 1;
        }
    }

    /// The oldest column and its mark.
    pub fn pop(&mut self) -> Option<(IVec2, u8)> {
        let column = self.order.pop_front()?;
        let mark = self.marks.remove(&column).unwrap_or(0);
        Some((column, mark))
    }

    /// Columns queued.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Forgets every queued column.
    pub fn clear(&mut self) {
        self.order.clear();
        self.marks.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_column_is_queued_once_with_its_marks_merged_and_the_oldest_goes_first() {
        let mut q = ColumnQueue::default();
        q.push(IVec2::new(1, 0), 1, 3);
        q.push(IVec2::new(2, 0), 0, 3);
        q.push(IVec2::new(1, 0), 2, 3);
        assert_eq!(q.len(), 2);
        q.push(IVec2::new(3, 0), 0, 3);
        q.push(IVec2::new(4, 0), 0, 3);
        assert_eq!((q.len(), q.dropped), (3, 1));
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, [(IVec2::new(2, 0), 0), (IVec2::new(3, 0), 0), (IVec2::new(4, 0), 0)]);
        q.push(IVec2::new(1, 0), 4, 3);
        assert_eq!(q.pop(), Some((IVec2::new(1, 0), 4)), "a dropped column's marks were forgotten");
    }

    #[test]
    fn a_lowered_cap_bounds_the_queue_at_the_next_push() {
        let mut q = ColumnQueue::default();
        for x in 0..50 {
            q.push(IVec2::new(x, 0), 0, 100);
        }
        q.push(IVec2::new(99, 0), 0, 10);
        assert_eq!((q.len(), q.dropped), (10, 41));
        assert_eq!(q.pop(), Some((IVec2::new(41, 0), 0)), "the oldest were dropped");
    }
}
