//! The store's one error type. Every message names what went wrong and what the user can
//! do about it; heed/LMDB errors are wrapped with the operation that failed.
//!
//! Must not: leak heed types into callers' control flow (they match on our variants only).

use std::path::PathBuf;

use super::SCHEMA_VERSION;

/// Everything that can go wrong in `store/`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("database error while {op}: {source}")]
    Lmdb {
        op: &'static str,
        #[source]
        source: heed::Error,
    },

    #[error(
        "the store in {} is in use by a running process; stop gatewatch (and any \
         `gatewatch` command using it) and try again",
        dir.display()
    )]
    InUse { dir: PathBuf },

    #[error(
        "the store has schema version {found}, but this gatewatch reads versions 1 to \
         {supported}; upgrade gatewatch, or restore a backup made by this version"
    )]
    TooNew { found: u32, supported: u32 },

    #[error(
        "the store is full ({} MiB, the configured maximum is {} MiB); raise \
         store.max_map_size or shorten retention so old data is pruned",
        map_size / (1024 * 1024),
        max_map_size / (1024 * 1024)
    )]
    MapFull { map_size: usize, max_map_size: usize },

    #[error(
        "table `{table}` holds an unreadable record ({detail}); the store may be damaged — \
         restore a backup with `gatewatch restore`"
    )]
    Corrupt { table: &'static str, detail: String },

    #[error(
        "table `{table}` holds a record of format version {found}, expected {expected}; \
         the store was written by another gatewatch version — reopen it with this version \
         so it is migrated, or restore a backup"
    )]
    VersionMismatch {
        table: &'static str,
        found: u8,
        expected: u8,
    },

    #[error("cannot store a record in table `{table}`: {detail}")]
    Encode { table: &'static str, detail: String },

    #[error("{} already exists; choose another backup file name or remove it first", path.display())]
    BackupExists { path: PathBuf },

    #[error("{} is not a gatewatch store or backup: {detail}", path.display())]
    NotAStore { path: PathBuf, detail: String },

    #[error(
        "Store::write was called inside another read or write of the same store on this \
         thread; finish the outer transaction first (this would deadlock)"
    )]
    Nested,
}

impl StoreError {
    pub(crate) fn lmdb(op: &'static str, source: heed::Error) -> StoreError {
        StoreError::Lmdb { op, source }
    }

    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StoreError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn too_new(found: u32) -> StoreError {
        StoreError::TooNew {
            found,
            supported: SCHEMA_VERSION,
        }
    }

    /// A key decoder does not know its table; [`super::Table`] fills the name in.
    pub(crate) fn bad_key(detail: String) -> StoreError {
        StoreError::Corrupt { table: "", detail }
    }

    pub(crate) fn in_table(self, name: &'static str) -> StoreError {
        match self {
            StoreError::Corrupt { table: "", detail } => StoreError::Corrupt { table: name, detail },
            other => other,
        }
    }
}

pub(crate) fn is_map_full(e: &heed::Error) -> bool {
    matches!(e, heed::Error::Mdb(heed::MdbError::MapFull))
}

pub(crate) fn is_map_resized(e: &heed::Error) -> bool {
    matches!(e, heed::Error::Mdb(heed::MdbError::MapResized))
}
