//! The service-definition data format (`data/services/*.toml`, see its README) and its
//! compilation into matchable rules. Owns parsing and validation only; evaluation against
//! evidence lives in `matcher`. A bad definition becomes a [`DefinitionError`], never a panic.

use regex::{Regex, RegexBuilder};
use serde::Deserialize;

use super::matcher::{Evidence, HttpResponse, TlsInfo};

/// How sure a match is. Ordered: `Low < Medium < High`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    Low,
    Medium,
    High,
}

impl Confidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        }
    }
}

/// Why a definition file or one definition in it was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DefinitionError {
    #[error("{file}: {message}")]
    Toml { file: String, message: String },
    #[error("{file}: service '{name}': {reason}")]
    Invalid {
        file: String,
        name: String,
        reason: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    category: String,
    #[serde(default)]
    service: Vec<RawService>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    name: String,
    /// Overrides the file's category.
    category: Option<String>,
    confidence: Confidence,
    #[serde(default)]
    ports: RawPorts,
    /// Extra HTTP paths to probe; paths named in conditions are probed anyway.
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default)]
    any: Vec<RawCondition>,
    #[serde(default)]
    all: Vec<RawCondition>,
    /// MAC vendor substrings that support (never alone establish) a match.
    #[serde(default)]
    mac_vendors: Vec<String>,
    #[serde(default)]
    fixture: Vec<RawFixture>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPorts {
    #[serde(default)]
    tcp: Vec<u16>,
    #[serde(default)]
    udp: Vec<u16>,
}

/// One piece of evidence; every field given must hold for the same observation.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    /// Caps what this condition alone proves (e.g. an open port is only `low`).
    confidence: Option<Confidence>,
    port: Option<u16>,
    udp: Option<u16>,
    path: Option<String>,
    status: Option<u16>,
    title: Option<String>,
    body: Option<String>,
    server: Option<String>,
    header: Option<String>,
    cookie: Option<String>,
    auth: Option<String>,
    banner: Option<String>,
    tls: Option<String>,
    mdns: Option<String>,
    ssdp: Option<String>,
    mac_vendor: Option<String>,
}

/// A realistic response snippet the definition must recognise (checked by tests).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFixture {
    port: Option<u16>,
    udp: Option<u16>,
    #[serde(default)]
    open: Vec<u16>,
    path: Option<String>,
    status: Option<u16>,
    title: Option<String>,
    body: Option<String>,
    server: Option<String>,
    /// `"Name: value"` lines.
    #[serde(default)]
    headers: Vec<String>,
    banner: Option<String>,
    tls: Option<String>,
    #[serde(default)]
    mdns: Vec<String>,
    /// `"FIELD: value"` lines (SERVER, ST, USN, friendlyName, manufacturer, …).
    #[serde(default)]
    ssdp: Vec<String>,
    mac_vendor: Option<String>,
}

/// An HTTP-response test: every `Some` field must hold for one response.
#[derive(Debug)]
pub(super) struct HttpTest {
    pub path: Option<String>,
    pub status: Option<u16>,
    pub title: Option<Regex>,
    pub body: Option<Regex>,
    pub server: Option<Regex>,
    /// Lowercased header name and an optional value pattern.
    pub header: Option<(String, Option<Regex>)>,
    pub cookie: Option<Regex>,
    pub auth: Option<Regex>,
}

#[derive(Debug)]
pub(super) enum Test {
    /// The TCP port is open (no content needed).
    Open,
    UdpOpen(u16),
    Http(Box<HttpTest>),
    Banner(Regex),
    Tls(Regex),
    Mdns(String),
    Ssdp(Regex),
    MacVendor(Regex),
}

#[derive(Debug)]
pub(super) struct Condition {
    /// For port-bound tests: look only at this port (else at the candidate port).
    pub port: Option<u16>,
    pub confidence: Option<Confidence>,
    pub test: Test,
}

