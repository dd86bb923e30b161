//! The command line: argh definitions, what each subcommand does, and the exit codes.
//!
//! Exit codes (also in the README):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | unexpected failure (a bug or an I/O error not covered below) |
//! | 2 | bad command line |
//! | 3 | invalid configuration |
//! | 4 | data dir or database problem (cannot open, locked, corrupt, backup/restore failed) |
//! | 5 | cannot listen on the configured address (in use, or needs privileges) |
//! | 6 | request refused (user exists, weak password, last admin, unknown role/token …) |

use crate::accounts::{AccountError, Accounts};
use crate::config::{self, Config, ConfigError, Overrides};
use crate::model::Timestamp;
use crate::store::{self, Store, StoreError, StoreOptions};
use argh::FromArgs;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Exit codes, decided here and nowhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    Ok = 0,
    Failure = 1,
    Usage = 2,
    Config = 3,
    Store = 4,
    Listen = 5,
    Refused = 6,
}

/// A failure with the exit code it maps to; the message tells the user what to do.
#[derive(Debug)]
pub struct CliError {
    pub exit: Exit,
    pub message: String,
}

impl CliError {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        CliError {
            exit,
            message: message.into(),
        }
    }
}

impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> Self {
        CliError::new(Exit::Config, format!("configuration error: {e}"))
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        CliError::new(Exit::Store, e.to_string())
    }
}

impl From<AccountError> for CliError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Store(s) => s.into(),
            other => CliError::new(Exit::Refused, other.to_string()),
        }
    }
}

