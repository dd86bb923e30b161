//! What kind of device an address belongs to (iPhone, Android, Windows, macOS, Linux, IoT),
//! guessed from the three hints a router sees without asking the device: its host name,
//! the vendor class it sends in DHCP (option 60) and the vendor of its MAC (OUI). Sans-IO:
//! strings in, a [`DeviceKind`] out; callers gather the hints (the map from the inventory
//! and the traffic engine's DHCP table). Must not look anything up itself.

use serde::Serialize;

/// A device's kind, as far as its hints tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    Iphone,
    Android,
    Windows,
    Macos,
    Linux,
    Iot,
    Unknown,
}

impl DeviceKind {
    pub const ALL: [DeviceKind; 7] = [
        DeviceKind::Iphone,
        DeviceKind::Android,
        DeviceKind::Windows,
        DeviceKind::Macos,
        DeviceKind::Linux,
        DeviceKind::Iot,
        DeviceKind::Unknown,
    ];

    pub fn label(self) -> &'static str {
        match self {
            DeviceKind::Iphone => "iPhone / iPad",
            DeviceKind::Android => "Android",
            DeviceKind::Windows => "Windows",
            DeviceKind::Macos => "macOS",
            DeviceKind::Linux => "Linux",
            DeviceKind::Iot => "IoT",
            DeviceKind::Unknown => "Unknown",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            DeviceKind::Iphone => "iphone",
            DeviceKind::Android => "android",
            DeviceKind::Windows => "windows",
            DeviceKind::Macos => "macos",
            DeviceKind::Linux => "linux",
            DeviceKind::Iot => "iot",
            DeviceKind::Unknown => "unknown",
        }
    }
}

/// The kind of a device from its host name (DHCP option 12, DNS, mDNS …), DHCP vendor
/// class (option 60) and MAC vendor (the IEEE registry's organisation name).
///
/// A host name someone chose or the OS made up (`Annas-iPhone`, `DESKTOP-4J2K9Q`) is the
/// most specific hint, then the vendor class the DHCP client sends, then the MAC vendor
/// (an Apple MAC is an iPhone or a Mac; an Espressif one is an IoT gadget).
pub fn device_kind(
    hostname: Option<&str>,
    dhcp_vendor_class: Option<&str>,
    mac_vendor: Option<&str>,
) -> DeviceKind {
    [
        hostname.map(by_hostname),
        dhcp_vendor_class.map(by_vendor_class),
        mac_vendor.map(by_mac_vendor),
    ]
    .into_iter()
    .flatten()
    .find(|k| *k != DeviceKind::Unknown)
    .unwrap_or(DeviceKind::Unknown)
}

/// Words of a name: `Bobs-MacBook-Pro.local` → `bobs`, `macbook`, `pro`, `local`.
fn words(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_ascii_lowercase())
}

/// Host names: whole words or word prefixes (`shelly1`, `esp32`, `macbookpro`), so that
/// `honest-pc` is not a Nest and `research` is not Arch Linux.
fn by_hostname(name: &str) -> DeviceKind {
    const PREFIXES: &[(&str, DeviceKind)] = &[
        ("iphone", DeviceKind::Iphone),
        ("ipad", DeviceKind::Iphone),
        ("ipod", DeviceKind::Iphone),
        ("android", DeviceKind::Android),
        ("galaxy", DeviceKind::Android),
        ("pixel", DeviceKind::Android),
        ("oneplus", DeviceKind::Android),
        ("redmi", DeviceKind::Android),
        ("xiaomi", DeviceKind::Android),
        ("huawei", DeviceKind::Android),
        ("kindle", DeviceKind::Android),
        // Windows 10/11 name new PCs DESKTOP-XXXXXXX or LAPTOP-XXXXXXX.
        ("desktop", DeviceKind::Windows),
        ("laptop", DeviceKind::Windows),
        ("windows", DeviceKind::Windows),
        ("win10", DeviceKind::Windows),
        ("win11", DeviceKind::Windows),
        ("macbook", DeviceKind::Macos),
        ("imac", DeviceKind::Macos),
        ("macmini", DeviceKind::Macos),
        ("macpro", DeviceKind::Macos),
        ("esp32", DeviceKind::Iot),
        ("esp8266", DeviceKind::Iot),
        ("espressif", DeviceKind::Iot),
        ("tasmota", DeviceKind::Iot),
        ("shelly", DeviceKind::Iot),
        ("sonoff", DeviceKind::Iot),
        ("tuya", DeviceKind::Iot),
        ("chromecast", DeviceKind::Iot),
        ("sonos", DeviceKind::Iot),
        ("roku", DeviceKind::Iot),
        ("printer", DeviceKind::Iot),
        ("alexa", DeviceKind::Iot),
        ("wemo", DeviceKind::Iot),
        ("tplink", DeviceKind::Iot),
        ("raspberrypi", DeviceKind::Linux),
        ("ubuntu", DeviceKind::Linux),
        ("debian", DeviceKind::Linux),
        ("fedora", DeviceKind::Linux),
        ("centos", DeviceKind::Linux),
        ("archlinux", DeviceKind::Linux),
        ("nixos", DeviceKind::Linux),
        ("linux", DeviceKind::Linux),
    ];
    // Short words that would be prefixes of too many others.
    const WHOLE: &[(&str, DeviceKind)] = &[
        ("mbp", DeviceKind::Macos),
        ("mba", DeviceKind::Macos),
        ("mac", DeviceKind::Macos),
        ("pc", DeviceKind::Windows),
        ("esp", DeviceKind::Iot),
        ("hue", DeviceKind::Iot),
        ("echo", DeviceKind::Iot),
        ("nest", DeviceKind::Iot),
        ("ring", DeviceKind::Iot),
        ("cam", DeviceKind::Iot),
        ("camera", DeviceKind::Iot),
        ("arch", DeviceKind::Linux),
        ("pi", DeviceKind::Linux),
    ];
    for w in words(name) {
        if let Some((_, k)) = PREFIXES.iter().find(|(p, _)| w.starts_with(p)) {
            return *k;
        }
        if let Some((_, k)) = WHOLE.iter().find(|(p, _)| w == *p) {
            return *k;
        }
    }
    DeviceKind::Unknown
}

