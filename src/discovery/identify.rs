//! What runs on an open port, from bytes alone (sans-IO): which probe to send, and what a
//! banner or a probe's answer says about the protocol, product and version.
//!
//! The scanner (`scan`) does the I/O: it connects, waits briefly for a banner, sends
//! [`Probe::payload`] if the server stays quiet, and hands whatever came back here.

use serde::Serialize;

/// A question to ask a server that does not speak first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Http,
    /// A TLS handshake (done by the scanner), then HTTP inside it.
    Tls,
    DnsTcp,
    Mqtt,
    Redis,
    Rtsp,
}

/// Ports whose servers expect TLS from the first byte.
const TLS_PORTS: [u16; 14] = [
    443, 465, 636, 853, 993, 995, 2376, 5001, 6443, 8009, 8443, 8883, 9443, 10250,
];

/// The first probe for a quiet port. When it gets nothing back, the scanner tries
/// [`fallback`].
pub fn first_probe(port: u16) -> Probe {
    match port {
        53 => Probe::DnsTcp,
        1883 => Probe::Mqtt,
        6379 => Probe::Redis,
        554 | 8554 => Probe::Rtsp,
        p if TLS_PORTS.contains(&p) => Probe::Tls,
        _ => Probe::Http,
    }
}

/// The second try: plain ports may be TLS and the other way round.
pub fn fallback(probe: Probe) -> Option<Probe> {
    match probe {
        Probe::Http => Some(Probe::Tls),
        Probe::Tls => Some(Probe::Http),
        _ => None,
    }
}

impl Probe {
    /// Bytes to send (for `Tls`, the bytes to send once the handshake is done).
    pub fn payload(self, host: &str) -> Vec<u8> {
        match self {
            Probe::Http | Probe::Tls => {
                format!("GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: gatewatch\r\nAccept: */*\r\nConnection: close\r\n\r\n")
                    .into_bytes()
            }
            // A standard query for the root's NS record, length-prefixed for TCP.
            Probe::DnsTcp => vec![
                0x00, 0x11, 0x67, 0x77, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
                0x00, 0x01,
            ],
            // CONNECT, MQTT 3.1.1, clean session, keep-alive 60 s, client id "gw".
            Probe::Mqtt => vec![
                0x10, 0x0e, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x02, b'g', b'w',
            ],
            Probe::Redis => b"PING\r\n".to_vec(),
            Probe::Rtsp => b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: gatewatch\r\n\r\n".to_vec(),
        }
    }
}

/// What an HTTP answer says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HttpInfo {
    pub status: u16,
    pub title: Option<String>,
    pub server: Option<String>,
    /// Header names and values as received (first 32), for service matching.
    #[serde(skip)]
    pub headers: Vec<(String, String)>,
    /// The start of the body, for service matching.
    #[serde(skip)]
    pub body_start: String,
}

/// A protocol identified on a port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identified {
    /// nmap/IANA-style protocol name: ssh, http, https, domain, mqtt, rtsp, ssl, …
    pub service: String,
    pub product: Option<String>,
    pub version: Option<String>,
    pub http: Option<HttpInfo>,
}

fn named(service: &str) -> Identified {
    Identified {
        service: service.into(),
        ..Default::default()
    }
}

