//! Accounts: users, roles, sessions, API tokens, lockout and the audit log, on top of the
//! store. Used by both the web layer and the CLI, so the rules live in one place.
//!
//! Every method takes `now`; nothing here reads the clock or touches sockets. Password
//! hashing is slow on purpose (Argon2id): async callers run these methods in
//! `spawn_blocking`.

mod lockout;
mod password;

pub use lockout::{LockKey, Lockout};
pub use password::{check_new_password, hash_password, verify_password, MIN_PASSWORD_LEN};

use crate::config::AuthConfig;
use crate::model::{ApiToken, AuditEntry, Permission, Role, Session, Timestamp, User};
use crate::store::{Store, StoreError, TimeKey};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("wrong username or password")]
    BadCredentials,
    #[error("too many failed logins; try again in {} minutes", .0.as_secs().div_ceil(60))]
    LockedOut(Duration),
    #[error("user {0} already exists")]
    UserExists(String),
    #[error("no user named {0}")]
    NoSuchUser(String),
    #[error("no role named {0}; roles: admin, network-admin, security-analyst, viewer")]
    NoSuchRole(String),
    #[error("no API token with id {0}")]
    NoSuchToken(String),
    #[error("invalid username: {0}")]
    BadUsername(String),
    #[error("password refused: {0}")]
    WeakPassword(String),
    #[error("refused: {0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A logged-in request's identity: a session user or an API token.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The username, or `token:<name>` for API tokens.
    pub name: String,
    pub role: Role,
    /// The session's CSRF token; `None` for bearer tokens, which need no CSRF protection
    /// because browsers never attach them by themselves.
    pub csrf_token: Option<String>,
}

impl Principal {
    pub fn can(&self, p: Permission) -> bool {
        self.role.allows(p)
    }
}

/// Why a session is no longer valid, if it is not.
pub fn session_expiry(s: &Session, now: Timestamp, cfg: &AuthConfig) -> Option<&'static str> {
    if now.since(s.created_at) >= cfg.session_lifetime {
        Some("session lifetime reached")
    } else if now.since(s.last_seen) >= cfg.session_idle_timeout {
        Some("idle timeout")
    } else {
        None
    }
}

/// `last_seen` is written back at most this often, so reads do not each cost a write.
const LAST_SEEN_GRANULARITY: Duration = Duration::from_secs(30);

/// Prefix of printed API tokens: `gw_<id>_<secret>`.
const TOKEN_PREFIX: &str = "gw_";

pub struct Accounts {
    store: Arc<Store>,
    cfg: AuthConfig,
    lockout: Mutex<Lockout>,
    /// A real hash to verify against when the user does not exist, so both cases take as long.
    dummy_hash: String,
}

impl Accounts {
    pub fn new(store: Arc<Store>, cfg: AuthConfig) -> Self {
        let lockout = Lockout::new(cfg.lockout_threshold, cfg.lockout_duration);
        Accounts {
            store,
            cfg,
            lockout: Mutex::new(lockout),
            dummy_hash: hash_password("gatewatch-timing-equaliser"),
        }
    }

