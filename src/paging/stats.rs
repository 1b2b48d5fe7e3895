//! What a paged world holds and did.

/// What a [`PagedWorld`](super::PagedWorld) holds and did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PagingStats {
    /// Sectors resident now.
    pub resident_sectors: usize,
    /// Their bytes now (base index, overlay, surface index).
    pub resident_bytes: usize,
    /// The most `resident_bytes` has been after a tick.
    pub peak_resident_bytes: usize,
    /// Edited voxels kept in memory (every sector; with a file, those it has
    /// not acknowledged).
    pub edits: usize,
    /// Bytes of the edit maps.
    pub edit_bytes: usize,
    /// Sectors evicted whose coarse values are kept, and their bytes
    /// (outside `resident_budget`; `max_coarse` bounds them).
    pub coarse_sectors: usize,
    /// See `coarse_sectors`.
    pub coarse_bytes: usize,
    /// Sectors generated.
    pub generated: u64,
    /// Sectors evicted.
    pub evicted: u64,
    /// Ticks that ended over the budget (every resident sector wanted).
    pub over_budget: u64,
    /// Sectors being generated now.
    pub in_flight: usize,
    /// Sectors that could not be made (the generator or the file failed,
    /// or the pager skipped one no longer wanted), and the last reason.
    pub failed: u64,
    /// Sectors made from the file before it acknowledged a batch of their
    /// edits that memory then let go of: dropped, and made again.
    pub made_again: u64,
    /// Why the last sector could not be made.
    pub last_failure: Option<String>,
    /// With a file: the last batch of edits acknowledged durable, the
    /// batches handed to it and not acknowledged, and the file's bytes.
    pub durable: u64,
    /// See `durable`.
    pub flushing: usize,
    /// See `durable`.
    pub file_bytes: u64,
}