/// gatewatch: network visibility that runs on the router itself.
#[derive(FromArgs, Debug)]
pub struct Cli {
    #[argh(subcommand)]
    pub command: Command,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum Command {
    Serve(ServeCmd),
    CheckConfig(CheckConfigCmd),
    Config(ConfigCmd),
    User(UserCmd),
    Token(TokenCmd),
    Backup(BackupCmd),
    Restore(RestoreCmd),
    Version(VersionCmd),
}

/// Run the server: web UI, API and every enabled subsystem.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "serve")]
pub struct ServeCmd {
    /// config file (default: /etc/gatewatch/gatewatch.toml or /usr/local/etc/gatewatch/gatewatch.toml if present)
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// data directory (default: /var/db/gatewatch as root, ./gatewatch-data otherwise)
    #[argh(option)]
    pub data_dir: Option<PathBuf>,
    /// listen address, e.g. 127.0.0.1:8443
    #[argh(option)]
    pub listen: Option<String>,
    /// serve plain HTTP (only behind a TLS-terminating reverse proxy)
    #[argh(switch)]
    pub http: bool,
}

/// Check the configuration and print the effective settings.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "check-config")]
pub struct CheckConfigCmd {
    /// config file
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// data directory
    #[argh(option)]
    pub data_dir: Option<PathBuf>,
}

/// Configuration helpers.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "config")]
pub struct ConfigCmd {
    #[argh(subcommand)]
    pub action: ConfigAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum ConfigAction {
    Example(ConfigExampleCmd),
}

/// Print a fully commented sample configuration with every key and its default.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "example")]
pub struct ConfigExampleCmd {}

/// Manage user accounts.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "user")]
pub struct UserCmd {
    #[argh(subcommand)]
    pub action: UserAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum UserAction {
    Add(UserAddCmd),
    Passwd(UserPasswdCmd),
    List(UserListCmd),
    Remove(UserRemoveCmd),
}

/// Add a user. The password is asked for on a terminal, or read from the first line of
/// stdin otherwise (for scripts and package installers).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "add")]
pub struct UserAddCmd {
    /// the username
    #[argh(positional)]
    pub name: String,
    /// role: admin, network-admin, security-analyst or viewer
    #[argh(option)]
    pub role: String,
    /// config file
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// data directory
    #[argh(option)]
    pub data_dir: Option<PathBuf>,
}

/// Set a user's password (ends their sessions).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "passwd")]
pub struct UserPasswdCmd {
    /// the username
    #[argh(positional)]
    pub name: String,
    /// config file
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// data directory
    #[argh(option)]
    pub data_dir: Option<PathBuf>,
}

/// List users and their roles.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "list")]
pub struct UserListCmd {
    /// config file
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// data directory
    #[argh(option)]
    pub data_dir: Option<PathBuf>,
}

/// Remove a user (the last admin cannot be removed).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "remove")]
pub struct UserRemoveCmd {
    /// the username
    #[argh(positional)]
    pub name: String,
    /// config file
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// data directory
    #[argh(option)]
    pub data_dir: Option<PathBuf>,
}

/// Manage API tokens (used as `Authorization: Bearer <token>`).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "token")]
pub struct TokenCmd {
    #[argh(subcommand)]
    pub action: TokenAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum TokenAction {
    Create(TokenCreateCmd),
    List(TokenListCmd),
    Revoke(TokenRevokeCmd),
}

/// Create an API token bound to a role; the token is printed once.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "create")]
pub struct TokenCreateCmd {
    /// a name saying what the token is for, e.g. "prometheus"
    #[argh(option)]
    pub name: String,
    /// role: admin, network-admin, security-analyst or viewer
    #[argh(option)]
    pub role: String,
    /// config file
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// data directory
    #[argh(option)]
    pub data_dir: Option<PathBuf>,
}

/// List API tokens (secrets are never shown again).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "list")]
pub struct TokenListCmd {
    /// config file
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// data directory
    #[argh(option)]
    pub data_dir: Option<PathBuf>,
}

/// Revoke an API token by id.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "revoke")]
pub struct TokenRevokeCmd {
    /// the token id (see `token list`)
    #[argh(positional)]
    pub id: String,
    /// config file
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// data directory
    #[argh(option)]
    pub data_dir: Option<PathBuf>,
}

/// Write a consistent, compacted copy of the database to FILE (safe while serving).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "backup")]
pub struct BackupCmd {
    /// the backup file to create
    #[argh(positional)]
    pub file: PathBuf,
    /// config file
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// data directory
    #[argh(option)]
    pub data_dir: Option<PathBuf>,
}

/// Replace the database with a verified backup (stop the server first). The old database
/// is kept beside it as `data.mdb.before-restore-<time>`.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "restore")]
pub struct RestoreCmd {
    /// the backup file
    #[argh(positional)]
    pub file: PathBuf,
    /// config file
    #[argh(option)]
    pub config: Option<PathBuf>,
    /// data directory
    #[argh(option)]
    pub data_dir: Option<PathBuf>,
}

/// Print the version.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "version")]
pub struct VersionCmd {}

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Parses `args` (without the program name) and runs the command; the one place that turns
/// outcomes into exit codes.
pub fn main_with_args(program: &str, args: &[&str]) -> ExitCode {
    let cli = match Cli::from_args(&[program], args) {
        Ok(cli) => cli,
        Err(early) => {
            return match early.status {
                Ok(()) => {
                    println!("{}", early.output);
                    ExitCode::SUCCESS
                }
                Err(()) => {
                    eprintln!("{}\nRun `{program} help` for usage.", early.output.trim_end());
                    ExitCode::from(Exit::Usage as u8)
                }
            };
        }
    };
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gatewatch: {}", e.message);
            ExitCode::from(e.exit as u8)
        }
    }
}

fn load_config(config: Option<PathBuf>, data_dir: Option<PathBuf>) -> Result<Config, CliError> {
    let flags = Overrides {
        data_dir,
        ..Default::default()
    };
    let path = config.or_else(|| std::env::var_os("GATEWATCH_CONFIG").map(PathBuf::from));
    Ok(config::load(path.as_deref(), std::env::vars(), &flags)?)
}

pub fn store_options(cfg: &Config) -> StoreOptions {
    StoreOptions {
        initial_map_size: cfg.store.map_size,
        max_map_size: cfg.store.max_map_size,
    }
}

fn open_accounts(cfg: &Config) -> Result<Accounts, CliError> {
    let store = Store::open(&cfg.data_dir, store_options(cfg))?;
    Ok(Accounts::new(Arc::new(store), cfg.auth.clone()))
}

/// Records a CLI write in the audit log, as the local OS user.
fn audit_cli(accounts: &Accounts, action: &str, detail: &str) -> Result<(), CliError> {
    let who = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into());
    accounts.audit(&format!("cli:{who}"), action, detail, "local", Timestamp::now())?;
    Ok(())
}

fn run(command: Command) -> Result<(), CliError> {
    match command {
        Command::Serve(c) => {
            let flags = Overrides {
                data_dir: c.data_dir,
                listen: c.listen,
                plain_http: c.http,
            };
            let path = c
                .config
                .or_else(|| std::env::var_os("GATEWATCH_CONFIG").map(PathBuf::from));
            let cfg = config::load(path.as_deref(), std::env::vars(), &flags)?;
            crate::app::serve(cfg)
        }
        Command::CheckConfig(c) => {
            let cfg = load_config(c.config, c.data_dir)?;
            match &cfg.source_file {
                Some(p) => println!("{}: OK", p.display()),
                None => println!("no config file found; using defaults: OK"),
            }
            println!("data_dir = {}", cfg.data_dir.display());
            for (key, value, origin) in &cfg.effective {
                println!("{key} = {value}    # {origin}");
            }
            Ok(())
        }
        Command::Config(ConfigCmd {
            action: ConfigAction::Example(_),
        }) => {
            print!("{}", config::example());
            Ok(())
        }
        Command::User(UserCmd { action }) => run_user(action),
        Command::Token(TokenCmd { action }) => run_token(action),
        Command::Backup(c) => {
            let cfg = load_config(c.config, c.data_dir)?;
            let store = Store::open(&cfg.data_dir, store_options(&cfg))?;
            let info = store.backup_to(&c.file)?;
            println!("backup written to {} ({info:?})", c.file.display());
            Ok(())
        }
        Command::Restore(c) => {
            let cfg = load_config(c.config, c.data_dir)?;
            let info = store::restore(&c.file, &cfg.data_dir, store_options(&cfg))?;
            println!(
                "restored {} into {} ({info:?})",
                c.file.display(),
                cfg.data_dir.display()
            );
            Ok(())
        }
        Command::Version(_) => {
            println!("gatewatch {VERSION}");
            Ok(())
        }
    }
}

fn run_user(action: UserAction) -> Result<(), CliError> {
    match action {
        UserAction::Add(c) => {
            let cfg = load_config(c.config, c.data_dir)?;
            let accounts = open_accounts(&cfg)?;
            accounts.role(&c.role)?;
            let password = read_new_password(&c.name)?;
            accounts.create_user(&c.name, &c.role, &password, Timestamp::now())?;
            audit_cli(&accounts, "user.add", &format!("{} as {}", c.name, c.role))?;
            println!("user {} added with role {}", c.name, c.role);
            Ok(())
        }
        UserAction::Passwd(c) => {
            let cfg = load_config(c.config, c.data_dir)?;
            let accounts = open_accounts(&cfg)?;
            accounts.user(&c.name)?;
            let password = read_new_password(&c.name)?;
            accounts.set_password(&c.name, &password)?;
            audit_cli(&accounts, "user.passwd", &c.name)?;
            println!("password of {} changed; their sessions were ended", c.name);
            Ok(())
        }
        UserAction::List(c) => {
            let cfg = load_config(c.config, c.data_dir)?;
            let accounts = open_accounts(&cfg)?;
            let users = accounts.list_users()?;
            if users.is_empty() {
                println!("no users yet; add one with `gatewatch user add NAME --role admin`");
            }
            println!("{:<24} {:<18} {:<22} LAST LOGIN", "USER", "ROLE", "CREATED");
            for u in users {
                let last = u
                    .last_login
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "never".into());
                println!(
                    "{:<24} {:<18} {:<22} {last}",
                    u.username,
                    u.role,
                    u.created_at.to_string()
                );
            }
            Ok(())
        }
        UserAction::Remove(c) => {
            let cfg = load_config(c.config, c.data_dir)?;
            let accounts = open_accounts(&cfg)?;
            accounts.remove_user(&c.name)?;
            audit_cli(&accounts, "user.remove", &c.name)?;
            println!("user {} removed", c.name);
            Ok(())
        }
    }
}

