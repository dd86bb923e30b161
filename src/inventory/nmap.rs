//! nmap XML reports (`nmap -oX`) → observations. Hosts that are up, their addresses
//! (IPv4/IPv6/MAC with nmap's vendor), PTR names and open ports with nmap's service
//! detection; the service definitions are then matched on the open ports and vendor.
//!
//! Bad input is an error for the whole file (nothing is half-imported).

use super::merge::{Observation, ServiceObservation};
use super::model::{NameSource, Proto, Source};
use super::sources::{from_match, vendor_of};
use crate::discovery::oui::Mac;
use crate::discovery::services::{Evidence, ServiceMatcher};
use std::net::IpAddr;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NmapError {
    #[error("not XML: {0}")]
    Xml(String),
    #[error(
        "not an nmap report: the root element is <{0}>, expected <nmaprun> (write it with nmap -oX FILE)"
    )]
    NotNmap(String),
}

/// What an import found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NmapReport {
    /// nmap's command line, from the report.
    pub args: String,
    /// Unix seconds the scan started, from the report.
    pub start: Option<u64>,
    pub hosts: Vec<Observation>,
    pub open_ports: usize,
}

fn attr<'a>(n: roxmltree::Node<'a, '_>, name: &str) -> Option<&'a str> {
    n.attribute(name).map(str::trim).filter(|s| !s.is_empty())
}

pub fn parse(xml: &str) -> Result<NmapReport, NmapError> {
    // nmap writes a DOCTYPE line; roxmltree refuses DTDs unless allowed (entities stay off).
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc =
        roxmltree::Document::parse_with_options(xml, opts).map_err(|e| NmapError::Xml(e.to_string()))?;
    let root = doc.root_element();
    if root.tag_name().name() != "nmaprun" {
        return Err(NmapError::NotNmap(root.tag_name().name().to_string()));
    }
    let matcher = ServiceMatcher::embedded();
    let mut report = NmapReport {
        args: attr(root, "args").unwrap_or_default().to_string(),
        start: attr(root, "start").and_then(|s| s.parse().ok()),
        hosts: Vec::new(),
        open_ports: 0,
    };
    for host in root.children().filter(|n| n.has_tag_name("host")) {
        let up = host
            .children()
            .find(|n| n.has_tag_name("status"))
            .and_then(|s| attr(s, "state"))
            .is_none_or(|s| s == "up");
        if !up {
            continue;
        }
        let mut ip: Option<IpAddr> = None;
        let mut mac: Option<Mac> = None;
        let mut nmap_vendor: Option<String> = None;
        for a in host.children().filter(|n| n.has_tag_name("address")) {
            match (attr(a, "addrtype"), attr(a, "addr")) {
                (Some("ipv4" | "ipv6"), Some(addr)) if ip.is_none() => ip = addr.parse().ok(),
                (Some("mac"), Some(addr)) => {
                    mac = Mac::parse(addr);
                    nmap_vendor = attr(a, "vendor").map(str::to_string);
                }
                _ => {}
            }
        }
        let Some(ip) = ip else { continue };
        let mut obs = Observation::new(Source::Nmap);
        obs.ip = Some(ip);
        obs.mac = mac.map(|m| m.0);
        obs.vendor = mac.and_then(vendor_of).or(nmap_vendor);
        let names = host.descendants().filter(|n| n.has_tag_name("hostname"));
        for n in names {
            if attr(n, "type") == Some("PTR") {
                if let Some(name) = attr(n, "name") {
                    obs.names.push((NameSource::Dns, name.to_string()));
                }
            }
        }
        let mut evidence = Evidence {
            mac_vendor: obs.vendor.clone(),
            ..Default::default()
        };
        for port in host.descendants().filter(|n| n.has_tag_name("port")) {
            let open = port
                .children()
                .find(|n| n.has_tag_name("state"))
                .and_then(|s| attr(s, "state"))
                == Some("open");
            let (Some(number), Some(proto)) = (
                attr(port, "portid").and_then(|p| p.parse::<u16>().ok()),
                attr(port, "protocol"),
            ) else {
                continue;
            };
            let proto = match proto {
                "tcp" => Proto::Tcp,
                "udp" => Proto::Udp,
                _ => continue,
            };
            if !open {
                continue;
            }
            report.open_ports += 1;
            let svc = port.children().find(|n| n.has_tag_name("service"));
            let name = svc.and_then(|s| attr(s, "name")).map(str::to_string);
            let product = svc.map(|s| {
                ["product", "version", "extrainfo"]
                    .iter()
                    .filter_map(|k| attr(s, k))
                    .collect::<Vec<_>>()
                    .join(" ")
            });
            let mut why = vec![format!("nmap: {}/{} open", number, proto.as_str())];
            if let Some(s) = svc {
                let method = attr(s, "method").unwrap_or("table");
                let label = [attr(s, "name"), attr(s, "product"), attr(s, "version")]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ");
                why.push(format!("nmap {method}: {label}"));
            }
            if proto == Proto::Tcp {
                evidence.tcp_open.push(number);
            } else {
                evidence.udp_open.push(number);
            }
            obs.services.push(ServiceObservation {
                port: Some(number),
                proto,
                name,
                product: product.filter(|p| !p.is_empty()),
                application: None,
                category: None,
                evidence: why,
            });
        }
        // Service definitions on what nmap saw (ports, vendor).
        for m in matcher.classify(&evidence) {
            match obs
                .services
                .iter_mut()
                .find(|s| s.port.is_some() && s.port == m.port && s.proto == Proto::Tcp)
            {
                Some(s) => {
                    s.application = Some(m.name.clone());
                    s.category = Some(m.category.clone());
                    s.evidence.extend(m.evidence.iter().cloned());
                }
                None => obs.services.push(from_match(&m)),
            }
        }
        report.hosts.push(obs);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_is_a_clear_error() {
        assert!(matches!(parse("<nmaprun><host>"), Err(NmapError::Xml(_))));
        assert!(matches!(parse("hello"), Err(NmapError::Xml(_))));
        assert_eq!(
            parse("<?xml version=\"1.0\"?><html></html>"),
            Err(NmapError::NotNmap("html".into()))
        );
        let empty = parse("<nmaprun args=\"nmap -sn 10.0.0.0/24\"></nmaprun>").unwrap();
        assert!(empty.hosts.is_empty());
        assert_eq!(empty.args, "nmap -sn 10.0.0.0/24");
    }

    #[test]
    fn entities_are_not_expanded() {
        let bomb = "<?xml version=\"1.0\"?><!DOCTYPE nmaprun [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]><nmaprun args=\"&c;&c;&c;\"></nmaprun>";
        // roxmltree bounds entity expansion; either an error or a bounded string is fine.
        match parse(bomb) {
            Ok(r) => assert!(r.args.len() < 1_000_000),
            Err(NmapError::Xml(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
}
