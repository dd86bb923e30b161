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

mod capture;
mod top;

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
    ParseLog(ParseLogCmd),
    Pcap(PcapCmd),
    Capture(capture::CaptureCmd),
    Top(top::TopCmd),
    Scan(ScanCmd),
    Import(ImportCmd),
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

/// Summarise pcap/pcapng files: packets, protocols, top talkers, flows and DNS. A file
/// cut off mid-record still gives the summary of what was read.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "pcap")]
pub struct PcapCmd {
    /// capture files (pcap or pcapng); several files are summarised together
    #[argh(positional)]
    pub files: Vec<PathBuf>,
    /// print the summary as JSON (schema: shared/testdata/pcap/README.md)
    #[argh(switch)]
    pub json: bool,
    /// ports treated as DNS over UDP and TCP, comma-separated (default: 53)
    #[argh(option, default = "String::from(\"53\")")]
    pub dns_ports: String,
    /// exit 1 when a file is truncated, corrupt or has undecodable link types (the summary is
    /// still printed)
    #[argh(switch)]
    pub strict: bool,
    /// capture filter in libpcap/tcpdump syntax, e.g. 'udp port 53' (applied to every file)
    #[argh(option, short = 'b')]
    pub bpf: Option<String>,
    /// local networks for in/out direction, comma-separated CIDRs (e.g. 192.168.1.0/24,fd00::/8)
    #[argh(option)]
    pub host_spec: Option<String>,
    /// city or country database (MaxMind DB, e.g. GeoLite2-City.mmdb) for top countries and cities
    #[argh(option)]
    pub geo_city: Option<PathBuf>,
    /// ASN database (MaxMind DB, e.g. GeoLite2-ASN.mmdb) for top ASNs
    #[argh(option)]
    pub geo_asn: Option<PathBuf>,
    /// sample flow and DNS analysis by flow above this many packets per second
    #[argh(option)]
    pub deep_sample_above_pps: Option<u64>,
}

/// Parse log lines from stdin and print one JSON object per line: `{"syslog": …,
/// "firewall": …|null, "dhcp": …|null}` or `{"error": "…"}` (schema:
/// shared/testdata/syslog/README.md). The same parser the syslog receivers use.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "parse-log")]
pub struct ParseLogCmd {
    /// auto (default), rfc5424, rfc3164, filterlog, netfilter, dnsmasq, isc-dhcpd or sshd
    #[argh(option, default = "String::from(\"auto\")")]
    pub format: String,
    /// year for timestamps without one (default: relative to the current date)
    #[argh(option)]
    pub year: Option<i32>,
}

/// Scan networks for live hosts, open TCP ports and services. Runs without a server and
/// only when you ask; private ranges only unless --allow-public.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "scan")]
pub struct ScanCmd {
    /// addresses or CIDRs, e.g. 192.168.1.0/24, or `all` for every IPv4 network of this machine's interfaces
    #[argh(positional)]
    pub targets: Vec<String>,
    /// ports: default (nmap top-100 + home/IoT ports + ports named by service definitions), top100, top1000, all, or a list like 22,80,8000-8100
    #[argh(option, default = "String::from(\"default\")")]
    pub ports: String,
    /// print JSON (the schema of shared/netlab/README.md)
    #[argh(switch)]
    pub json: bool,
    /// allow targets outside private address ranges
    #[argh(switch)]
    pub allow_public: bool,
    /// skip reverse DNS
    #[argh(switch)]
    pub no_dns: bool,
    /// skip the UDP probes (DNS, NTP, SNMP, NetBIOS, mDNS, SSDP)
    #[argh(switch)]
    pub no_udp: bool,
}

