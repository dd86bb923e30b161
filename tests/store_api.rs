//! The store as other modules use it: typed round trips on every built-in table, paging,
//! map growth under load (with concurrent readers), retention and stats.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use gatewatch::model::{ApiToken, AuditEntry, Session, Timestamp, User};
use gatewatch::store::{Store, StoreError, StoreOptions, TimeKey};

const MIB: usize = 1024 * 1024;

fn opts(initial: usize) -> StoreOptions {
    StoreOptions {
        initial_map_size: initial,
        ..StoreOptions::default()
    }
}

fn user(name: &str, n: u64) -> User {
    User {
        username: name.to_string(),
        role: "viewer".to_string(),
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA${name}"),
        created_at: Timestamp(n),
        last_login: Some(Timestamp(n + 1)),
    }
}

fn session(n: u8) -> Session {
    Session {
        username: format!("user{n}"),
        created_at: Timestamp(u64::from(n)),
        last_seen: Timestamp(u64::from(n) + 10),
        csrf_token: format!("csrf-{n}"),
        remote_addr: "198.51.100.7".to_string(),
    }
}

fn entry(at: u64, detail: String) -> AuditEntry {
    AuditEntry {
        at: Timestamp(at),
        actor: "admin".to_string(),
        action: "test.write".to_string(),
        detail,
        remote_addr: "192.0.2.1".to_string(),
    }
}

#[test]
fn string_keyed_tables_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts(MIB)).unwrap();
    let t = store.tables();
    let names = ["zoe", "adam", "mia", "bob"];
    store
        .write(|txn| {
            for (i, name) in names.iter().enumerate() {
                t.users.put(txn, &name.to_string(), &user(name, i as u64))?;
            }
            let token = ApiToken {
                id: "tok1".to_string(),
                name: "ci".to_string(),
                role: "viewer".to_string(),
                secret_sha256: [9; 32],
                created_at: Timestamp(1),
                created_by: "adam".to_string(),
                last_used: None,
            };
            t.api_tokens.put(txn, &token.id, &token)
        })
        .unwrap();
    store
        .read(|txn| {
            assert_eq!(t.users.get(txn, &"mia".to_string())?, Some(user("mia", 2)));
            assert_eq!(t.users.get(txn, &"nobody".to_string())?, None);
            let keys: Vec<String> = t.users.iter(txn)?.into_iter().map(|(k, _)| k).collect();
            assert_eq!(keys, ["adam", "bob", "mia", "zoe"]);
            let page = t.users.iter_rev_page(txn, Some(&"mia".to_string()), 10)?;
            let page: Vec<&str> = page.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(page, ["bob", "adam"]);
            assert_eq!(
                t.api_tokens
                    .get(txn, &"tok1".to_string())?
                    .map(|tk| tk.secret_sha256),
                Some([9; 32])
            );
            Ok(())
        })
        .unwrap();
    assert!(store
        .write(|txn| t.users.delete(txn, &"zoe".to_string()))
        .unwrap());
    assert_eq!(store.read(|txn| t.users.len(txn)).unwrap(), 3);
    let too_long = "x".repeat(600);
    let err = store
        .write(|txn| t.users.put(txn, &too_long, &user("x", 0)))
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Encode { table: "users", .. }),
        "{err:?}"
    );
}

#[test]
fn hash_keyed_sessions_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts(MIB)).unwrap();
    let sessions = store.tables().sessions;
    let key = |n: u8| {
        let mut k = [0u8; 32];
        k[0] = n;
        k[31] = 255 - n;
        k
    };
    store
        .write(|txn| {
            for n in [3u8, 1, 2] {
                sessions.put(txn, &key(n), &session(n))?;
            }
            Ok(())
        })
        .unwrap();
    let all = store.read(|txn| sessions.iter(txn)).unwrap();
    assert_eq!(
        all,
        [(key(1), session(1)), (key(2), session(2)), (key(3), session(3))]
    );
    let newest = store.read(|txn| sessions.iter_rev_page(txn, None, 1)).unwrap();
    assert_eq!(newest, [(key(3), session(3))]);
    assert!(store.write(|txn| sessions.delete(txn, &key(2))).unwrap());
    assert_eq!(store.read(|txn| sessions.get(txn, &key(2))).unwrap(), None);
}