/// A banner the server sent before we said anything.
pub fn from_banner(banner: &[u8]) -> Option<Identified> {
    let text = String::from_utf8_lossy(banner);
    let first = text.lines().next().unwrap_or_default().trim();
    if let Some(rest) = first.strip_prefix("SSH-") {
        // SSH-2.0-OpenSSH_9.2p1 Debian-2 → OpenSSH 9.2p1
        let software = rest.split_once('-').map(|(_, s)| s).unwrap_or(rest);
        let software = software.split_whitespace().next().unwrap_or(software);
        let (product, version) = match software.split_once('_') {
            Some((p, v)) => (p.to_string(), Some(v.to_string())),
            None => (software.to_string(), None),
        };
        return Some(Identified {
            service: "ssh".into(),
            product: Some(product),
            version,
            http: None,
        });
    }
    if banner.first() == Some(&0xff) || first.contains("login:") || first.contains("User Access Verification")
    {
        return Some(named("telnet"));
    }
    if first.starts_with("220") {
        let lower = first.to_ascii_lowercase();
        let service = if lower.contains("ftp") {
            "ftp"
        } else if lower.contains("smtp") || lower.contains("esmtp") || lower.contains("mail") {
            "smtp"
        } else {
            "ftp"
        };
        let mut id = named(service);
        if let Some(start) = lower.find("vsftpd") {
            id.product = Some("vsftpd".into());
            id.version = first[start + 6..]
                .split(|c: char| c == ')' || c.is_whitespace())
                .find(|s| !s.is_empty())
                .map(str::to_string);
        }
        return Some(id);
    }
    if first.starts_with("+OK") {
        return Some(named("pop3"));
    }
    if first.starts_with("* OK") {
        return Some(named("imap"));
    }
    if first.starts_with("RFB ") {
        return Some(named("vnc"));
    }
    // MySQL greets with a length-prefixed handshake packet, protocol version 10.
    if banner.len() > 5 && banner[4] == 10 && banner[3] == 0 {
        return Some(named("mysql"));
    }
    if first.starts_with("HTTP/") {
        return from_response(Probe::Http, banner);
    }
    None
}

/// The answer to `probe`. `None` when it is not an answer to that question.
pub fn from_response(probe: Probe, data: &[u8]) -> Option<Identified> {
    if data.is_empty() {
        return None;
    }
    match probe {
        Probe::Http | Probe::Tls => {
            if data.starts_with(b"RTSP/1.") {
                return Some(named("rtsp"));
            }
            let http = parse_http(data)?;
            let server = http.server.clone().unwrap_or_default().to_ascii_lowercase();
            let mut id = named(match probe {
                Probe::Tls => "https",
                _ if server.contains("airtunes") => "airplay",
                _ => "http",
            });
            if let Some(s) = &http.server {
                let (product, version) = match s.split_once('/') {
                    Some((p, v)) => (p.to_string(), v.split_whitespace().next().map(str::to_string)),
                    None => (s.clone(), None),
                };
                id.product = Some(product);
                id.version = version;
            }
            id.http = Some(http);
            Some(id)
        }
        // Length prefix, then our query id and a header with the QR (response) bit set.
        Probe::DnsTcp => {
            (data.len() >= 5 && data[2..4] == [0x67, 0x77] && data[4] & 0x80 != 0).then(|| named("domain"))
        }
        // CONNACK.
        Probe::Mqtt => (data[0] == 0x20).then(|| named("mqtt")),
        Probe::Redis => {
            (data.starts_with(b"+PONG") || data.starts_with(b"-NOAUTH") || data.starts_with(b"-ERR"))
                .then(|| named("redis"))
        }
        Probe::Rtsp => data.starts_with(b"RTSP/1.").then(|| {
            let mut id = named("rtsp");
            id.product = header(data, "server");
            id
        }),
    }
}

fn header(data: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    text.lines()
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_string())
}

/// Status line, headers, `<title>` and the start of the body of an HTTP response.
pub fn parse_http(data: &[u8]) -> Option<HttpInfo> {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split("\r\n");
    let status_line = lines.next()?;
    let mut parts = status_line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/") {
        return None;
    }
    let status: u16 = parts.next()?.parse().ok()?;
    let mut headers = Vec::new();
    for line in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if headers.len() < 32 {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
    }
    let body: String = lines.collect::<Vec<_>>().join("\r\n");
    let server = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("server"))
        .map(|(_, v)| v.clone());
    Some(HttpInfo {
        status,
        title: html_title(&body),
        server,
        headers,
        body_start: body.chars().take(2048).collect(),
    })
}

