//! Configuration: a TOML file, `GATEWATCH_*` environment variables and command-line flags,
//! merged with the precedence flags > env > file > default.
//!
//! [`RawConfig`] is what users write; every field carries a doc comment, and both
//! `gatewatch config example` and the env-variable names are generated from it (through
//! its JSON schema), so the docs cannot drift from the code. [`Config`] is the validated,
//! typed result the rest of the program uses. Errors name the key and, for the file, the line.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the config file is looked for when `--config` is not given.
pub const DEFAULT_CONFIG_PATHS: [&str; 2] = [
    "/etc/gatewatch/gatewatch.toml",
    "/usr/local/etc/gatewatch/gatewatch.toml",
];

/// Prefix of environment variables that set config keys, e.g. `GATEWATCH_WEB_LISTEN`.
pub const ENV_PREFIX: &str = "GATEWATCH_";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("{key} ({origin}): {message}")]
    Invalid {
        key: String,
        origin: String,
        message: String,
    },
}

/// The gatewatch configuration file.
///
/// Every key can also be set with an environment variable named `GATEWATCH_` followed by
/// the section and key in upper case, e.g. `GATEWATCH_WEB_LISTEN=0.0.0.0:8443`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    /// Directory for the database, TLS certificate and other state. Default:
    /// /var/db/gatewatch when run as root, ./gatewatch-data otherwise.
    pub data_dir: Option<PathBuf>,
    /// The web UI and JSON API.
    pub web: RawWeb,
    /// Logins, sessions and lockout.
    pub auth: RawAuth,
    /// The LMDB database.
    pub store: RawStore,
    /// Diagnostic logging of the gatewatch process itself.
    pub log: RawLog,
    /// Host discovery: passive sources (always on, send nothing) and scans (only when asked).
    pub discovery: RawDiscovery,
    /// Passive packet capture.
    pub capture: RawCapture,
    /// Traffic summaries.
    pub traffic: RawTraffic,
    /// Geolocation and AS numbers.
    pub geo: RawGeo,
    /// The syslog receiver (firewall, DHCP, sshd and any other syslog lines).
    pub syslog: RawSyslog,
}

/// The web UI and JSON API.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RawWeb {
    /// Address and port the web server listens on.
    pub listen: String,
    /// Serve HTTPS. Set to false only behind a TLS-terminating reverse proxy (same as --http).
    pub tls: bool,
    /// PEM certificate chain. When unset, a self-signed certificate is generated on first
    /// start and kept in the data dir.
    pub cert_file: Option<PathBuf>,
    /// PEM private key for cert_file.
    pub key_file: Option<PathBuf>,
    /// Host header values accepted (e.g. "gw.example.lan"). Empty accepts any host.
    pub trusted_hosts: Vec<String>,
    /// Reverse proxies (addresses or CIDRs) whose X-Forwarded-For header is believed when
    /// recording a client's address for lockout and audit.
    pub trusted_proxies: Vec<String>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Time a client has to send the request headers (and finish the TLS handshake).
    pub header_timeout: String,
    /// Time a whole request may take, body included.
    pub request_timeout: String,
    /// Concurrent connections served; further ones wait.
    pub max_connections: usize,
}

impl Default for RawWeb {
    fn default() -> Self {
        RawWeb {
            listen: "127.0.0.1:8443".into(),
            tls: true,
            cert_file: None,
            key_file: None,
            trusted_hosts: Vec::new(),
            trusted_proxies: Vec::new(),
            max_body_bytes: 1024 * 1024,
            header_timeout: "10s".into(),
            request_timeout: "30s".into(),
            max_connections: 256,
        }
    }
}

/// Logins, sessions and lockout.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RawAuth {
    /// A session ends after this long without a request.
    pub session_idle_timeout: String,
    /// A session ends this long after login, active or not.
    pub session_lifetime: String,
    /// Failed logins (per account and per source address) before lockout.
    pub lockout_threshold: u32,
    /// How long an account or address stays locked out.
    pub lockout_duration: String,
}

impl Default for RawAuth {
    fn default() -> Self {
        RawAuth {
            session_idle_timeout: "30m".into(),
            session_lifetime: "12h".into(),
            lockout_threshold: 5,
            lockout_duration: "15m".into(),
        }
    }
}

/// The LMDB database.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RawStore {
    /// Initial size of the memory map in MiB; it doubles by itself when full.
    pub map_size_mib: usize,
    /// The map never grows beyond this many MiB.
    pub max_map_size_mib: usize,
}

impl Default for RawStore {
    fn default() -> Self {
        RawStore {
            map_size_mib: 64,
            max_map_size_mib: if cfg!(target_pointer_width = "64") {
                16 * 1024
            } else {
                1024
            },
        }
    }
}

/// Diagnostic logging of the gatewatch process itself.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RawLog {
    /// Level or filter: error, warn, info, debug, trace, or a filter like "gatewatch=debug".
    pub level: String,
    /// Where log lines go: "stderr" or "syslog" (the local /dev/log or /var/run/log).
    pub target: String,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            level: "info".into(),
            target: "stderr".into(),
        }
    }
}

/// Host discovery: passive sources (always on, send nothing) and scans (only when asked).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RawDiscovery {
    /// Learn hosts passively from the kernel's neighbour table (ARP/NDP), DHCP lease files and
    /// Docker. Reads local state only; sends no packet.
    pub passive: bool,
    /// How often the passive sources are read.
    pub poll_interval: String,
    /// DHCP lease files to read (missing ones are skipped): dnsmasq (OpenWrt, Debian), ISC
    /// dhcpd (pfSense), Kea memfile CSV. The format is recognised from the content.
    pub lease_files: Vec<String>,
    /// Docker Engine API socket; containers become hosts with source "docker". Empty: off.
    pub docker_socket: String,
    /// Scheduled scans, one per entry: "CIDR every DURATION" (at most every 10m) or
    /// "CIDR daily HH:MM" (UTC), e.g. ["192.168.1.0/24 every 6h", "10.0.20.0/24 daily 03:30"].
    /// Empty: gatewatch scans only when someone presses Scan or calls the API.
    pub schedules: Vec<String>,
    /// Scans running at the same time; more wait in a queue.
    pub max_concurrent_scans: usize,
    /// Allow scan targets outside private ranges (RFC 1918, ULA, loopback, link-local).
    pub allow_public_targets: bool,
    /// Port set of scans that do not name one: default (nmap top-100 + home/IoT ports + ports
    /// named by service definitions), top100, top1000, all, or a list like "22,80,8000-8100".
    pub default_ports: String,
}

impl Default for RawDiscovery {
    fn default() -> Self {
        RawDiscovery {
            passive: true,
            poll_interval: "60s".into(),
            lease_files: [
                "/tmp/dhcp.leases",
                "/var/lib/misc/dnsmasq.leases",
                "/var/db/dhcpd.leases",
                "/var/lib/kea/kea-leases4.csv",
            ]
            .map(String::from)
            .to_vec(),
            docker_socket: "/var/run/docker.sock".into(),
            schedules: Vec::new(),
            max_concurrent_scans: 1,
            allow_public_targets: false,
            default_ports: "default".into(),
        }
    }
}

