//! Docker Engine API `GET /containers/json` bodies → observations: one host per running
//! container (its name, each network's address and MAC), with its exposed ports as
//! services and published ports in the evidence.

use super::merge::{Observation, ServiceObservation};
use super::model::{NameSource, Proto, Source};
use crate::discovery::oui::Mac;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Container {
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    image: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    ports: Vec<Port>,
    #[serde(default)]
    network_settings: Option<NetworkSettings>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Port {
    #[serde(rename = "IP")]
    ip: Option<String>,
    private_port: u16,
    public_port: Option<u16>,
    #[serde(rename = "Type")]
    kind: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NetworkSettings {
    #[serde(default)]
    networks: BTreeMap<String, Endpoint>,
}

#[derive(Debug, Deserialize)]
struct Endpoint {
    #[serde(rename = "IPAddress", default)]
    ip: String,
    #[serde(rename = "GlobalIPv6Address", default)]
    ipv6: String,
    #[serde(rename = "MacAddress", default)]
    mac: String,
}

#[derive(Debug, thiserror::Error)]
#[error("not a Docker container list: {0}")]
pub struct DockerError(String);

/// Parses a container list; containers that are not running are left out.
pub fn parse_containers(json: &str) -> Result<Vec<Observation>, DockerError> {
    let list: Vec<Container> = serde_json::from_str(json).map_err(|e| DockerError(e.to_string()))?;
    let mut out = Vec::new();
    for c in list
        .into_iter()
        .filter(|c| c.state.is_empty() || c.state == "running")
    {
        let name = c.names.first().map(|n| n.trim_start_matches('/').to_string());
        let services: Vec<ServiceObservation> = {
            let mut by_port: BTreeMap<(u16, Proto), Vec<String>> = BTreeMap::new();
            for p in &c.ports {
                let proto = match p.kind.as_str() {
                    "tcp" => Proto::Tcp,
                    "udp" => Proto::Udp,
                    _ => continue,
                };
                let ev = by_port.entry((p.private_port, proto)).or_insert_with(|| {
                    vec![format!(
                        "docker: {} exposes {}/{}",
                        c.image, p.private_port, p.kind
                    )]
                });
                if let Some(public) = p.public_port {
                    let on = p.ip.as_deref().filter(|i| !i.is_empty()).unwrap_or("the host");
                    ev.push(format!("published on {on} port {public}"));
                }
            }
            by_port
                .into_iter()
                .map(|((port, proto), evidence)| ServiceObservation {
                    port: Some(port),
                    proto,
                    name: crate::discovery::ports::port_name(port).map(str::to_string),
                    product: Some(c.image.clone()).filter(|s| !s.is_empty()),
                    application: None,
                    category: None,
                    evidence,
                })
                .collect()
        };
        let networks = c.network_settings.map(|n| n.networks).unwrap_or_default();
        for (net, ep) in networks {
            let mac = Mac::parse(&ep.mac).map(|m| m.0);
            for ip in [&ep.ip, &ep.ipv6] {
                let Ok(ip) = ip.parse::<IpAddr>() else { continue };
                let mut o = Observation::new(Source::Docker);
                o.ip = Some(ip);
                o.mac = mac;
                o.label = Some(format!("docker network {net}"));
                if let Some(n) = &name {
                    o.names.push((NameSource::Docker, n.clone()));
                }
                o.services = services.clone();
                out.push(o);
            }
        }
    }
    Ok(out)
}
