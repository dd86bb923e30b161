//! Sans-IO matching: what the probes saw on one host ([`Evidence`]) against the compiled
//! definitions → [`Match`]es. A definition matches at a candidate port when all of its
//! `all` conditions and (if any) one of its `any` conditions hold and at least one of them
//! is about that port; host-level evidence (mDNS, SSDP, MAC vendor) alone binds the
//! definition's first open port, or no port. Then each port goes to its most confident
//! claimant (ties: more evidence, then data order).

use std::collections::{BTreeMap, BTreeSet};

use super::definitions::{Condition, Confidence, Definition, HttpTest, Test};

/// One HTTP(S) response a probe received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpResponse {
    pub port: u16,
    pub path: String,
    pub status: u16,
    /// The `<title>` text, if the body had one.
    pub title: Option<String>,
    /// Header names as received (matched case-insensitively).
    pub headers: Vec<(String, String)>,
    /// The first few KiB of the body, lossily decoded.
    pub body: String,
}

/// The certificate a TLS port presented.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsInfo {
    pub subject: String,
    pub issuer: String,
    pub sans: Vec<String>,
}

/// Everything the probes learned about one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evidence {
    pub tcp_open: Vec<u16>,
    pub udp_open: Vec<u16>,
    /// What a TCP port said first (or answered to a protocol probe), lossily decoded.
    pub banners: BTreeMap<u16, String>,
    pub http: Vec<HttpResponse>,
    pub tls: BTreeMap<u16, TlsInfo>,
    /// mDNS service types the host announced (`_ipp._tcp`, `.local` optional).
    pub mdns: Vec<String>,
    /// SSDP/UPnP fields: response headers (SERVER, ST, USN, LOCATION) and description
    /// elements (friendlyName, manufacturer, modelName, deviceType).
    pub ssdp: Vec<(String, String)>,
    pub mac_vendor: Option<String>,
}

impl Evidence {
    /// Every TCP port known to be open: listed, or seen answering.
    pub fn open_ports(&self) -> BTreeSet<u16> {
        let mut ports: BTreeSet<u16> = self.tcp_open.iter().copied().collect();
        ports.extend(self.banners.keys());
        ports.extend(self.tls.keys());
        ports.extend(self.http.iter().map(|h| h.port));
        ports
    }
}

/// A recognised service.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Match {
    pub name: String,
    pub category: String,
    /// The TCP port it binds; `None` when only host-level evidence (mDNS, SSDP) named it.
    pub port: Option<u16>,
    pub confidence: Confidence,
    /// Human-readable pieces of evidence, e.g. `["port 8123", "title 'Home Assistant'"]`.
    pub evidence: Vec<String>,
}

impl Match {
    /// The evidence as one line: `port 8123 + title 'Home Assistant'`.
    pub fn summary(&self) -> String {
        self.evidence.join(" + ")
    }
}

/// A candidate before port binding; `rank` breaks confidence ties.
pub(super) struct Candidate {
    pub def: usize,
    pub confidence: Confidence,
    pub port: Option<u16>,
    pub evidence: Vec<String>,
}

fn quote(s: &str) -> String {
    let mut t: String = s.chars().filter(|c| !c.is_control()).take(60).collect();
    if s.chars().count() > 60 {
        t.push('…');
    }
    format!("'{t}'")
}

fn header<'a>(r: &'a HttpResponse, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    r.headers
        .iter()
        .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Checks one response; on success returns what it matched on.
fn http_hit(t: &HttpTest, r: &HttpResponse) -> Option<Vec<String>> {
    let mut why = Vec::new();
    if let Some(p) = &t.path {
        if &r.path != p {
            return None;
        }
    }
    if let Some(s) = t.status {
        if r.status != s {
            return None;
        }
    }
    if t.path.is_some() || t.status.is_some() {
        why.push(format!("GET {} → {}", r.path, r.status));
    }
    if let Some(re) = &t.title {
        let title = r.title.as_deref().filter(|title| re.is_match(title))?;
        why.push(format!("title {}", quote(title)));
    }
    if let Some(re) = &t.server {
        let s = header(r, "server").find(|v| re.is_match(v))?;
        why.push(format!("Server {}", quote(s)));
    }
    if let Some((name, value)) = &t.header {
        let v = header(r, name).find(|v| value.as_ref().is_none_or(|re| re.is_match(v)))?;
        why.push(format!("header {name}: {}", quote(v)));
    }
    if let Some(re) = &t.cookie {
        let c = header(r, "set-cookie")
            .filter_map(|v| v.split('=').next())
            .map(str::trim)
            .find(|name| re.is_match(name))?;
        why.push(format!("cookie {c}"));
    }
    if let Some(re) = &t.auth {
        let a = header(r, "www-authenticate").find(|v| re.is_match(v))?;
        why.push(format!("WWW-Authenticate {}", quote(a)));
    }
    if let Some(re) = &t.body {
        let m = re.find(&r.body)?;
        why.push(format!("body {}", quote(m.as_str())));
    }
    Some(why)
}