/// Import hosts and services from another tool into the inventory (safe while serving:
/// the server picks the change up on its next write).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "import")]
pub struct ImportCmd {
    #[argh(subcommand)]
    pub what: ImportWhat,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum ImportWhat {
    Nmap(ImportNmapCmd),
}

/// Import an nmap XML report (written with `nmap -oX FILE`). Nothing is stored when the
/// file does not parse.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "nmap")]
pub struct ImportNmapCmd {
    /// the XML report
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
            println!(
                "backup written to {} ({} bytes, schema version {})",
                c.file.display(),
                info.file_bytes,
                info.schema_version
            );
            Ok(())
        }
        Command::Restore(c) => {
            let cfg = load_config(c.config, c.data_dir)?;
            let info = store::restore(&c.file, &cfg.data_dir, store_options(&cfg))?;
            println!(
                "restored {} into {} (schema version {} → {})",
                c.file.display(),
                cfg.data_dir.display(),
                info.backup_schema_version,
                info.schema_version
            );
            if let Some(previous) = &info.previous {
                println!("the database it replaced is kept as {}", previous.display());
            }
            Ok(())
        }
        Command::Pcap(c) => run_pcap(c),
        Command::Capture(c) => capture::run(c),
        Command::Top(c) => top::run(c),
        Command::Scan(c) => run_scan(c),
        Command::Import(ImportCmd {
            what: ImportWhat::Nmap(c),
        }) => run_import_nmap(c),
        Command::Version(_) => {
            println!("gatewatch {VERSION}");
            Ok(())
        }
        Command::ParseLog(c) => run_parse_log(c),
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

/// `gatewatch pcap`: reads the files into the traffic engine and prints the summary.
fn run_pcap(c: PcapCmd) -> Result<(), CliError> {
    use crate::traffic::{report, TrafficConfig};
    if c.files.is_empty() {
        return Err(CliError::new(Exit::Usage, "give at least one capture file"));
    }
    let dns_ports = parse_dns_ports(&c.dns_ports)?;
    let mut filter = match c.bpf.as_deref() {
        Some(expr) => Some(
            crate::capture::BpfFilter::new(expr)
                .map_err(|e| CliError::new(Exit::Usage, format!("-b: {e}")))?,
        ),
        None => None,
    };
    let mut host_spec = Vec::new();
    for n in c
        .host_spec
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        let net = n
            .parse::<ipnet::IpNet>()
            .or_else(|_| n.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map_err(|_| {
                CliError::new(
                    Exit::Usage,
                    format!("--host-spec: {n:?} is not a CIDR or address"),
                )
            })?;
        host_spec.push(net);
    }
    let geo = if c.geo_city.is_some() || c.geo_asn.is_some() {
        let db = crate::geo::GeoDb::open(c.geo_city.as_deref(), c.geo_asn.as_deref(), Default::default())
            .map_err(|e| CliError::new(Exit::Usage, e.to_string()))?;
        Some(std::sync::Arc::new(db))
    } else {
        None
    };
    let cfg = TrafficConfig {
        dns_ports: dns_ports.clone(),
        period: None,
        host_spec,
        geo,
        deep_sample_above_pps: c.deep_sample_above_pps,
        ..Default::default()
    };
    let show_progress = std::io::stderr().is_terminal();
    let mut progress = |path: &std::path::Path, pos: u64, len: u64| {
        if show_progress && len > 0 {
            eprint!("\r{}: {:>3} %", path.display(), pos.saturating_mul(100) / len);
        }
    };
    let paths: Vec<&std::path::Path> = c.files.iter().map(PathBuf::as_path).collect();
    let mut summary = crate::capture::summarize_files_filtered(&paths, cfg, filter.as_mut(), &mut progress);
    if show_progress {
        eprint!("\r\x1b[K");
    }
    if let Some(f) = &filter {
        summary.warnings.extend(f.problems());
    }
    let out = if c.json {
        let mut v = report::to_json(&summary.window, &summary.input, &dns_ports);
        if let (Some(f), Some(obj)) = (&filter, v.as_object_mut()) {
            obj.insert(
                "filter".into(),
                serde_json::json!({"expression": f.expression(), "matched": f.matched, "rejected": f.rejected}),
            );
        }
        serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
    } else {
        let mut text = report::to_text(&summary.window, &summary.input, &dns_ports);
        if let Some(f) = &filter {
            text.push_str(&format!(
                "\nfilter {:?}: {} packets kept, {} dropped\n",
                f.expression(),
                f.matched,
                f.rejected
            ));
        }
        text
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes()).and_then(|_| stdout.flush());
    let mut fatal = false;
    for w in &summary.warnings {
        eprintln!("gatewatch: warning: {w}");
    }
    for e in &summary.errors {
        eprintln!("gatewatch: {e}");
        fatal |= !e.keeps_summary();
    }
    let imperfect = !summary.errors.is_empty() || !summary.warnings.is_empty();
    if fatal || (c.strict && imperfect) {
        let what = if fatal {
            "some input could not be read"
        } else {
            "some input was truncated, corrupt or not decodable (--strict)"
        };
        return Err(CliError::new(Exit::Failure, what));
    }
    Ok(())
}

/// `--dns-ports 53,5353` → the port list.
fn parse_dns_ports(spec: &str) -> Result<Vec<u16>, CliError> {
    let mut dns_ports = Vec::new();
    for p in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let port = p
            .parse::<u16>()
            .map_err(|_| CliError::new(Exit::Usage, format!("--dns-ports: {p:?} is not a port number")))?;
        dns_ports.push(port);
    }
    Ok(dns_ports)
}

/// `parse-log`: stdin lines → JSON lines on stdout. A closed stdout (`| head`) is not an error.
fn run_parse_log(c: ParseLogCmd) -> Result<(), CliError> {
    use crate::logs::{self, LineFormat, ParseContext};
    let format: LineFormat = c
        .format
        .parse()
        .map_err(|e: String| CliError::new(Exit::Usage, e))?;
    let ctx = match c.year {
        Some(y) if (1..=9999).contains(&y) => ParseContext::with_year(y),
        Some(y) => {
            return Err(CliError::new(
                Exit::Usage,
                format!("--year {y} is not a year (1..9999)"),
            ))
        }
        None => ParseContext::received_at(chrono::Utc::now()),
    };
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    match logs::parse_lines(&mut stdin.lock(), &mut out, &ctx, format) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::new(Exit::Failure, format!("parse-log: {e}"))),
    }
}

