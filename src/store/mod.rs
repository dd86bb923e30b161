//! The store: one LMDB environment (through heed) holding every persistent table.
//!
//! Owns: opening the environment (directory 0700, data file 0600), growing the memory map
//! when a write runs out of room, typed tables ([`Table`]), migrations at open
//! (`migrate`), online backup and restore (`backup`) and time-based pruning
//! (`retention`).
//!
//! This is the only module that imports heed. It must not: read clocks for its own
//! logic (callers pass cutoffs), or hold transactions across calls — every transaction
//! lives inside one [`Store::read`] / [`Store::write`] closure, which is what makes
//! resizing the map safe.

mod backup;
mod error;
mod logs;
mod migrate;
mod retention;
mod schema;
mod table;
#[cfg(test)]
mod table_tests;
#[cfg(test)]
mod tests;

use portable_atomic::AtomicU64;
use std::cell::RefCell;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{RwLock, RwLockReadGuard};

pub use backup::{inspect_backup, restore, BackupInfo, RestoreInfo};
pub use error::StoreError;
pub use logs::{EncodedLogs, LogPage};
#[doc(hidden)]
pub use migrate::{write_v1_fixture_for_tests, V1_FIXTURE_USERS};
pub use schema::{MetaValue, Tables};
pub use table::{Key, ReadTxn, Record, Table, TimeKey, Txn, WriteTxn};

use error::is_map_resized;

/// Current layout of the store. Opening an older store migrates it; a newer one is refused.
pub const SCHEMA_VERSION: u32 = 3;

/// Key in the `meta` table holding the schema version as [`MetaValue::U64`].
pub const SCHEMA_VERSION_KEY: &str = "schema_version";

/// File name of the LMDB data file inside the store directory.
pub const DATA_FILE: &str = "data.mdb";

const MIB: usize = 1024 * 1024;

/// How big the memory map starts and how far it may grow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Map size at open, in bytes (rounded up to the page size; never below the data file).
    pub initial_map_size: usize,
    /// Upper bound for growth, in bytes. A write that would exceed it fails with
    /// [`StoreError::MapFull`].
    pub max_map_size: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        #[cfg(target_pointer_width = "64")]
        let max_map_size = 16 * 1024 * MIB;
        // A 32-bit process cannot map much more than this next to everything else.
        #[cfg(not(target_pointer_width = "64"))]
        let max_map_size = 1024 * MIB;
        StoreOptions {
            initial_map_size: 64 * MIB,
            max_map_size,
        }
    }
}

/// A point-in-time view of the store's size, for the about page and `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreStats {
    /// Size of `data.mdb` on disk.
    pub file_bytes: u64,
    /// Current memory map size.
    pub map_size: usize,
    /// Pages holding data (excluding free pages) times the page size.
    pub used_bytes: u64,
    /// Entries per table, in table order.
    pub entries: Vec<(&'static str, u64)>,
}

/// The open store. Share it with `Arc<Store>`; all methods take `&self`.
pub struct Store {
    env: heed::Env<heed::WithoutTls>,
    /// Every transaction of this process is begun under a shared guard; resizing the map
    /// takes it exclusively, which is LMDB's condition for `mdb_env_set_mapsize`.
    gate: RwLock<()>,
    tables: Tables,
    dir: PathBuf,
    max_map_size: usize,
    /// Identifies this store in [`HELD`].
    id: u64,
}

static NEXT_STORE_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// Stores whose gate this thread holds, so a nested `read` does not ask for the gate
    /// again (which deadlocks behind a waiting resize) and a nested `write` is refused.
    static HELD: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// The shared gate, or nothing when this thread already holds it.