fn html_title(body: &str) -> Option<String> {
    let lower = body.to_ascii_lowercase();
    let open = lower.find("<title")?;
    let start = open + lower[open..].find('>')? + 1;
    let end = start + lower[start..].find("</title")?;
    let title = body[start..end]
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'");
    let title = title.split_whitespace().collect::<Vec<_>>().join(" ");
    (!title.is_empty()).then_some(title)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_and_ftp_banners() {
        let id = from_banner(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n").unwrap();
        assert_eq!(
            (id.service.as_str(), id.product.as_deref(), id.version.as_deref()),
            ("ssh", Some("OpenSSH"), Some("9.2p1"))
        );
        let id = from_banner(b"SSH-2.0-dropbear_2022.83\r\n").unwrap();
        assert_eq!(id.product.as_deref(), Some("dropbear"));
        let id = from_banner(b"220 (vsFTPd 3.0.3)\r\n").unwrap();
        assert_eq!(
            (id.service.as_str(), id.product.as_deref(), id.version.as_deref()),
            ("ftp", Some("vsftpd"), Some("3.0.3"))
        );
        assert_eq!(
            from_banner(b"220 mail.example ESMTP Postfix\r\n")
                .unwrap()
                .service,
            "smtp"
        );
        assert_eq!(from_banner(&[0xff, 0xfd, 0x18]).unwrap().service, "telnet");
        assert_eq!(from_banner(b"random noise"), None);
    }

    #[test]
    fn http_answers() {
        let resp = b"HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6 Python/3.11.2\r\nContent-Type: text/html\r\n\r\n<html><head><TITLE>Pi-hole &amp; co</TITLE></head>";
        let id = from_response(Probe::Http, resp).unwrap();
        assert_eq!(id.service, "http");
        assert_eq!(id.product.as_deref(), Some("SimpleHTTP"));
        let http = id.http.unwrap();
        assert_eq!((http.status, http.title.as_deref()), (200, Some("Pi-hole & co")));
        assert_eq!(from_response(Probe::Tls, resp).unwrap().service, "https");
        let airplay = b"HTTP/1.1 403 Forbidden\r\nServer: AirTunes/366.0\r\n\r\n";
        assert_eq!(from_response(Probe::Http, airplay).unwrap().service, "airplay");
        assert_eq!(from_response(Probe::Http, b"\x15\x03\x01\x00\x02\x02\x46"), None);
    }

    #[test]
    fn binary_protocol_answers() {
        assert_eq!(
            from_response(Probe::Mqtt, &[0x20, 0x02, 0x00, 0x00])
                .unwrap()
                .service,
            "mqtt"
        );
        assert_eq!(
            from_response(Probe::Redis, b"+PONG\r\n").unwrap().service,
            "redis"
        );
        assert_eq!(
            from_response(Probe::Rtsp, b"RTSP/1.0 200 OK\r\nCSeq: 1\r\n\r\n")
                .unwrap()
                .service,
            "rtsp"
        );
        let dns = [
            0x00, 0x20, 0x67, 0x77, 0x81, 0x80, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        ];
        assert_eq!(from_response(Probe::DnsTcp, &dns).unwrap().service, "domain");
        assert_eq!(
            from_response(Probe::DnsTcp, &[0x00, 0x20, 0x67, 0x77, 0x01, 0x00]),
            None
        );
        assert_eq!(from_response(Probe::Mqtt, b"HTTP/1.1 400"), None);
    }

    #[test]
    fn probe_choice() {
        assert_eq!(first_probe(443), Probe::Tls);
        assert_eq!(first_probe(53), Probe::DnsTcp);
        assert_eq!(first_probe(8123), Probe::Http);
        assert_eq!(fallback(Probe::Http), Some(Probe::Tls));
        assert_eq!(fallback(Probe::Mqtt), None);
    }
}
