//! Schema versions and the steps between them, run inside one write transaction at open.
//!
//! Owns the frozen formats of older schema versions (the `*V1` structs below — never edit
//! them, they describe bytes already on users' disks) and the v1 fixture generator.
//!
//! Must not: touch the environment outside the transaction it is given.

use std::fs;
use std::path::Path;

use heed::types::Bytes;
use serde::{Deserialize, Serialize};

use super::schema::{MetaValue, Tables, META};
use super::table::{decode_value, encode_value, sealed::Sealed, Record, Table, Txn, WriteTxn};
use super::{StoreError, SCHEMA_VERSION, SCHEMA_VERSION_KEY};
use crate::model::{Role, Timestamp, User, BUILTIN_ROLES};

/// A migration step from `from` to `from + 1`.
type Step = fn(&mut WriteTxn<'_>, &Tables) -> Result<(), StoreError>;

const STEPS: [(u32, Step); 2] = [(1, v1_to_v2), (2, v2_to_v3)];

/// Reads `meta.schema_version`; `None` if it was never written.
pub(crate) fn schema_version(
    txn: &impl Txn,
    meta: &Table<String, MetaValue>,
) -> Result<Option<u32>, StoreError> {
    match meta.get(txn, &SCHEMA_VERSION_KEY.to_string())? {
        None => Ok(None),
        Some(MetaValue::U64(v)) => match u32::try_from(v) {
            Ok(v) if v > 0 => Ok(Some(v)),
            _ => Err(bad_version(format!("schema_version is {v}"))),
        },
        Some(other) => Err(bad_version(format!("schema_version is {other:?}"))),
    }
}

fn bad_version(detail: String) -> StoreError {
    StoreError::Corrupt { table: META, detail }
}

/// Checks the version in a read transaction before anything is written, so a store from a
/// newer gatewatch is left exactly as it was.
pub(crate) fn refuse_too_new(env: &heed::Env<heed::WithoutTls>) -> Result<(), StoreError> {
    let rtxn = env
        .read_txn()
        .map_err(|e| StoreError::lmdb("reading the schema version", e))?;
    let meta = env
        .open_database::<Bytes, Bytes>(&rtxn, Some(META))
        .map_err(|e| StoreError::lmdb("reading the schema version", e))?;
    let Some(meta) = meta else { return Ok(()) };
    let txn = super::ReadTxn { txn: rtxn };
    match schema_version(&txn, &Table::new(meta, META))? {
        Some(v) if v > SCHEMA_VERSION => Err(StoreError::too_new(v)),
        _ => Ok(()),
    }
}

/// Brings the store to [`SCHEMA_VERSION`]; returns `(from, to)` if anything was migrated.
pub(crate) fn run(txn: &mut WriteTxn<'_>, tables: &Tables) -> Result<Option<(u32, u32)>, StoreError> {
    let found = match schema_version(txn, &tables.meta)? {
        Some(v) => v,
        None => {
            for (name, db) in tables.raw_all() {
                let empty = db
                    .first(txn.ro())
                    .map_err(|e| StoreError::lmdb("reading", e))?
                    .is_none();
                if !empty {
                    return Err(StoreError::Corrupt {
                        table: name,
                        detail: "the store has data but no schema_version".to_string(),
                    });
                }
            }
            set_schema_version(txn, tables, SCHEMA_VERSION)?;
            seed_roles(txn, tables)?;
            return Ok(None);
        }
    };
    if found > SCHEMA_VERSION {
        return Err(StoreError::too_new(found));
    }
    for version in found..SCHEMA_VERSION {
        let step = STEPS
            .iter()
            .find(|(from, _)| *from == version)
            .map(|(_, step)| step);
        let Some(step) = step else {
            return Err(bad_version(format!("no migration from schema version {version}")));
        };
        step(txn, tables)?;
    }
    // Built-in roles cannot be deleted; an empty table means it was lost, so re-seed.
    seed_roles(txn, tables)?;
    if found == SCHEMA_VERSION {
        return Ok(None);
    }
    set_schema_version(txn, tables, SCHEMA_VERSION)?;
    Ok(Some((found, SCHEMA_VERSION)))
}

fn set_schema_version(txn: &mut WriteTxn<'_>, tables: &Tables, v: u32) -> Result<(), StoreError> {
    tables.meta.put(
        txn,
        &SCHEMA_VERSION_KEY.to_string(),
        &MetaValue::U64(u64::from(v)),
    )
}

fn seed_roles(txn: &mut WriteTxn<'_>, tables: &Tables) -> Result<(), StoreError> {
    if !tables.roles.is_empty(txn)? {
        return Ok(());
    }
    for (name, description, permissions) in BUILTIN_ROLES {
        let role = Role {
            name: name.to_string(),
            description: description.to_string(),
            permissions: permissions.iter().copied().collect(),
        };
        tables.roles.put(txn, &role.name, &role)?;
    }
    Ok(())
}

/// A user as schema v1 stored it (record version 1). Frozen.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct UserV1 {
    username: String,
    role: String,
    password_hash: String,
    created_at_secs: u64,
}

impl Record for UserV1 {
    const VERSION: u8 = 1;
}