    pub fn config(&self) -> &AuthConfig {
        &self.cfg
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// True until the first user exists: the web UI then shows the setup page.
    pub fn needs_setup(&self) -> Result<bool, AccountError> {
        let n = self.store.read(|t| self.store.tables().users.len(t))?;
        Ok(n == 0)
    }

    // ---- users ----

    pub fn create_user(
        &self,
        username: &str,
        role: &str,
        password: &str,
        now: Timestamp,
    ) -> Result<User, AccountError> {
        self.insert_user(username, role, password, now, false)
    }

    /// Creates the first admin, only while no user exists (the setup page). The check and
    /// the insert share one write transaction, so two racing setup requests make one admin.
    pub fn create_first_admin(
        &self,
        username: &str,
        password: &str,
        now: Timestamp,
    ) -> Result<User, AccountError> {
        self.insert_user(username, "admin", password, now, true)
    }

    fn insert_user(
        &self,
        username: &str,
        role: &str,
        password: &str,
        now: Timestamp,
        only_if_first: bool,
    ) -> Result<User, AccountError> {
        check_username(username)?;
        check_new_password(password).map_err(AccountError::WeakPassword)?;
        self.role(role)?;
        let user = User {
            username: username.to_string(),
            role: role.to_string(),
            password_hash: hash_password(password),
            created_at: now,
            last_login: None,
        };
        let tables = self.store.tables();
        self.store.write(|t| {
            if only_if_first && !tables.users.is_empty(t)? {
                return Ok(Err(AccountError::Refused("setup is already done".into())));
            }
            if tables.users.get(t, &user.username)?.is_some() {
                return Ok(Err(AccountError::UserExists(user.username.clone())));
            }
            tables.users.put(t, &user.username, &user)?;
            Ok(Ok(()))
        })??;
        Ok(user)
    }

    pub fn list_users(&self) -> Result<Vec<User>, AccountError> {
        let users = self.store.read(|t| self.store.tables().users.iter(t))?;
        Ok(users.into_iter().map(|(_, u)| u).collect())
    }

    pub fn user(&self, username: &str) -> Result<User, AccountError> {
        self.store
            .read(|t| self.store.tables().users.get(t, &username.to_string()))?
            .ok_or_else(|| AccountError::NoSuchUser(username.to_string()))
    }

    pub fn set_password(&self, username: &str, password: &str) -> Result<(), AccountError> {
        check_new_password(password).map_err(AccountError::WeakPassword)?;
        let hash = hash_password(password);
        let tables = self.store.tables();
        let key = username.to_string();
        self.store.write(|t| {
            let Some(mut user) = tables.users.get(t, &key)? else {
                return Ok(Err(AccountError::NoSuchUser(key.clone())));
            };
            user.password_hash = hash.clone();
            tables.users.put(t, &key, &user)?;
            // A new password ends the user's other sessions.
            delete_sessions_of(&self.store, t, &key)?;
            Ok(Ok(()))
        })?
    }

    pub fn set_user_role(&self, username: &str, role: &str) -> Result<(), AccountError> {
        self.role(role)?;
        let tables = self.store.tables();
        let key = username.to_string();
        self.store.write(|t| {
            let Some(mut user) = tables.users.get(t, &key)? else {
                return Ok(Err(AccountError::NoSuchUser(key.clone())));
            };
            if user.role == "admin" && role != "admin" && admin_count(&self.store, t)? <= 1 {
                return Ok(Err(AccountError::Refused(
                    "this is the last admin; make another admin first".into(),
                )));
            }
            user.role = role.to_string();
            tables.users.put(t, &key, &user)?;
            Ok(Ok(()))
        })?
    }

    pub fn remove_user(&self, username: &str) -> Result<(), AccountError> {
        let tables = self.store.tables();
        let key = username.to_string();
        self.store.write(|t| {
            let Some(user) = tables.users.get(t, &key)? else {
                return Ok(Err(AccountError::NoSuchUser(key.clone())));
            };
            if user.role == "admin" && admin_count(&self.store, t)? <= 1 {
                return Ok(Err(AccountError::Refused(
                    "this is the last admin; make another admin first".into(),
                )));
            }
            tables.users.delete(t, &key)?;
            delete_sessions_of(&self.store, t, &key)?;
            Ok(Ok(()))
        })?
    }

    // ---- roles ----

    pub fn role(&self, name: &str) -> Result<Role, AccountError> {
        self.store
            .read(|t| self.store.tables().roles.get(t, &name.to_string()))?
            .ok_or_else(|| AccountError::NoSuchRole(name.to_string()))
    }

    pub fn roles(&self) -> Result<Vec<Role>, AccountError> {
        let roles = self.store.read(|t| self.store.tables().roles.iter(t))?;
        Ok(roles.into_iter().map(|(_, r)| r).collect())
    }

    /// Replaces a role's permission set. The admin role always keeps `manage-users`, so
    /// nobody can lock everyone out of user management.
    pub fn set_role_permissions(
        &self,
        name: &str,
        permissions: std::collections::BTreeSet<Permission>,
    ) -> Result<Role, AccountError> {
        if name == "admin" && !permissions.contains(&Permission::ManageUsers) {
            return Err(AccountError::Refused(
                "the admin role must keep manage-users".into(),
            ));
        }
        let tables = self.store.tables();
        let key = name.to_string();
        self.store.write(|t| {
            let Some(mut role) = tables.roles.get(t, &key)? else {
                return Ok(Err(AccountError::NoSuchRole(key.clone())));
            };
            role.permissions = permissions.clone();
            tables.roles.put(t, &key, &role)?;
            Ok(Ok(role))
        })?
    }

    // ---- login and sessions ----

    /// Checks the password, applying lockout per account and per address. On success
    /// returns the cookie value (shown to the browser once) and the stored session.
    pub fn login(
        &self,
        username: &str,
        password: &str,
        remote: IpAddr,
        now: Timestamp,
    ) -> Result<(String, Session), AccountError> {
        let account_key = LockKey::Account(username.to_ascii_lowercase());
        let addr_key = LockKey::Addr(remote);
        // Held from the check until the outcome is recorded, so concurrent guesses cannot all
        // pass the check before the first failure counts. This serialises password checks.
        let mut lock = self.lockout.lock().unwrap_or_else(|e| e.into_inner());
        let left = [&account_key, &addr_key]
            .into_iter()
            .filter_map(|k| lock.locked_for(k, now))
            .max();
        if let Some(left) = left {
            return Err(AccountError::LockedOut(left));
        }
        let user = self
            .store
            .read(|t| self.store.tables().users.get(t, &username.to_string()))?;
        let ok = match &user {
            Some(u) => verify_password(&u.password_hash, password),
            None => {
                verify_password(&self.dummy_hash, password);
                false
            }
        };
        let Some(mut user) = user.filter(|_| ok) else {
            lock.record_failure(account_key, now);
            lock.record_failure(addr_key, now);
            return Err(AccountError::BadCredentials);
        };
        lock.record_success(&account_key);
        drop(lock);

        let cookie = random_token(32);
        let session = Session {
            username: user.username.clone(),
            created_at: now,
            last_seen: now,
            csrf_token: random_token(24),
            remote_addr: remote.to_string(),
        };
        user.last_login = Some(now);
        let tables = self.store.tables();
        let key = sha256(&cookie);
        self.store.write(|t| {
            tables.sessions.put(t, &key, &session)?;
            tables.users.put(t, &user.username, &user)
        })?;
        Ok((cookie, session))
    }

    /// The principal behind a session cookie, if the session is valid at `now`. Expired
    /// sessions are deleted on sight.
    pub fn session(&self, cookie: &str, now: Timestamp) -> Result<Option<Principal>, AccountError> {
        let key = sha256(cookie);
        let tables = self.store.tables();
        let Some(session) = self.store.read(|t| tables.sessions.get(t, &key))? else {
            return Ok(None);
        };
        if session_expiry(&session, now, &self.cfg).is_some() {
            self.store.write(|t| tables.sessions.delete(t, &key))?;
            return Ok(None);
        }
        let user = self.store.read(|t| tables.users.get(t, &session.username))?;
        let Some(user) = user else {
            self.store.write(|t| tables.sessions.delete(t, &key))?;
            return Ok(None);
        };
        let role = self.role(&user.role)?;
        if now.since(session.last_seen) >= LAST_SEEN_GRANULARITY {
            let mut touched = session.clone();
            touched.last_seen = now;
            self.store.write(|t| tables.sessions.put(t, &key, &touched))?;
        }
        Ok(Some(Principal {
            name: user.username,
            role,
            csrf_token: Some(session.csrf_token),
        }))
    }

    pub fn logout(&self, cookie: &str) -> Result<(), AccountError> {
        let key = sha256(cookie);
        self.store
            .write(|t| self.store.tables().sessions.delete(t, &key))?;
        Ok(())
    }

    /// Deletes every expired session; returns how many.
    pub fn prune_sessions(&self, now: Timestamp) -> Result<usize, AccountError> {
        let tables = self.store.tables();
        let n = self.store.write(|t| {
            let expired: Vec<[u8; 32]> = tables
                .sessions
                .iter(t)?
                .into_iter()
                .filter(|(_, s)| session_expiry(s, now, &self.cfg).is_some())
                .map(|(k, _)| k)
                .collect();
            for k in &expired {
                tables.sessions.delete(t, k)?;
            }
            Ok(expired.len())
        })?;
        Ok(n)
    }

    pub fn locked_count(&self, now: Timestamp) -> usize {
        self.lockout
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .locked_count(now)
    }

    // ---- API tokens ----

    /// Creates a token bound to `role`. Returns the secret string, shown once, and the
    /// stored record (which keeps only the secret's hash).
    pub fn create_token(
        &self,
        name: &str,
        role: &str,
        created_by: &str,
        now: Timestamp,
    ) -> Result<(String, ApiToken), AccountError> {
        if name.trim().is_empty() || name.len() > 64 {
            return Err(AccountError::Refused(
                "a token name needs 1 to 64 characters".into(),
            ));
        }
        self.role(role)?;
        let id = hex(&random_bytes::<6>());
        let secret = random_token(32);
        let token = ApiToken {
            id: id.clone(),
            name: name.trim().to_string(),
            role: role.to_string(),
            secret_sha256: sha256(&secret),
            created_at: now,
            created_by: created_by.to_string(),
            last_used: None,
        };
        self.store
            .write(|t| self.store.tables().api_tokens.put(t, &id, &token))?;
        Ok((format!("{TOKEN_PREFIX}{id}_{secret}"), token))
    }

    pub fn list_tokens(&self) -> Result<Vec<ApiToken>, AccountError> {
        let tokens = self.store.read(|t| self.store.tables().api_tokens.iter(t))?;
        Ok(tokens.into_iter().map(|(_, t)| t).collect())
    }

    pub fn revoke_token(&self, id: &str) -> Result<ApiToken, AccountError> {
        let tables = self.store.tables();
        let key = id.to_string();
        self.store.write(|t| {
            let Some(token) = tables.api_tokens.get(t, &key)? else {
                return Ok(Err(AccountError::NoSuchToken(key.clone())));
            };
            tables.api_tokens.delete(t, &key)?;
            Ok(Ok(token))
        })?
    }

    /// The principal behind an `Authorization: Bearer` value, if it is a live token.
    pub fn token_principal(&self, bearer: &str, now: Timestamp) -> Result<Option<Principal>, AccountError> {
        let Some((id, secret)) = bearer
            .strip_prefix(TOKEN_PREFIX)
            .and_then(|rest| rest.split_once('_'))
        else {
            return Ok(None);
        };
        let tables = self.store.tables();
        let Some(mut token) = self.store.read(|t| tables.api_tokens.get(t, &id.to_string()))? else {
            return Ok(None);
        };
        let given = sha256(secret);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            &given[..],
            &token.secret_sha256[..],
        )) {
            return Ok(None);
        }
        let role = self.role(&token.role)?;
        if token
            .last_used
            .is_none_or(|t| now.since(t) >= LAST_SEEN_GRANULARITY)
        {
            token.last_used = Some(now);
            self.store
                .write(|t| tables.api_tokens.put(t, &token.id, &token))?;
        }
        Ok(Some(Principal {
            name: format!("token:{}", token.name),
            role,
            csrf_token: None,
        }))
    }

    // ---- audit ----

    pub fn audit(
        &self,
        actor: &str,
        action: &str,
        detail: &str,
        remote_addr: &str,
        now: Timestamp,
    ) -> Result<(), AccountError> {
        let entry = AuditEntry {
            at: now,
            actor: actor.to_string(),
            action: action.to_string(),
            detail: detail.to_string(),
            remote_addr: remote_addr.to_string(),
        };
        self.store
            .write(|t| self.store.tables().audit.append(t, now, &entry).map(|_| ()))?;
        Ok(())
    }

    /// Newest first, `limit` entries older than `before`.
    pub fn audit_page(
        &self,
        before: Option<TimeKey>,
        limit: usize,
    ) -> Result<Vec<(TimeKey, AuditEntry)>, AccountError> {
        Ok(self
            .store
            .read(|t| self.store.tables().audit.iter_rev_page(t, before.as_ref(), limit))?)
    }
}

