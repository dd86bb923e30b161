//! Geo/ASN lookups from MaxMind DB files (GeoLite2 / GeoIP2 City and ASN, or the
//! ip-location-db mmdb builds) with a bounded lookup cache. Private, loopback, link-local
//! and unique-local addresses map to the configured home location instead of the database.
//!
//! Owns the readers and the cache; reads the files once at [`GeoDb::open`] and never again,
//! never touches the network or the store. Shared across capture threads behind an `Arc`
//! (the cache is behind a mutex held only for a hash lookup).

use maxminddb::{geoip2, Reader};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    #[error("cannot open geo database {path}: {source}")]
    Open {
        path: PathBuf,
        source: maxminddb::MaxMindDbError,
    },
    #[error("{path} is a {found} database, expected a {expected} database")]
    WrongKind {
        path: PathBuf,
        found: String,
        expected: &'static str,
    },
}

/// Where addresses of the local network are (shown for private addresses).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HomeLocation {
    pub country_iso: Option<String>,
    pub country_name: Option<String>,
    pub city: Option<String>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
}

/// What a lookup found. The `*_key` fields are the labels used in top-N lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GeoInfo {
    /// True when the address is private/local and the home location was used.
    pub local: bool,
    pub country_iso: Option<Arc<str>>,
    pub country_name: Option<Arc<str>>,
    pub city: Option<Arc<str>>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub asn: Option<u32>,
    pub as_org: Option<Arc<str>>,
    /// "AS15169 Google Inc." (or "AS15169" without an organisation name).
    pub asn_key: Option<Arc<str>>,
    /// "Boxford, GB" (city name, country ISO code).
    pub city_key: Option<Arc<str>>,
}

/// True for addresses that never appear in a geo database: RFC 1918, loopback,
/// link-local, CGNAT shared space, unique-local and unspecified.
pub fn is_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (o[0] == 100 && (o[1] & 0xC0) == 64)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_local(&IpAddr::V4(v4));
            }
            let s0 = v6.segments()[0];
            v6.is_loopback() || v6.is_unspecified() || (s0 & 0xFE00) == 0xFC00 || (s0 & 0xFFC0) == 0xFE80
        }
    }
}

struct LookupCache {
    map: HashMap<IpAddr, Arc<GeoInfo>, foldhash::fast::RandomState>,
    cap: usize,
    hits: u64,
    misses: u64,
    evictions: u64,
}

/// Cache figures, for status pages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub entries: usize,
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
}

pub struct GeoDb {
    city: Option<Reader<Vec<u8>>>,
    asn: Option<Reader<Vec<u8>>>,
    home: Arc<GeoInfo>,
    cache: Mutex<LookupCache>,
}

impl std::fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoDb")
            .field(
                "city",
                &self.city.as_ref().map(|r| r.metadata().database_type.clone()),
            )
            .field(
                "asn",
                &self.asn.as_ref().map(|r| r.metadata().database_type.clone()),
            )
            .finish()
    }
}

