//! Unit tests of the store shell: open, read/write, aborts, nesting, map limits, schema
//! checks at open, and a table with `u64` keys (no built-in table uses them yet).

use std::path::Path;

use heed::types::Bytes;

use super::*;
use crate::model::{AuditEntry, Role, Timestamp, User, BUILTIN_ROLES};

const KIB: usize = 1024;

fn small() -> StoreOptions {
    StoreOptions {
        initial_map_size: MIB,
        max_map_size: 64 * MIB,
    }
}

fn user(name: &str) -> User {
    User {
        username: name.to_string(),
        role: "viewer".to_string(),
        password_hash: format!("hash-of-{name}"),
        created_at: Timestamp(1_000),
        last_login: None,
    }
}

fn entry(n: u64) -> AuditEntry {
    AuditEntry {
        at: Timestamp(n),
        actor: "tester".to_string(),
        action: "test".to_string(),
        detail: format!("entry {n}"),
        remote_addr: "127.0.0.1".to_string(),
    }
}

fn schema_version_of(store: &Store) -> Option<u32> {
    store
        .read(|txn| migrate::schema_version(txn, &store.tables().meta))
        .unwrap()
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Blob(Vec<u8>);
impl Record for Blob {
    const VERSION: u8 = 1;
}

fn extra_table<K: Key>(store: &Store, name: &'static str) -> Table<K, Blob> {
    let db = store
        .write(|txn| {
            let db = store
                .env
                .create_database::<Bytes, Bytes>(&mut txn.txn, Some(name));
            db.map_err(|e| StoreError::lmdb("test", e))
        })
        .unwrap();
    Table::new(db, name)
}

#[test]
fn fresh_store_gets_schema_version_and_builtin_roles() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small()).unwrap();
    assert_eq!(schema_version_of(&store), Some(SCHEMA_VERSION));
    let roles: Vec<(String, Role)> = store.read(|txn| store.tables().roles.iter(txn)).unwrap();
    let names: Vec<&str> = roles.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["admin", "network-admin", "security-analyst", "viewer"]);
    for (name, description, permissions) in BUILTIN_ROLES {
        let role = &roles.iter().find(|(k, _)| k == name).unwrap().1;
        assert_eq!(role.description, description);
        assert_eq!(role.permissions, permissions.iter().copied().collect());
    }
}

#[cfg(unix)]
#[test]
fn directory_is_private_and_data_file_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("a/b/store");
    let _store = Store::open(&dir, small()).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(
        mode(&dir.join(DATA_FILE)) & 0o077,
        0,
        "data.mdb readable by others"
    );
}

#[test]
fn u64_keys_round_trip_and_page_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small()).unwrap();
    let table: Table<u64, Blob> = extra_table(&store, "numbers");
    // 300 > 255 so a little-endian encoding would sort wrongly.
    store
        .write(|txn| {
            for n in (0..300u64).rev() {
                table.put(txn, &n, &Blob(n.to_le_bytes().to_vec()))?;
            }
            Ok(())
        })
        .unwrap();
    store
        .read(|txn| {
            assert_eq!(table.len(txn)?, 300);
            let all = table.iter(txn)?;
            let keys: Vec<u64> = all.iter().map(|(k, _)| *k).collect();
            assert_eq!(keys, (0..300).collect::<Vec<_>>());
            assert_eq!(table.get(txn, &257)?, Some(Blob(257u64.to_le_bytes().to_vec())));

            let first = table.iter_rev_page(txn, None, 100)?;
            assert_eq!(first.first().map(|e| e.0), Some(299));
            assert_eq!(first.last().map(|e| e.0), Some(200));
            let second = table.iter_rev_page(txn, Some(&200), 100)?;
            assert_eq!(second.first().map(|e| e.0), Some(199));
            let tail = table.iter_rev_page(txn, Some(&3), 100)?;
            assert_eq!(tail.iter().map(|e| e.0).collect::<Vec<_>>(), [2, 1, 0]);
            Ok(())
        })
        .unwrap();
    let deleted = store
        .write(|txn| Ok((table.delete(txn, &7)?, table.delete(txn, &7)?)))
        .unwrap();
    assert_eq!(deleted, (true, false));
    assert_eq!(store.read(|txn| table.get(txn, &7)).unwrap(), None);
}

#[test]
fn wrong_version_byte_in_the_store_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small()).unwrap();
    let users = store.tables().users;
    store
        .write(|txn| {
            users.put(txn, &"good".to_string(), &user("good"))?;
            let raw = users.raw();
            raw.put(&mut txn.txn, b"old", &[1, 0, 0])
                .map_err(|e| StoreError::lmdb("test", e))
        })
        .unwrap();
    let err = store.read(|txn| users.get(txn, &"old".to_string())).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::VersionMismatch {
                table: "users",
                found: 1,
                expected: 2
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("`users`"), "{err}");
    assert!(store.read(|txn| users.iter(txn)).is_err());
    assert_eq!(
        store.read(|txn| users.get(txn, &"good".to_string())).unwrap(),
        Some(user("good"))
    );
}

#[test]
fn an_error_from_the_closure_aborts_the_whole_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small()).unwrap();
    let users = store.tables().users;
    let result: Result<(), StoreError> = store.write(|txn| {
        users.put(txn, &"ghost".to_string(), &user("ghost"))?;
        Err(StoreError::Nested)
    });
    assert!(result.is_err());
    assert_eq!(
        store.read(|txn| users.get(txn, &"ghost".to_string())).unwrap(),
        None
    );
}

