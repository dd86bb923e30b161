//! Passive sources against real files: neighbour tables captured from the default netlab
//! (ground truth: ../shared/netlab/expected.json) and lease files written by the real
//! dnsmasq, ISC dhcpd and Kea daemons (tests/fixtures/passive/make-lease-fixtures.sh; the
//! MACs and hostnames are that script's inputs).

use gatewatch::discovery::oui::Mac;
use gatewatch::discovery::passive::*;
use gatewatch::model::Timestamp;
use std::collections::BTreeMap;
use std::net::IpAddr;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/passive/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// ip → mac of every lab host, v4 and v6, from the lab's own ground truth.
fn lab_truth() -> BTreeMap<IpAddr, Mac> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/netlab/expected.json");
    let lab: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut truth = BTreeMap::new();
    for h in lab["hosts"].as_array().unwrap() {
        let mac = Mac::parse(h["mac"].as_str().unwrap()).unwrap();
        for key in ["ipv4", "ipv6"] {
            if let Some(ip) = h[key].as_str() {
                truth.insert(ip.parse().unwrap(), mac);
            }
        }
    }
    assert!(truth.len() >= 40);
    truth
}

fn check_against_lab(found: &Parsed<Neighbour>, family_v6: Option<bool>) {
    let truth = lab_truth();
    let wanted: Vec<_> = truth
        .iter()
        .filter(|(ip, _)| family_v6.is_none_or(|v6| ip.is_ipv6() == v6))
        .collect();
    assert_eq!(found.skipped, 0);
    for (ip, mac) in &wanted {
        let n = found
            .items
            .iter()
            .find(|n| n.ip == **ip)
            .unwrap_or_else(|| panic!("{ip} missing"));
        assert_eq!(n.mac, **mac, "{ip}");
        assert!(n.interface.starts_with("lan"), "{ip} on {}", n.interface);
    }
    assert_eq!(found.items.len(), wanted.len(), "extra entries");
}

#[test]
fn proc_net_arp_matches_the_lab() {
    check_against_lab(
        &parse_proc_net_arp(&fixture("linux-proc-net-arp.txt")),
        Some(false),
    );
}

#[test]
fn ip_neigh_text_and_json_match_the_lab() {
    check_against_lab(&parse_ip_neigh(&fixture("linux-ip-neigh.txt")), None);
    check_against_lab(&parse_ip_neigh_json(&fixture("linux-ip-neigh.json")), None);
}

#[test]
fn dnsmasq_lease_of_the_lab_laptop() {
    let text = fixture("dnsmasq.leases");
    let before_expiry = Timestamp::from_secs(1_795_400_000);
    let p = parse_dnsmasq_leases(&text, before_expiry);
    assert_eq!(p.skipped, 0);
    assert_eq!(p.items.len(), 1);
    let lease = &p.items[0];
    assert_eq!(lease.ip, "10.200.1.199".parse::<IpAddr>().unwrap());
    assert_eq!(Some(lease.mac), lab_truth().get(&lease.ip).copied());
    assert_eq!(lease.hostname.as_deref(), Some("laptop"));
    let after_expiry = Timestamp::from_secs(1_795_476_780);
    assert!(parse_dnsmasq_leases(&text, after_expiry).items.is_empty());
}

fn check_generated(p: &Parsed<Lease>, suffix: &str, pool: std::ops::RangeInclusive<u8>) {
    assert_eq!(p.skipped, 0);
    let clients = [("3c:d9:2b:10:20:30", "printer"), ("24:0a:c4:78:b1:7c", "tasmota")];
    assert_eq!(p.items.len(), clients.len(), "{:?}", p.items);
    for (mac, host) in clients {
        let lease = p
            .items
            .iter()
            .find(|l| l.mac == Mac::parse(mac).unwrap())
            .unwrap_or_else(|| panic!("{mac} missing"));
        assert_eq!(
            lease.hostname.as_deref(),
            Some(format!("{host}-{suffix}").as_str())
        );
        let IpAddr::V4(v4) = lease.ip else {
            panic!("{}", lease.ip)
        };
        assert_eq!(v4.octets()[..3], [10, 201, 0]);
        assert!(pool.contains(&v4.octets()[3]), "{v4}");
    }
}

#[test]
fn isc_dhcpd_leases_from_the_real_daemon() {
    let text = fixture("isc-dhcpd.leases");
    let written = Timestamp::from_secs(1_795_433_700);
    let p = parse_isc_dhcpd_leases(&text, written);
    check_generated(&p, "isc", 100..=150);
    assert!(p
        .items
        .iter()
        .all(|l| l.source == LeaseSource::IscDhcpd && l.expires.is_some()));
    // One hour later the leases have ended.
    assert!(parse_isc_dhcpd_leases(&text, Timestamp::from_secs(1_795_437_400))
        .items
        .is_empty());
}

#[test]
fn kea_leases_from_the_real_daemon() {
    let text = fixture("kea-leases4.csv");
    let p = parse_kea_leases4(&text, Timestamp::from_secs(1_795_433_700));
    check_generated(&p, "kea", 160..=190);
    assert!(parse_kea_leases4(&text, Timestamp::from_secs(1_795_437_400))
        .items
        .is_empty());
}

/// FreeBSD output in the format of arp(8)/ndp(8) (written by hand from their print
/// formats; no FreeBSD machine was at hand to record one).
#[test]
fn freebsd_arp_and_ndp() {
    let arp = parse_bsd_arp(&fixture("freebsd-arp-an.txt"));
    assert_eq!(arp.skipped, 0);
    assert_eq!(arp.items.len(), 5, "the incomplete entry is left out");
    let printer = arp
        .items
        .iter()
        .find(|n| n.ip.to_string() == "192.168.1.23")
        .unwrap();
    assert_eq!(printer.mac.to_string(), "3c:d9:2b:41:7e:02");
    assert_eq!(printer.interface, "igb1");
    assert!(arp.items.iter().any(|n| n.interface == "igb1.20"));
    let ndp = parse_bsd_ndp(&fixture("freebsd-ndp-an.txt"));
    assert_eq!(ndp.skipped, 0);
    assert_eq!(ndp.items.len(), 4);
    let ll = ndp
        .items
        .iter()
        .find(|n| n.ip.to_string() == "fe80::3ed9:2bff:fe41:7e02")
        .unwrap();
    assert!(!ll.confirmed, "state S is stale");
    assert!(
        ndp.items
            .iter()
            .find(|n| n.ip.to_string() == "fd00:1::57")
            .unwrap()
            .confirmed
    );
    assert_eq!(parse_bsd_arp("garbage line here\n").skipped, 1);
}