/// One compiled service definition.
#[derive(Debug)]
pub struct Definition {
    pub name: String,
    pub category: String,
    pub confidence: Confidence,
    pub tcp_ports: Vec<u16>,
    pub udp_ports: Vec<u16>,
    /// HTTP paths worth probing for this service (besides `/`).
    pub http_paths: Vec<String>,
    pub(super) any: Vec<Condition>,
    pub(super) all: Vec<Condition>,
    pub(super) mac_vendors: Vec<String>,
    pub(super) fixtures: Vec<Evidence>,
    /// The data file it came from, for error messages and tests.
    pub file: String,
}

impl Definition {
    /// The fixtures written beside the definition, as evidence.
    pub fn fixtures(&self) -> &[Evidence] {
        &self.fixtures
    }

    /// mDNS service types this definition listens for.
    pub fn mdns_types(&self) -> impl Iterator<Item = &str> {
        self.any.iter().chain(&self.all).filter_map(|c| match &c.test {
            Test::Mdns(t) => Some(t.as_str()),
            _ => None,
        })
    }
}

/// Parses one data file into definitions, keeping the good ones and the errors of the bad.
pub(super) fn parse_file(file: &str, text: &str) -> (Vec<Definition>, Vec<DefinitionError>) {
    let raw: RawFile = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            return (
                Vec::new(),
                vec![DefinitionError::Toml {
                    file: file.into(),
                    message: e.to_string(),
                }],
            )
        }
    };
    let mut defs = Vec::new();
    let mut errors = Vec::new();
    for svc in raw.service {
        let name = svc.name.clone();
        match compile(file, &raw.category, svc) {
            Ok(d) => defs.push(d),
            Err(reason) => errors.push(DefinitionError::Invalid {
                file: file.into(),
                name,
                reason,
            }),
        }
    }
    (defs, errors)
}

fn compile(file: &str, file_category: &str, svc: RawService) -> Result<Definition, String> {
    if svc.name.trim().is_empty() {
        return Err("empty name".into());
    }
    if svc.any.is_empty() && svc.all.is_empty() {
        return Err("needs at least one condition in `any` or `all`".into());
    }
    if svc.fixture.is_empty() {
        return Err("needs at least one fixture".into());
    }
    let any = svc
        .any
        .into_iter()
        .map(compile_condition)
        .collect::<Result<Vec<_>, _>>()?;
    let all = svc
        .all
        .into_iter()
        .map(compile_condition)
        .collect::<Result<Vec<_>, _>>()?;
    let mut http_paths = svc.paths;
    for c in any.iter().chain(&all) {
        if let Test::Http(t) = &c.test {
            if let Some(p) = t.path.as_ref().filter(|p| !http_paths.contains(p)) {
                http_paths.push(p.clone());
            }
        }
    }
    if let Some(p) = http_paths.iter().find(|p| !p.starts_with('/')) {
        return Err(format!("path '{p}' must start with '/'"));
    }
    let fixtures = svc
        .fixture
        .into_iter()
        .map(fixture_evidence)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Definition {
        name: svc.name,
        category: svc.category.unwrap_or_else(|| file_category.to_string()),
        confidence: svc.confidence,
        tcp_ports: svc.ports.tcp,
        udp_ports: svc.ports.udp,
        http_paths,
        any,
        all,
        mac_vendors: svc.mac_vendors.iter().map(|v| v.to_lowercase()).collect(),
        fixtures,
        file: file.to_string(),
    })
}

fn re(field: &str, pattern: &Option<String>) -> Result<Option<Regex>, String> {
    pattern
        .as_deref()
        .map(|p| {
            RegexBuilder::new(p)
                .case_insensitive(true)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| format!("{field} pattern '{p}': {e}"))
        })
        .transpose()
}

