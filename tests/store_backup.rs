//! Backup while writers run, restore into a fresh directory and over an existing store,
//! and the refusals: garbage files, stores from a newer version, overwriting a backup,
//! restoring into a store that is open.

use portable_atomic::AtomicU64;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use gatewatch::model::{Timestamp, User};
use gatewatch::store::{
    inspect_backup, restore, MetaValue, Store, StoreError, StoreOptions, SCHEMA_VERSION, SCHEMA_VERSION_KEY,
};

fn opts() -> StoreOptions {
    StoreOptions {
        initial_map_size: 1024 * 1024,
        ..StoreOptions::default()
    }
}

fn user(n: u64) -> User {
    User {
        username: format!("user{n:06}"),
        role: "viewer".to_string(),
        password_hash: "x".repeat(90),
        created_at: Timestamp(n),
        last_login: None,
    }
}

#[test]
fn backup_during_writes_restores_everything_committed_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live");
    let store = Arc::new(Store::open(&live, opts()).unwrap());
    let users = store.tables().users;

    // Number of users whose write() has returned.
    let committed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, committed, stop) = (Arc::clone(&store), Arc::clone(&committed), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                store
                    .write(|txn| {
                        for k in n..n + 50 {
                            users.put(txn, &user(k).username, &user(k))?;
                        }
                        Ok(())
                    })
                    .unwrap();
                n += 50;
                committed.store(n, Ordering::SeqCst);
            }
            n
        })
    };
    while committed.load(Ordering::SeqCst) < 5_000 {
        std::thread::yield_now();
    }
    let before_backup = committed.load(Ordering::SeqCst);
    let backup_file = dir.path().join("gatewatch-backup.mdb");
    let info = store.backup_to(&backup_file).unwrap();
    let after_backup = committed.load(Ordering::SeqCst);
    // Keep writing after the backup so the live store moves on.
    while committed.load(Ordering::SeqCst) < after_backup + 1_000 {
        std::thread::yield_now();
    }
    stop.store(true, Ordering::Relaxed);
    let total = writer.join().unwrap();

    assert_eq!(info.schema_version, SCHEMA_VERSION);
    assert_eq!(info.file_bytes, std::fs::metadata(&backup_file).unwrap().len());
    assert!(!dir.path().join("gatewatch-backup.mdb.tmp").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&backup_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "backup readable by others: {mode:o}");
    }
    let err = store.backup_to(&backup_file).unwrap_err();
    assert!(matches!(err, StoreError::BackupExists { .. }), "{err:?}");
    assert!(err.to_string().contains("already exists"), "{err}");
    assert_eq!(
        inspect_backup(&backup_file).unwrap().schema_version,
        SCHEMA_VERSION
    );

    let restored_dir = dir.path().join("restored");
    let restored = restore(&backup_file, &restored_dir, opts()).unwrap();
    assert_eq!(restored.previous, None);
    assert_eq!(restored.backup_schema_version, SCHEMA_VERSION);
    assert_eq!(restored.schema_version, SCHEMA_VERSION);

    let copy = Store::open(&restored_dir, opts()).unwrap();
    let in_copy = copy.read(|txn| copy.tables().users.len(txn)).unwrap();
    assert!(
        in_copy >= before_backup,
        "backup lost committed data: {in_copy} < {before_backup}"
    );
    // One transaction may have committed before the snapshot but not yet bumped the counter.
    assert!(
        in_copy <= after_backup + 50,
        "backup has data written after it finished"
    );
    assert_eq!(in_copy % 50, 0, "backup holds a partial transaction");
    assert!(total > in_copy, "the writer kept going during the test");
    copy.read(|txn| {
        for k in 0..in_copy {
            assert_eq!(copy.tables().users.get(txn, &user(k).username)?, Some(user(k)));
        }
        assert_eq!(copy.tables().roles.len(txn)?, 4);
        Ok(())
    })
    .unwrap();
}

