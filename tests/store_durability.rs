//! kill -9 durability: a child process (this test binary, re-executed) writes and reports
//! each commit; the parent kills it mid-write and checks that every reported commit
//! survived, no transaction is half-applied, and the store opens cleanly. While the child
//! runs, the parent also checks that `restore` refuses to replace its store.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use gatewatch::model::{AuditEntry, Session, Timestamp};
use gatewatch::store::{restore, Store, StoreError, StoreOptions, TimeKey};

const CHILD_DIR_VAR: &str = "GATEWATCH_STORE_CHILD_DIR";
/// Records per reported transaction.
const PER_COMMIT: u32 = 20;
const COMMITS_BEFORE_KILL: u64 = 200;

fn opts() -> StoreOptions {
    StoreOptions {
        initial_map_size: 1024 * 1024,
        ..StoreOptions::default()
    }
}

fn record(n: u64, i: u32) -> AuditEntry {
    AuditEntry {
        at: Timestamp(n),
        actor: "child".to_string(),
        action: "durability".to_string(),
        detail: format!("commit {n} record {i} {}", "x".repeat(200)),
        remote_addr: "127.0.0.1".to_string(),
    }
}

/// Kills the child if an assertion fails before the test does.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Not a test of its own: the body of the child process. Does nothing unless started by
/// `kill_mid_write_loses_no_reported_commit`.
#[test]
#[ignore = "child process of kill_mid_write_loses_no_reported_commit"]
fn child_writer() {
    let Some(dir) = std::env::var_os(CHILD_DIR_VAR) else {
        return;
    };
    let store = std::sync::Arc::new(Store::open(dir.as_ref(), opts()).unwrap());

    // Unreported background writes keep the writer lock busy, so the kill usually lands
    // inside some transaction.
    let background = std::sync::Arc::clone(&store);
    std::thread::spawn(move || {
        let sessions = background.tables().sessions;
        for round in 0u64.. {
            background
                .write(|txn| {
                    for k in 0..100u8 {
                        let session = Session {
                            username: format!("round {round}"),
                            created_at: Timestamp(round),
                            last_seen: Timestamp(round),
                            csrf_token: "t".repeat(64),
                            remote_addr: "127.0.0.1".to_string(),
                        };
                        sessions.put(txn, &[k; 32], &session)?;
                    }
                    Ok(())
                })
                .unwrap();
        }
    });

    let audit = store.tables().audit;
    let mut out = std::io::stdout().lock();
    for n in 0u64.. {
        store
            .write(|txn| {
                for i in 0..PER_COMMIT {
                    audit.put(
                        txn,
                        &TimeKey {
                            at: Timestamp(n),
                            seq: i,
                        },
                        &record(n, i),
                    )?;
                }
                Ok(())
            })
            .unwrap();
        writeln!(out, "committed {n}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn kill_mid_write_loses_no_reported_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let backup_file = dir.path().join("other.mdb");
    Store::open(&dir.path().join("other"), opts())
        .unwrap()
        .backup_to(&backup_file)
        .unwrap();

    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args([
                "child_writer",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DIR_VAR, &store_dir)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let mut last_reported = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let Some(n) = line.strip_prefix("committed ") else {
            continue;
        };
        let n: u64 = n.parse().unwrap();
        last_reported = Some(n);
        if n == 5 {
            let err = restore(&backup_file, &store_dir, opts()).unwrap_err();
            assert!(matches!(err, StoreError::InUse { .. }), "{err:?}");
        }
        if n + 1 >= COMMITS_BEFORE_KILL {
            break;
        }
    }
    child.0.kill().unwrap();
    let status = child.0.wait().unwrap();
    let last_reported = last_reported.expect("the child reported commits (see its stderr)");
    assert!(
        last_reported + 1 >= COMMITS_BEFORE_KILL,
        "child stopped early: {status}"
    );

    let store = Store::open(&store_dir, opts()).unwrap();
    let audit = store.tables().audit;
    let entries = store.read(|txn| audit.iter(txn)).unwrap();
    let mut per_commit = std::collections::BTreeMap::<u64, u32>::new();
    for (key, entry) in &entries {
        assert_eq!(*entry, record(key.at.as_millis(), key.seq));
        *per_commit.entry(key.at.as_millis()).or_default() += 1;
    }
    for n in 0..=last_reported {
        assert_eq!(
            per_commit.get(&n),
            Some(&PER_COMMIT),
            "reported commit {n} is incomplete"
        );
    }
    for (n, count) in &per_commit {
        assert_eq!(*count, PER_COMMIT, "commit {n} is half-applied");
    }
    let sessions = store.read(|txn| store.tables().sessions.iter(txn)).unwrap();
    assert!(sessions.len() <= 100);

    // The killed child's lock is gone: restore is allowed now that nothing has it open.
    drop(store);
    restore(&backup_file, &store_dir, opts()).unwrap();
}
