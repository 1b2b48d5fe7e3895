//! Setting a bad file aside, under a name no other file has.

use super::error::StoreError;
use super::store::{WorldStore, sync_parent};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// Names tried before giving up: `<name>.bad-1` to `<name>.bad-MAX_ASIDE`.
const MAX_ASIDE: u32 = 10_000;

impl WorldStore {
    /// Renames the file at `path` to `<name>.bad-<n>`, `n` the first number
    /// from 1 whose name is free, and returns the new path. The file is moved
    /// whole, as it was; no other file is ever overwritten (the new name is
    /// taken with a hard link, which fails if it exists, before the old one is
    /// removed; a file system without hard links gets a rename to a name
    /// checked free). The rename is synced to the directory.
    ///
    /// ```no_run
    /// use bevy_delta_overlay::persistence::{StoreOptions, WorldStore};
    /// if let Err(e) = WorldStore::open("world.redb", StoreOptions::default())
    ///     && e.is_bad_file()
    /// {
    ///     let aside = WorldStore::move_aside("world.redb")?; // world.redb.bad-1
    ///     eprintln!("{e}: moved to {}", aside.display());
    /// }
    /// # Ok::<(), bevy_delta_overlay::persistence::StoreError>(())
    /// ```
    ///
    /// # Errors
    /// [`StoreError::Io`] when the file cannot be renamed (it stays where it
    /// was), or when every name up to `.bad-10000` is taken.
    pub fn move_aside(path: impl AsRef<Path>) -> Result<PathBuf, StoreError> {
        let path = path.as_ref();
        let io = |error| StoreError::Io { path: path.to_path_buf(), error };
        for n in 1..=MAX_ASIDE {
            let mut name = path.as_os_str().to_owned();
            name.push(format!(".bad-{n}"));
            let aside = PathBuf::from(name);
            match std::fs::hard_link(path, &aside) {
                Ok(()) => std::fs::remove_file(path).map_err(io)?,
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) if e.kind() == ErrorKind::NotFound => return Err(io(e)),
                // No hard links here: a rename, to a name checked free.
                Err(_) if aside.exists() => continue,
                Err(_) => std::fs::rename(path, &aside).map_err(io)?,
            }
            sync_parent(path).map_err(io)?;
            return Ok(aside);
        }
        Err(io(std::io::Error::new(ErrorKind::AlreadyExists, format!("every name up to .bad-{MAX_ASIDE} is taken"))))
    }
}
