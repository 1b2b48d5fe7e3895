//! A paged world kept in a file (features `paging` and `persistence`): the
//! edits go to the file in batches and come back from it with their sectors.

use super::file::SectorFile;
use super::sector::{EditSource, Maker, Pager};
use super::{PagedWorld, PagingSettings};
use crate::consolidation::DeltaConfig;
use crate::persistence::StoreError;
use crate::worldgen::WorldGen;
use std::path::Path;
use std::sync::Arc;

impl PagedWorld {
    /// The world `generator` makes with the edits kept in the file at
    /// `path` (created when there is none): memory keeps the edits until the
    /// file acknowledges them, then only the resident sectors hold them; a
    /// sector comes in from the generator and the file, read on the pager
    /// thread. The file holds the edits only, so it grows with them, not
    /// with the world. Call [`flush`](Self::flush) to hand edits over.
    ///
    /// ```
    /// use bevy_delta_overlay::paging::{PagedWorld, PagingSettings};
    /// use bevy_delta_overlay::{DeltaConfig, WorldGen, materials};
    /// use glam::IVec3;
    /// let dir = std::env::temp_dir().join(format!("paged-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("world.redb");
    /// let generator = WorldGen { size: IVec3::new(1024, 64, 1024), sea_level: 30, ..WorldGen::default() };
    /// let settings = PagingSettings { sector_columns: 64, ..PagingSettings::default() };
    /// let here = IVec3::new(700, 10, 300);
    /// {
    ///     let mut world = PagedWorld::open(&path, generator.clone(), settings.clone(), DeltaConfig::default())?;
    ///     world.update(here, materials::MAGMA)?;
    ///     let batch = world.flush()?.expect("an edit to hand over");
    ///     world.wait_durable(batch)?;
    /// }
    /// let mut world = PagedWorld::open(&path, generator, settings, DeltaConfig::default())?;
    /// assert_eq!(world.get_blocking(here)?, materials::MAGMA);
    /// # drop(world);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`StoreError`]: a file that cannot be opened or read, of another
    /// world ([`StoreError::Mismatch`]), or with a damaged record (checked
    /// at open, [`StoreError::Corrupt`]); the file is left as it was.
    pub fn open(
        path: impl AsRef<Path>,
        generator: WorldGen,
        settings: PagingSettings,
        config: DeltaConfig,
    ) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let invalid = |e: crate::VoxelError| StoreError::Io {
            path: path.to_path_buf(),
            error: std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()),
        };
        let mut world = Self::new(generator, settings, config).map_err(invalid)?;
        let file = SectorFile::open(path, &world.generator)?;
        let source: Arc<dyn EditSource> = file.source.clone();
        world.maker = Maker { source: Some(source), ..world.maker.clone() };
        world.pager = Pager::start(world.maker.clone());
        world.stats.durable = file.acknowledged();
        world.edits.number_after(file.acknowledged());
        world.file = Some(file);
        Ok(world)
    }

    /// Hands every edit not handed yet to the file's writer thread, which
    /// syncs them in one transaction; never waits. The batch's number
    /// (acknowledged when [`durable`](Self::durable) reaches it), `None`
    /// when there was nothing to hand over, or the writer is two batches
    /// behind (the edits stay in memory for the next flush; `max_edits`
    /// bounds them) or there is no file.
    ///
    /// # Errors
    /// [`StoreError`] when the writer stopped (a full disk, an I/O error):
    /// what it acknowledged is in the file, the edits after it stay in
    /// memory.
    pub fn flush(&mut self) -> Result<Option<u64>, StoreError> {
        self.note_acknowledged();
        let Some(file) = &self.file else { return Ok(None) };
        file.error()?;
        let Some((number, batch)) = self.edits.take_batch() else { return Ok(None) };
        match file.hand(number, batch) {
            Ok(true) => Ok(Some(number)),
            Ok(false) => {
                self.edits.unhand(number);
                Ok(None)
            }
            Err(e) => {
                self.edits.unhand(number);
                Err(e)
            }
        }
    }

    /// The last batch of edits the file acknowledged durable (0 without a
    /// file or before the first).
    pub fn durable(&self) -> u64 {
        self.file.as_ref().map_or(0, SectorFile::acknowledged)
    }

    /// Waits until batch `number` is durable (or, for a number never handed
    /// over, every batch in flight): for tools, tests and exits.
    ///
    /// # Errors
    /// [`StoreError`] when the writer stopped before it.
    pub fn wait_durable(&mut self, number: u64) -> Result<(), StoreError> {
        // A number never handed over (or handed back) has nothing to wait
        // for past the last batch in flight.
        let Some(file) = &self.file else { return Ok(()) };
        let number = number.min(file.acknowledged().max(self.edits.last_handed()));
        while let Some(file) = &self.file {
            file.error()?;
            if file.acknowledged() >= number {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        self.note_acknowledged();
        Ok(())
    }

    /// Hands the edits not handed yet to the file and waits until every
    /// batch is durable (a drop does it; errors are in the writer's).
    pub(super) fn close(&mut self) {
        let Some(file) = &self.file else { return };
        let mut last = file.acknowledged();
        if let Some((number, batch)) = self.edits.take_batch()
            && file.hand_waiting(number, batch).is_ok()
        {
            last = number;
        }
        let _ = self.wait_durable(last.max(self.edits.last_handed()));
    }

    /// Lets go of the edits the file acknowledged (`LATER_IN_MEMORY`),
    /// but not of those after the oldest sector read for followers began
    /// (`share.rs`): its read may have missed them, memory still has them.
    pub(super) fn note_acknowledged(&mut self) {
        if let Some(file) = &self.file {
            let durable = file.acknowledged();
            let floor = self.reading.values().map(|&(_, floor)| floor).min().unwrap_or(u64::MAX);
            self.edits.acknowledged(durable.min(floor));
            self.stats.durable = durable;
        }
    }
}
