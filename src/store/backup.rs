//! Online backup (a compacted, consistent copy of the live store), inspection of a backup
//! file, and restore into a data directory.
//!
//! Must not: overwrite a file it did not create, or restore into a store that a running
//! process has open.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use heed::types::Bytes;

use super::schema::META;
use super::table::Table;
use super::{
    create_private_dir, migrate, page_size, round_up, ReadTxn, Store, StoreError, StoreOptions, DATA_FILE,
    SCHEMA_VERSION,
};

/// What a backup file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupInfo {
    pub path: PathBuf,
    pub file_bytes: u64,
    pub schema_version: u32,
}

/// What [`restore`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreInfo {
    /// The restored data file.
    pub data_file: PathBuf,
    /// Where the previous data file was moved, if there was one.
    pub previous: Option<PathBuf>,
    /// Schema version of the backup as read, before migration.
    pub backup_schema_version: u32,
    /// Schema version after opening (and migrating) the restored store.
    pub schema_version: u32,
}

impl Store {
    /// Writes a consistent, compacted copy of the store to `file` while other threads keep
    /// reading and writing. Refuses to overwrite `file`; writes `file.tmp` (mode 0600) and
    /// renames it. A write that needs to grow the map waits until the copy is done.
    pub fn backup_to(&self, file: &Path) -> Result<BackupInfo, StoreError> {
        if file.exists() {
            return Err(StoreError::BackupExists {
                path: file.to_path_buf(),
            });
        }
        let tmp = with_suffix(file, ".tmp");
        let mut out = create_private_file(&tmp)?;
        let copied = {
            // The copy runs its own read transaction, so it must not overlap a resize.
            let _held = self.hold();
            self.env.copy_to_file(&mut out, heed::CompactionOption::Enabled)
        };
        let finished = copied
            .map_err(|e| StoreError::lmdb("writing the backup", e))
            .and_then(|()| out.sync_all().map_err(|e| StoreError::io("write", &tmp, e)));
        drop(out);
        if let Err(e) = finished {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        if file.exists() {
            let _ = fs::remove_file(&tmp);
            return Err(StoreError::BackupExists {
                path: file.to_path_buf(),
            });
        }
        fs::rename(&tmp, file).map_err(|e| StoreError::io("rename the backup to", file, e))?;
        sync_parent(file);
        let file_bytes = fs::metadata(file)
            .map_err(|e| StoreError::io("read", file, e))?
            .len();
        Ok(BackupInfo {
            path: file.to_path_buf(),
            file_bytes,
            schema_version: SCHEMA_VERSION,
        })
    }
}

/// heed allows one open environment per path and process; inspections of the same file
/// from two threads (two restores, a restore and a check) take turns.
static INSPECTING: Mutex<()> = Mutex::new(());

/// Reads the schema version of a backup (or any store data file) without modifying it.
pub fn inspect_backup(file: &Path) -> Result<BackupInfo, StoreError> {
    let _turn = INSPECTING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let not_a_store = |detail: String| StoreError::NotAStore {
        path: file.to_path_buf(),
        detail,
    };
    let meta = fs::metadata(file).map_err(|e| StoreError::io("read", file, e))?;
    if !meta.is_file() {
        return Err(not_a_store("not a regular file".to_string()));
    }
    if meta.len() == 0 {
        return Err(not_a_store("the file is empty".to_string()));
    }
    let map_size = round_up(usize::try_from(meta.len()).unwrap_or(usize::MAX), page_size());
    let mut options = heed::EnvOpenOptions::new().read_txn_without_tls();
    options.map_size(map_size).max_dbs(64);
    // SAFETY: READ_ONLY maps the file without writing it; NO_LOCK is sound because nothing
    // else writes a backup file while we inspect it (it is not a live store's data.mdb, or
    // `restore` has checked the store is not in use).
    let env = unsafe {
        options.flags(heed::EnvFlags::NO_SUB_DIR | heed::EnvFlags::READ_ONLY | heed::EnvFlags::NO_LOCK);
        options.open(file)
    }
    .map_err(|e| not_a_store(format!("LMDB cannot open it ({e})")))?;
    let rtxn = env
        .read_txn()
        .map_err(|e| not_a_store(format!("LMDB cannot read it ({e})")))?;
    let db = env
        .open_database::<Bytes, Bytes>(&rtxn, Some(META))
        .map_err(|e| not_a_store(format!("LMDB cannot read it ({e})")))?
        .ok_or_else(|| not_a_store("it has no meta table".to_string()))?;
    let txn = ReadTxn { txn: rtxn };
    let version = migrate::schema_version(&txn, &Table::new(db, META))?
        .ok_or_else(|| not_a_store("it has no schema_version".to_string()))?;
    Ok(BackupInfo {
        path: file.to_path_buf(),
        file_bytes: meta.len(),
        schema_version: version,
    })
}

/// Replaces the store in `data_dir` with `backup_file`.
///
/// Checks the backup first (an LMDB file with a schema version this gatewatch can read),
/// refuses while a process has the store open (LMDB's lock on `lock.mdb`; a process that
/// opens it between this check and the copy is not detected — stop the service first),
/// moves an existing `data.mdb` aside to `data.mdb.before-restore-<unix secs>`, copies the
/// backup in place and opens it with [`Store::open`] (migrating older versions). If that
/// open fails, the previous data file is put back.
pub fn restore(backup_file: &Path, data_dir: &Path, opts: StoreOptions) -> Result<RestoreInfo, StoreError> {
    let backup = inspect_backup(backup_file)?;
    if backup.schema_version > SCHEMA_VERSION {
        return Err(StoreError::too_new(backup.schema_version));
    }
    create_private_dir(data_dir)?;
    if in_use(data_dir)? {
        return Err(StoreError::InUse {
            dir: data_dir.to_path_buf(),
        });
    }

    let data = data_dir.join(DATA_FILE);
    let previous = if data.exists() {
        let aside = free_name(&data_dir.join(format!("{DATA_FILE}.before-restore-{}", unix_secs())));
        fs::rename(&data, &aside).map_err(|e| StoreError::io("move aside", &data, e))?;
        Some(aside)
    } else {
        None
    };
    let put_back = |previous: &Option<PathBuf>| {
        let _ = fs::remove_file(&data);
        if let Some(aside) = previous {
            let _ = fs::rename(aside, &data);
        }
    };

    if let Err(e) = copy_into_place(backup_file, &data) {
        put_back(&previous);
        return Err(e);
    }
    let opened = Store::open(data_dir, opts)
        .and_then(|store| store.read(|txn| migrate::schema_version(txn, &store.tables().meta)));
    match opened {
        Ok(version) => Ok(RestoreInfo {
            data_file: data,
            previous,
            backup_schema_version: backup.schema_version,
            schema_version: version.unwrap_or(0),
        }),
        Err(e) => {
            put_back(&previous);
            Err(e)
        }
    }
}

fn copy_into_place(from: &Path, to: &Path) -> Result<(), StoreError> {
    let tmp = with_suffix(to, ".tmp");
    let _ = fs::remove_file(&tmp);
    if let Err(e) = copy_synced(from, &tmp) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, to).map_err(|e| StoreError::io("rename into", to, e))?;
    sync_parent(to);
    Ok(())
}