struct Held<'a> {
    guard: Option<RwLockReadGuard<'a, ()>>,
    id: u64,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if self.guard.is_some() {
            HELD.with(|h| {
                let mut h = h.borrow_mut();
                if let Some(pos) = h.iter().rposition(|&id| id == self.id) {
                    h.remove(pos);
                }
            });
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the store in `dir` and migrates it to
    /// [`SCHEMA_VERSION`]. A store written by a newer gatewatch is refused untouched.
    pub fn open(dir: &Path, opts: StoreOptions) -> Result<Store, StoreError> {
        create_private_dir(dir)?;
        let page = page_size();
        let existing = match fs::metadata(dir.join(DATA_FILE)) {
            Ok(m) => usize::try_from(m.len()).unwrap_or(usize::MAX),
            Err(_) => 0,
        };
        let initial = round_up(opts.initial_map_size.max(page), page).max(round_up(existing, page));
        let max_map_size = (opts.max_map_size / page * page).max(initial);

        let env = open_env(dir, initial)?;
        migrate::refuse_too_new(&env)?;
        let tables = {
            let mut wtxn = env
                .write_txn()
                .map_err(|e| StoreError::lmdb("opening tables", e))?;
            let tables =
                Tables::create(&env, &mut wtxn).map_err(|e| StoreError::lmdb("opening tables", e))?;
            wtxn.commit().map_err(|e| StoreError::lmdb("opening tables", e))?;
            tables
        };
        let store = Store {
            env,
            gate: RwLock::new(()),
            tables,
            dir: dir.to_path_buf(),
            max_map_size,
            id: NEXT_STORE_ID.fetch_add(1, Ordering::Relaxed),
        };
        let tables = &store.tables;
        if let Some((from, to)) = store.write(|txn| migrate::run(txn, tables))? {
            tracing::info!(dir = %dir.display(), from, to, "store migrated");
        }
        Ok(store)
    }

    /// Runs `f` on a consistent snapshot. Do not hold the closure open for long: a
    /// snapshot keeps old pages from being reused.
    pub fn read<R>(&self, f: impl FnOnce(&ReadTxn<'_>) -> Result<R, StoreError>) -> Result<R, StoreError> {
        loop {
            let held = self.hold();
            match self.env.read_txn() {
                Ok(txn) => {
                    // Dropped before `held`: the snapshot must end under the gate.
                    let txn = ReadTxn { txn };
                    let out = f(&txn);
                    drop(txn);
                    return out;
                }
                Err(e) if is_map_resized(&e) && held.guard.is_some() => {
                    drop(held);
                    self.adopt_external_resize()?;
                }
                Err(e) => return Err(StoreError::lmdb("starting a read transaction", e)),
            }
        }
    }

    /// Runs `f` in one write transaction and commits if it returns `Ok`; an `Err` aborts
    /// everything `f` wrote. When the map is full, the transaction is aborted, the map
    /// doubled (up to `max_map_size`) and `f` run again — so `f` must be repeatable.
    pub fn write<R>(
        &self,
        mut f: impl FnMut(&mut WriteTxn<'_>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        loop {
            let seen_map_size = {
                let held = self.hold();
                if held.guard.is_none() {
                    return Err(StoreError::Nested);
                }
                let txn = match self.env.write_txn() {
                    Ok(txn) => txn,
                    Err(e) if is_map_resized(&e) => {
                        drop(held);
                        self.adopt_external_resize()?;
                        continue;
                    }
                    Err(e) => return Err(StoreError::lmdb("starting a write transaction", e)),
                };
                let seen = self.env.info().map_size;
                let mut txn = WriteTxn { txn, map_full: false };
                let result = f(&mut txn);
                if !txn.map_full {
                    let value = result?;
                    match txn.txn.commit() {
                        Ok(()) => return Ok(value),
                        Err(e) if error::is_map_full(&e) => {}
                        Err(e) => return Err(StoreError::lmdb("committing", e)),
                    }
                }
                seen
            };
            self.grow(seen_map_size)?;
        }
    }

    pub fn tables(&self) -> &Tables {
        &self.tables
    }

    /// The store directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Sizes and entry counts. Counts that cannot be read (should not happen) show as 0.
    pub fn stats(&self) -> StoreStats {
        let file_bytes = fs::metadata(self.dir.join(DATA_FILE))
            .map(|m| m.len())
            .unwrap_or(0);
        let counted = self.read(|txn| {
            let map_size = self.env.info().map_size;
            let main = self.env.stat();
            let page = u64::from(main.page_size);
            let pages = |leaf: usize, branch: usize, overflow: usize| (leaf + branch + overflow) as u64;
            let mut used = pages(main.leaf_pages, main.branch_pages, main.overflow_pages) * page;
            let mut entries = Vec::new();
            for (name, db) in self.tables.raw_all() {
                let s = db
                    .stat(sealed_ro(txn))
                    .map_err(|e| StoreError::lmdb("reading stats", e))?;
                used += pages(s.leaf_pages, s.branch_pages, s.overflow_pages) * page;
                entries.push((name, s.entries as u64));
            }
            Ok((map_size, used, entries))
        });
        let (map_size, used_bytes, entries) = counted.unwrap_or_default();
        StoreStats {
            file_bytes,
            map_size,
            used_bytes,
            entries,
        }
    }

    fn hold(&self) -> Held<'_> {
        let nested = HELD.with(|h| h.borrow().contains(&self.id));
        if nested {
            return Held {
                guard: None,
                id: self.id,
            };
        }
        let guard = self.gate.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        HELD.with(|h| h.borrow_mut().push(self.id));
        Held {
            guard: Some(guard),
            id: self.id,
        }
    }

    /// Doubles the map unless another thread already grew it past `seen`.
    fn grow(&self, seen: usize) -> Result<(), StoreError> {
        let _exclusive = self.gate.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let current = self.env.info().map_size;
        if current > seen {
            return Ok(());
        }
        if current >= self.max_map_size {
            return Err(StoreError::MapFull {
                map_size: current,
                max_map_size: self.max_map_size,
            });
        }
        let new_size = current.saturating_mul(2).min(self.max_map_size);
        // SAFETY: every transaction of this process is begun and ended under a shared
        // guard of `gate`, and we hold it exclusively, so none is active.
        unsafe { self.env.resize(new_size) }.map_err(|e| StoreError::lmdb("growing the map", e))?;
        tracing::info!(dir = %self.dir.display(), from = current, to = new_size, "store map grown");
        Ok(())
    }

    /// Another process grew the map; adopt its size (LMDB reads it when given 0).
    fn adopt_external_resize(&self) -> Result<(), StoreError> {
        let _exclusive = self.gate.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        // SAFETY: as in `grow`, no transaction of this process is active.
        unsafe { self.env.resize(0) }.map_err(|e| StoreError::lmdb("adopting the map size", e))
    }
}

