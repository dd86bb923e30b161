//! `gatewatch capture`: live capture on one or more interfaces into one traffic summary,
//! printed like `gatewatch pcap` when it stops (Ctrl-C, SIGTERM or `--seconds`), with the
//! packets and drops of each interface. CLI glue only: the capture threads are
//! `capture::live::threads`, the summary is `traffic::report`.

use super::{parse_dns_ports, CliError, Exit};
use crate::capture::interfaces::{self, Interface};
use crate::capture::live::threads::{run_session, InterfaceReport, InterfaceStatus, SessionEvent};
use crate::capture::{LiveError, LiveOptions, LiveSource};
use crate::traffic::report::{self, InputInfo};
use crate::traffic::{Engine, TrafficConfig, Window};
use argh::FromArgs;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Capture live traffic and print its summary (as `gatewatch pcap` does) with each
/// interface's received and dropped packets when stopped by Ctrl-C, SIGTERM or --seconds.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "capture")]
pub struct CaptureCmd {
    /// interfaces to capture on (default: every interface that is up and not loopback)
    #[argh(positional)]
    pub interfaces: Vec<String>,
    /// stop after this many seconds
    #[argh(option)]
    pub seconds: Option<u64>,
    /// print the summary as JSON (the `gatewatch pcap --json` schema plus a "capture" key)
    #[argh(switch)]
    pub json: bool,
    /// capture filter in libpcap/tcpdump syntax, run in the kernel, e.g. 'not port 22'
    #[argh(option, short = 'b')]
    pub bpf: Option<String>,
    /// put the interfaces in promiscuous mode
    #[argh(switch)]
    pub promisc: bool,
    /// bytes kept of each packet (default 65535)
    #[argh(option)]
    pub snaplen: Option<u32>,
    /// kernel capture buffer per interface in MiB (default 4)
    #[argh(option)]
    pub buffer_mib: Option<u32>,
    /// hand each packet over at once instead of per filled buffer block
    #[argh(switch)]
    pub immediate: bool,
    /// print a summary for every window of this many seconds as it closes
    #[argh(option)]
    pub period: Option<u64>,
    /// ports treated as DNS over UDP and TCP, comma-separated (default: 53)
    #[argh(option, default = "String::from(\"53\")")]
    pub dns_ports: String,
    /// list the interfaces with their addresses and exit
    #[argh(switch)]
    pub list: bool,
}

static SIGNALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    SIGNALLED.store(true, Ordering::Relaxed);
}

/// The first SIGINT/SIGTERM asks for a clean stop; a second one kills (SA_RESETHAND).
fn install_stop_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe; the
        // sigaction struct is zeroed and then filled with valid values.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            sa.sa_flags = libc::SA_RESETHAND;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

fn live_error(e: LiveError) -> CliError {
    let exit = match e {
        LiveError::NoSuchInterface { .. } | LiveError::BadFilter { .. } => Exit::Usage,
        LiveError::PermissionDenied { .. } | LiveError::Open { .. } => Exit::Failure,
    };
    CliError::new(exit, e.to_string())
}

pub fn run(c: CaptureCmd) -> Result<(), CliError> {
    let listed = interfaces::list_interfaces()
        .map_err(|e| CliError::new(Exit::Failure, format!("cannot list interfaces: {e}")))?;
    if c.list {
        print!("{}", interface_table(&listed));
        return Ok(());
    }
    let dns_ports = parse_dns_ports(&c.dns_ports)?;
    let names = if c.interfaces.is_empty() {
        let d = interfaces::default_capture_interfaces(&listed);
        if d.is_empty() {
            return Err(CliError::new(
                Exit::Usage,
                "no interface is up apart from loopback; name one, e.g. `gatewatch capture lo`",
            ));
        }
        d
    } else {
        c.interfaces.clone()
    };
    if c.period == Some(0) || c.seconds == Some(0) {
        return Err(CliError::new(
            Exit::Usage,
            "--period and --seconds must be at least 1",
        ));
    }
    let defaults = LiveOptions::default();
    let opts = LiveOptions {
        snaplen: c.snaplen.unwrap_or(defaults.snaplen),
        promiscuous: c.promisc,
        buffer_size: c
            .buffer_mib
            .map(|m| m.saturating_mul(1 << 20))
            .unwrap_or(defaults.buffer_size),
        immediate_mode: c.immediate,
        bpf_filter: c.bpf.clone(),
        ..defaults
    };
    let mut sources = Vec::new();
    for name in &names {
        sources.push(LiveSource::open(name, &opts).map_err(live_error)?);
    }
    install_stop_signals();
    let period = c.period.map(Duration::from_secs);
    let mut engine = Engine::new(TrafficConfig {
        dns_ports: dns_ports.clone(),
        period,
        ..Default::default()
    });
    eprintln!("gatewatch: capturing on {} (Ctrl-C to stop)", names.join(", "));
    let started = Instant::now();
    let deadline = c.seconds.map(|s| started + Duration::from_secs(s));
    let mut should_stop =
        || SIGNALLED.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d);
    let tty = std::io::stderr().is_terminal();
    let mut last_progress: Option<(Instant, u64)> = None;
    let json = c.json;
    let mut on_event = |ev: SessionEvent<'_>| match ev {
        SessionEvent::WindowClosed(w) => {
            if tty {
                eprint!("\r\x1b[K");
            }
            print_window(w, &dns_ports, json, true, None);
        }
        SessionEvent::Progress(statuses) => {
            if tty {
                eprint!("\r\x1b[K{}", progress_line(statuses, started, &mut last_progress));
            }
        }
    };
    let reports = run_session(sources, &mut engine, period, &mut should_stop, &mut on_event)
        .map_err(|e| CliError::new(Exit::Failure, format!("cannot start a capture thread: {e}")))?;
    if tty {
        eprint!("\r\x1b[K");
    }
    let window = engine.finish();
    let capture = CaptureInfo {
        reports: &reports,
        filter: c.bpf.as_deref(),
        seconds: started.elapsed().as_secs_f64(),
    };
    print_window(&window, &dns_ports, json, period.is_some(), Some(&capture));
    let failed: Vec<String> = reports
        .iter()
        .filter_map(|r| r.error.as_ref().map(|e| e.to_string()))
        .collect();
    if !failed.is_empty() {
        return Err(CliError::new(Exit::Failure, failed.join("; ")));
    }
    Ok(())
}

