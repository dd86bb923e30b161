//! `gatewatch top`: the terminal UI's shell — arguments, the terminal (raw mode, alternate
//! screen, restored on exit and on panic), keys and the redraw loop. The screen itself is
//! `top::ui`, the data `top::feed`.

use super::{CliError, Exit};
use crate::top::feed::{self, FeedSpec};
use crate::top::ui::{self, App, Key};
use argh::FromArgs;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

/// Live traffic in the terminal, like pktvisor's CLI: rates with percentiles, protocol mix,
/// top talkers and ports, DNS names and rcodes, slow DNS transactions. Reads a running
/// instance's API (--url, --token), an interface (--iface, needs capture rights) or a file
/// (--pcap, at its own pace or --fast). Keys: q quit, p pause, Tab or 1-5 switch panels.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "top")]
pub struct TopCmd {
    /// URL of a running gatewatch, e.g. https://192.168.1.1:8443
    #[argh(option)]
    pub url: Option<String>,
    /// API token (create one under Settings → API tokens); default: $GATEWATCH_TOKEN
    #[argh(option)]
    pub token: Option<String>,
    /// accept the instance's certificate without checking it (its self-signed one)
    #[argh(switch)]
    pub insecure: bool,
    /// trust this PEM certificate, e.g. the instance's <data dir>/tls-cert.pem
    #[argh(option)]
    pub cacert: Option<PathBuf>,
    /// capture on this interface here instead
    #[argh(option)]
    pub iface: Option<String>,
    /// capture filter for --iface in libpcap/tcpdump syntax
    #[argh(option, short = 'b')]
    pub bpf: Option<String>,
    /// replay this pcap/pcapng file instead, at its own pace
    #[argh(option)]
    pub pcap: Option<PathBuf>,
    /// with --pcap: as fast as possible
    #[argh(switch)]
    pub fast: bool,
}

fn spec(c: TopCmd) -> Result<FeedSpec, CliError> {
    let usage = |m: &str| CliError::new(Exit::Usage, m.to_string());
    let given = [c.url.is_some(), c.iface.is_some(), c.pcap.is_some()];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(usage("give exactly one of --url, --iface or --pcap"));
    }
    if let Some(url) = c.url {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(usage(
                "--url must start with https:// (or http:// behind a proxy)",
            ));
        }
        let token = c
            .token
            .or_else(|| std::env::var("GATEWATCH_TOKEN").ok())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| usage("--url needs --token (or GATEWATCH_TOKEN)"))?;
        return Ok(FeedSpec::Remote {
            url,
            token,
            insecure: c.insecure,
            ca_cert: c.cacert,
        });
    }
    if let Some(name) = c.iface {
        return Ok(FeedSpec::Iface { name, bpf: c.bpf });
    }
    let path = c.pcap.unwrap_or_default();
    if !path.is_file() {
        return Err(usage(&format!("--pcap: {} is not a file", path.display())));
    }
    Ok(FeedSpec::Pcap { path, fast: c.fast })
}

pub fn run(c: TopCmd) -> Result<(), CliError> {
    let spec = spec(c)?;
    let (tx, rx) = mpsc::channel();
    feed::start(spec, tx).map_err(|e| CliError::new(Exit::Failure, format!("cannot start: {e}")))?;
    let mut terminal =
        ratatui::try_init().map_err(|e| CliError::new(Exit::Failure, format!("not a terminal: {e}")))?;
    let result = event_loop(&mut terminal, &rx);
    ratatui::restore();
    result.map_err(|e| CliError::new(Exit::Failure, e.to_string()))
}

fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    rx: &mpsc::Receiver<feed::Update>,
) -> std::io::Result<()> {
    let mut app = App::default();
    loop {
        while let Ok(u) = rx.try_recv() {
            app.receive(u);
        }
        terminal.draw(|f| ui::draw(f, &app))?;
        if event::poll(Duration::from_millis(250))? {
            if let Event::Key(k) = event::read()? {
                if k.kind != KeyEventKind::Press {
                    continue;
                }
                let key = match k.code {
                    KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => Key::Esc,
                    KeyCode::Char(c) => Key::Char(c),
                    KeyCode::Tab => Key::Tab,
                    KeyCode::BackTab => Key::BackTab,
                    KeyCode::Esc => Key::Esc,
                    _ => continue,
                };
                if !app.on_key(key) {
                    return Ok(());
                }
            }
        }
    }
}