#[test]
fn nested_write_is_refused_and_nested_read_works() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small()).unwrap();
    let users = store.tables().users;
    let inner = store.write(|_| Ok(store.write(|_| Ok(()))));
    assert!(matches!(inner, Ok(Err(StoreError::Nested))), "{inner:?}");
    let inner = store.read(|_| Ok(store.write(|_| Ok(()))));
    assert!(matches!(inner, Ok(Err(StoreError::Nested))), "{inner:?}");

    store
        .write(|txn| users.put(txn, &"a".to_string(), &user("a")))
        .unwrap();
    let seen = store
        .write(|txn| {
            users.put(txn, &"b".to_string(), &user("b"))?;
            // A nested read sees committed data only; the write sees its own.
            let outside = store.read(|r| users.len(r))?;
            Ok((outside, users.len(txn)?))
        })
        .unwrap();
    assert_eq!(seen, (1, 2));
    // The gate is released again: a later write from this thread works.
    store
        .write(|txn| users.put(txn, &"c".to_string(), &user("c")))
        .unwrap();
}

#[test]
fn append_picks_the_next_sequence_within_a_millisecond() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), small()).unwrap();
    let audit = store.tables().audit;
    let keys = store
        .write(|txn| {
            let mut keys = Vec::new();
            for at in [5, 5, 6, 5] {
                keys.push(audit.append(txn, Timestamp(at), &entry(at))?);
            }
            Ok(keys)
        })
        .unwrap();
    let expect = |at, seq| TimeKey {
        at: Timestamp(at),
        seq,
    };
    assert_eq!(keys, [expect(5, 0), expect(5, 1), expect(6, 0), expect(5, 2)]);
    let order: Vec<TimeKey> = store
        .read(|txn| audit.iter(txn))
        .unwrap()
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(order, [expect(5, 0), expect(5, 1), expect(5, 2), expect(6, 0)]);
}

#[test]
fn growth_stops_at_max_map_size_with_a_clear_error_and_the_store_stays_usable() {
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        initial_map_size: MIB,
        max_map_size: 2 * MIB,
    };
    let store = Store::open(dir.path(), opts).unwrap();
    let table: Table<u64, Blob> = extra_table(&store, "blobs");
    let err = store
        .write(|txn| {
            for n in 0..64u64 {
                table.put(txn, &n, &Blob(vec![n as u8; 64 * KIB]))?;
            }
            Ok(())
        })
        .unwrap_err();
    assert!(
        matches!(err, StoreError::MapFull { max_map_size, .. } if max_map_size == 2 * MIB),
        "{err:?}"
    );
    assert!(err.to_string().contains("max_map_size"), "{err}");
    assert_eq!(store.stats().map_size, 2 * MIB);
    store
        .write(|txn| table.put(txn, &1, &Blob(vec![1; 100])))
        .unwrap();
    assert_eq!(store.read(|txn| table.len(txn)).unwrap(), 1);
}

#[test]
fn a_store_from_a_newer_version_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), small()).unwrap();
        let meta = store.tables().meta;
        store
            .write(|txn| meta.put(txn, &SCHEMA_VERSION_KEY.to_string(), &MetaValue::U64(99)))
            .unwrap();
    }
    let before = std::fs::read(dir.path().join(DATA_FILE)).unwrap();
    let err = Store::open(dir.path(), small()).unwrap_err();
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
    assert!(
        err.to_string()
            .contains(&format!("versions 1 to {SCHEMA_VERSION}")),
        "{err}"
    );
    assert_eq!(std::fs::read(dir.path().join(DATA_FILE)).unwrap(), before);
}

#[test]
fn data_without_a_schema_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), small()).unwrap();
        let meta = store.tables().meta;
        store
            .write(|txn| meta.delete(txn, &SCHEMA_VERSION_KEY.to_string()))
            .unwrap();
    }
    let err = Store::open(dir.path(), small()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
}

#[test]
fn opening_the_same_store_twice_in_one_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _store = Store::open(dir.path(), small()).unwrap();
    let err = Store::open(dir.path(), small()).unwrap_err();
    assert!(matches!(err, StoreError::InUse { .. }), "{err:?}");
    assert!(backup::in_use(dir.path()).unwrap());
}

#[test]
fn default_options_fit_the_pointer_width() {
    let opts = StoreOptions::default();
    assert_eq!(opts.initial_map_size, 64 * MIB);
    #[cfg(target_pointer_width = "64")]
    assert_eq!(opts.max_map_size, 16 * 1024 * MIB);
    assert_eq!(round_up(1, 4096), 4096);
    assert_eq!(round_up(4096, 4096), 4096);
    assert_eq!(round_up(4097, 4096), 8192);
}

#[test]
fn store_and_read_snapshots_can_be_shared_across_threads() {
    fn shared<T: Send + Sync>() {}
    fn sent<T: Send>() {}
    shared::<Store>();
    shared::<Tables>();
    sent::<ReadTxn<'static>>();
}

#[test]
fn one_backup_file_can_be_inspected_from_many_threads_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s"), small()).unwrap();
    let file = dir.path().join("b.mdb");
    store.backup_to(&file).unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..1000 {
                    assert_eq!(inspect_backup(&file).unwrap().schema_version, SCHEMA_VERSION);
                }
            });
        }
    });
}