fn run_import_nmap(c: ImportNmapCmd) -> Result<(), CliError> {
    let xml = std::fs::read_to_string(&c.file)
        .map_err(|e| CliError::new(Exit::Usage, format!("cannot read {}: {e}", c.file.display())))?;
    let cfg = load_config(c.config, c.data_dir)?;
    let accounts = open_accounts(&cfg)?;
    let discovery = crate::discovery_service::Discovery::open(
        accounts.store().clone(),
        cfg.discovery.clone(),
        tokio_util::sync::CancellationToken::new(),
        Arc::new(Timestamp::now),
    )
    .map_err(|e| CliError::new(Exit::Store, e.to_string()))?;
    let name = c
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let who = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into());
    let rec = discovery
        .import_nmap(&xml, &name, &format!("cli:{who}"), Timestamp::now())
        .map_err(|e| match e {
            crate::discovery_service::DiscoveryError::BadImport(e) => CliError::new(
                Exit::Usage,
                format!("{}: {e}; nothing was imported", c.file.display()),
            ),
            other => CliError::new(Exit::Store, other.to_string()),
        })?;
    audit_cli(&accounts, "scan.import", &format!("{name}: {}", rec.summary))?;
    println!("{name}: {}", rec.summary);
    Ok(())
}

fn run_scan(c: ScanCmd) -> Result<(), CliError> {
    use crate::scan::{self, ScanOptions};
    if c.targets.is_empty() {
        return Err(CliError::new(
            Exit::Usage,
            "give at least one target, e.g. `gatewatch scan 192.168.1.0/24`",
        ));
    }
    let targets = scan::expand_targets(&c.targets, c.allow_public)
        .map_err(|e| CliError::new(Exit::Usage, e.to_string()))?;
    let ports = crate::discovery::ports::parse_port_spec(&c.ports)
        .map_err(|e| CliError::new(Exit::Usage, format!("--ports: {e}")))?;
    let opts = ScanOptions {
        ports,
        resolve_names: !c.no_dns,
        udp: !c.no_udp,
        ..Default::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(Exit::Failure, format!("cannot start the runtime: {e}")))?;
    let show_progress = std::io::stderr().is_terminal();
    let report = runtime.block_on(scan::scan(targets, opts, move |p| {
        if show_progress {
            let eta = p
                .eta_ms
                .map(|ms| format!("~{} s left", ms.div_ceil(1000)))
                .unwrap_or_default();
            eprint!(
                "\r{:<9} {:>5.1} %  hosts found: {:<5} {:<14}",
                p.phase.as_str(),
                p.percent,
                p.hosts_found,
                eta
            );
            if p.phase == scan::Phase::Done {
                eprintln!();
            }
        }
    }));
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    if c.json {
        let text =
            serde_json::to_string_pretty(&report).map_err(|e| CliError::new(Exit::Failure, e.to_string()))?;
        println!("{text}");
        return Ok(());
    }
    println!(
        "{} hosts up of {} addresses, {} ports each, in {:.1} s",
        report.hosts.len(),
        report.targets,
        report.ports_per_host,
        report.duration_ms as f64 / 1000.0
    );
    for h in &report.hosts {
        println!(
            "\n{}  {}  {}  {}",
            h.ip,
            h.hostname.as_deref().unwrap_or("-"),
            h.mac.as_deref().unwrap_or("-"),
            h.vendor.as_deref().unwrap_or("")
        );
        for p in &h.ports {
            let what = [p.product.as_deref(), p.version.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            let title = p
                .http
                .as_ref()
                .and_then(|h| h.title.as_deref())
                .map(|t| format!("\"{t}\""))
                .unwrap_or_default();
            let cert = p
                .tls_cert
                .as_ref()
                .and_then(|c| c.subject_cn.as_deref())
                .map(|cn| format!("cert CN={cn}"))
                .unwrap_or_default();
            println!(
                "  {:>5}/{:<4} {:<14} {} {} {}",
                p.port, p.proto, p.service, what, title, cert
            );
        }
        if let Some(m) = &h.mdns {
            let types: Vec<&str> = m.services.iter().map(|s| s.service_type.as_str()).collect();
            println!(
                "  mDNS {} {}",
                m.hostname.as_deref().unwrap_or("-"),
                types.join(" ")
            );
        }
        if let Some(s) = &h.ssdp {
            let what = [
                s.friendly_name.as_deref(),
                s.manufacturer.as_deref(),
                s.model_name.as_deref(),
            ];
            println!(
                "  UPnP {}",
                what.into_iter().flatten().collect::<Vec<_>>().join(" / ")
            );
        }
        if let Some(nb) = &h.netbios {
            println!("  NetBIOS {} {}", nb.name, nb.workgroup.as_deref().unwrap_or(""));
        }
        for m in &h.services {
            println!("  → {} ({}; {})", m.name, m.confidence.as_str(), m.summary());
        }
    }
    Ok(())
}