fn compile_condition(c: RawCondition) -> Result<Condition, String> {
    let http = c.path.is_some()
        || c.status.is_some()
        || c.title.is_some()
        || c.body.is_some()
        || c.server.is_some()
        || c.header.is_some()
        || c.cookie.is_some()
        || c.auth.is_some();
    let host_level = [
        c.mdns.is_some(),
        c.ssdp.is_some(),
        c.mac_vendor.is_some(),
        c.udp.is_some(),
    ];
    let kinds = [http, c.banner.is_some(), c.tls.is_some()]
        .iter()
        .filter(|k| **k)
        .count()
        + host_level.iter().filter(|k| **k).count();
    if kinds > 1 {
        return Err(format!(
            "condition {c:?} mixes kinds of evidence; split it into several conditions"
        ));
    }
    if c.port.is_some() && host_level.iter().any(|k| *k) {
        return Err(format!(
            "condition {c:?}: `port` cannot qualify mdns/ssdp/mac_vendor/udp"
        ));
    }
    let test = if http {
        let header = match c.header.as_deref() {
            None => None,
            Some(h) => match h.split_once(':') {
                Some((name, value)) => Some((
                    name.trim().to_lowercase(),
                    re("header", &Some(value.trim().to_string()))?,
                )),
                None => Some((h.trim().to_lowercase(), None)),
            },
        };
        Test::Http(Box::new(HttpTest {
            path: c.path,
            status: c.status,
            title: re("title", &c.title)?,
            body: re("body", &c.body)?,
            server: re("server", &c.server)?,
            header,
            cookie: re("cookie", &c.cookie)?,
            auth: re("auth", &c.auth)?,
        }))
    } else if let Some(b) = re("banner", &c.banner)? {
        Test::Banner(b)
    } else if let Some(t) = re("tls", &c.tls)? {
        Test::Tls(t)
    } else if let Some(m) = c.mdns {
        Test::Mdns(normalize_mdns(&m))
    } else if let Some(s) = re("ssdp", &c.ssdp)? {
        Test::Ssdp(s)
    } else if let Some(v) = re("mac_vendor", &c.mac_vendor)? {
        Test::MacVendor(v)
    } else if let Some(u) = c.udp {
        Test::UdpOpen(u)
    } else if c.port.is_some() {
        Test::Open
    } else {
        return Err("empty condition".into());
    };
    Ok(Condition {
        port: c.port,
        confidence: c.confidence,
        test,
    })
}

/// `_ipp._tcp.local.` → `_ipp._tcp`, lowercase.
pub(super) fn normalize_mdns(t: &str) -> String {
    let t = t.trim().trim_end_matches('.').to_lowercase();
    t.strip_suffix(".local").map(str::to_string).unwrap_or(t)
}

fn split_line(line: &str) -> Result<(String, String), String> {
    line.split_once(':')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .ok_or_else(|| format!("fixture line '{line}' is not 'Name: value'"))
}

fn fixture_evidence(f: RawFixture) -> Result<Evidence, String> {
    let mut ev = Evidence {
        tcp_open: f.open.clone(),
        mac_vendor: f.mac_vendor.clone(),
        ..Evidence::default()
    };
    let has_http = f.path.is_some()
        || f.status.is_some()
        || f.title.is_some()
        || f.body.is_some()
        || f.server.is_some()
        || !f.headers.is_empty();
    let needs_port = has_http || f.banner.is_some() || f.tls.is_some();
    match f.port {
        Some(p) => ev.tcp_open.push(p),
        None if needs_port => return Err("a fixture with HTTP, banner or TLS evidence needs `port`".into()),
        None => {}
    }
    if let Some(u) = f.udp {
        ev.udp_open.push(u);
    }
    let port = f.port.unwrap_or(0);
    if has_http {
        let mut headers = f
            .headers
            .iter()
            .map(|h| split_line(h))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(s) = f.server {
            headers.push(("Server".into(), s));
        }
        ev.http.push(HttpResponse {
            port,
            path: f.path.unwrap_or_else(|| "/".into()),
            status: f.status.unwrap_or(200),
            title: f.title,
            headers,
            body: f.body.unwrap_or_default(),
        });
    }
    if let Some(b) = f.banner {
        ev.banners.insert(port, b);
    }
    if let Some(t) = f.tls {
        ev.tls.insert(
            port,
            TlsInfo {
                subject: t,
                ..TlsInfo::default()
            },
        );
    }
    ev.mdns = f.mdns;
    ev.ssdp = f
        .ssdp
        .iter()
        .map(|l| split_line(l))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ev)
}