/// Passive packet capture: which interfaces, and how libpcap is asked to capture.
///
/// Capture needs root or the CAP_NET_RAW and CAP_NET_ADMIN capabilities
/// (`setcap cap_net_raw,cap_net_admin=eip /usr/local/bin/gatewatch`); without them the
/// server keeps running and the Traffic page says what to do.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RawCapture {
    /// Capture and summarise traffic. gatewatch only listens; it never sends.
    pub enabled: bool,
    /// Interfaces to capture on, e.g. ["eth0", "br-lan"]. Empty: every interface that is up,
    /// except loopback.
    pub interfaces: Vec<String>,
    /// Bytes kept of each packet (the rest is counted, not read).
    pub snaplen: u32,
    /// Put the interfaces in promiscuous mode (see traffic not addressed to this machine,
    /// e.g. on a mirror port).
    pub promiscuous: bool,
    /// Kernel capture buffer per interface, in KiB. Larger survives bursts without drops.
    pub buffer_size_kib: usize,
    /// Deliver packets as they arrive instead of in batches (lower latency, more CPU).
    pub immediate_mode: bool,
    /// BPF filter applied in the kernel, tcpdump syntax, e.g. "not port 22". Empty: none.
    pub bpf_filter: String,
    /// How long a capture thread waits for packets before it looks at the clock and its
    /// stop flag (windows still close on time when the line is quiet).
    pub poll_interval: String,
    /// Replay this pcap/pcapng file instead of capturing live (demos and tests).
    pub replay: Option<PathBuf>,
    /// Replay pace: "realtime" (the file's own gaps) or "fast" (as fast as it can be
    /// read). Either way the timestamps are moved so that the file starts now.
    pub replay_speed: String,
    /// Start the replay over when the file ends.
    pub replay_loop: bool,
}

impl Default for RawCapture {
    fn default() -> Self {
        RawCapture {
            enabled: true,
            interfaces: Vec::new(),
            snaplen: 65_535,
            promiscuous: false,
            buffer_size_kib: 4096,
            immediate_mode: false,
            bpf_filter: String::new(),
            poll_interval: "200ms".into(),
            replay: None,
            replay_speed: "realtime".into(),
            replay_loop: false,
        }
    }
}

/// The syslog receiver (firewall, DHCP, sshd and any other syslog lines).
///
/// It listens on all addresses by default because its senders are other devices on the LAN
/// (the firewall, access points, switches); allowed_senders keeps the internet out even if a
/// port is forwarded by mistake.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RawSyslog {
    /// Receive syslog at all.
    pub enabled: bool,
    /// UDP address:port (RFC 5426). Empty turns UDP off.
    pub udp_listen: String,
    /// TCP address:port; octet-counted and newline-framed messages (RFC 6587) both work on
    /// it. Empty turns TCP off.
    pub tcp_listen: String,
    /// TLS address:port (RFC 5425). Empty turns TLS off.
    pub tls_listen: String,
    /// PEM certificate chain for TLS. Unset: the web server's certificate.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key for tls_cert_file.
    pub tls_key_file: Option<PathBuf>,
    /// Senders (addresses or CIDRs) whose messages are accepted; others are dropped and
    /// counted. The default is loopback and the private, unique-local and link-local ranges.
    pub allowed_senders: Vec<String>,
    /// Messages per second accepted from one sender (bursts of up to one second's worth);
    /// the rest are dropped and counted. 0 means no limit.
    pub rate_limit_per_sender: u32,
    /// Longest message in bytes; longer ones are truncated and flagged.
    pub max_message_size: usize,
    /// Days a received line is kept.
    pub retention_days: u32,
    /// The stored lines (with their search index) are kept under this many MiB; the oldest go
    /// first.
    pub max_store_mib: u64,
    /// Kernel receive buffer asked for on the UDP socket, in KiB (bursts wait there).
    pub udp_receive_buffer_kib: usize,
}

impl Default for RawSyslog {
    fn default() -> Self {
        RawSyslog {
            enabled: true,
            udp_listen: "0.0.0.0:5514".into(),
            tcp_listen: "0.0.0.0:5514".into(),
            tls_listen: "0.0.0.0:6514".into(),
            tls_cert_file: None,
            tls_key_file: None,
            allowed_senders: [
                "127.0.0.0/8",
                "10.0.0.0/8",
                "172.16.0.0/12",
                "192.168.0.0/16",
                "169.254.0.0/16",
                "::1/128",
                "fc00::/7",
                "fe80::/10",
            ]
            .map(String::from)
            .to_vec(),
            rate_limit_per_sender: 20_000,
            max_message_size: 64 * 1024,
            retention_days: 7,
            max_store_mib: 1024,
            udp_receive_buffer_kib: 4096,
        }
    }
}

/// Traffic summaries: windows, top lists, flows, DNS and how long summaries are kept.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RawTraffic {
    /// Length of one summary window (pktvisor's period).
    pub period: String,
    /// Closed windows kept in memory besides the live one.
    pub windows_kept: usize,
    /// Networks that count as "inside" for in/out direction, e.g. ["192.168.1.0/24"].
    /// Empty: the subnets of the captured interfaces.
    pub host_spec: Vec<String>,
    /// UDP/TCP ports decoded as DNS.
    pub dns_ports: Vec<u16>,
    /// Entries in each top list (talkers, ports, qnames, countries).
    pub top_n: usize,
    /// Flows tracked at once per interface; beyond it the stalest is evicted (and counted).
    pub max_flows: usize,
    /// A flow without packets for this long is closed.
    pub flow_idle_timeout: String,
    /// Above this many packets per second, DNS and flow analysis are sampled (counters
    /// stay exact; the sample rate is shown). 0: never sample.
    pub deep_sample_above_pps: u64,
    /// Per-minute summaries are kept this long.
    pub minute_retention: String,
    /// Minutes older than this are rolled up into hourly summaries.
    pub rollup_after: String,
    /// Hourly summaries are kept this long.
    pub hour_retention: String,
}

impl Default for RawTraffic {
    fn default() -> Self {
        RawTraffic {
            period: "60s".into(),
            windows_kept: 5,
            host_spec: Vec::new(),
            dns_ports: vec![53],
            top_n: 10,
            max_flows: 262_144,
            flow_idle_timeout: "120s".into(),
            deep_sample_above_pps: 0,
            minute_retention: "2d".into(),
            rollup_after: "2h".into(),
            hour_retention: "90d".into(),
        }
    }
}

/// Geolocation and AS numbers of addresses (MaxMind GeoLite2 or ip-location-db mmdb files).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RawGeo {
    /// City database (.mmdb), e.g. /usr/share/GeoIP/GeoLite2-City.mmdb. Unset: no countries
    /// or cities.
    pub city_db: Option<PathBuf>,
    /// ASN database (.mmdb), e.g. /usr/share/GeoIP/GeoLite2-ASN.mmdb. Unset: no ASNs.
    pub asn_db: Option<PathBuf>,
    /// ISO country code private addresses are placed in, e.g. "DE".
    pub home_country: String,
    /// City name private addresses are placed in.
    pub home_city: String,
    /// Latitude of the home location (decimal degrees).
    pub home_latitude: Option<f64>,
    /// Longitude of the home location (decimal degrees).
    pub home_longitude: Option<f64>,
}

/// Settings given as command-line flags; they win over everything else.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
    pub plain_http: bool,
}

