//! Diagnostic logging of the process through `tracing`: to stderr, or to the local syslog
//! socket (`/dev/log` on Linux, `/var/run/log` on FreeBSD) as RFC 3164 lines.
//!
//! Never per packet or per line of input: callers log events and summaries only. Secrets
//! (passwords, tokens, cookies) are never passed to a log macro.

use crate::config::{LogConfig, LogTarget};
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::sync::Mutex;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

const SYSLOG_SOCKETS: [&str; 2] = ["/dev/log", "/var/run/log"];

/// Installs the global subscriber. `GATEWATCH_LOG`, if set, overrides the configured level.
/// Returns an error message when syslog was asked for but no socket is there.
pub fn init(cfg: &LogConfig) -> Result<(), String> {
    let level = std::env::var("GATEWATCH_LOG").unwrap_or_else(|_| cfg.level.clone());
    let filter = parse_filter(&level).unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let builder = tracing_subscriber::fmt().with_max_level(tracing::level_filters::LevelFilter::TRACE);
    let result = match cfg.target {
        LogTarget::Stderr => builder
            .with_writer(std::io::stderr)
            .finish()
            .with(filter)
            .try_init(),
        LogTarget::Syslog => {
            let writer = SyslogWriter::connect().ok_or_else(|| {
                format!(
                    "log.target is \"syslog\" but none of {} accepts messages; use \"stderr\"",
                    SYSLOG_SOCKETS.join(", ")
                )
            })?;
            let writer = SyslogMaker(Mutex::new(writer));
            builder
                .with_ansi(false)
                .without_time()
                .with_writer(writer)
                .finish()
                .with(filter)
                .try_init()
        }
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
    Ok(())
}

/// A level ("debug") or per-target filter ("info,gatewatch::traffic=debug"), as `log.level`
/// and `GATEWATCH_LOG` take it. (`Targets` rather than `EnvFilter`: the latter's span and
/// field filters pull in a regex engine: 156 kB of the x86_64 router binary.)
pub fn parse_filter(level: &str) -> Option<Targets> {
    level.parse().ok()
}

/// Sends each formatted event as one datagram with facility daemon, severity info.
struct SyslogWriter {
    socket: UnixDatagram,
    buf: Vec<u8>,
}

impl SyslogWriter {
    fn connect() -> Option<Self> {
        let socket = UnixDatagram::unbound().ok()?;
        SYSLOG_SOCKETS.iter().find(|p| socket.connect(p).is_ok())?;
        Some(SyslogWriter {
            socket,
            buf: Vec::new(),
        })
    }
}

impl Write for SyslogWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        // <30> = facility daemon (3) * 8 + severity info (6).
        let line = String::from_utf8_lossy(&self.buf);
        let msg = format!("<30>gatewatch[{}]: {}", std::process::id(), line.trim_end());
        self.buf.clear();
        // A full or missing syslog socket must not take the process down.
        let _ = self.socket.send(msg.as_bytes());
        Ok(())
    }
}

/// Hands out one locked writer per event.
struct SyslogMaker(Mutex<SyslogWriter>);

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for SyslogMaker {
    type Writer = SyslogGuard<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        SyslogGuard(self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Flushes one event as one datagram when dropped.
pub struct SyslogGuard<'a>(std::sync::MutexGuard<'a, SyslogWriter>);

impl Write for SyslogGuard<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.write(data)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl Drop for SyslogGuard<'_> {
    fn drop(&mut self) {
        let _ = self.0.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::parse_filter;
    use tracing::Level;

    #[test]
    fn levels_and_per_target_filters_parse_and_bad_levels_do_not() {
        let plain = parse_filter("debug").expect("a bare level");
        assert!(plain.would_enable("hyper::proto", &Level::DEBUG));
        assert!(!plain.would_enable("hyper::proto", &Level::TRACE));

        let mixed = parse_filter("warn,gatewatch::traffic=trace").expect("level plus target");
        assert!(mixed.would_enable("gatewatch::traffic::engine", &Level::TRACE));
        assert!(!mixed.would_enable("gatewatch::web", &Level::INFO));
        assert!(mixed.would_enable("gatewatch::web", &Level::WARN));

        assert!(parse_filter("gatewatch=loud").is_none());
    }
}