/// DHCP vendor classes (option 60) as the common clients send them: `MSFT 5.0` (Windows
/// since 2000), `android-dhcp-13` (Android 5+), `dhcpcd-9.4.1:Linux-6.1.21-v8+:aarch64:…`
/// (dhcpcd: Raspberry Pi OS, Arch …), `udhcp 1.36.1` (BusyBox: OpenWrt, cameras, most
/// embedded Linux). Apple's clients send none.
fn by_vendor_class(class: &str) -> DeviceKind {
    let c = class.trim().to_ascii_lowercase();
    if c.starts_with("msft") {
        DeviceKind::Windows
    } else if c.starts_with("android-dhcp") {
        DeviceKind::Android
    } else if c.starts_with("udhcp") {
        DeviceKind::Iot
    } else if c.starts_with("dhcpcd") || c.contains("linux") {
        DeviceKind::Linux
    } else {
        DeviceKind::Unknown
    }
}

/// MAC vendors as the IEEE registry spells them. Only vendors whose devices are nearly all
/// of one kind; Intel, AzureWave, Hon Hai and the like make Wi-Fi chips for anything.
fn by_mac_vendor(vendor: &str) -> DeviceKind {
    let v = vendor.to_ascii_lowercase();
    let starts = |names: &[&str]| names.iter().any(|n| v.starts_with(n));
    if starts(&["apple"]) {
        // iOS (since 14) joins networks with a private, locally administered MAC, which has
        // no vendor; a device that shows Apple's registered MAC is more often a Mac.
        DeviceKind::Macos
    } else if starts(&[
        "samsung electronics",
        "xiaomi",
        "beijing xiaomi",
        "oneplus",
        "guangdong oppo",
        "vivo mobile",
        "realme",
        "motorola mobility",
        "huawei device",
        "tct mobile",
        "hmd global",
    ]) {
        DeviceKind::Android
    } else if starts(&["microsoft"]) {
        DeviceKind::Windows
    } else if starts(&["raspberry pi"]) {
        DeviceKind::Linux
    } else if starts(&[
        "espressif",
        "tuya",
        "shelly",
        "allterco",
        "signify",
        "philips lighting",
        "sonos",
        "ring llc",
        "nest labs",
        "ecobee",
        "netatmo",
        "tado",
        "wyze",
        "roku",
        "amazon technologies",
        "blink by amazon",
        "hangzhou hikvision",
        "zhejiang dahua",
        "lumi united",
        "broadlink",
        "chengdu meross",
        "seiko epson",
        "brother industries",
        "canon inc",
    ]) {
        DeviceKind::Iot
    } else {
        DeviceKind::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::oui::{self, Mac};
    use std::path::Path;

    #[test]
    fn host_names_alone() {
        let cases = [
            ("Annas-iPhone", DeviceKind::Iphone),
            ("iPad-von-Lena.fritz.box", DeviceKind::Iphone),
            ("Galaxy-S21", DeviceKind::Android),
            ("DESKTOP-4J2K9Q", DeviceKind::Windows),
            ("Bobs-MacBook-Pro.local", DeviceKind::Macos),
            ("shelly1-A4CF12", DeviceKind::Iot),
            ("ESP_3A4B5C", DeviceKind::Iot),
            ("raspberrypi", DeviceKind::Linux),
            // Words, not substrings: no Nest, no Arch, no Hue here.
            ("honest-pc", DeviceKind::Windows),
            ("research-box", DeviceKind::Unknown),
            ("huertas", DeviceKind::Unknown),
            ("host-17", DeviceKind::Unknown),
        ];
        for (name, want) in cases {
            assert_eq!(device_kind(Some(name), None, None), want, "{name}");
        }
    }

    #[test]
    fn vendor_classes_as_clients_send_them() {
        let cases = [
            ("MSFT 5.0", DeviceKind::Windows),
            ("android-dhcp-13", DeviceKind::Android),
            ("dhcpcd-9.4.1:Linux-6.1.21-v8+:aarch64:BCM2835", DeviceKind::Linux),
            ("udhcp 1.36.1", DeviceKind::Iot),
            ("PXEClient:Arch:00000:UNDI:002001", DeviceKind::Unknown),
        ];
        for (class, want) in cases {
            assert_eq!(device_kind(Some("host-17"), Some(class), None), want, "{class}");
        }
    }

    /// MAC vendors from our OUI table (the names the inventory stores), not typed in.
    #[test]
    fn mac_vendors_from_the_oui_table() {
        let cases = [
            ("78:4f:43:78:19:bc", DeviceKind::Macos), // Apple, the dhcp-flow fixture's MBP
            ("b8:27:eb:72:20:ce", DeviceKind::Linux), // Raspberry Pi Foundation
            ("24:0a:c4:00:00:01", DeviceKind::Iot),   // Espressif
            ("00:00:f0:00:00:01", DeviceKind::Android), // Samsung Electronics
            ("00:15:5d:00:00:01", DeviceKind::Windows), // Microsoft (Hyper-V, Surface)
            ("00:1b:21:00:00:01", DeviceKind::Unknown), // Intel: any kind of device
        ];
        for (mac, want) in cases {
            let vendor = oui::vendor(Mac::parse(mac).unwrap());
            assert!(vendor.is_some(), "{mac} has a vendor in the table");
            assert_eq!(device_kind(None, None, vendor), want, "{mac} = {vendor:?}");
        }
    }

    #[test]
    fn the_most_specific_hint_wins_and_vendor_hints_fill_in() {
        // An Apple MAC with an iPhone's name is an iPhone, not a Mac.
        assert_eq!(
            device_kind(Some("Annas-iPhone"), None, Some("Apple, Inc.")),
            DeviceKind::Iphone
        );
        // A name that says nothing: the vendor class decides, then the MAC vendor.
        assert_eq!(
            device_kind(Some("Zenfone-8"), Some("android-dhcp-11"), None),
            DeviceKind::Android
        );
        assert_eq!(
            device_kind(Some("host-17"), None, Some("Espressif Inc.")),
            DeviceKind::Iot
        );
        assert_eq!(
            device_kind(None, Some("udhcp 1.36.1"), Some("Raspberry Pi Trading Ltd")),
            DeviceKind::Iot
        );
        assert_eq!(device_kind(None, None, None), DeviceKind::Unknown);
    }

    /// The hints DHCP clients sent (requests) in real captures, as tshark reads them: pktvisor's (an
    /// Android phone with a randomised MAC and a name that names no OS, so only its vendor
    /// class tells; a MacBook Pro with Apple's MAC) and BusyBox udhcpc's
    /// (`tests/fixtures/map/make_udhcpc.sh`: a veth MAC without vendor, a plain name, and
    /// the vendor class `udhcp 1.35.0`).
    #[test]
    fn hints_from_real_captures() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut kinds = std::collections::BTreeMap::new();
        for pcap in [
            root.join("../shared/testdata/pcap/fixtures/pktvisor__dhcp-flow.pcap"),
            root.join("tests/fixtures/map/udhcpc.pcap"),
        ] {
            let fields = [
                "dhcp.hw.mac_addr",
                "dhcp.option.hostname",
                "dhcp.option.vendor_class_id",
            ];
            let filter = "dhcp.option.hostname && dhcp.type == 1";
            let Some(rows) = crate::traffic::tshark::fields(&pcap, filter, &fields) else {
                return;
            };
            for f in &rows {
                let (Some(mac), Some(name)) = (f.first().and_then(|m| Mac::parse(m)), f.get(1)) else {
                    continue;
                };
                let class = f.get(2).map(String::as_str).filter(|c| !c.is_empty());
                let kind = device_kind(Some(name), class, oui::vendor(mac));
                // The name alone says nothing for these two: the vendor hints decide.
                kinds.insert(name.to_string(), (kind, device_kind(Some(name), None, None)));
            }
        }
        assert_eq!(
            kinds.get("Zenfone-8"),
            Some(&(DeviceKind::Android, DeviceKind::Unknown)),
            "{kinds:?}"
        );
        assert_eq!(
            kinds.get("frontdoor"),
            Some(&(DeviceKind::Iot, DeviceKind::Unknown)),
            "{kinds:?}"
        );
        assert_eq!(
            kinds.get("Shannons-MBP").map(|k| k.0),
            Some(DeviceKind::Macos),
            "{kinds:?}"
        );
    }
}