/// Where a setting came from, for error messages and the settings page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    File { path: PathBuf, line: usize },
    Env(String),
    Flag(&'static str),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File { path, line } => write!(f, "{}, line {line}", path.display()),
            Origin::Env(var) => write!(f, "env {var}"),
            Origin::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub web: WebConfig,
    pub auth: AuthConfig,
    pub store: StoreConfig,
    pub log: LogConfig,
    pub discovery: DiscoveryConfig,
    pub capture: CaptureConfig,
    pub traffic: TrafficSettings,
    pub geo: GeoConfig,
    pub syslog: SyslogConfig,
    /// The file it was read from, if any.
    pub source_file: Option<PathBuf>,
    /// Every key with its effective value (secrets masked) and origin, for the settings page.
    pub effective: Vec<(String, String, Origin)>,
}

#[derive(Debug, Clone)]
pub struct WebConfig {
    pub listen: SocketAddr,
    pub tls: Option<TlsFiles>,
    pub trusted_hosts: Vec<String>,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub max_body_bytes: usize,
    pub header_timeout: Duration,
    pub request_timeout: Duration,
    pub max_connections: usize,
}

/// `Some` means serve HTTPS; the paths are the user's or the generated self-signed pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsFiles {
    SelfSigned,
    User { cert: PathBuf, key: PathBuf },
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub session_idle_timeout: Duration,
    pub session_lifetime: Duration,
    pub lockout_threshold: u32,
    pub lockout_duration: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            session_idle_timeout: Duration::from_secs(30 * 60),
            session_lifetime: Duration::from_secs(12 * 3600),
            lockout_threshold: 5,
            lockout_duration: Duration::from_secs(15 * 60),
        }
    }
}

/// Validated `[capture]`.
#[derive(Debug, Clone)]
pub struct CaptureConfig {
    pub enabled: bool,
    /// Empty: every interface that is up, except loopback.
    pub interfaces: Vec<String>,
    pub snaplen: u32,
    pub promiscuous: bool,
    /// Bytes.
    pub buffer_size: usize,
    pub immediate_mode: bool,
    pub bpf_filter: Option<String>,
    pub poll_interval: Duration,
    /// Replay a file instead of capturing live.
    pub replay: Option<ReplayConfig>,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            enabled: false,
            interfaces: Vec::new(),
            snaplen: 65_535,
            promiscuous: false,
            buffer_size: 4 << 20,
            immediate_mode: false,
            bpf_filter: None,
            poll_interval: Duration::from_millis(200),
            replay: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayConfig {
    pub path: PathBuf,
    /// The file's own pace with timestamps moved to now; otherwise as fast as possible.
    pub realtime: bool,
    pub looped: bool,
}

/// Validated `[traffic]`.
#[derive(Debug, Clone)]
pub struct TrafficSettings {
    pub period: Duration,
    pub windows_kept: usize,
    /// Empty: the captured interfaces' subnets.
    pub host_spec: Vec<ipnet::IpNet>,
    pub dns_ports: Vec<u16>,
    pub top_n: usize,
    pub max_flows: usize,
    pub flow_idle_timeout: Duration,
    pub deep_sample_above_pps: Option<u64>,
    pub minute_retention: Duration,
    pub rollup_after: Duration,
    pub hour_retention: Duration,
}

impl Default for TrafficSettings {
    fn default() -> Self {
        TrafficSettings {
            period: Duration::from_secs(60),
            windows_kept: 5,
            host_spec: Vec::new(),
            dns_ports: vec![53],
            top_n: 10,
            max_flows: 262_144,
            flow_idle_timeout: Duration::from_secs(120),
            deep_sample_above_pps: None,
            minute_retention: Duration::from_secs(2 * 86_400),
            rollup_after: Duration::from_secs(2 * 3600),
            hour_retention: Duration::from_secs(90 * 86_400),
        }
    }
}

/// Validated `[geo]`.
#[derive(Debug, Clone, Default)]
pub struct GeoConfig {
    pub city_db: Option<PathBuf>,
    pub asn_db: Option<PathBuf>,
    pub home_country: Option<String>,
    pub home_city: Option<String>,
    /// (latitude, longitude).
    pub home_location: Option<(f64, f64)>,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub map_size: usize,
    pub max_map_size: usize,
}

#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    pub passive: bool,
    pub poll_interval: Duration,
    pub lease_files: Vec<PathBuf>,
    pub docker_socket: Option<PathBuf>,
    pub schedules: Vec<crate::inventory::schedule::Schedule>,
    pub max_concurrent_scans: usize,
    pub allow_public_targets: bool,
    /// As written (shown in forms); `default_port_list` is the expanded set.
    pub default_ports: String,
    pub default_port_list: Vec<u16>,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        let raw = RawDiscovery::default();
        DiscoveryConfig {
            passive: raw.passive,
            poll_interval: Duration::from_secs(60),
            lease_files: raw.lease_files.iter().map(PathBuf::from).collect(),
            docker_socket: Some(PathBuf::from(raw.docker_socket)),
            schedules: Vec::new(),
            max_concurrent_scans: raw.max_concurrent_scans,
            allow_public_targets: raw.allow_public_targets,
            default_port_list: crate::discovery::ports::default_ports(),
            default_ports: raw.default_ports,
        }
    }
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub level: String,
    pub target: LogTarget,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTarget {
    Stderr,
    Syslog,
}

/// Loads the configuration: `file` if given (it must exist), else the first default path
/// that exists, else nothing; then `env` (pass `std::env::vars()`), then `flags`.
pub fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    flags: &Overrides,
) -> Result<Config, ConfigError> {
    let path = match file {
        Some(p) => Some(p.to_path_buf()),
        None => DEFAULT_CONFIG_PATHS
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file()),
    };
    let text = match &path {
        Some(p) => std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
            path: p.clone(),
            source,
        })?,
        None => String::new(),
    };
    load_from_str(&text, path.as_deref(), env, flags)
}

