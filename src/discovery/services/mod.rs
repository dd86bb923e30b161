//! Service definitions as data and the sans-IO matcher that applies them. The definitions
//! are embedded gzip-compressed from `data/services/*.toml` (format in
//! `data/services/README.md`), inflated and parsed once on first use;
//! [`ServiceMatcher::classify`] turns one host's [`Evidence`] into [`Match`]es, each with the
//! evidence that named it. Nothing here sends a packet: the
//! scanner collects evidence and asks [`ServiceMatcher`] which ports and paths to probe.
//!
//! - `definitions`: the TOML format, validation, regex compilation, fixtures.
//! - `matcher`: evidence types, any-of/all-of evaluation, binding each port to one service.

mod definitions;
mod matcher;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::sync::OnceLock;

pub use definitions::{Confidence, Definition, DefinitionError};
pub use matcher::{Evidence, HttpResponse, Match, TlsInfo};

macro_rules! data_files {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_bytes!(concat!(env!("OUT_DIR"), "/services/", $name, ".gz")))),*]
    };
}

/// The embedded definition files: (file name, gzip-compressed TOML text; build.rs compresses
/// them: 28 kB instead of 108 kB in the binary).
pub const EMBEDDED: &[(&str, &[u8])] = data_files![
    "routers.toml",
    "infrastructure.toml",
    "nas.toml",
    "file-sharing.toml",
    "hypervisors.toml",
    "containers.toml",
    "home-automation.toml",
    "iot.toml",
    "media.toml",
    "media-devices.toml",
    "dns.toml",
    "monitoring.toml",
    "printers.toml",
    "cameras.toml",
    "databases.toml",
    "devtools.toml",
    "proxies.toml",
    "web-servers.toml",
    "remote-access.toml",
    "mail.toml",
    "self-hosted.toml",
    "security.toml",
];

/// Compiled definitions, ready to classify evidence.
#[derive(Debug)]
pub struct ServiceMatcher {
    defs: Vec<Definition>,
    errors: Vec<DefinitionError>,
}

impl ServiceMatcher {
    /// The embedded definitions, compiled once. Bad definitions are left out and listed in
    /// [`ServiceMatcher::errors`] (tests require that list to be empty).
    pub fn embedded() -> &'static ServiceMatcher {
        static MATCHER: OnceLock<ServiceMatcher> = OnceLock::new();
        MATCHER.get_or_init(|| {
            let texts: Vec<(&str, String)> = EMBEDDED
                .iter()
                .map(|(file, gz)| {
                    let text = crate::embedded::inflate_text(gz);
                    (*file, text.expect("build.rs embeds valid gzip of UTF-8 files"))
                })
                .collect();
            let files: Vec<(&str, &str)> = texts.iter().map(|(file, text)| (*file, text.as_str())).collect();
            ServiceMatcher::from_files(&files)
        })
    }

    /// Compiles definitions from (file name, TOML text) pairs. Definition names must be
    /// unique; a later duplicate is rejected.
    pub fn from_files(files: &[(&str, &str)]) -> ServiceMatcher {
        let mut defs: Vec<Definition> = Vec::new();
        let mut errors = Vec::new();
        for (file, text) in files {
            let (parsed, errs) = definitions::parse_file(file, text);
            errors.extend(errs);
            for d in parsed {
                if defs.iter().any(|e| e.name.eq_ignore_ascii_case(&d.name)) {
                    errors.push(DefinitionError::Invalid {
                        file: file.to_string(),
                        name: d.name.clone(),
                        reason: "duplicate name".into(),
                    });
                } else {
                    defs.push(d);
                }
            }
        }
        ServiceMatcher { defs, errors }
    }

    pub fn definitions(&self) -> &[Definition] {
        &self.defs
    }

    /// Definitions that failed to load (empty for the embedded set).
    pub fn errors(&self) -> &[DefinitionError] {
        &self.errors
    }

    /// Services on one host: each TCP port bound to its most confident match, plus matches
    /// from host-level evidence (mDNS, SSDP) that bind no open port. Sorted by port.
    pub fn classify(&self, evidence: &Evidence) -> Vec<Match> {
        matcher::bind(&self.defs, matcher::candidates(&self.defs, evidence))
    }

    /// Every definition that matches, before ports are bound (for diagnostics and tests).
    pub fn all_matches(&self, evidence: &Evidence) -> Vec<Match> {
        matcher::candidates(&self.defs, evidence)
            .into_iter()
            .map(|c| matcher::to_match(&self.defs, c))
            .collect()
    }

    /// TCP ports named by any definition (the scanner adds them to its port sets).
    pub fn tcp_ports(&self) -> BTreeSet<u16> {
        self.defs
            .iter()
            .flat_map(|d| d.tcp_ports.iter().copied())
            .collect()
    }

    /// UDP ports named by any definition.
    pub fn udp_ports(&self) -> BTreeSet<u16> {
        self.defs
            .iter()
            .flat_map(|d| d.udp_ports.iter().copied())
            .collect()
    }

    /// HTTP paths worth a GET on every HTTP port, besides `/`.
    pub fn http_paths(&self) -> BTreeSet<&str> {
        self.defs
            .iter()
            .flat_map(|d| d.http_paths.iter().map(String::as_str))
            .collect()
    }

    /// mDNS service types to browse for.
    pub fn mdns_types(&self) -> BTreeSet<&str> {
        self.defs.iter().flat_map(|d| d.mdns_types()).collect()
    }
}