fn run_token(action: TokenAction) -> Result<(), CliError> {
    match action {
        TokenAction::Create(c) => {
            let cfg = load_config(c.config, c.data_dir)?;
            let accounts = open_accounts(&cfg)?;
            let (secret, token) = accounts.create_token(&c.name, &c.role, "cli", Timestamp::now())?;
            audit_cli(
                &accounts,
                "token.create",
                &format!("{} ({}) as {}", token.name, token.id, token.role),
            )?;
            eprintln!(
                "token {} created for role {}; it is shown only this once:",
                token.id, token.role
            );
            println!("{secret}");
            Ok(())
        }
        TokenAction::List(c) => {
            let cfg = load_config(c.config, c.data_dir)?;
            let accounts = open_accounts(&cfg)?;
            println!(
                "{:<14} {:<20} {:<18} {:<22} LAST USED",
                "ID", "NAME", "ROLE", "CREATED"
            );
            for t in accounts.list_tokens()? {
                let used = t
                    .last_used
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "never".into());
                println!(
                    "{:<14} {:<20} {:<18} {:<22} {used}",
                    t.id,
                    t.name,
                    t.role,
                    t.created_at.to_string()
                );
            }
            Ok(())
        }
        TokenAction::Revoke(c) => {
            let cfg = load_config(c.config, c.data_dir)?;
            let accounts = open_accounts(&cfg)?;
            let t = accounts.revoke_token(&c.id)?;
            audit_cli(&accounts, "token.revoke", &format!("{} ({})", t.name, t.id))?;
            println!("token {} ({}) revoked", t.id, t.name);
            Ok(())
        }
    }
}

/// Asks twice on a terminal; otherwise reads the first line of stdin.
fn read_new_password(user: &str) -> Result<String, CliError> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let first = rpassword::prompt_password(format!("password for {user}: "))
            .map_err(|e| CliError::new(Exit::Failure, format!("cannot read password: {e}")))?;
        let again = rpassword::prompt_password("again: ")
            .map_err(|e| CliError::new(Exit::Failure, format!("cannot read password: {e}")))?;
        if first != again {
            return Err(CliError::new(
                Exit::Refused,
                "the passwords differ; nothing changed",
            ));
        }
        Ok(first)
    } else {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| CliError::new(Exit::Failure, format!("cannot read password from stdin: {e}")))?;
        let pw = line.trim_end_matches(['\n', '\r']).to_string();
        if pw.is_empty() {
            return Err(CliError::new(
                Exit::Refused,
                "no password on stdin; pipe one in, e.g. `echo \"$PW\" | gatewatch user add …`",
            ));
        }
        let _ = std::io::stderr().flush();
        Ok(pw)
    }
}
