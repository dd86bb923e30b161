//! Talks to one open port: waits for a banner, sends the probe `discovery::identify`
//! chooses (over TLS where needed), and reports what answered.

use super::PortReport;
use crate::discovery::identify::{self, Identified, Probe};
use crate::discovery::ports::port_name;
use crate::discovery::x509::{self, CertInfo};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a server that speaks first gets to do so.
const BANNER_WAIT: Duration = Duration::from_millis(500);
/// Once data flows, a pause this long ends the answer.
const IDLE_GAP: Duration = Duration::from_millis(200);
const MAX_ANSWER: usize = 16 * 1024;

/// Identifies the service on an open port; never fails (an unknown service is reported by
/// its port-table name).
pub async fn identify(addr: SocketAddr, timeout: Duration) -> PortReport {
    let mut report = PortReport {
        port: addr.port(),
        proto: "tcp",
        service: port_name(addr.port()).unwrap_or("unknown").to_string(),
        product: None,
        version: None,
        banner: None,
        http: None,
        tls: false,
        tls_cert: None,
        snmp: None,
        dns: None,
        ntp: None,
        method: "port",
    };
    let Ok(Ok(mut stream)) = tokio::time::timeout(timeout, TcpStream::connect(addr)).await else {
        return report;
    };
    let banner = read_answer(&mut stream, BANNER_WAIT).await;
    if !banner.is_empty() {
        report.banner = Some(printable(&banner));
        if let Some(id) = identify::from_banner(&banner) {
            apply(&mut report, id, "banner");
        }
        return report;
    }
    let first = identify::first_probe(addr.port());
    let mut fresh = Some(stream);
    for probe in std::iter::once(first).chain(identify::fallback(first)) {
        let stream = match fresh.take() {
            Some(s) => s,
            None => match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
                Ok(Ok(s)) => s,
                _ => return report,
            },
        };
        match ask(stream, addr, probe, timeout).await {
            Ok((id, tls, cert)) => {
                report.tls = tls;
                report.tls_cert = cert;
                apply(&mut report, id, if tls { "tls" } else { "probe" });
                return report;
            }
            // Not a byte and no close for a whole timeout after an HTTP request: a port
            // that waits for its own protocol (SMB, RDP, JetDirect). A TLS server would
            // have rejected the request, so the TLS try is skipped.
            Err(NoAnswer::Silent) => return report,
            Err(NoAnswer::Other) => {}
        }
    }
    report
}

fn apply(report: &mut PortReport, id: Identified, method: &'static str) {
    report.service = id.service;
    report.product = id.product;
    report.version = id.version;
    report.http = id.http;
    report.method = method;
}

/// Sends `probe` on `stream` and interprets the answer. A TLS handshake that works but
/// gets no HTTP answer is still a TLS service ("ssl").
async fn ask(
    stream: TcpStream,
    addr: SocketAddr,
    probe: Probe,
    timeout: Duration,
) -> Result<(Identified, bool, Option<CertInfo>), NoAnswer> {
    let host = addr.ip().to_string();
    if probe == Probe::Tls {
        let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
        let connector = tokio_rustls::TlsConnector::from(tls_config());
        let mut tls = match tokio::time::timeout(timeout, connector.connect(name, stream)).await {
            Ok(Ok(tls)) => tls,
            _ => return Err(NoAnswer::Other),
        };
        let cert = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|leaf| x509::parse_certificate(leaf));
        let answer = exchange(&mut tls, &probe.payload(&host), timeout).await;
        let id = identify::from_response(Probe::Tls, &answer).unwrap_or_else(|| Identified {
            service: "ssl".into(),
            ..Default::default()
        });
        return Ok((id, true, cert));
    }
    let mut stream = stream;
    let started = std::time::Instant::now();
    let answer = exchange(&mut stream, &probe.payload(&host), timeout).await;
    if answer.is_empty() && started.elapsed() >= timeout {
        return Err(NoAnswer::Silent);
    }
    identify::from_response(probe, &answer)
        .map(|id| (id, false, None))
        .ok_or(NoAnswer::Other)
}

/// Why a probe identified nothing.
enum NoAnswer {
    /// Quiet for the whole timeout.
    Silent,
    /// Closed, refused, or answered something else.
    Other,
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    payload: &[u8],
    timeout: Duration,
) -> Vec<u8> {
    if tokio::time::timeout(timeout, s.write_all(payload)).await.is_err() {
        return Vec::new();
    }
    let _ = s.flush().await;
    read_answer(s, timeout).await
}

/// Reads until EOF, `MAX_ANSWER` bytes, `first_wait` without any data, or a short pause
/// after data started.
async fn read_answer<S: AsyncRead + Unpin>(s: &mut S, first_wait: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let mut wait = first_wait;
    while out.len() < MAX_ANSWER {
        match tokio::time::timeout(wait, s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {
                out.extend_from_slice(&buf[..n]);
                wait = IDLE_GAP;
            }
            _ => break,
        }
    }
    out
}

/// A banner for display: the first line, non-printable bytes escaped, at most 200 chars.
fn printable(data: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(data)
        .chars()
        .take_while(|c| *c != '\n')
        .filter(|c| *c != '\r')
        .map(|c| if c.is_control() { '.' } else { c })
        .take(200)
        .collect();
    text
}

/// A TLS client that accepts any certificate: a scanner identifies services, it does not
/// trust them, and devices on a LAN mostly have self-signed certificates.
fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let verifier = Arc::new(AcceptAny(provider.clone()));
            let mut config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("the ring provider supports TLS 1.2 and 1.3")
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth();
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Arc::new(config)
        })
        .clone()
}

#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