#[test]
fn restore_over_an_existing_store_moves_it_aside() {
    let dir = tempfile::tempdir().unwrap();
    let source = Store::open(&dir.path().join("source"), opts()).unwrap();
    let users = source.tables().users;
    source
        .write(|txn| users.put(txn, &"from-backup".to_string(), &user(1)))
        .unwrap();
    let backup_file = dir.path().join("b.mdb");
    source.backup_to(&backup_file).unwrap();

    let target = dir.path().join("target");
    {
        let old = Store::open(&target, opts()).unwrap();
        let old_users = old.tables().users;
        old.write(|txn| old_users.put(txn, &"old-only".to_string(), &user(2)))
            .unwrap();
    }
    let old_bytes = std::fs::read(target.join("data.mdb")).unwrap();

    let info = restore(&backup_file, &target, opts()).unwrap();
    let aside = info.previous.expect("previous data file moved aside");
    let aside_name = aside.file_name().unwrap().to_string_lossy().into_owned();
    assert!(aside_name.starts_with("data.mdb.before-restore-"), "{aside_name}");
    assert_eq!(std::fs::read(&aside).unwrap(), old_bytes);

    let store = Store::open(&target, opts()).unwrap();
    let names: Vec<String> = store
        .read(|txn| store.tables().users.iter(txn))
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(names, ["from-backup"]);
}

#[test]
fn restore_refuses_garbage_without_touching_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target");
    drop(Store::open(&target, opts()).unwrap());
    let before = std::fs::read(target.join("data.mdb")).unwrap();

    let garbage = dir.path().join("garbage.mdb");
    std::fs::write(&garbage, b"this is not an LMDB file\n".repeat(1_000)).unwrap();
    let empty = dir.path().join("empty.mdb");
    std::fs::write(&empty, b"").unwrap();
    for bad in [&garbage, &empty] {
        let err = restore(bad, &target, opts()).unwrap_err();
        assert!(matches!(err, StoreError::NotAStore { .. }), "{err:?}");
        assert!(err.to_string().contains("is not a gatewatch store"), "{err}");
    }
    let missing = restore(&dir.path().join("missing.mdb"), &target, opts()).unwrap_err();
    assert!(matches!(missing, StoreError::Io { .. }), "{missing:?}");

    assert_eq!(std::fs::read(target.join("data.mdb")).unwrap(), before);
    assert_eq!(
        std::fs::read_dir(&target).unwrap().count(),
        2,
        "only data.mdb and lock.mdb"
    );
}

#[test]
fn restore_refuses_a_backup_from_a_newer_version() {
    let dir = tempfile::tempdir().unwrap();
    let future = Store::open(&dir.path().join("future"), opts()).unwrap();
    let meta = future.tables().meta;
    future
        .write(|txn| meta.put(txn, &SCHEMA_VERSION_KEY.to_string(), &MetaValue::U64(99)))
        .unwrap();
    let backup_file = dir.path().join("future.mdb");
    future.backup_to(&backup_file).unwrap();
    assert_eq!(inspect_backup(&backup_file).unwrap().schema_version, 99);

    let target = dir.path().join("target");
    let err = restore(&backup_file, &target, opts()).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::TooNew {
                found: 99,
                supported: SCHEMA_VERSION
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("schema version 99") && message.contains(&format!("versions 1 to {SCHEMA_VERSION}")),
        "{message}"
    );
    assert!(!target.join("data.mdb").exists());
}

#[test]
fn restore_refuses_a_store_open_in_this_process() {
    let dir = tempfile::tempdir().unwrap();
    let source = Store::open(&dir.path().join("source"), opts()).unwrap();
    let backup_file = dir.path().join("b.mdb");
    source.backup_to(&backup_file).unwrap();

    let target = dir.path().join("target");
    let open = Store::open(&target, opts()).unwrap();
    let err = restore(&backup_file, &target, opts()).unwrap_err();
    assert!(matches!(err, StoreError::InUse { .. }), "{err:?}");
    drop(open);
    restore(&backup_file, &target, opts()).unwrap();
}