/// Whether one condition holds for candidate `port`; returns (binds the port, evidence).
fn check(c: &Condition, ev: &Evidence, open: &BTreeSet<u16>, port: Option<u16>) -> Option<(bool, String)> {
    let at = c.port.or(port);
    let binds = at.is_some() && at == port;
    let text = match &c.test {
        Test::Open => {
            let p = c.port?;
            if !open.contains(&p) {
                return None;
            }
            format!("port {p}")
        }
        Test::UdpOpen(u) => {
            if !ev.udp_open.contains(u) {
                return None;
            }
            return Some((false, format!("udp port {u}")));
        }
        Test::Http(t) => {
            let at = at?;
            let why = ev
                .http
                .iter()
                .filter(|r| r.port == at)
                .find_map(|r| http_hit(t, r))?;
            why.join(" + ")
        }
        Test::Banner(re) => {
            let b = ev.banners.get(&at?).filter(|b| re.is_match(b))?;
            format!("banner {}", quote(b.trim()))
        }
        Test::Tls(re) => {
            let tls = ev.tls.get(&at?)?;
            let name = std::iter::once(&tls.subject)
                .chain(std::iter::once(&tls.issuer))
                .chain(&tls.sans)
                .find(|n| !n.is_empty() && re.is_match(n))?;
            format!("certificate {}", quote(name))
        }
        Test::Mdns(t) => {
            ev.mdns
                .iter()
                .find(|m| super::definitions::normalize_mdns(m) == *t)?;
            return Some((false, format!("mDNS {t}")));
        }
        Test::Ssdp(re) => {
            let (k, v) = ev.ssdp.iter().find(|(k, v)| re.is_match(&format!("{k}: {v}")))?;
            return Some((false, format!("SSDP {k}: {}", quote(v))));
        }
        Test::MacVendor(re) => {
            let v = ev.mac_vendor.as_deref().filter(|v| re.is_match(v))?;
            return Some((false, format!("MAC vendor {}", quote(v))));
        }
    };
    Some((binds, text))
}

/// Evaluates one definition at one candidate port. A match is as confident as its
/// strongest satisfied condition (conditions may cap theirs below the definition's).
pub(super) fn evaluate(
    def: &Definition,
    ev: &Evidence,
    open: &BTreeSet<u16>,
    port: Option<u16>,
) -> Option<(Confidence, Vec<String>)> {
    let mut bound = false;
    let mut confidence = Confidence::Low;
    let mut evidence = Vec::new();
    for c in &def.all {
        let (b, e) = check(c, ev, open, port)?;
        bound |= b;
        confidence = confidence.max(c.confidence.unwrap_or(def.confidence));
        evidence.push(e);
    }
    if !def.any.is_empty() {
        let mut hit = false;
        for c in &def.any {
            if let Some((b, e)) = check(c, ev, open, port) {
                hit = true;
                bound |= b;
                confidence = confidence.max(c.confidence.unwrap_or(def.confidence));
                evidence.push(e);
            }
        }
        if !hit {
            return None;
        }
    }
    if port.is_some() && !bound {
        return None;
    }
    if let Some(p) = port {
        let usual = format!("port {p}");
        if def.tcp_ports.contains(&p) && !evidence.contains(&usual) {
            evidence.insert(0, usual);
        }
    }
    if let Some(v) = &ev.mac_vendor {
        let lower = v.to_lowercase();
        if def.mac_vendors.iter().any(|h| lower.contains(h.as_str())) {
            evidence.push(format!("MAC vendor {}", quote(v)));
        }
    }
    evidence.dedup();
    Some((confidence, evidence))
}

/// Every (definition, port) pair that matches, before ports are bound.
pub(super) fn candidates(defs: &[Definition], ev: &Evidence) -> Vec<Candidate> {
    let open = ev.open_ports();
    let mut out = Vec::new();
    for (i, def) in defs.iter().enumerate() {
        let before = out.len();
        for &p in &open {
            if let Some((confidence, evidence)) = evaluate(def, ev, &open, Some(p)) {
                out.push(Candidate {
                    def: i,
                    confidence,
                    port: Some(p),
                    evidence,
                });
            }
        }
        if out.len() == before {
            if let Some((confidence, mut evidence)) = evaluate(def, ev, &open, None) {
                // Host-level evidence only: claim the service's usual port if it is open.
                let port = def.tcp_ports.iter().copied().find(|p| open.contains(p));
                if let Some(p) = port {
                    evidence.insert(0, format!("port {p}"));
                }
                out.push(Candidate {
                    def: i,
                    confidence,
                    port,
                    evidence,
                });
            }
        }
    }
    out
}

/// Binds each port to its best candidate and turns the winners into matches.
pub(super) fn bind(defs: &[Definition], cands: Vec<Candidate>) -> Vec<Match> {
    let key = |c: &Candidate| (c.confidence, c.evidence.len(), std::cmp::Reverse(c.def));
    let mut best: BTreeMap<Option<u16>, Vec<Candidate>> = BTreeMap::new();
    for c in cands {
        let slot = best.entry(c.port).or_default();
        match c.port {
            // Port-less matches do not compete with each other.
            None => slot.push(c),
            Some(_) => match slot.first() {
                Some(cur) if key(cur) >= key(&c) => {}
                _ => *slot = vec![c],
            },
        }
    }
    best.into_values().flatten().map(|c| to_match(defs, c)).collect()
}

/// The public form of a candidate of definition `defs[c.def]`.
pub(super) fn to_match(defs: &[Definition], c: Candidate) -> Match {
    let d = &defs[c.def];
    Match {
        name: d.name.clone(),
        category: d.category.clone(),
        port: c.port,
        confidence: c.confidence,
        evidence: c.evidence,
    }
}
