//! Merge rules, with `now` passed in.

use super::*;
use crate::model::Timestamp;
use std::net::IpAddr;

fn t(s: u64) -> Timestamp {
    Timestamp::from_secs(1_800_000_000 + s)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn obs(source: Source, addr: Option<&str>, mac: Option<[u8; 6]>) -> Observation {
    let mut o = Observation::new(source);
    o.ip = addr.map(ip);
    o.mac = mac;
    o
}

const MAC_A: [u8; 6] = [0xb8, 0x27, 0xeb, 1, 2, 3];
const MAC_B: [u8; 6] = [0x00, 0x11, 0x32, 4, 5, 6];
const MAC_C: [u8; 6] = [0x00, 0x11, 0x32, 7, 8, 9];

#[test]
fn same_mac_is_same_host_and_first_last_seen_follow_now() {
    let mut inv = Inventory::default();
    let (a, new) = inv
        .observe(obs(Source::Arp, Some("10.0.0.5"), Some(MAC_A)), t(0))
        .unwrap();
    assert!(new);
    let (b, new) = inv
        .observe(obs(Source::Dhcp, Some("10.0.0.6"), Some(MAC_A)), t(60))
        .unwrap();
    assert_eq!((a, new), (b, false));
    let h = inv.host(a).unwrap();
    assert_eq!(h.interfaces.len(), 1);
    assert_eq!(h.ips().collect::<Vec<_>>(), vec![ip("10.0.0.5"), ip("10.0.0.6")]);
    assert_eq!((h.first_seen, h.last_seen), (t(0), t(60)));
    assert_eq!(h.interfaces[0].addresses[1].first_seen, t(60));
    assert!(h.sources.contains(&Source::Arp) && h.sources.contains(&Source::Dhcp));
    let changes = inv.take_changes();
    assert_eq!(changes.events.len(), 1);
    assert_eq!(changes.events[0].kind, EventKind::NewDevice);
    assert!(inv.take_changes().is_empty());
}

#[test]
fn an_address_answering_from_a_new_mac_moves_to_a_new_host() {
    let mut inv = Inventory::default();
    let (a, _) = inv
        .observe(obs(Source::Arp, Some("10.0.0.5"), Some(MAC_A)), t(0))
        .unwrap();
    let (b, new) = inv
        .observe(obs(Source::Arp, Some("10.0.0.5"), Some(MAC_B)), t(10))
        .unwrap();
    assert!(new && a != b);
    assert_eq!(inv.by_ip(ip("10.0.0.5")).unwrap().id, b);
    assert_eq!(
        inv.host(a).unwrap().ips().count(),
        0,
        "the old host keeps its MAC only"
    );
    assert_eq!(inv.by_mac(MAC_A).unwrap().id, a);
}

#[test]
fn a_mac_less_host_is_folded_into_the_mac_that_claims_its_address() {
    let mut inv = Inventory::default();
    let mut scan = obs(Source::Scan, Some("10.0.0.9"), None);
    scan.services.push(ServiceObservation {
        port: Some(22),
        proto: Proto::Tcp,
        name: Some("ssh".into()),
        product: Some("OpenSSH 9.2p1".into()),
        application: None,
        category: None,
        evidence: vec!["banner".into()],
    });
    let (ipless, _) = inv.observe(scan, t(0)).unwrap();
    let (with_mac, _) = inv
        .observe(obs(Source::Arp, Some("10.0.0.7"), Some(MAC_C)), t(1))
        .unwrap();
    inv.take_changes();
    let (got, new) = inv
        .observe(obs(Source::Arp, Some("10.0.0.9"), Some(MAC_C)), t(2))
        .unwrap();
    assert_eq!((got, new), (with_mac, false));
    assert!(inv.host(ipless).is_none());
    let h = inv.host(with_mac).unwrap();
    assert_eq!(h.services.len(), 1);
    assert_eq!(h.interfaces.len(), 1, "{:?}", h.interfaces);
    assert_eq!(h.first_seen, t(0));
    let changes = inv.take_changes();
    assert!(changes.deleted.contains(&ipless));
    assert!(changes.events.iter().any(|e| e.kind
        == EventKind::Merged {
            from_host: ipless,
            automatic: true
        }));
}

#[test]
fn same_name_and_vendor_is_same_host() {
    let mut inv = Inventory::default();
    let mut wifi = obs(Source::Dhcp, Some("10.0.0.20"), Some(MAC_B));
    wifi.vendor = Some("Synology Incorporated".into());
    wifi.names.push((NameSource::Dhcp, "nas".into()));
    let (a, _) = inv.observe(wifi, t(0)).unwrap();
    let mut wired = obs(Source::Dhcp, Some("10.0.0.21"), Some(MAC_C));
    wired.vendor = Some("Synology Incorporated".into());
    wired.names.push((NameSource::Dhcp, "NAS".into()));
    let (b, new) = inv.observe(wired, t(5)).unwrap();
    assert_eq!((a, new), (b, false));
    assert_eq!(inv.host(a).unwrap().interfaces.len(), 2);
    // Same name, other vendor: another device.
    let mut other = obs(Source::Dhcp, Some("10.0.0.22"), Some(MAC_A));
    other.vendor = Some("Raspberry Pi Foundation".into());
    other.names.push((NameSource::Dhcp, "nas".into()));
    let (c, new) = inv.observe(other, t(6)).unwrap();
    assert!(new && c != a);
}

#[test]
fn name_precedence_is_dns_then_dhcp_then_mdns_then_netbios_then_service() {
    let mut inv = Inventory::default();
    let mut o = obs(Source::Scan, Some("10.0.0.30"), Some(MAC_A));
    o.names = vec![
        (NameSource::Service, "svc".into()),
        (NameSource::Netbios, "NB".into()),
    ];
    let (id, _) = inv.observe(o.clone(), t(0)).unwrap();
    assert_eq!(inv.host(id).unwrap().name(), Some("NB"));
    o.names = vec![(NameSource::Mdns, "m.local".into())];
    inv.observe(o.clone(), t(1));
    assert_eq!(inv.host(id).unwrap().name(), Some("m.local"));
    o.names = vec![
        (NameSource::Dns, "host.lan.".into()),
        (NameSource::Dhcp, "dh".into()),
    ];
    inv.observe(o, t(2));
    assert_eq!(inv.host(id).unwrap().name(), Some("host.lan"));
    let bare = Inventory::default();
    assert!(bare.is_empty());
    let mut inv2 = Inventory::default();
    let (id2, _) = inv2
        .observe(obs(Source::Arp, Some("10.0.0.31"), Some(MAC_B)), t(0))
        .unwrap();
    assert_eq!(inv2.host(id2).unwrap().label(), "10.0.0.31");
}

#[test]
fn manual_merge_split_delete_and_acknowledge() {
    let mut inv = Inventory::default();
    let (a, _) = inv
        .observe(obs(Source::Arp, Some("10.0.0.40"), Some(MAC_A)), t(0))
        .unwrap();
    let (b, _) = inv
        .observe(obs(Source::Arp, Some("10.0.0.41"), Some(MAC_B)), t(1))
        .unwrap();
    assert_eq!(inv.merge(a, a, t(2), "ann"), Err(InventoryError::SameHost));
    assert_eq!(inv.merge(a, 99, t(2), "ann"), Err(InventoryError::NoSuchHost(99)));
    inv.merge(a, b, t(2), "ann").unwrap();
    assert_eq!(inv.len(), 1);
    assert_eq!(inv.by_mac(MAC_B).unwrap().id, a);
    // Later sightings of B's MAC land on the merged host.
    let (again, new) = inv
        .observe(obs(Source::Arp, Some("10.0.0.41"), Some(MAC_B)), t(3))
        .unwrap();
    assert_eq!((again, new), (a, false));
    let idx = inv
        .host(a)
        .unwrap()
        .interfaces
        .iter()
        .position(|i| i.mac == Some(MAC_B))
        .unwrap();
    let c = inv.split(a, idx, t(4), "ann").unwrap();
    assert_eq!(inv.by_mac(MAC_B).unwrap().id, c);
    assert_eq!(inv.by_ip(ip("10.0.0.41")).unwrap().id, c);
    assert_eq!(
        inv.split(c, 0, t(5), "ann"),
        Err(InventoryError::NothingToSplit(c))
    );
    assert!(inv.host(a).unwrap().is_new);
    assert_eq!(inv.acknowledge(a, t(6), "ann"), Ok(true));
    assert_eq!(inv.acknowledge(a, t(6), "ann"), Ok(false));
    inv.delete(c, t(7), "ann").unwrap();
    assert!(inv.by_mac(MAC_B).is_none());
    let changes = inv.take_changes();
    assert!(changes.deleted.contains(&c) && changes.deleted.contains(&b));
    let kinds: Vec<&EventKind> = changes.events.iter().map(|e| &e.kind).collect();
    assert!(kinds.contains(&&EventKind::Acknowledged));
    assert!(kinds.contains(&&EventKind::SplitOff { into_host: c }));
    assert!(kinds.contains(&&EventKind::Deleted));
    assert_eq!(
        changes
            .events
            .iter()
            .find(|e| e.kind == EventKind::Deleted)
            .unwrap()
            .actor
            .as_deref(),
        Some("ann")
    );
}

#[test]
fn reloading_from_stored_hosts_keeps_ids_and_indexes() {
    let mut inv = Inventory::default();
    let (a, _) = inv
        .observe(obs(Source::Arp, Some("10.0.0.50"), Some(MAC_A)), t(0))
        .unwrap();
    let hosts: Vec<Host> = inv.hosts().cloned().collect();
    let mut again = Inventory::from_hosts(hosts);
    assert_eq!(again.by_mac(MAC_A).unwrap().id, a);
    let (b, new) = again
        .observe(obs(Source::Arp, Some("10.0.0.51"), Some(MAC_B)), t(1))
        .unwrap();
    assert!(new && b > a);
}

#[test]
fn broadcast_and_empty_observations_are_ignored() {
    let mut inv = Inventory::default();
    assert!(inv
        .observe(obs(Source::Arp, None, Some([0xff; 6])), t(0))
        .is_none());
    assert!(inv.observe(obs(Source::Arp, None, None), t(0)).is_none());
    assert!(inv.is_empty());
}

#[test]
fn a_nameless_host_is_labelled_by_ipv4_before_routable_before_link_local_ipv6() {
    let mut inv = Inventory::default();
    let (id, _) = inv
        .observe(
            obs(Source::Ndp, Some("fe80::d845:56ff:fe9d:a57f"), Some(MAC_A)),
            t(0),
        )
        .unwrap();
    assert_eq!(inv.host(id).unwrap().label(), "fe80::d845:56ff:fe9d:a57f");
    inv.observe(obs(Source::Ndp, Some("fd00:200:1::88"), Some(MAC_A)), t(1))
        .unwrap();
    assert_eq!(inv.host(id).unwrap().label(), "fd00:200:1::88");
    inv.observe(obs(Source::Arp, Some("10.200.1.88"), Some(MAC_A)), t(2))
        .unwrap();
    let h = inv.host(id).unwrap();
    assert_eq!(h.ips().next(), Some(ip("fe80::d845:56ff:fe9d:a57f")));
    assert_eq!(h.label(), "10.200.1.88");
}
