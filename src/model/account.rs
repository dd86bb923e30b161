//! Accounts and access: users, roles with editable permission sets, sessions, API tokens
//! and the audit trail of every write.

use super::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// One thing a role may do; [`Permission::describe`] says what. Every route in the web
/// layer needs exactly one of these (or is public); see `web::access`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Permission {
    ViewDashboard,
    ViewTraffic,
    ViewHosts,
    EditHosts,
    RunScans,
    ViewLogs,
    ViewMonitors,
    EditMonitors,
    ViewSettings,
    ManageUsers,
    ManageTokens,
    ViewAudit,
}

impl Permission {
    pub const ALL: [Permission; 12] = [
        Permission::ViewDashboard,
        Permission::ViewTraffic,
        Permission::ViewHosts,
        Permission::EditHosts,
        Permission::RunScans,
        Permission::ViewLogs,
        Permission::ViewMonitors,
        Permission::EditMonitors,
        Permission::ViewSettings,
        Permission::ManageUsers,
        Permission::ManageTokens,
        Permission::ViewAudit,
    ];

    /// The kebab-case name used in forms, the API and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            Permission::ViewDashboard => "view-dashboard",
            Permission::ViewTraffic => "view-traffic",
            Permission::ViewHosts => "view-hosts",
            Permission::EditHosts => "edit-hosts",
            Permission::RunScans => "run-scans",
            Permission::ViewLogs => "view-logs",
            Permission::ViewMonitors => "view-monitors",
            Permission::EditMonitors => "edit-monitors",
            Permission::ViewSettings => "view-settings",
            Permission::ManageUsers => "manage-users",
            Permission::ManageTokens => "manage-tokens",
            Permission::ViewAudit => "view-audit",
        }
    }

    pub fn from_name(name: &str) -> Option<Permission> {
        Permission::ALL.into_iter().find(|p| p.name() == name)
    }

    pub fn describe(self) -> &'static str {
        match self {
            Permission::ViewDashboard => "See the dashboard and process facts",
            Permission::ViewTraffic => "See traffic, flows and DNS",
            Permission::ViewHosts => "See hosts and the inventory",
            Permission::EditHosts => "Edit hosts and the inventory",
            Permission::RunScans => "Start active scans",
            Permission::ViewLogs => "See syslog and firewall logs",
            Permission::ViewMonitors => "See monitors and alerts",
            Permission::EditMonitors => "Change monitors and alert rules",
            Permission::ViewSettings => "See the effective configuration",
            Permission::ManageUsers => "Manage users and roles",
            Permission::ManageTokens => "Manage API tokens",
            Permission::ViewAudit => "Browse the audit log",
        }
    }
}

/// A named set of permissions. The four built-in roles can be edited but not deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    pub name: String,
    pub description: String,
    pub permissions: BTreeSet<Permission>,
}

impl Role {
    pub fn allows(&self, p: Permission) -> bool {
        self.permissions.contains(&p)
    }
}

/// The built-in roles and their default permission sets, after NetMap's four.
pub const BUILTIN_ROLES: [(&str, &str, &[Permission]); 4] = {
    use Permission::*;
    [
        (
            "admin",
            "Everything, including users, roles and tokens",
            &Permission::ALL,
        ),
        (
            "network-admin",
            "Runs the network: hosts, scans, monitors, settings",
            &[
                ViewDashboard,
                ViewTraffic,
                ViewHosts,
                EditHosts,
                RunScans,
                ViewLogs,
                ViewMonitors,
                EditMonitors,
                ViewSettings,
            ],
        ),
        (
            "security-analyst",
            "Reads everything security-relevant, including the audit log; changes nothing",
            &[
                ViewDashboard,
                ViewTraffic,
                ViewHosts,
                ViewLogs,
                ViewMonitors,
                ViewSettings,
                ViewAudit,
            ],
        ),
        (
            "viewer",
            "Read-only view of traffic, hosts, logs and monitors",
            &[ViewDashboard, ViewTraffic, ViewHosts, ViewLogs, ViewMonitors],
        ),
    ]
};

/// A login account. The password is kept only as an Argon2id PHC string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub username: String,
    pub role: String,
    pub password_hash: String,
    pub created_at: Timestamp,
    pub last_login: Option<Timestamp>,
}

/// A server-side session. The key in the store is the SHA-256 of the cookie value, so a
/// stolen database does not yield live cookies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub username: String,
    pub created_at: Timestamp,
    pub last_seen: Timestamp,
    /// Per-session CSRF token, embedded in every form.
    pub csrf_token: String,
    pub remote_addr: String,
}

/// An API token, bound to a role. Only the SHA-256 of the secret is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    /// Public id, the prefix of the printed token (`gw_<id>_<secret>`).
    pub id: String,
    pub name: String,
    pub role: String,
    pub secret_sha256: [u8; 32],
    pub created_at: Timestamp,
    pub created_by: String,
    pub last_used: Option<Timestamp>,
}

/// One write, recorded: who did what, when, from which address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub detail: String,
    pub remote_addr: String,
}
