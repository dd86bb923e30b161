//! SSDP / UPnP (sans-IO): the M-SEARCH a scanner sends to a host's port 1900, the
//! headers of its answers (LOCATION, SERVER, ST, USN) and the device description XML the
//! LOCATION points at (friendlyName, manufacturer, modelName, deviceType, UDN).

use serde::Serialize;

/// What a host's SSDP responder and its device description said.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SsdpInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usn_uuid: Option<String>,
    /// Search targets it answered for (upnp:rootdevice, urn:…:device:…, uuid:…).
    pub st: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_type: Option<String>,
    #[serde(rename = "friendlyName", skip_serializing_if = "Option::is_none")]
    pub friendly_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<String>,
    #[serde(rename = "modelName", skip_serializing_if = "Option::is_none")]
    pub model_name: Option<String>,
}

/// A unicast M-SEARCH for everything (`ssdp:all`), answer within `mx` seconds.
pub fn msearch(host: &str, mx: u8) -> Vec<u8> {
    format!("M-SEARCH * HTTP/1.1\r\nHOST: {host}:1900\r\nMAN: \"ssdp:discover\"\r\nMX: {mx}\r\nST: ssdp:all\r\n\r\n")
        .into_bytes()
}

/// Header names (upper-cased) and values of an SSDP message; `None` unless it is an
/// `HTTP/1.x 200` answer.
pub fn parse_headers(data: &[u8]) -> Option<Vec<(String, String)>> {
    let text = std::str::from_utf8(data).ok()?;
    let mut lines = text.split("\r\n");
    let status = lines.next()?;
    let mut parts = status.split_whitespace();
    let (version, code) = (parts.next()?, parts.next()?);
    if !version.starts_with("HTTP/1.") || code != "200" {
        return None;
    }
    Some(
        lines
            .take_while(|l| !l.is_empty())
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_uppercase(), v.trim().to_string()))
            .collect(),
    )
}

impl SsdpInfo {
    /// Folds one M-SEARCH answer in; false when it was not one.
    pub fn merge_response(&mut self, data: &[u8]) -> bool {
        let Some(headers) = parse_headers(data) else {
            return false;
        };
        let get = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        if self.location.is_none() {
            self.location = get("LOCATION");
        }
        if self.server.is_none() {
            self.server = get("SERVER");
        }
        if let Some(usn) = get("USN") {
            let uuid = usn.strip_prefix("uuid:").unwrap_or(&usn);
            let uuid = uuid.split("::").next().unwrap_or(uuid).to_string();
            self.usn_uuid.get_or_insert(uuid);
        }
        if let Some(st) = get("ST") {
            if st.contains(":device:") && self.device_type.is_none() {
                self.device_type = Some(st.clone());
            }
            if !self.st.contains(&st) {
                self.st.push(st);
            }
        }
        true
    }

    /// Reads the device description (the first `<device>` element's fields).
    pub fn merge_description(&mut self, xml: &str) {
        let device = xml.find("<device>").map(|i| &xml[i..]).unwrap_or(xml);
        let field = |name: &str| element(device, name);
        if let Some(t) = field("deviceType") {
            self.device_type = Some(t);
        }
        self.friendly_name = field("friendlyName").or(self.friendly_name.take());
        self.manufacturer = field("manufacturer").or(self.manufacturer.take());
        self.model_name = field("modelName").or(self.model_name.take());
        if self.usn_uuid.is_none() {
            self.usn_uuid = field("UDN").map(|u| u.trim_start_matches("uuid:").to_string());
        }
    }

    /// The fields as (name, value) pairs for the service matcher's SSDP evidence.
    pub fn evidence(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut push = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                out.push((k.to_string(), v.clone()));
            }
        };
        push("SERVER", &self.server);
        push("LOCATION", &self.location);
        push("deviceType", &self.device_type);
        push("friendlyName", &self.friendly_name);
        push("manufacturer", &self.manufacturer);
        push("modelName", &self.model_name);
        for st in &self.st {
            out.push(("ST".into(), st.clone()));
        }
        out
    }
}

/// The text of the first `<name>…</name>` element (entities decoded, trimmed).
fn element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    let value = xml[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&");
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::udp::fixture;

    fn read(name: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/udp")
            .join(name);
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn our_msearch_asks_what_nmap_asks() {
        let ours = parse_request(&msearch("10.200.1.140", 1));
        let nmap = parse_request(&fixture("ssdp-msearch.query.hex"));
        let names = |h: &Vec<(String, String)>| h.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
        let mut a = names(&ours);
        let mut b = names(&nmap);
        a.sort();
        b.sort();
        assert_eq!(a, b);
        let get = |h: &Vec<(String, String)>, k: &str| h.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get(&ours, "MAN"), get(&nmap, "MAN"));
        assert_eq!(get(&ours, "ST"), get(&nmap, "ST"));
    }

    fn parse_request(data: &[u8]) -> Vec<(String, String)> {
        let text = std::str::from_utf8(data).unwrap();
        assert!(text.starts_with("M-SEARCH * HTTP/1.1\r\n"));
        text.split("\r\n")
            .skip(1)
            .take_while(|l| !l.is_empty())
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_uppercase(), v.trim().to_string()))
            .collect()
    }

    #[test]
    fn answers_and_descriptions_from_the_lab() {
        let mut tv = SsdpInfo::default();
        assert!(tv.merge_response(&fixture("ssdp-response.samsung-tv.hex")));
        assert_eq!(tv.location.as_deref(), Some("http://10.200.1.140:9197/dmr"));
        assert_eq!(tv.server.as_deref(), Some("SHP, UPnP/1.0, Samsung UPnP SDK/1.0"));
        assert_eq!(
            tv.usn_uuid.as_deref(),
            Some("0ee3b3a2-8ad1-4a2c-9d6e-2c5d1b6a0f11")
        );
        assert_eq!(tv.st, ["upnp:rootdevice"]);
        tv.merge_description(&read("upnp-samsung-tv.xml"));
        assert_eq!(tv.friendly_name.as_deref(), Some("[TV] Samsung Q60 Series (55)"));
        assert_eq!(tv.manufacturer.as_deref(), Some("Samsung Electronics"));
        assert_eq!(tv.model_name.as_deref(), Some("QE55Q60B"));
        assert_eq!(
            tv.device_type.as_deref(),
            Some("urn:schemas-upnp-org:device:MediaRenderer:1")
        );

        let mut sonos = SsdpInfo::default();
        assert!(sonos.merge_response(&fixture("ssdp-response.sonos.hex")));
        sonos.merge_description(&read("upnp-sonos.xml"));
        assert_eq!(sonos.usn_uuid.as_deref(), Some("RINCON_5CAAFD0A1B2C01400"));
        assert_eq!(sonos.manufacturer.as_deref(), Some("Sonos, Inc."));
        assert!(sonos
            .evidence()
            .contains(&("modelName".into(), "Sonos One".into())));

        assert!(!SsdpInfo::default().merge_response(&fixture("ssdp-msearch.query.hex")));
        assert!(!SsdpInfo::default().merge_response(b"\xff\xfe"));
    }
}
