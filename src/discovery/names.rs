//! Which of a host's names to show (sans-IO), decided in one place for the scanner and the
//! inventory: DNS (PTR) > DHCP lease > mDNS > NetBIOS > a name a service gave (SNMP
//! sysName, UPnP friendlyName, TLS certificate) > the IP address.

use serde::Serialize;

/// Where a name came from, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NameSource {
    Dns,
    Dhcp,
    Mdns,
    Netbios,
    Service,
    Ip,
}

impl NameSource {
    pub fn as_str(self) -> &'static str {
        match self {
            NameSource::Dns => "dns",
            NameSource::Dhcp => "dhcp",
            NameSource::Mdns => "mdns",
            NameSource::Netbios => "netbios",
            NameSource::Service => "service",
            NameSource::Ip => "ip",
        }
    }
}

/// The name to show and where it came from. Blank candidates are skipped; with none left
/// the address itself (`ip`) is the name.
pub fn best_hostname<'a>(
    candidates: impl IntoIterator<Item = (NameSource, &'a str)>,
    ip: &str,
) -> (String, NameSource) {
    candidates
        .into_iter()
        .map(|(src, name)| (src, name.trim().trim_end_matches('.')))
        .filter(|(_, name)| !name.is_empty())
        .min_by_key(|(src, _)| *src)
        .map(|(src, name)| (name.to_string(), src))
        .unwrap_or_else(|| (ip.to_string(), NameSource::Ip))
}

#[cfg(test)]
mod tests {
    use super::*;
    use NameSource::*;

    #[test]
    fn precedence_is_dns_dhcp_mdns_netbios_service_ip() {
        let all = [
            (Service, "Kitchen - Sonos One"),
            (Netbios, "LABNAS"),
            (Mdns, "nas.local"),
            (Dhcp, "nas-lease"),
            (Dns, "nas.lab.internal."),
        ];
        assert_eq!(best_hostname(all, "10.0.0.5"), ("nas.lab.internal".into(), Dns));
        assert_eq!(
            best_hostname(all[..4].to_vec(), "10.0.0.5"),
            ("nas-lease".into(), Dhcp)
        );
        assert_eq!(
            best_hostname(all[..3].to_vec(), "10.0.0.5"),
            ("nas.local".into(), Mdns)
        );
        assert_eq!(
            best_hostname(all[..2].to_vec(), "10.0.0.5"),
            ("LABNAS".into(), Netbios)
        );
        assert_eq!(
            best_hostname(all[..1].to_vec(), "10.0.0.5"),
            ("Kitchen - Sonos One".into(), Service)
        );
        assert_eq!(best_hostname([], "10.0.0.5"), ("10.0.0.5".into(), Ip));
        // Blank names do not win.
        assert_eq!(
            best_hostname([(Dns, " "), (Mdns, "tv.local")], "x"),
            ("tv.local".into(), Mdns)
        );
        assert!(Dns < Dhcp && Dhcp < Mdns && Mdns < Netbios && Netbios < Service && Service < Ip);
    }
}