/// As [`load`], with the file's text already read (`path` is only used in messages).
pub fn load_from_str(
    text: &str,
    path: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    flags: &Overrides,
) -> Result<Config, ConfigError> {
    let shown_path = path.unwrap_or(Path::new("config")).to_path_buf();
    let file_err = |message: String| ConfigError::File {
        path: shown_path.clone(),
        message,
    };
    // Parse the file on its own first so that unknown keys and bad types are reported with
    // the file's line and column.
    let _: RawConfig = toml::from_str(text).map_err(|e| file_err(e.to_string()))?;
    let doc: toml_edit::ImDocument<&str> =
        toml_edit::ImDocument::parse(text).map_err(|e| file_err(e.to_string()))?;
    let mut merged: toml::Table = toml::from_str(text).map_err(|e| file_err(e.to_string()))?;

    let keys = schema_keys();
    let mut origins: Vec<(String, Origin)> = Vec::new();
    for key in &keys {
        if let Some(span) = key_span(&doc, &key.path) {
            let line = text[..span.min(text.len())].matches('\n').count() + 1;
            origins.push((
                key.dotted(),
                Origin::File {
                    path: shown_path.clone(),
                    line,
                },
            ));
        }
    }

    let mut env: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    env.sort();
    for (var, value) in env {
        let Some(key) = keys.iter().find(|k| k.env_var() == var) else {
            // Other programs' variables share the prefix rarely; ours are listed in
            // `gatewatch config example`. RUST_LOG-style helpers are not config keys.
            if IGNORED_ENV.contains(&var.as_str()) {
                continue;
            }
            return Err(ConfigError::Env {
                var,
                message: "not a configuration key (see `gatewatch config example`)".into(),
            });
        };
        let parsed = key.kind.parse_env(&value).map_err(|message| ConfigError::Env {
            var: var.clone(),
            message,
        })?;
        // Check this one value against the types on its own, so the error names the variable.
        let mut single = toml::Table::new();
        set_path(&mut single, &key.path, parsed.clone());
        toml::Value::Table(single)
            .try_into::<RawConfig>()
            .map_err(|e| ConfigError::Env {
                var: var.clone(),
                message: e.to_string().trim().to_string(),
            })?;
        set_path(&mut merged, &key.path, parsed);
        set_origin(&mut origins, key.dotted(), Origin::Env(var));
    }

    if let Some(dir) = &flags.data_dir {
        let v = toml::Value::String(dir.to_string_lossy().into_owned());
        set_path(&mut merged, &["data_dir".into()], v);
        set_origin(&mut origins, "data_dir".into(), Origin::Flag("--data-dir"));
    }
    if let Some(listen) = &flags.listen {
        set_path(
            &mut merged,
            &["web".into(), "listen".into()],
            toml::Value::String(listen.clone()),
        );
        set_origin(&mut origins, "web.listen".into(), Origin::Flag("--listen"));
    }
    if flags.plain_http {
        set_path(
            &mut merged,
            &["web".into(), "tls".into()],
            toml::Value::Boolean(false),
        );
        set_origin(&mut origins, "web.tls".into(), Origin::Flag("--http"));
    }

    let raw: RawConfig = toml::Value::Table(merged)
        .try_into()
        .map_err(|e: toml::de::Error| file_err(e.to_string()))?;
    let origin_of = |key: &str| {
        origins
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, o)| o.clone())
            .unwrap_or(Origin::Default)
    };
    let mut config = validate(raw.clone(), &origin_of)?;
    config.source_file = path.map(Path::to_path_buf);
    config.effective = effective_settings(&raw, &keys, &origin_of);
    Ok(config)
}

/// Variables with our prefix that are not config keys.
const IGNORED_ENV: [&str; 2] = ["GATEWATCH_LOG", "GATEWATCH_CONFIG"];

fn set_origin(origins: &mut Vec<(String, Origin)>, key: String, origin: Origin) {
    origins.retain(|(k, _)| *k != key);
    origins.push((key, origin));
}

fn validate(raw: RawConfig, origin_of: &dyn Fn(&str) -> Origin) -> Result<Config, ConfigError> {
    let invalid = |key: &str, message: String| ConfigError::Invalid {
        key: key.to_string(),
        origin: origin_of(key).to_string(),
        message,
    };
    let duration = |key: &str, value: &str| -> Result<Duration, ConfigError> {
        let d = humantime::parse_duration(value).map_err(|e| {
            invalid(
                key,
                format!("\"{value}\" is not a duration ({e}); write e.g. \"30s\", \"15m\", \"12h\""),
            )
        })?;
        if d.is_zero() {
            return Err(invalid(key, "must be longer than zero".into()));
        }
        Ok(d)
    };
    let positive = |key: &str, n: usize| -> Result<usize, ConfigError> {
        if n == 0 {
            Err(invalid(key, "must be at least 1".into()))
        } else {
            Ok(n)
        }
    };

    let listen: SocketAddr = raw.web.listen.parse().map_err(|_| {
        invalid(
            "web.listen",
            format!(
                "\"{}\" is not an address:port; write e.g. \"127.0.0.1:8443\" or \"[::]:8443\"",
                raw.web.listen
            ),
        )
    })?;
    let tls = match (raw.web.tls, raw.web.cert_file, raw.web.key_file) {
        (false, _, _) => None,
        (true, None, None) => Some(TlsFiles::SelfSigned),
        (true, Some(cert), Some(key)) => {
            for (name, p) in [("web.cert_file", &cert), ("web.key_file", &key)] {
                if !p.is_file() {
                    return Err(invalid(name, format!("{} is not a readable file", p.display())));
                }
            }
            Some(TlsFiles::User { cert, key })
        }
        (true, Some(_), None) => {
            return Err(invalid(
                "web.key_file",
                "cert_file is set, so key_file is needed too".into(),
            ))
        }
        (true, None, Some(_)) => {
            return Err(invalid(
                "web.cert_file",
                "key_file is set, so cert_file is needed too".into(),
            ))
        }
    };
    let nets = |key: &str, list: &[String]| -> Result<Vec<ipnet::IpNet>, ConfigError> {
        list.iter()
            .map(|p| {
                p.parse::<ipnet::IpNet>()
                    .map(|n| n.trunc())
                    .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        invalid(
                            key,
                            format!(
                                "\"{p}\" is not an address or CIDR, e.g. \"10.0.0.1\" or \"10.0.0.0/24\""
                            ),
                        )
                    })
            })
            .collect()
    };
    let trusted_proxies = nets("web.trusted_proxies", &raw.web.trusted_proxies)?;
    let web = WebConfig {
        listen,
        tls,
        trusted_hosts: raw
            .web
            .trusted_hosts
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect(),
        trusted_proxies,
        max_body_bytes: positive("web.max_body_bytes", raw.web.max_body_bytes)?,
        header_timeout: duration("web.header_timeout", &raw.web.header_timeout)?,
        request_timeout: duration("web.request_timeout", &raw.web.request_timeout)?,
        max_connections: positive("web.max_connections", raw.web.max_connections)?,
    };
    let auth = AuthConfig {
        session_idle_timeout: duration("auth.session_idle_timeout", &raw.auth.session_idle_timeout)?,
        session_lifetime: duration("auth.session_lifetime", &raw.auth.session_lifetime)?,
        lockout_threshold: positive("auth.lockout_threshold", raw.auth.lockout_threshold as usize)? as u32,
        lockout_duration: duration("auth.lockout_duration", &raw.auth.lockout_duration)?,
    };
    let map_size_mib = positive("store.map_size_mib", raw.store.map_size_mib)?;
    if raw.store.max_map_size_mib < map_size_mib {
        return Err(invalid(
            "store.max_map_size_mib",
            format!("must be at least store.map_size_mib ({map_size_mib})"),
        ));
    }
    let store = StoreConfig {
        map_size: map_size_mib.saturating_mul(1 << 20),
        max_map_size: raw.store.max_map_size_mib.saturating_mul(1 << 20),
    };
    if crate::logging::parse_filter(&raw.log.level).is_none() {
        return Err(invalid(
            "log.level",
            format!(
                "\"{}\" is not a level or filter; write e.g. \"info\" or \"debug\"",
                raw.log.level
            ),
        ));
    }
    let target = match raw.log.target.as_str() {
        "stderr" => LogTarget::Stderr,
        "syslog" => LogTarget::Syslog,
        other => {
            return Err(invalid(
                "log.target",
                format!("\"{other}\" is not a target; write \"stderr\" or \"syslog\""),
            ))
        }
    };
    let poll_interval = duration("discovery.poll_interval", &raw.discovery.poll_interval)?;
    if poll_interval < Duration::from_secs(5) {
        return Err(invalid("discovery.poll_interval", "must be at least 5s".into()));
    }
    let mut schedules = Vec::new();
    for s in &raw.discovery.schedules {
        let schedule =
            crate::inventory::schedule::Schedule::parse(s).map_err(|m| invalid("discovery.schedules", m))?;
        schedules.push(schedule);
    }
    let default_port_list = crate::discovery::ports::parse_port_spec(&raw.discovery.default_ports)
        .map_err(|m| invalid("discovery.default_ports", m))?;
    let discovery = DiscoveryConfig {
        passive: raw.discovery.passive,
        poll_interval,
        lease_files: raw.discovery.lease_files.iter().map(PathBuf::from).collect(),
        docker_socket: Some(raw.discovery.docker_socket.trim())
            .filter(|s| !s.is_empty())
            .map(PathBuf::from),
        schedules,
        max_concurrent_scans: positive(
            "discovery.max_concurrent_scans",
            raw.discovery.max_concurrent_scans,
        )?,
        allow_public_targets: raw.discovery.allow_public_targets,
        default_ports: raw.discovery.default_ports.clone(),
        default_port_list,
    };
    let capture = validate_capture(&raw.capture, &invalid, &duration)?;
    let traffic = validate_traffic(&raw.traffic, &invalid, &duration)?;
    let geo = validate_geo(&raw.geo, &invalid)?;
    let syslog = validate_syslog(&raw.syslog, &web, &invalid, &nets)?;
    Ok(Config {
        capture,
        traffic,
        geo,
        data_dir: raw.data_dir.unwrap_or_else(default_data_dir),
        discovery,
        syslog,
        web,
        auth,
        store,
        log: LogConfig {
            level: raw.log.level,
            target,
        },
        source_file: None,
        effective: Vec::new(),
    })
}