fn copy_synced(from: &Path, to: &Path) -> Result<(), StoreError> {
    let mut out = create_private_file(to)?;
    let mut src = File::open(from).map_err(|e| StoreError::io("read", from, e))?;
    io::copy(&mut src, &mut out).map_err(|e| StoreError::io("write", to, e))?;
    out.sync_all().map_err(|e| StoreError::io("write", to, e))
}

/// Whether a process holds the store in `dir` open: this one (heed's registry of open
/// environments) or another (every LMDB process holds an fcntl lock on byte 0 of
/// `lock.mdb` while the environment is open).
pub(crate) fn in_use(dir: &Path) -> Result<bool, StoreError> {
    let canonical = dir.canonicalize().map_err(|e| StoreError::io("read", dir, e))?;
    if heed::env_closing_event(&canonical).is_some() {
        return Ok(true);
    }
    locked_by_another_process(&dir.join("lock.mdb"))
}

#[cfg(unix)]
fn locked_by_another_process(lock_file: &Path) -> Result<bool, StoreError> {
    use std::os::fd::AsRawFd;
    let file = match File::open(lock_file) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(StoreError::io("read", lock_file, e)),
    };
    // SAFETY: flock is plain old data; all-zero is a valid value.
    let mut probe: libc::flock = unsafe { std::mem::zeroed() };
    probe.l_type = libc::F_WRLCK as libc::c_short;
    probe.l_whence = libc::SEEK_SET as libc::c_short;
    probe.l_start = 0;
    probe.l_len = 1;
    // SAFETY: valid fd and a valid flock. F_GETLK only queries; closing this fd would drop
    // locks this process holds on the file, but `in_use` returns before that when this
    // process has the environment open.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut probe) };
    if rc == -1 {
        return Err(StoreError::io(
            "check the lock on",
            lock_file,
            io::Error::last_os_error(),
        ));
    }
    // F_UNLCK is a c_int on Linux and a c_short on FreeBSD; l_type has the same type as it.
    #[allow(clippy::useless_conversion)]
    let unlocked = i32::from(libc::F_UNLCK);
    Ok(i32::from(probe.l_type) != unlocked)
}

#[cfg(not(unix))]
fn locked_by_another_process(_lock_file: &Path) -> Result<bool, StoreError> {
    Ok(false)
}

fn create_private_file(path: &Path) -> Result<File, StoreError> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(|e| StoreError::io("create", path, e))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// `path`, or `path.1`, `path.2`, … if it exists (two restores in one second).
fn free_name(path: &Path) -> PathBuf {
    let mut candidate = path.to_path_buf();
    let mut n = 1;
    while candidate.exists() {
        candidate = with_suffix(path, &format!(".{n}"));
        n += 1;
    }
    candidate
}

fn unix_secs() -> u64 {
    crate::model::Timestamp::now().as_millis() / 1000
}

/// Makes a rename durable; best effort (not every filesystem can fsync a directory).
fn sync_parent(path: &Path) {
    if let Some(parent) = path.parent() {
        if let Ok(dir) = File::open(parent) {
            let _ = dir.sync_all();
        }
    }
}
