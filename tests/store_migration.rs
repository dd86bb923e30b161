//! Migration from schema v1, using a real v1 store committed under
//! `tests/fixtures/store-v1/`. Regenerate it (only if the v1 writer itself was wrong) with
//! `cargo test --test store_migration -- --ignored generate_v1_fixture`.

use std::path::{Path, PathBuf};

use gatewatch::model::{Permission, Timestamp, BUILTIN_ROLES};
use gatewatch::store::{
    inspect_backup, restore, write_v1_fixture_for_tests, MetaValue, Store, StoreOptions, TimeKey,
    SCHEMA_VERSION, SCHEMA_VERSION_KEY, V1_FIXTURE_USERS,
};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v1/data.mdb")
}

fn copy_fixture_to(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy(fixture(), dir.join("data.mdb")).expect("the v1 fixture is committed");
}

fn opts() -> StoreOptions {
    StoreOptions {
        initial_map_size: 1024 * 1024,
        ..StoreOptions::default()
    }
}

#[test]
fn the_fixture_is_a_small_v1_store() {
    let info = inspect_backup(&fixture()).unwrap();
    assert_eq!(info.schema_version, 1);
    assert!(
        info.file_bytes < 1024 * 1024,
        "fixture is {} bytes",
        info.file_bytes
    );
}

#[test]
fn v1_store_is_migrated_at_open_and_reopening_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixture_to(dir.path());
    {
        let store = Store::open(dir.path(), opts()).unwrap();
        let t = store.tables();
        store
            .read(|txn| {
                let version = t.meta.get(txn, &SCHEMA_VERSION_KEY.to_string())?;
                assert_eq!(version, Some(MetaValue::U64(u64::from(SCHEMA_VERSION))));

                let users = t.users.iter(txn)?;
                assert_eq!(users.len(), V1_FIXTURE_USERS.len());
                for (name, role, hash, secs) in V1_FIXTURE_USERS {
                    let user = t.users.get(txn, &name.to_string())?.expect("user migrated");
                    assert_eq!(user.username, name);
                    assert_eq!(user.role, role);
                    assert_eq!(user.password_hash, hash);
                    assert_eq!(user.created_at, Timestamp::from_secs(secs));
                    assert_eq!(user.last_login, None);
                }

                let roles = t.roles.iter(txn)?;
                assert_eq!(roles.len(), BUILTIN_ROLES.len());
                let admin = t
                    .roles
                    .get(txn, &"admin".to_string())?
                    .expect("admin role seeded");
                assert!(Permission::ALL.iter().all(|&p| admin.allows(p)));
                let viewer = t
                    .roles
                    .get(txn, &"viewer".to_string())?
                    .expect("viewer role seeded");
                assert!(!viewer.allows(Permission::ManageUsers));

                // Tables that did not change between v1 and v2 are read as they are.
                let key = TimeKey {
                    at: Timestamp(1_700_000_200_000),
                    seq: 0,
                };
                let entry = t.audit.get(txn, &key)?.expect("audit entry kept");
                assert_eq!(
                    (entry.actor.as_str(), entry.detail.as_str()),
                    ("alice", "created bob")
                );
                assert_eq!(t.sessions.len(txn)?, 0);
                Ok(())
            })
            .unwrap();
    }
    let migrated = std::fs::read(dir.path().join("data.mdb")).unwrap();
    drop(Store::open(dir.path(), opts()).unwrap());
    let reopened = std::fs::read(dir.path().join("data.mdb")).unwrap();
    assert!(migrated == reopened, "opening a current store wrote to it");
}

#[test]
fn the_fixture_password_hashes_still_verify_after_migration() {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    let dir = tempfile::tempdir().unwrap();
    copy_fixture_to(dir.path());
    let store = Store::open(dir.path(), opts()).unwrap();
    let alice = store
        .read(|txn| store.tables().users.get(txn, &"alice".to_string()))
        .unwrap()
        .unwrap();
    let hash = PasswordHash::new(&alice.password_hash).unwrap();
    assert!(argon2::Argon2::default()
        .verify_password(b"alice-fixture-password", &hash)
        .is_ok());
}

#[test]
fn restoring_a_v1_backup_migrates_it() {
    let dir = tempfile::tempdir().unwrap();
    let info = restore(&fixture(), &dir.path().join("data"), opts()).unwrap();
    assert_eq!(
        (info.backup_schema_version, info.schema_version),
        (1, SCHEMA_VERSION)
    );
    // The backup file itself is left as it was.
    assert_eq!(inspect_backup(&fixture()).unwrap().schema_version, 1);
}

#[test]
#[ignore = "regenerates the committed v1 fixture"]
fn generate_v1_fixture() {
    let out = fixture();
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    write_v1_fixture_for_tests(&out).unwrap();
    let info = inspect_backup(&out).unwrap();
    assert_eq!(info.schema_version, 1);
    println!("wrote {} ({} bytes)", out.display(), info.file_bytes);
}