type InvalidFn<'a> = dyn Fn(&str, String) -> ConfigError + 'a;
type DurationFn<'a> = dyn Fn(&str, &str) -> Result<Duration, ConfigError> + 'a;

fn validate_capture(
    raw: &RawCapture,
    invalid: &InvalidFn,
    duration: &DurationFn,
) -> Result<CaptureConfig, ConfigError> {
    if raw.snaplen < 64 {
        return Err(invalid("capture.snaplen", "must be at least 64 bytes".into()));
    }
    if raw.buffer_size_kib == 0 {
        return Err(invalid("capture.buffer_size_kib", "must be at least 1".into()));
    }
    for name in &raw.interfaces {
        if name.is_empty() || name.len() > 64 || name.contains(['/', ' ']) {
            return Err(invalid(
                "capture.interfaces",
                format!("\"{name}\" is not an interface name"),
            ));
        }
    }
    let realtime = match raw.replay_speed.as_str() {
        "realtime" => true,
        "fast" => false,
        other => {
            return Err(invalid(
                "capture.replay_speed",
                format!("\"{other}\" is not a pace; write \"realtime\" or \"fast\""),
            ))
        }
    };
    let replay = match &raw.replay {
        None => None,
        Some(p) if !p.is_file() => {
            return Err(invalid(
                "capture.replay",
                format!("{} is not a readable file", p.display()),
            ))
        }
        Some(p) => Some(ReplayConfig {
            path: p.clone(),
            realtime,
            looped: raw.replay_loop,
        }),
    };
    let filter = raw.bpf_filter.trim();
    Ok(CaptureConfig {
        enabled: raw.enabled,
        interfaces: raw.interfaces.clone(),
        snaplen: raw.snaplen,
        promiscuous: raw.promiscuous,
        buffer_size: raw.buffer_size_kib.saturating_mul(1024),
        immediate_mode: raw.immediate_mode,
        bpf_filter: (!filter.is_empty()).then(|| filter.to_string()),
        poll_interval: duration("capture.poll_interval", &raw.poll_interval)?,
        replay,
    })
}