fn open_reader(path: &Path, expected: &'static str, want: &[&str]) -> Result<Reader<Vec<u8>>, GeoError> {
    let r = Reader::open_readfile(path).map_err(|source| GeoError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let kind = r.metadata().database_type.to_ascii_lowercase();
    if !want.iter().any(|w| kind.contains(w)) {
        return Err(GeoError::WrongKind {
            path: path.to_path_buf(),
            found: r.metadata().database_type.clone(),
            expected,
        });
    }
    Ok(r)
}

fn arc(s: Option<&str>) -> Option<Arc<str>> {
    s.filter(|s| !s.is_empty()).map(Arc::from)
}

impl GeoDb {
    /// Entries kept in the lookup cache (one per distinct address, about 200 bytes each).
    pub const CACHE_ENTRIES: usize = 65_536;

    /// Opens the City (or Country) and ASN databases; either may be absent.
    pub fn open(city: Option<&Path>, asn: Option<&Path>, home: HomeLocation) -> Result<GeoDb, GeoError> {
        let city = city
            .map(|p| open_reader(p, "City or Country", &["city", "country"]))
            .transpose()?;
        let asn = asn.map(|p| open_reader(p, "ASN", &["asn", "isp"])).transpose()?;
        let home_info = GeoInfo {
            local: true,
            country_iso: arc(home.country_iso.as_deref()),
            country_name: arc(home.country_name.as_deref()),
            city: arc(home.city.as_deref()),
            latitude: home.latitude,
            longitude: home.longitude,
            asn: None,
            as_org: None,
            asn_key: None,
            city_key: city_key(home.city.as_deref(), home.country_iso.as_deref()),
        };
        Ok(GeoDb {
            city,
            asn,
            home: Arc::new(home_info),
            cache: Mutex::new(LookupCache {
                map: HashMap::default(),
                cap: Self::CACHE_ENTRIES,
                hits: 0,
                misses: 0,
                evictions: 0,
            }),
        })
    }

    /// The lookup for one address (cached).
    pub fn lookup(&self, ip: IpAddr) -> Arc<GeoInfo> {
        if is_local(&ip) {
            return self.home.clone();
        }
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(hit) = cache.map.get(&ip) {
            let hit = hit.clone();
            cache.hits += 1;
            return hit;
        }
        cache.misses += 1;
        let info = Arc::new(self.lookup_uncached(ip));
        if cache.map.len() >= cache.cap {
            // Any entry: the cache is a bound on memory, not a recency list.
            if let Some(k) = cache.map.keys().next().copied() {
                cache.map.remove(&k);
                cache.evictions += 1;
            }
        }
        cache.map.insert(ip, info.clone());
        info
    }

    pub fn cache_stats(&self) -> CacheStats {
        let c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        CacheStats {
            entries: c.map.len(),
            hits: c.hits,
            misses: c.misses,
            evictions: c.evictions,
        }
    }

    /// A database lookup without the cache or the home rule. A record that does not decode
    /// counts as not found.
    pub fn lookup_uncached(&self, ip: IpAddr) -> GeoInfo {
        let mut g = GeoInfo::default();
        if let Some(r) = &self.city {
            if let Ok(Some(c)) = r.lookup(ip).and_then(|l| l.decode::<geoip2::City>()) {
                g.country_iso = arc(c.country.iso_code);
                g.country_name = arc(c.country.names.english);
                g.city = arc(c.city.names.english);
                g.latitude = c.location.latitude;
                g.longitude = c.location.longitude;
                g.city_key = city_key(c.city.names.english, c.country.iso_code);
            }
        }
        if let Some(r) = &self.asn {
            if let Ok(Some(a)) = r.lookup(ip).and_then(|l| l.decode::<geoip2::Asn>()) {
                g.asn = a.autonomous_system_number;
                g.as_org = arc(a.autonomous_system_organization);
                g.asn_key = g.asn.map(|n| match &g.as_org {
                    Some(org) => Arc::from(format!("AS{n} {org}")),
                    None => Arc::from(format!("AS{n}")),
                });
            }
        }
        g
    }
}

fn city_key(city: Option<&str>, iso: Option<&str>) -> Option<Arc<str>> {
    let city = city.filter(|c| !c.is_empty())?;
    Some(match iso {
        Some(cc) if !cc.is_empty() => Arc::from(format!("{city}, {cc}")),
        _ => Arc::from(city),
    })
}

#[cfg(test)]
mod tests {
    //! Expected values come from the JSON source data the MaxMind test databases were
    //! built from (../shared/testdata/geo/*.json), never from our own output.
    use super::*;
    use ipnet::IpNet;
    use serde_json::Value;

    fn dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/geo")
    }

    fn source(name: &str) -> Vec<(IpNet, Value)> {
        let text = std::fs::read_to_string(dir().join(name)).expect("geo test JSON");
        let v: Vec<serde_json::Map<String, Value>> = serde_json::from_str(&text).expect("JSON list");
        v.into_iter()
            .flat_map(|m| m.into_iter())
            .filter_map(|(k, v)| k.parse::<IpNet>().ok().map(|n| (n, v)))
            .collect()
    }

    /// An address inside the network that no more specific network of the list covers.
    fn probe(net: &IpNet, all: &[(IpNet, Value)]) -> Option<IpAddr> {
        let candidates = [net.network(), net.broadcast()];
        candidates.into_iter().find(|ip| {
            !is_local(ip)
                && !all
                    .iter()
                    .any(|(o, _)| o != net && o.prefix_len() > net.prefix_len() && o.contains(ip))
        })
    }

    fn home() -> HomeLocation {
        HomeLocation {
            country_iso: Some("NZ".into()),
            country_name: Some("New Zealand".into()),
            city: Some("Wellington".into()),
            latitude: Some(-41.29),
            longitude: Some(174.78),
        }
    }

    #[test]
    fn city_lookups_match_the_source_data() {
        let db = GeoDb::open(Some(&dir().join("GeoLite2-City-Test.mmdb")), None, home()).unwrap();
        let all = source("GeoLite2-City-Test.json");
        let mut checked = 0;
        for (net, v) in &all {
            let Some(ip) = probe(net, &all) else { continue };
            let g = db.lookup(ip);
            let s = |p: &str| p.split('.').try_fold(v, |c, k| c.get(k)).and_then(Value::as_str);
            assert_eq!(g.country_iso.as_deref(), s("country.iso_code"), "{ip} in {net}");
            assert_eq!(g.country_name.as_deref(), s("country.names.en"), "{ip} in {net}");
            assert_eq!(g.city.as_deref(), s("city.names.en"), "{ip} in {net}");
            let f = |k: &str| v.get("location").and_then(|l| l.get(k)).and_then(Value::as_f64);
            assert_eq!(g.latitude, f("latitude"), "{ip} in {net}");
            assert_eq!(g.longitude, f("longitude"), "{ip} in {net}");
            checked += 1;
        }
        assert!(checked > 50, "only {checked} networks checked");
        let c = db.cache_stats();
        assert_eq!(c.misses as usize, c.entries);
    }

    #[test]
    fn asn_lookups_match_the_source_data() {
        let db = GeoDb::open(None, Some(&dir().join("GeoLite2-ASN-Test.mmdb")), home()).unwrap();
        let all = source("GeoLite2-ASN-Test.json");
        let mut checked = 0;
        for (net, v) in &all {
            let Some(ip) = probe(net, &all) else { continue };
            let g = db.lookup(ip);
            let asn = v.get("autonomous_system_number").and_then(Value::as_u64);
            let org = v.get("autonomous_system_organization").and_then(Value::as_str);
            assert_eq!(g.asn.map(u64::from), asn, "{ip} in {net}");
            assert_eq!(g.as_org.as_deref(), org, "{ip} in {net}");
            checked += 1;
        }
        assert!(checked > 50, "only {checked} networks checked");
        // Looked up twice: the second time comes from the cache.
        let ip: IpAddr = "1.128.0.1".parse().unwrap();
        let (a, b) = (db.lookup(ip), db.lookup(ip));
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.asn_key.as_deref(), Some("AS1221 Telstra Pty Ltd"));
    }

    #[test]
    fn private_addresses_are_at_home_and_unknown_ones_are_empty() {
        let db = GeoDb::open(
            Some(&dir().join("GeoLite2-City-Test.mmdb")),
            Some(&dir().join("GeoLite2-ASN-Test.mmdb")),
            home(),
        )
        .unwrap();
        for ip in [
            "192.168.1.10",
            "10.1.2.3",
            "127.0.0.1",
            "169.254.1.1",
            "fe80::1",
            "fd12::1",
            "::1",
        ] {
            let g = db.lookup(ip.parse().unwrap());
            assert!(g.local, "{ip}");
            assert_eq!(g.city_key.as_deref(), Some("Wellington, NZ"), "{ip}");
            assert_eq!(g.latitude, Some(-41.29));
        }
        let g = db.lookup("198.51.100.1".parse().unwrap());
        assert!(!g.local && g.country_iso.is_none() && g.asn.is_none());
    }

    #[test]
    fn wrong_or_missing_files_are_clear_errors() {
        let e = GeoDb::open(Some(&dir().join("GeoLite2-ASN-Test.mmdb")), None, home()).unwrap_err();
        assert!(
            e.to_string().contains("expected a City or Country database"),
            "{e}"
        );
        let e = GeoDb::open(None, Some(&dir().join("nope.mmdb")), home()).unwrap_err();
        assert!(e.to_string().contains("nope.mmdb"), "{e}");
    }
}