/// An audit entry as schema v1 stored it (record version 1). Frozen; same bytes as v2.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct AuditEntryV1 {
    at: u64,
    actor: String,
    action: String,
    detail: String,
    remote_addr: String,
}

impl Record for AuditEntryV1 {
    const VERSION: u8 = 1;
}

/// v2: users get millisecond `created_at` and `last_login`; the `roles` table appears
/// (created by `Tables::create`, seeded by `run`).
fn v1_to_v2(txn: &mut WriteTxn<'_>, tables: &Tables) -> Result<(), StoreError> {
    let users = tables.users;
    let raw = users.raw();
    let old: Vec<(Vec<u8>, Vec<u8>)> = {
        let iter = raw
            .iter(txn.ro())
            .map_err(|e| StoreError::lmdb("reading users", e))?;
        iter.map(|item| item.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .collect::<Result<_, _>>()
            .map_err(|e| StoreError::lmdb("reading users", e))?
    };
    for (key, bytes) in old {
        match bytes.first() {
            // Already converted (e.g. written by a v2 binary before the version bump).
            Some(&v) if v == User::VERSION => continue,
            _ => {}
        }
        let v1: UserV1 = decode_value(users.name(), &bytes)?;
        let user = User {
            username: v1.username,
            role: v1.role,
            password_hash: v1.password_hash,
            created_at: Timestamp::from_secs(v1.created_at_secs),
            last_login: None,
        };
        let key = String::from_utf8(key).map_err(|_| StoreError::Corrupt {
            table: users.name(),
            detail: "key is not UTF-8".to_string(),
        })?;
        users.put(txn, &key, &user)?;
    }
    Ok(())
}

/// v3: the log index holds posting lists (`[kind][term][first event key]` → event keys)
/// instead of one empty-valued entry per term and event; rebuilt from the events.
fn v2_to_v3(txn: &mut WriteTxn<'_>, tables: &Tables) -> Result<(), StoreError> {
    super::logs::rebuild_log_index(txn, tables).map(|_| ())
}

/// The users in the committed v1 fixture: (username, role, password PHC string, created_at
/// seconds). The passwords are `<username>-fixture-password`.
#[doc(hidden)]
pub const V1_FIXTURE_USERS: [(&str, &str, &str, u64); 2] = [
    (
        "alice",
        "admin",
        "$argon2id$v=19$m=19456,t=2,p=1$YWxpY2Utc2FsdC0wMDE$ym0KgA0Ov2chYFjjVFwd7zYL15uEkMmQSwinmbLYUuY",
        1_700_000_000,
    ),
    (
        "bob",
        "viewer",
        "$argon2id$v=19$m=19456,t=2,p=1$Ym9iLXNhbHQtMDAwMQ$ls0jiKl9ME/O6xYRTXo6qyC0G49iFwUqpvvJ17Skb6I",
        1_700_000_123,
    ),
];

/// Writes a schema-v1 store to `out_file` (compacted, as a backup would be), through raw
/// heed so it does not depend on today's types. Used to (re)generate
/// `tests/fixtures/store-v1/data.mdb`.
#[doc(hidden)]
pub fn write_v1_fixture_for_tests(out_file: &Path) -> Result<(), StoreError> {
    let work = out_file.with_extension("build");
    let _ = fs::remove_dir_all(&work);
    super::create_private_dir(&work)?;
    let lmdb = |e| StoreError::lmdb("writing the v1 fixture", e);
    {
        let env = super::open_env(&work, 1024 * 1024)?;
        let mut wtxn = env.write_txn().map_err(lmdb)?;
        let mut db = |name| env.create_database::<Bytes, Bytes>(&mut wtxn, Some(name));
        // v1 had no `roles` table.
        let meta = db("meta").map_err(lmdb)?;
        let users = db("users").map_err(lmdb)?;
        let audit = db("audit").map_err(lmdb)?;
        db("sessions").map_err(lmdb)?;
        db("api_tokens").map_err(lmdb)?;

        let version = encode_value("meta", &MetaValue::U64(1))?;
        meta.put(&mut wtxn, SCHEMA_VERSION_KEY.as_bytes(), &version)
            .map_err(lmdb)?;
        for (username, role, password_hash, created_at_secs) in V1_FIXTURE_USERS {
            let user = UserV1 {
                username: username.to_string(),
                role: role.to_string(),
                password_hash: password_hash.to_string(),
                created_at_secs,
            };
            users
                .put(&mut wtxn, username.as_bytes(), &encode_value("users", &user)?)
                .map_err(lmdb)?;
        }
        let entry = AuditEntryV1 {
            at: 1_700_000_200_000,
            actor: "alice".to_string(),
            action: "user.create".to_string(),
            detail: "created bob".to_string(),
            remote_addr: "192.0.2.10".to_string(),
        };
        let mut key = entry.at.to_be_bytes().to_vec();
        key.extend_from_slice(&0u32.to_be_bytes());
        audit
            .put(&mut wtxn, &key, &encode_value("audit", &entry)?)
            .map_err(lmdb)?;
        wtxn.commit().map_err(lmdb)?;

        let _ = fs::remove_file(out_file);
        env.copy_to_path(out_file, heed::CompactionOption::Enabled)
            .map_err(lmdb)?;
    }
    fs::remove_dir_all(&work).map_err(|e| StoreError::io("remove", &work, e))
}