fn admin_count(store: &Store, t: &crate::store::WriteTxn<'_>) -> Result<usize, StoreError> {
    Ok(store
        .tables()
        .users
        .iter(t)?
        .into_iter()
        .filter(|(_, u)| u.role == "admin")
        .count())
}

fn delete_sessions_of(
    store: &Store,
    t: &mut crate::store::WriteTxn<'_>,
    username: &str,
) -> Result<(), StoreError> {
    let sessions = &store.tables().sessions;
    let keys: Vec<[u8; 32]> = sessions
        .iter(t)?
        .into_iter()
        .filter(|(_, s)| s.username == username)
        .map(|(k, _)| k)
        .collect();
    for k in &keys {
        sessions.delete(t, k)?;
    }
    Ok(())
}

/// Usernames: 1–32 of `a-z A-Z 0-9 . _ -`, starting with a letter or digit.
pub fn check_username(name: &str) -> Result<(), AccountError> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(AccountError::BadUsername(
            "use 1 to 32 letters, digits, '.', '_' or '-', starting with a letter or digit".into(),
        ))
    }
}

pub fn sha256(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

/// `n` random bytes as unpadded base64url.
pub fn random_token(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts(cfg: AuthConfig) -> (tempfile::TempDir, Accounts) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Default::default()).unwrap();
        (dir, Accounts::new(Arc::new(store), cfg))
    }

    const T0: Timestamp = Timestamp(1_700_000_000_000);
    const MIN: u64 = 60_000;
    const PW: &str = "a long enough password";

    #[test]
    fn idle_timeout_and_lifetime_with_injected_now() {
        let (_d, a) = accounts(AuthConfig::default());
        a.create_user("alice", "admin", PW, T0).unwrap();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let (cookie, _) = a.login("alice", PW, ip, T0).unwrap();
        assert!(a.session(&cookie, Timestamp(T0.0 + 29 * MIN)).unwrap().is_some());
        // Activity at 29 min refreshed last_seen, so 58 min is still within 30 min idle.
        assert!(a.session(&cookie, Timestamp(T0.0 + 58 * MIN)).unwrap().is_some());
        assert!(a.session(&cookie, Timestamp(T0.0 + 89 * MIN)).unwrap().is_none());
        // Deleted on sight: even an earlier `now` does not bring it back.
        assert!(a.session(&cookie, Timestamp(T0.0 + 60 * MIN)).unwrap().is_none());

        let (cookie, _) = a.login("alice", PW, ip, T0).unwrap();
        let mut t = T0.0;
        while t < T0.0 + 12 * 60 * MIN - 10 * MIN {
            t += 10 * MIN;
            assert!(
                a.session(&cookie, Timestamp(t)).unwrap().is_some(),
                "active at {t}"
            );
        }
        assert!(a
            .session(&cookie, Timestamp(T0.0 + 12 * 60 * MIN))
            .unwrap()
            .is_none());
    }

    #[test]
    fn lockout_per_account_and_per_address() {
        let (_d, a) = accounts(AuthConfig::default());
        a.create_user("alice", "admin", PW, T0).unwrap();
        a.create_user("bob", "viewer", PW, T0).unwrap();
        let ip: IpAddr = "127.0.0.2".parse().unwrap();
        for _ in 0..5 {
            assert!(matches!(
                a.login("alice", "wrong", ip, T0),
                Err(AccountError::BadCredentials)
            ));
        }
        // Right password, but locked.
        assert!(matches!(
            a.login("alice", PW, "127.0.0.3".parse().unwrap(), T0),
            Err(AccountError::LockedOut(_))
        ));
        // The guessing address is locked for other accounts too.
        assert!(matches!(
            a.login("bob", PW, ip, T0),
            Err(AccountError::LockedOut(_))
        ));
        // Another address for another account is fine.
        assert!(a.login("bob", PW, "127.0.0.4".parse().unwrap(), T0).is_ok());
        // 15 minutes later it works.
        assert!(a.login("alice", PW, ip, Timestamp(T0.0 + 15 * MIN)).is_ok());
    }

    #[test]
    fn tokens_authenticate_until_revoked() {
        let (_d, a) = accounts(AuthConfig::default());
        let (secret, tok) = a.create_token("ci", "viewer", "alice", T0).unwrap();
        let p = a.token_principal(&secret, T0).unwrap().unwrap();
        assert_eq!(p.role.name, "viewer");
        assert!(!p.can(Permission::ManageUsers));
        let mut tampered = secret.clone();
        tampered.pop();
        tampered.push(if secret.ends_with('A') { 'B' } else { 'A' });
        assert!(a.token_principal(&tampered, T0).unwrap().is_none());
        a.revoke_token(&tok.id).unwrap();
        assert!(a.token_principal(&secret, T0).unwrap().is_none());
    }

    #[test]
    fn last_admin_cannot_be_removed_or_demoted() {
        let (_d, a) = accounts(AuthConfig::default());
        a.create_user("root", "admin", PW, T0).unwrap();
        assert!(matches!(a.remove_user("root"), Err(AccountError::Refused(_))));
        assert!(matches!(
            a.set_user_role("root", "viewer"),
            Err(AccountError::Refused(_))
        ));
        a.create_user("root2", "admin", PW, T0).unwrap();
        a.remove_user("root").unwrap();
    }

    #[test]
    fn racing_setups_make_one_admin() {
        let (_d, a) = accounts(AuthConfig::default());
        let a = Arc::new(a);
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let a = a.clone();
                std::thread::spawn(move || a.create_first_admin(&format!("admin{i}"), PW, T0).is_ok())
            })
            .collect();
        let created = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|ok| *ok)
            .count();
        assert_eq!(created, 1);
        assert_eq!(a.list_users().unwrap().len(), 1);
    }

    #[test]
    fn password_change_ends_sessions() {
        let (_d, a) = accounts(AuthConfig::default());
        a.create_user("alice", "admin", PW, T0).unwrap();
        let (cookie, _) = a.login("alice", PW, "127.0.0.1".parse().unwrap(), T0).unwrap();
        a.set_password("alice", "another long password").unwrap();
        assert!(a.session(&cookie, T0).unwrap().is_none());
    }
}