fn validate_traffic(
    raw: &RawTraffic,
    invalid: &InvalidFn,
    duration: &DurationFn,
) -> Result<TrafficSettings, ConfigError> {
    let at_least_one = |key: &str, n: usize| {
        if n == 0 {
            Err(invalid(key, "must be at least 1".into()))
        } else {
            Ok(n)
        }
    };
    let mut host_spec = Vec::new();
    for h in &raw.host_spec {
        let net = h
            .parse::<ipnet::IpNet>()
            .or_else(|_| h.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map_err(|_| {
                invalid(
                    "traffic.host_spec",
                    format!("\"{h}\" is not an address or CIDR, e.g. \"192.168.1.0/24\""),
                )
            })?;
        host_spec.push(net.trunc());
    }
    if raw.dns_ports.contains(&0) {
        return Err(invalid("traffic.dns_ports", "port 0 is not a port".into()));
    }
    let period = duration("traffic.period", &raw.period)?;
    if period < Duration::from_secs(1)
        || period > Duration::from_secs(3600)
        || 3600 % period.as_secs().max(1) != 0
        || period.subsec_nanos() != 0
    {
        return Err(invalid(
            "traffic.period",
            format!(
                "{} must be whole seconds that divide an hour (1s to 1h), e.g. \"60s\"",
                raw.period
            ),
        ));
    }
    let minute_retention = duration("traffic.minute_retention", &raw.minute_retention)?;
    let rollup_after = duration("traffic.rollup_after", &raw.rollup_after)?;
    if minute_retention <= rollup_after {
        return Err(invalid(
            "traffic.minute_retention",
            format!("must be longer than traffic.rollup_after ({}), or minutes are gone before they are rolled up", raw.rollup_after),
        ));
    }
    Ok(TrafficSettings {
        period,
        windows_kept: raw.windows_kept,
        host_spec,
        dns_ports: if raw.dns_ports.is_empty() {
            vec![53]
        } else {
            raw.dns_ports.clone()
        },
        top_n: at_least_one("traffic.top_n", raw.top_n)?.min(1000),
        max_flows: at_least_one("traffic.max_flows", raw.max_flows)?,
        flow_idle_timeout: duration("traffic.flow_idle_timeout", &raw.flow_idle_timeout)?,
        deep_sample_above_pps: (raw.deep_sample_above_pps > 0).then_some(raw.deep_sample_above_pps),
        minute_retention,
        rollup_after,
        hour_retention: duration("traffic.hour_retention", &raw.hour_retention)?,
    })
}

fn validate_geo(raw: &RawGeo, invalid: &InvalidFn) -> Result<GeoConfig, ConfigError> {
    for (key, p) in [("geo.city_db", &raw.city_db), ("geo.asn_db", &raw.asn_db)] {
        if let Some(p) = p {
            if !p.is_file() {
                return Err(invalid(key, format!("{} is not a readable file", p.display())));
            }
        }
    }
    let home_location = match (raw.home_latitude, raw.home_longitude) {
        (None, None) => None,
        (Some(lat), Some(lon)) => {
            if !(-90.0..=90.0).contains(&lat) {
                return Err(invalid(
                    "geo.home_latitude",
                    format!("{lat} is not between -90 and 90"),
                ));
            }
            if !(-180.0..=180.0).contains(&lon) {
                return Err(invalid(
                    "geo.home_longitude",
                    format!("{lon} is not between -180 and 180"),
                ));
            }
            Some((lat, lon))
        }
        (Some(_), None) => {
            return Err(invalid(
                "geo.home_longitude",
                "home_latitude is set, so home_longitude is needed too".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(invalid(
                "geo.home_latitude",
                "home_longitude is set, so home_latitude is needed too".into(),
            ))
        }
    };
    let country = raw.home_country.trim();
    if !country.is_empty() && (country.len() != 2 || !country.chars().all(|c| c.is_ascii_alphabetic())) {
        return Err(invalid(
            "geo.home_country",
            format!("\"{country}\" is not a two-letter country code, e.g. \"DE\""),
        ));
    }
    let city = raw.home_city.trim();
    Ok(GeoConfig {
        city_db: raw.city_db.clone(),
        asn_db: raw.asn_db.clone(),
        home_country: (!country.is_empty()).then(|| country.to_ascii_uppercase()),
        home_city: (!city.is_empty()).then(|| city.to_string()),
        home_location,
    })
}

fn validate_syslog(
    raw: &RawSyslog,
    web: &WebConfig,
    invalid: &dyn Fn(&str, String) -> ConfigError,
    nets: &dyn Fn(&str, &[String]) -> Result<Vec<ipnet::IpNet>, ConfigError>,
) -> Result<SyslogConfig, ConfigError> {
    let listen = |key: &str, value: &str| -> Result<Option<SocketAddr>, ConfigError> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(None);
        }
        value.parse().map(Some).map_err(|_| {
            invalid(
                key,
                format!(
                    "\"{value}\" is not an address:port; write e.g. \"0.0.0.0:5514\", or \"\" to turn it off"
                ),
            )
        })
    };
    let tls = match (&raw.tls_cert_file, &raw.tls_key_file) {
        (Some(cert), Some(key)) => {
            for (name, p) in [("syslog.tls_cert_file", cert), ("syslog.tls_key_file", key)] {
                if !p.is_file() {
                    return Err(invalid(name, format!("{} is not a readable file", p.display())));
                }
            }
            TlsFiles::User {
                cert: cert.clone(),
                key: key.clone(),
            }
        }
        (Some(_), None) => {
            return Err(invalid(
                "syslog.tls_key_file",
                "tls_cert_file is set, so tls_key_file is needed too".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(invalid(
                "syslog.tls_cert_file",
                "tls_key_file is set, so tls_cert_file is needed too".into(),
            ))
        }
        (None, None) => web.tls.clone().unwrap_or(TlsFiles::SelfSigned),
    };
    const MIN_MESSAGE: usize = 480;
    const MAX_MESSAGE: usize = 16 << 20;
    if !(MIN_MESSAGE..=MAX_MESSAGE).contains(&raw.max_message_size) {
        return Err(invalid(
            "syslog.max_message_size",
            format!("must be between {MIN_MESSAGE} (RFC 5424's minimum) and {MAX_MESSAGE}"),
        ));
    }
    if raw.retention_days == 0 {
        return Err(invalid("syslog.retention_days", "must be at least 1".into()));
    }
    if raw.max_store_mib == 0 {
        return Err(invalid("syslog.max_store_mib", "must be at least 1".into()));
    }
    Ok(SyslogConfig {
        enabled: raw.enabled,
        udp_listen: listen("syslog.udp_listen", &raw.udp_listen)?,
        tcp_listen: listen("syslog.tcp_listen", &raw.tcp_listen)?,
        tls_listen: listen("syslog.tls_listen", &raw.tls_listen)?,
        tls,
        allowed_senders: nets("syslog.allowed_senders", &raw.allowed_senders)?,
        rate_limit_per_sender: raw.rate_limit_per_sender,
        max_message_size: raw.max_message_size,
        retention: Duration::from_secs(u64::from(raw.retention_days) * 86_400),
        max_store_bytes: raw.max_store_mib.saturating_mul(1 << 20),
        udp_receive_buffer: raw.udp_receive_buffer_kib.saturating_mul(1024),
    })
}

#[derive(Debug, Clone)]
pub struct SyslogConfig {
    pub enabled: bool,
    pub udp_listen: Option<SocketAddr>,
    pub tcp_listen: Option<SocketAddr>,
    pub tls_listen: Option<SocketAddr>,
    /// The certificate for the TLS listener.
    pub tls: TlsFiles,
    pub allowed_senders: Vec<ipnet::IpNet>,
    /// Messages per second per sender; 0 is unlimited.
    pub rate_limit_per_sender: u32,
    pub max_message_size: usize,
    pub retention: Duration,
    pub max_store_bytes: u64,
    pub udp_receive_buffer: usize,
}

impl Default for SyslogConfig {
    fn default() -> Self {
        let raw = RawSyslog::default();
        SyslogConfig {
            enabled: raw.enabled,
            udp_listen: raw.udp_listen.parse().ok(),
            tcp_listen: raw.tcp_listen.parse().ok(),
            tls_listen: raw.tls_listen.parse().ok(),
            tls: TlsFiles::SelfSigned,
            allowed_senders: raw
                .allowed_senders
                .iter()
                .filter_map(|s| s.parse().ok())
                .collect(),
            rate_limit_per_sender: raw.rate_limit_per_sender,
            max_message_size: raw.max_message_size,
            retention: Duration::from_secs(u64::from(raw.retention_days) * 86_400),
            max_store_bytes: raw.max_store_mib << 20,
            udp_receive_buffer: raw.udp_receive_buffer_kib * 1024,
        }
    }
}

/// `/var/db/gatewatch` for root (a service), `./gatewatch-data` for anyone else (a laptop).
pub fn default_data_dir() -> PathBuf {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        PathBuf::from("/var/db/gatewatch")
    } else {
        PathBuf::from("./gatewatch-data")
    }
}

/// Keys whose values are never shown or logged.
fn is_secret(key: &str) -> bool {
    ["password", "secret", "token", "key_file"]
        .iter()
        .any(|s| key.contains(s))
}

fn effective_settings(
    raw: &RawConfig,
    keys: &[SchemaKey],
    origin_of: &dyn Fn(&str) -> Origin,
) -> Vec<(String, String, Origin)> {
    let value = toml::Value::try_from(raw).unwrap_or(toml::Value::Table(Default::default()));
    keys.iter()
        .map(|k| {
            let dotted = k.dotted();
            let shown = match get_path(&value, &k.path) {
                None => "(unset)".to_string(),
                Some(_) if is_secret(&dotted) => "••••••".to_string(),
                Some(v) => v.to_string(),
            };
            let origin = origin_of(&dotted);
            (dotted, shown, origin)
        })
        .collect()
}

// ---- the schema walk: keys, env names, the commented example ----

/// The type of a leaf key, as far as env parsing and the example need to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Integer,
    Float,
    Bool,
    StringList,
    IntegerList,
}

impl Kind {
    fn parse_env(self, value: &str) -> Result<toml::Value, String> {
        match self {
            Kind::String => Ok(toml::Value::String(value.to_string())),
            Kind::Integer => value
                .trim()
                .parse::<i64>()
                .map(toml::Value::Integer)
                .map_err(|_| format!("\"{value}\" is not a whole number")),
            Kind::Bool => match value.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(toml::Value::Boolean(true)),
                "0" | "false" | "no" | "off" => Ok(toml::Value::Boolean(false)),
                _ => Err(format!("\"{value}\" is not true or false")),
            },
            Kind::Float => value
                .trim()
                .parse::<f64>()
                .map(toml::Value::Float)
                .map_err(|_| format!("\"{value}\" is not a number")),
            Kind::IntegerList => value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse::<i64>()
                        .map(toml::Value::Integer)
                        .map_err(|_| format!("\"{s}\" is not a whole number"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(toml::Value::Array),
            Kind::StringList => Ok(toml::Value::Array(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| toml::Value::String(s.to_string()))
                    .collect(),
            )),
        }
    }
}

impl Kind {
    /// A value of the right type for an unset key in the example.
    fn placeholder(self) -> &'static str {
        match self {
            Kind::String => "\"\"",
            Kind::Integer => "0",
            Kind::Float => "0.0",
            Kind::Bool => "false",
            Kind::StringList | Kind::IntegerList => "[]",
        }
    }
}