fn sealed_ro<'t>(txn: &'t ReadTxn<'_>) -> &'t heed::RoTxn<'t> {
    use table::sealed::Sealed;
    txn.ro()
}

fn open_env(dir: &Path, map_size: usize) -> Result<heed::Env<heed::WithoutTls>, StoreError> {
    let mut options = heed::EnvOpenOptions::new().read_txn_without_tls();
    options.map_size(map_size).max_dbs(64);
    // SAFETY: the data file is only modified through LMDB (this module), and LMDB's lock
    // file coordinates processes. heed refuses a second open of the same path in-process.
    let opened = unsafe { options.open(dir) };
    opened.map_err(|e| match e {
        heed::Error::EnvAlreadyOpened => StoreError::InUse {
            dir: dir.to_path_buf(),
        },
        other => StoreError::lmdb("opening the store", other),
    })
}

/// Creates `dir` (and parents) with mode 0700; an existing directory is left as it is.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| StoreError::io("create directory", dir, e))
}

pub(crate) fn page_size() -> usize {
    #[cfg(unix)]
    {
        // SAFETY: sysconf has no preconditions.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if let Ok(size) = usize::try_from(size) {
            if size.is_power_of_two() {
                return size;
            }
        }
    }
    4096
}

pub(crate) fn round_up(n: usize, page: usize) -> usize {
    n.div_ceil(page).saturating_mul(page)
}