#[test]
fn audit_pages_newest_first_across_equal_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts(MIB)).unwrap();
    let audit = store.tables().audit;
    // 50 entries over 10 milliseconds: 5 share each millisecond.
    store
        .write(|txn| {
            for i in 0..50u64 {
                audit.append(
                    txn,
                    Timestamp(1_000 + i / 5),
                    &entry(1_000 + i / 5, format!("#{i}")),
                )?;
            }
            Ok(())
        })
        .unwrap();
    let mut seen = Vec::new();
    let mut before: Option<TimeKey> = None;
    loop {
        let page = store
            .read(|txn| audit.iter_rev_page(txn, before.as_ref(), 7))
            .unwrap();
        let Some(last) = page.last() else { break };
        before = Some(last.0);
        seen.extend(page.into_iter().map(|(_, e)| e.detail));
    }
    let expected: Vec<String> = (0..50).rev().map(|i| format!("#{i}")).collect();
    assert_eq!(seen, expected);
}

#[test]
fn map_grows_for_many_writes_and_for_one_oversized_write_while_readers_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path(), opts(MIB)).unwrap());
    let start_map = store.stats().map_size;
    assert_eq!(start_map, MIB);
    let audit = store.tables().audit;
    // ~4 KB values: one LMDB overflow page each.
    let blob = |i: u64| entry(i, format!("{i:08}").repeat(500));

    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (store, stop) = (Arc::clone(&store), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let n = store.read(|txn| store.tables().audit.len(txn)).unwrap();
                assert!(n <= 5_000);
                reads += 1;
            }
            reads
        })
    };

    // ~8 MB in a single write() on the fresh 1 MiB map: needs several doublings.
    let mut attempts = 0;
    store
        .write(|txn| {
            attempts += 1;
            for i in 0..2_000u64 {
                audit.put(
                    txn,
                    &TimeKey {
                        at: Timestamp(i),
                        seq: 0,
                    },
                    &blob(i),
                )?;
            }
            Ok(())
        })
        .unwrap();
    // ~12 MB more in 12 write() calls of ~1 MB each.
    for batch in 0..12u64 {
        store
            .write(|txn| {
                for i in 2_000 + batch * 250..2_000 + (batch + 1) * 250 {
                    audit.put(
                        txn,
                        &TimeKey {
                            at: Timestamp(i),
                            seq: 0,
                        },
                        &blob(i),
                    )?;
                }
                Ok(())
            })
            .unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);

    assert!(
        attempts > 1,
        "the oversized write should have been retried after growing"
    );
    let stats = store.stats();
    assert!(stats.map_size >= 16 * MIB, "map did not grow: {stats:?}");
    assert!(stats.used_bytes >= 20_000_000, "{stats:?}");
    assert!(stats.file_bytes >= stats.used_bytes, "{stats:?}");
    assert!(stats.entries.contains(&("audit", 5_000)), "{stats:?}");
    store
        .read(|txn| {
            assert_eq!(audit.len(txn)?, 5_000);
            for i in [0u64, 1_999, 2_000, 4_999] {
                assert_eq!(
                    audit.get(
                        txn,
                        &TimeKey {
                            at: Timestamp(i),
                            seq: 0
                        }
                    )?,
                    Some(blob(i))
                );
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn prune_before_removes_exactly_the_older_entries_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts(4 * MIB)).unwrap();
    let audit = store.tables().audit;
    let start = 1_700_000_000_000u64;
    // 10 000 entries, two per timestamp, 10 ms apart.
    let stamps: Vec<u64> = (0..10_000u64).map(|i| start + i / 2 * 10).collect();
    store
        .write(|txn| {
            for (i, &at) in stamps.iter().enumerate() {
                audit.append(txn, Timestamp(at), &entry(at, format!("#{i}")))?;
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(store.read(|txn| audit.len(txn)).unwrap(), 10_000);

    let cutoff = Timestamp(stamps[6_543]);
    let older = stamps.iter().filter(|&&at| at < cutoff.as_millis()).count() as u64;
    assert!(older > 500 * 5, "test should span several batches");
    let removed = store.prune_before(&audit, cutoff, 500).unwrap();
    assert_eq!(removed, older);

    let left = store.read(|txn| audit.iter(txn)).unwrap();
    assert_eq!(left.len() as u64, 10_000 - older);
    assert!(left.iter().all(|(k, e)| k.at >= cutoff && e.at == k.at));
    assert_eq!(left.first().map(|(k, _)| k.at), Some(cutoff));
    assert_eq!(store.prune_before(&audit, cutoff, 500).unwrap(), 0);
    assert_eq!(
        store.prune_before(&audit, Timestamp(u64::MAX), 500).unwrap(),
        10_000 - older
    );
    assert_eq!(store.read(|txn| audit.len(txn)).unwrap(), 0);
}