#[derive(Debug, Clone)]
struct SchemaKey {
    path: Vec<String>,
    kind: Kind,
    doc: String,
    default: Option<serde_json::Value>,
}

impl SchemaKey {
    fn dotted(&self) -> String {
        self.path.join(".")
    }

    fn env_var(&self) -> String {
        format!("{ENV_PREFIX}{}", self.path.join("_").to_ascii_uppercase())
    }
}

/// A section of the config file: its doc and its keys (leaves only).
struct SchemaSection {
    name: Option<String>,
    doc: String,
    keys: Vec<SchemaKey>,
}

fn schema_sections() -> Vec<SchemaSection> {
    let schema = schemars::schema_for!(RawConfig);
    let root = schema.as_value();
    let defaults = serde_json::to_value(RawConfig::default()).unwrap_or_default();
    let mut top = SchemaSection {
        name: None,
        doc: describe(root),
        keys: Vec::new(),
    };
    let mut sections = Vec::new();
    let props = root.get("properties").and_then(|p| p.as_object());
    for (name, prop) in props.into_iter().flatten() {
        let resolved = resolve(root, prop);
        if resolved.get("properties").is_some() {
            let mut section = SchemaSection {
                name: Some(name.clone()),
                doc: describe(prop).or_else_empty(describe(resolved)),
                keys: Vec::new(),
            };
            for (key, kprop) in resolved["properties"].as_object().into_iter().flatten() {
                section.keys.push(SchemaKey {
                    path: vec![name.clone(), key.clone()],
                    kind: kind_of(resolve(root, kprop)),
                    doc: describe(kprop),
                    default: defaults.get(name).and_then(|s| s.get(key)).cloned(),
                });
            }
            sections.push(section);
        } else {
            top.keys.push(SchemaKey {
                path: vec![name.clone()],
                kind: kind_of(resolved),
                doc: describe(prop),
                default: defaults.get(name).cloned(),
            });
        }
    }
    let mut all = vec![top];
    all.extend(sections);
    all
}

fn schema_keys() -> Vec<SchemaKey> {
    schema_sections().into_iter().flat_map(|s| s.keys).collect()
}

trait OrElseEmpty {
    fn or_else_empty(self, other: String) -> String;
}

impl OrElseEmpty for String {
    fn or_else_empty(self, other: String) -> String {
        if self.is_empty() {
            other
        } else {
            self
        }
    }
}

fn resolve<'a>(root: &'a serde_json::Value, v: &'a serde_json::Value) -> &'a serde_json::Value {
    match v.get("$ref").and_then(|r| r.as_str()) {
        Some(r) => r
            .strip_prefix("#/$defs/")
            .and_then(|name| root.get("$defs")?.get(name))
            .unwrap_or(v),
        None => v,
    }
}

fn describe(v: &serde_json::Value) -> String {
    v.get("description")
        .and_then(|d| d.as_str())
        .unwrap_or_default()
        .to_string()
}

fn kind_of(v: &serde_json::Value) -> Kind {
    let types: Vec<&str> = match v.get("type") {
        Some(serde_json::Value::String(s)) => vec![s.as_str()],
        Some(serde_json::Value::Array(a)) => a.iter().filter_map(|t| t.as_str()).collect(),
        _ => vec![],
    };
    if types.contains(&"boolean") {
        Kind::Bool
    } else if types.contains(&"integer") {
        Kind::Integer
    } else if types.contains(&"number") {
        Kind::Float
    } else if types.contains(&"array") {
        let item = v
            .get("items")
            .and_then(|i| i.get("type"))
            .and_then(|t| t.as_str());
        if item == Some("integer") {
            Kind::IntegerList
        } else {
            Kind::StringList
        }
    } else {
        Kind::String
    }
}

/// A fully commented sample config, generated from [`RawConfig`]'s docs and defaults.
pub fn example() -> String {
    let mut out = String::new();
    out.push_str("# gatewatch configuration (TOML).\n");
    out.push_str("# Generated by `gatewatch config example`; every value shown is the default.\n");
    out.push_str("# Precedence: command-line flags > GATEWATCH_* environment > this file > defaults.\n");
    for section in schema_sections() {
        if let Some(name) = &section.name {
            out.push('\n');
            push_comment(&mut out, &section.doc);
            out.push_str(&format!("[{name}]\n"));
        }
        for key in section.keys {
            out.push('\n');
            push_comment(&mut out, &key.doc);
            out.push_str(&format!("# env: {}\n", key.env_var()));
            let leaf = key.path.last().map(String::as_str).unwrap_or_default();
            match key.default.as_ref().filter(|d| !d.is_null()) {
                Some(d) => out.push_str(&format!("{leaf} = {}\n", json_to_toml(d))),
                None => out.push_str(&format!("# {leaf} = {}\n", key.kind.placeholder())),
            }
        }
    }
    out
}

fn push_comment(out: &mut String, doc: &str) {
    for line in doc.lines() {
        if line.trim().is_empty() {
            out.push_str("#\n");
        } else {
            out.push_str(&format!("# {}\n", line.trim()));
        }
    }
}

fn json_to_toml(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => toml::Value::String(s.clone()).to_string(),
        serde_json::Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(json_to_toml).collect();
            format!("[{}]", inner.join(", "))
        }
        other => other.to_string(),
    }
}

fn key_span(doc: &toml_edit::ImDocument<&str>, path: &[String]) -> Option<usize> {
    let mut table: &dyn toml_edit::TableLike = doc.as_table();
    for (i, part) in path.iter().enumerate() {
        if i + 1 == path.len() {
            let (key, _) = table.get_key_value(part)?;
            return key.span().map(|s| s.start);
        }
        table = table.get(part)?.as_table_like()?;
    }
    None
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut t = table;
    for p in parents {
        let entry = t
            .entry(p.clone())
            .or_insert_with(|| toml::Value::Table(Default::default()));
        if !entry.is_table() {
            *entry = toml::Value::Table(Default::default());
        }
        let toml::Value::Table(inner) = entry else {
            return;
        };
        t = inner;
    }
    t.insert(last.clone(), value);
}

