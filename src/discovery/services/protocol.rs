//! Protocol names in nmap/IANA style (`ssh`, `http`, `domain`, `mqtt`, …) for the `service`
//! field of scan output: from what the port said first when that is conclusive, else from
//! the port number (nmap-services names, where home/IoT ports get their common use).

/// The protocol name for `port`, using its banner (first bytes sent, or the answer to a
/// probe, lossily decoded) when it identifies the protocol. TLS ports: the caller prefixes
/// `ssl/` as nmap does. `None` when neither says anything.
pub fn protocol_name(port: u16, banner: Option<&str>) -> Option<&'static str> {
    banner
        .and_then(|b| from_banner(port, b))
        .or_else(|| from_port(port))
}

fn from_banner(port: u16, b: &str) -> Option<&'static str> {
    let lower = b.trim_start().to_ascii_lowercase();
    let first = lower.lines().next().unwrap_or("");
    let name = if lower.starts_with("ssh-") {
        "ssh"
    } else if lower.starts_with("http/") {
        if port == 631 {
            "ipp"
        } else {
            "http"
        }
    } else if lower.starts_with("rtsp/") {
        "rtsp"
    } else if lower.starts_with("rfb ") {
        "vnc"
    } else if lower.starts_with("220") || lower.starts_with("120") || lower.starts_with("421") {
        if first.contains("smtp")
            || first.contains("mail")
            || first.contains("postfix")
            || first.contains("exim")
        {
            "smtp"
        } else if first.contains("ftp") || port == 21 {
            "ftp"
        } else if [25, 465, 587, 2525].contains(&port) {
            "smtp"
        } else {
            "ftp"
        }
    } else if lower.starts_with("+ok") {
        if port == 6379 || lower.contains("redis") {
            "redis"
        } else {
            "pop3"
        }
    } else if lower.starts_with("* ok") || lower.starts_with("* preauth") {
        "imap"
    } else if lower.starts_with("-err") || lower.starts_with("-noauth") || lower.contains("redis_version") {
        "redis"
    } else if b.starts_with('\u{ff}') || (b.starts_with('\u{fffd}') && port == 23) {
        "telnet"
    } else if lower.starts_with("amqp") {
        "amqp"
    } else if b.starts_with("\u{20}\u{2}") && port != 80 {
        // MQTT CONNACK: packet type 2, remaining length 2.
        "mqtt"
    } else if lower.contains("mysql_native_password") || lower.contains("caching_sha2_password") {
        "mysql"
    } else if lower.starts_with("@rsyncd") {
        "rsync"
    } else if lower.starts_with("user access verification") || (lower.contains("login:") && port == 23) {
        "telnet"
    } else {
        return None;
    };
    Some(name)
}

/// nmap-services names for the ports a home or small-office network shows.
fn from_port(port: u16) -> Option<&'static str> {
    Some(match port {
        7 => "echo",
        20 => "ftp-data",
        21 => "ftp",
        22 => "ssh",
        23 => "telnet",
        25 => "smtp",
        37 => "time",
        53 => "domain",
        67 => "dhcps",
        68 => "dhcpc",
        69 => "tftp",
        80 => "http",
        81 => "hosts2-ns",
        88 => "kerberos-sec",
        110 => "pop3",
        111 => "rpcbind",
        119 => "nntp",
        123 => "ntp",
        135 => "msrpc",
        137 => "netbios-ns",
        138 => "netbios-dgm",
        139 => "netbios-ssn",
        143 => "imap",
        161 => "snmp",
        162 => "snmptrap",
        179 => "bgp",
        389 => "ldap",
        443 => "https",
        445 => "microsoft-ds",
        465 => "smtps",
        500 => "isakmp",
        502 => "modbus",
        514 => "syslog",
        515 => "printer",
        520 => "route",
        548 => "afp",
        554 => "rtsp",
        587 => "submission",
        631 => "ipp",
        636 => "ldapssl",
        873 => "rsync",
        993 => "imaps",
        995 => "pop3s",
        1080 => "socks",
        1194 => "openvpn",
        1400 => "cadkey-tablet",
        1433 => "ms-sql-s",
        1521 => "oracle",
        1701 => "l2f",
        1723 => "pptp",
        1812 => "radius",
        1883 => "mqtt",
        1900 => "upnp",
        2049 => "nfs",
        2375 => "docker",
        2376 => "docker-s",
        3000 => "ppp",
        3128 => "squid-http",
        3306 => "mysql",
        3389 => "ms-wbt-server",
        3478 => "stun",
        3689 => "rendezvous",
        4500 => "nat-t-ike",
        5000 => "upnp",
        5001 => "commplex-link",
        5060 => "sip",
        5353 => "mdns",
        5432 => "postgresql",
        5672 => "amqp",
        5900 => "vnc",
        5984 => "couchdb",
        6379 => "redis",
        6443 => "sun-sr-https",
        7000 => "afs3-fileserver",
        8000 => "http-alt",
        8008 => "http",
        8009 => "ajp13",
        8080 => "http-proxy",
        8081 => "blackice-icecap",
        8086 => "d-s-n",
        8123 => "polipo",
        8443 => "https-alt",
        8883 => "secure-mqtt",
        8888 => "sun-answerbook",
        9000 => "cslistener",
        9090 => "zeus-admin",
        9100 => "jetdirect",
        9200 => "wap-wsp",
        9443 => "tungsten-https",
        10000 => "snet-sensor-mgmt",
        11211 => "memcache",
        27017 => "mongod",
        32400 => "plex",
        51820 => "wireguard",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::protocol_name;

    #[test]
    fn banners_beat_port_numbers() {
        assert_eq!(
            protocol_name(2222, Some("SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")),
            Some("ssh")
        );
        assert_eq!(protocol_name(21, Some("220 (vsFTPd 3.0.3)\r\n")), Some("ftp"));
        assert_eq!(
            protocol_name(2525, Some("220 mail.example.com ESMTP Postfix\r\n")),
            Some("smtp")
        );
        assert_eq!(protocol_name(8123, Some("HTTP/1.0 200 OK\r\n")), Some("http"));
        assert_eq!(
            protocol_name(8554, Some("RTSP/1.0 200 OK\r\nCSeq: 1\r\n")),
            Some("rtsp")
        );
        assert_eq!(protocol_name(5901, Some("RFB 003.008\n")), Some("vnc"));
        assert_eq!(
            protocol_name(6380, Some("-NOAUTH Authentication required.\r\n")),
            Some("redis")
        );
        assert_eq!(protocol_name(110, Some("+OK Dovecot ready.\r\n")), Some("pop3"));
        assert_eq!(
            protocol_name(143, Some("* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n")),
            Some("imap")
        );
        assert_eq!(
            protocol_name(23, Some("\u{ff}\u{fb}\u{1}\u{ff}\u{fb}\u{3}")),
            Some("telnet")
        );
    }

    #[test]
    fn ports_name_silent_services() {
        assert_eq!(protocol_name(53, None), Some("domain"));
        assert_eq!(protocol_name(3389, None), Some("ms-wbt-server"));
        assert_eq!(protocol_name(9100, None), Some("jetdirect"));
        assert_eq!(protocol_name(1883, None), Some("mqtt"));
        assert_eq!(protocol_name(65000, None), None);
        assert_eq!(protocol_name(65000, Some("hello")), None);
    }
}