struct CaptureInfo<'a> {
    reports: &'a [InterfaceReport],
    filter: Option<&'a str>,
    seconds: f64,
}

/// One window: JSON Lines with `--period`, one pretty JSON object or text otherwise. The
/// last window carries the capture's per-interface figures.
fn print_window(
    w: &Window,
    dns_ports: &[u16],
    json: bool,
    per_window: bool,
    capture: Option<&CaptureInfo<'_>>,
) {
    let out = if json {
        let mut v = report::to_json(w, &InputInfo::default(), dns_ports);
        if let (Some(cap), Some(obj)) = (capture, v.as_object_mut()) {
            obj.insert("capture".into(), capture_json(cap));
        }
        if per_window {
            serde_json::to_string(&v).unwrap_or_default() + "\n"
        } else {
            serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
        }
    } else {
        let mut text = String::new();
        if per_window {
            let _ = writeln!(
                text,
                "=== window ending {} ===",
                chrono::Utc::now().format("%H:%M:%S")
            );
        }
        text.push_str(&report::to_text(w, &InputInfo::default(), dns_ports));
        if let Some(cap) = capture {
            text.push_str(&capture_text(cap));
        }
        text
    };
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes()).and_then(|_| stdout.flush());
}

fn capture_json(cap: &CaptureInfo<'_>) -> Value {
    let interfaces: Vec<Value> = cap
        .reports
        .iter()
        .map(|r| {
            let s = &r.status;
            json!({
                "interface": s.interface,
                "packets": s.packets,
                "received": s.stats.received,
                "dropped_kernel": s.stats.dropped_kernel,
                "dropped_interface": s.stats.dropped_interface,
                "error": r.error.as_ref().map(|e| e.to_string()),
            })
        })
        .collect();
    json!({"interfaces": interfaces, "filter": cap.filter, "seconds": cap.seconds})
}

fn capture_text(cap: &CaptureInfo<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nCapture ({:.1} s{})",
        cap.seconds,
        match cap.filter {
            Some(f) => format!(", filter {f:?}"),
            None => String::new(),
        }
    );
    let _ = writeln!(
        out,
        "  {:<16} {:>12} {:>12} {:>12} {:>12}",
        "interface", "packets", "received", "dropped", "if dropped"
    );
    for r in cap.reports {
        let s = &r.status;
        let _ = writeln!(
            out,
            "  {:<16} {:>12} {:>12} {:>12} {:>12}",
            s.interface, s.packets, s.stats.received, s.stats.dropped_kernel, s.stats.dropped_interface
        );
        if let Some(e) = &r.error {
            let _ = writeln!(out, "    error: {e}");
        }
    }
    out
}

fn progress_line(
    statuses: &[InterfaceStatus],
    started: Instant,
    last: &mut Option<(Instant, u64)>,
) -> String {
    let packets: u64 = statuses.iter().map(|s| s.packets).sum();
    let drops: u64 = statuses
        .iter()
        .map(|s| s.stats.dropped_kernel + s.stats.dropped_interface)
        .sum();
    let now = Instant::now();
    let rate = match *last {
        Some((t, n)) if now > t => (packets.saturating_sub(n)) as f64 / (now - t).as_secs_f64(),
        _ => 0.0,
    };
    *last = Some((now, packets));
    format!(
        "{:>6.0} s  {packets} packets  {rate:.0}/s  dropped {drops}",
        started.elapsed().as_secs_f64()
    )
}

fn interface_table(list: &[Interface]) -> String {
    let mut out = String::new();
    for i in list {
        let mut flags = vec![if i.up { "up" } else { "down" }];
        if i.loopback {
            flags.push("loopback");
        }
        if i.up && !i.running {
            flags.push("no-carrier");
        }
        let addrs: Vec<String> = i.addresses.iter().map(|a| a.to_string()).collect();
        let _ = writeln!(out, "{:<16} {:<22} {}", i.name, flags.join(","), addrs.join(" "));
    }
    out
}