fn get_path<'a>(value: &'a toml::Value, path: &[String]) -> Option<&'a toml::Value> {
    path.iter().try_fold(value, |v, p| v.get(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str, env: &[(&str, &str)], flags: &Overrides) -> Result<Config, ConfigError> {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        load_from_str(text, Some(Path::new("test.toml")), env, flags)
    }

    #[test]
    fn no_file_gives_defaults() {
        let c = load_text("", &[], &Overrides::default()).unwrap();
        assert_eq!(c.web.listen, "127.0.0.1:8443".parse().unwrap());
        assert_eq!(c.web.tls, Some(TlsFiles::SelfSigned));
        assert_eq!(c.auth.session_idle_timeout, Duration::from_secs(1800));
        assert_eq!(c.auth.lockout_threshold, 5);
    }

    #[test]
    fn precedence_is_flags_over_env_over_file() {
        let file = "[web]\nlisten = \"127.0.0.1:1000\"\nmax_connections = 7\n";
        let c = load_text(file, &[], &Overrides::default()).unwrap();
        assert_eq!(c.web.listen.port(), 1000);
        let env = [("GATEWATCH_WEB_LISTEN", "127.0.0.1:2000")];
        let c = load_text(file, &env, &Overrides::default()).unwrap();
        assert_eq!(c.web.listen.port(), 2000);
        assert_eq!(
            c.web.max_connections, 7,
            "file value survives an env on another key"
        );
        let flags = Overrides {
            listen: Some("127.0.0.1:3000".into()),
            ..Default::default()
        };
        let c = load_text(file, &env, &flags).unwrap();
        assert_eq!(c.web.listen.port(), 3000);
        let origin = c.effective.iter().find(|(k, _, _)| k == "web.listen").unwrap();
        assert_eq!(origin.2, Origin::Flag("--listen"));
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let err = load_text(
            "[web]\nlisten = \"127.0.0.1:1\"\nlistne = 3\n",
            &[],
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("listne"), "{err}");
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn syslog_section_validates_with_key_and_line() {
        let cfg = load_text("", &[], &Overrides::default()).unwrap();
        assert_eq!(cfg.syslog.udp_listen, Some("0.0.0.0:5514".parse().unwrap()));
        assert_eq!(cfg.syslog.tls_listen, Some("0.0.0.0:6514".parse().unwrap()));
        assert!(cfg
            .syslog
            .allowed_senders
            .iter()
            .any(|n| n.contains(&"192.168.1.10".parse::<std::net::IpAddr>().unwrap())));
        assert!(!cfg
            .syslog
            .allowed_senders
            .iter()
            .any(|n| n.contains(&"8.8.8.8".parse::<std::net::IpAddr>().unwrap())));
        let off = load_text(
            "[syslog]\nudp_listen = \"\"\n",
            &[("GATEWATCH_SYSLOG_TLS_LISTEN", "")],
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!((off.syslog.udp_listen, off.syslog.tls_listen), (None, None));
        assert!(off.syslog.tcp_listen.is_some());
        for (text, key) in [
            ("[syslog]\n\nudp_listen = \"5514\"\n", "syslog.udp_listen"),
            (
                "[syslog]\n\nallowed_senders = [\"lan\"]\n",
                "syslog.allowed_senders",
            ),
            ("[syslog]\n\nmax_message_size = 10\n", "syslog.max_message_size"),
            ("[syslog]\n\nretention_days = 0\n", "syslog.retention_days"),
            (
                "[syslog]\n\ntls_cert_file = \"/nonexistent.pem\"\n",
                "syslog.tls_key_file",
            ),
        ] {
            let err = load_text(text, &[], &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{text}: {err}");
            assert!(
                err.contains("line 3") || key == "syslog.tls_key_file",
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn bad_value_names_key_and_line() {
        let err = load_text(
            "\n[auth]\nsession_idle_timeout = \"30 parsecs\"\n",
            &[],
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("auth.session_idle_timeout"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        let err = load_text("[web]\nmax_body_bytes = \"big\"\n", &[], &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn env_errors_name_the_variable() {
        let err = load_text("", &[("GATEWATCH_WEB_LISTN", "x")], &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("GATEWATCH_WEB_LISTN"), "{err}");
        let err = load_text(
            "",
            &[("GATEWATCH_WEB_MAX_CONNECTIONS", "many")],
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("GATEWATCH_WEB_MAX_CONNECTIONS"), "{err}");
        let err = load_text("", &[("GATEWATCH_WEB_LISTEN", "nowhere")], &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("web.listen") && err.contains("GATEWATCH_WEB_LISTEN"),
            "{err}"
        );
    }

    #[test]
    fn env_lists_and_bools() {
        let env = [
            ("GATEWATCH_WEB_TRUSTED_PROXIES", "10.0.0.1, 192.168.0.0/16"),
            ("GATEWATCH_WEB_TLS", "false"),
        ];
        let c = load_text("", &env, &Overrides::default()).unwrap();
        assert_eq!(c.web.trusted_proxies.len(), 2);
        assert_eq!(c.web.tls, None);
    }

    #[test]
    fn example_parses_back_to_defaults_and_documents_every_key() {
        let text = example();
        let raw: RawConfig = toml::from_str(&text).expect("example is valid TOML");
        assert_eq!(raw.web.listen, RawWeb::default().listen);
        for key in schema_keys() {
            assert!(!key.doc.is_empty(), "{} has no doc comment", key.dotted());
            assert!(text.contains(&key.env_var()), "{} missing", key.env_var());
        }
        assert!(text.contains("[web]") && text.contains("[auth]"));
        assert!(text.contains("[discovery]") && text.contains("GATEWATCH_DISCOVERY_SCHEDULES"));
    }

    #[test]
    fn discovery_section_is_validated() {
        let c = load_text("", &[], &Overrides::default()).unwrap();
        assert!(c.discovery.passive);
        assert_eq!(c.discovery.max_concurrent_scans, 1);
        assert!(!c.discovery.allow_public_targets);
        assert_eq!(c.discovery.lease_files.len(), 4);
        let text = "[discovery]\nschedules = [\"192.168.1.0/24 every 6h\", \"10.0.20.0/24 daily 03:30\"]\ndocker_socket = \"\"\n";
        let c = load_text(text, &[], &Overrides::default()).unwrap();
        assert_eq!(c.discovery.schedules.len(), 2);
        assert_eq!(c.discovery.docker_socket, None);
        let env = [("GATEWATCH_DISCOVERY_SCHEDULES", "10.0.0.0/24 every 1h")];
        let c = load_text("", &env, &Overrides::default()).unwrap();
        assert_eq!(c.discovery.schedules.len(), 1);
        for (bad, key) in [
            (
                "[discovery]\nschedules = [\"10.0.0.0/24 hourly\"]\n",
                "discovery.schedules",
            ),
            ("[discovery]\npoll_interval = \"1s\"\n", "discovery.poll_interval"),
            (
                "[discovery]\nmax_concurrent_scans = 0\n",
                "discovery.max_concurrent_scans",
            ),
            (
                "[discovery]\ndefault_ports = \"lots\"\n",
                "discovery.default_ports",
            ),
        ] {
            let err = load_text(bad, &[], &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{bad}: {err}");
        }
    }

    #[test]
    fn secrets_are_masked() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert, "x").unwrap();
        std::fs::write(&key, "x").unwrap();
        let text = format!("[web]\ncert_file = {:?}\nkey_file = {:?}\n", cert, key);
        let c = load_text(&text, &[], &Overrides::default()).unwrap();
        let shown = |name: &str| c.effective.iter().find(|(k, _, _)| k == name).unwrap().1.clone();
        assert!(shown("web.cert_file").contains("c.pem"));
        let key_shown = shown("web.key_file");
        assert!(!key_shown.contains("k.pem"), "{key_shown}");
    }
}
