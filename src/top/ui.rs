//! The `top` screen: a header (source, window, rate, state), one of five panels, and a key
//! line. [`App`] holds what is shown and reacts to keys; [`draw`] renders it into any
//! ratatui frame (a terminal, or a test buffer). Fits 80×24.

use super::feed::Update;
use super::TopView;
use crate::model::{Percentiles, TopEntry};
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Sparkline, Table, Tabs};
use ratatui::Frame;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panel {
    Overview,
    Talkers,
    Ports,
    Dns,
    Slow,
}

impl Panel {
    pub const ALL: [Panel; 5] = [
        Panel::Overview,
        Panel::Talkers,
        Panel::Ports,
        Panel::Dns,
        Panel::Slow,
    ];

    fn title(self) -> &'static str {
        match self {
            Panel::Overview => "1 Rates",
            Panel::Talkers => "2 Talkers",
            Panel::Ports => "3 Ports",
            Panel::Dns => "4 DNS",
            Panel::Slow => "5 Slow DNS",
        }
    }

    fn index(self) -> usize {
        Panel::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }
}

/// A key, reduced to what `top` cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Tab,
    BackTab,
    Esc,
}

/// What is on screen.
pub struct App {
    pub panel: Panel,
    pub paused: bool,
    pub view: Option<TopView>,
    pub problem: Option<String>,
    /// Newest view received while paused (shown on resume).
    held: Option<TopView>,
}

impl Default for App {
    fn default() -> Self {
        App {
            panel: Panel::Overview,
            paused: false,
            view: None,
            problem: None,
            held: None,
        }
    }
}

impl App {
    pub fn receive(&mut self, u: Update) {
        match u {
            Update::View(v) => {
                self.problem = None;
                if self.paused {
                    self.held = Some(*v);
                } else {
                    self.view = Some(*v);
                }
            }
            Update::Problem(p) => self.problem = Some(p),
        }
    }

    /// Handles a key; returns false when `top` should quit.
    pub fn on_key(&mut self, k: Key) -> bool {
        match k {
            Key::Char('q') | Key::Esc => return false,
            Key::Char('p') | Key::Char(' ') => {
                self.paused = !self.paused;
                if !self.paused {
                    if let Some(v) = self.held.take() {
                        self.view = Some(v);
                    }
                }
            }
            Key::Tab => self.panel = Panel::ALL[(self.panel.index() + 1) % Panel::ALL.len()],
            Key::BackTab => {
                self.panel = Panel::ALL[(self.panel.index() + Panel::ALL.len() - 1) % Panel::ALL.len()]
            }
            Key::Char(c @ '1'..='5') => self.panel = Panel::ALL[c as usize - '1' as usize],
            _ => {}
        }
        true
    }
}

pub fn human(v: f64) -> String {
    let (v, unit) = if v >= 1e9 {
        (v / 1e9, "G")
    } else if v >= 1e6 {
        (v / 1e6, "M")
    } else if v >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    if unit.is_empty() {
        format!("{v:.0}")
    } else {
        format!("{v:.1}{unit}")
    }
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

fn opt(v: Option<u64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_else(|| "-".into())
}

fn percentile_row<'a>(label: &'a str, p: &Percentiles) -> Row<'a> {
    Row::new(vec![
        label.to_string(),
        opt(p.p50),
        opt(p.p90),
        opt(p.p95),
        opt(p.p99),
        opt(p.max),
    ])
}

const HEAD: Style = Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD);

fn block(title: &str) -> Block<'_> {
    Block::default()
        .borders(Borders::ALL)
        .title(Span::styled(title, HEAD))
}

fn top_table<'a>(title: &'a str, what: &'a str, list: &'a [TopEntry], total: u64, rows: usize) -> Table<'a> {
    let body: Vec<Row> = list
        .iter()
        .take(rows)
        .map(|e| {
            Row::new(vec![
                Cell::from(e.key.as_str()),
                Cell::from(human(e.value as f64)),
                Cell::from(pct(e.value, total)),
            ])
        })
        .collect();
    Table::new(
        body,
        [Constraint::Min(16), Constraint::Length(8), Constraint::Length(6)],
    )
    .header(Row::new(vec!["", what, "%"]).style(HEAD))
    .block(block(title))
}

/// Renders the whole screen.
pub fn draw(f: &mut Frame, app: &App) {
    let area = f.area();
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Min(5),
            Constraint::Length(1),
        ])
        .split(area);
    f.render_widget(Paragraph::new(header(app)), rows[0]);
    let tabs = Tabs::new(Panel::ALL.iter().map(|p| p.title()))
        .select(app.panel.index())
        .highlight_style(Style::new().fg(Color::Black).bg(Color::Cyan));
    f.render_widget(tabs, rows[1]);
    match &app.view {
        None => {
            let msg = app
                .problem
                .clone()
                .unwrap_or_else(|| "waiting for the first update…".into());
            f.render_widget(Paragraph::new(msg).block(block("gatewatch top")), rows[2]);
        }
        Some(v) => match app.panel {
            Panel::Overview => overview(f, rows[2], v),
            Panel::Talkers => talkers(f, rows[2], v),
            Panel::Ports => ports(f, rows[2], v),
            Panel::Dns => dns(f, rows[2], v),
            Panel::Slow => slow(f, rows[2], v),
        },
    }
    let keys = match &app.problem {
        Some(p) if app.view.is_some() => {
            Line::from(Span::styled(format!("! {p}"), Style::new().fg(Color::Red)))
        }
        _ => Line::from("q quit  p pause  Tab/1-5 panels"),
    };
    f.render_widget(Paragraph::new(keys), rows[3]);
}

fn header(app: &App) -> Line<'static> {
    let state = if app.paused {
        Span::styled(" PAUSED ", Style::new().fg(Color::Black).bg(Color::Yellow))
    } else if app.view.as_ref().is_some_and(|v| v.finished) {
        Span::styled(" ENDED ", Style::new().fg(Color::Black).bg(Color::Gray))
    } else {
        Span::styled(" LIVE ", Style::new().fg(Color::Black).bg(Color::Green))
    };
    let mut spans = vec![Span::styled("gatewatch top ", HEAD), state];
    if let Some(v) = &app.view {
        let secs = v.end_ms.saturating_sub(v.start_ms) / 1000;
        spans.push(Span::raw(format!(
            " {} · {}s window · {} pps · {}bit/s",
            v.source,
            secs,
            human(v.pps),
            human(v.bps)
        )));
    }
    Line::from(spans)
}

fn overview(f: &mut Frame, area: Rect, v: &TopView) {
    let parts = Layout::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Length(5), Constraint::Length(5), Constraint::Min(6)])
        .split(area);
    let data: Vec<u64> = v.rates.iter().map(|r| r.pps.round() as u64).collect();
    let spark = Sparkline::default()
        .block(block("Packets/s (last 2 min)"))
        .data(&data)
        .style(Style::new().fg(Color::Cyan));
    f.render_widget(spark, parts[0]);
    let pct_table = Table::new(
        vec![
            percentile_row("packets/s", &v.rate_pps),
            percentile_row("size B", &v.sizes),
        ],
        [
            Constraint::Length(10),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(8),
        ],
    )
    .header(Row::new(vec!["", "p50", "p90", "p95", "p99", "max"]).style(HEAD))
    .block(block("Percentiles (window)"));
    f.render_widget(pct_table, parts[1]);
    let c = &v.counters;
    let halves = Layout::default()
        .direction(Direction::Horizontal)
        .constraints([Constraint::Percentage(50), Constraint::Percentage(50)])
        .split(parts[2]);
    let n = c.packets;
    let mix = Table::new(
        vec![
            Row::new(vec!["TCP".to_string(), human(c.tcp as f64), pct(c.tcp, n)]),
            Row::new(vec!["UDP".to_string(), human(c.udp as f64), pct(c.udp, n)]),
            Row::new(vec!["ICMP".to_string(), human(c.icmp as f64), pct(c.icmp, n)]),
            Row::new(vec![
                "other".to_string(),
                human((c.other + c.non_ip) as f64),
                pct(c.other + c.non_ip, n),
            ]),
            Row::new(vec![
                "IPv4/IPv6".to_string(),
                format!("{}/{}", human(c.ipv4 as f64), human(c.ipv6 as f64)),
                pct(c.ipv6, n),
            ]),
        ],
        [
            Constraint::Length(10),
            Constraint::Length(12),
            Constraint::Length(7),
        ],
    )
    .header(Row::new(vec!["protocol", "packets", "%"]).style(HEAD))
    .block(block("Protocol mix"));
    f.render_widget(mix, halves[0]);
    let totals = Table::new(
        vec![
            Row::new(vec!["packets".to_string(), human(n as f64)]),
            Row::new(vec!["bytes".to_string(), human(c.bytes as f64)]),
            Row::new(vec![
                "in / out".to_string(),
                format!("{} / {}", human(c.packets_in as f64), human(c.packets_out as f64)),
            ]),
            Row::new(vec![
                "SYN/SYNACK/RST".to_string(),
                format!("{}/{}/{}", c.tcp_syn, c.tcp_synack, c.tcp_rst),
            ]),
            Row::new(vec!["drops".to_string(), v.drops.to_string()]),
        ],
        [Constraint::Length(15), Constraint::Min(10)],
    )
    .block(block("Window totals"));
    f.render_widget(totals, halves[1]);
}

fn two(area: Rect) -> std::rc::Rc<[Rect]> {
    Layout::default()
        .direction(Direction::Horizontal)
        .constraints([Constraint::Percentage(50), Constraint::Percentage(50)])
        .split(area)
}

fn talkers(f: &mut Frame, area: Rect, v: &TopView) {
    let h = two(area);
    let rows = area.height.saturating_sub(3) as usize;
    let t = &v.top;
    f.render_widget(
        top_table(
            "Top sources (bytes)",
            "bytes",
            &t.src_ips_by_bytes,
            v.counters.bytes,
            rows,
        ),
        h[0],
    );
    f.render_widget(
        top_table(
            "Top destinations (bytes)",
            "bytes",
            &t.dst_ips_by_bytes,
            v.counters.bytes,
            rows,
        ),
        h[1],
    );
}

fn ports(f: &mut Frame, area: Rect, v: &TopView) {
    let h = two(area);
    let rows = area.height.saturating_sub(3) as usize;
    let t = &v.top;
    f.render_widget(
        top_table(
            "Top dst ports (packets)",
            "pkts",
            &t.dst_ports_by_packets,
            v.counters.packets,
            rows,
        ),
        h[0],
    );
    f.render_widget(
        top_table(
            "Top dst ports (bytes)",
            "bytes",
            &t.dst_ports_by_bytes,
            v.counters.bytes,
            rows,
        ),
        h[1],
    );
}

fn dns(f: &mut Frame, area: Rect, v: &TopView) {
    let h = Layout::default()
        .direction(Direction::Horizontal)
        .constraints([Constraint::Length(30), Constraint::Min(30)])
        .split(area);
    let c = &v.counters;
    let r = c.dns_responses;
    let rc = Table::new(
        vec![
            Row::new(vec![
                "queries".to_string(),
                c.dns_queries.to_string(),
                String::new(),
            ]),
            Row::new(vec!["responses".to_string(), r.to_string(), String::new()]),
            Row::new(vec![
                "NOERROR".to_string(),
                c.dns_noerror.to_string(),
                pct(c.dns_noerror, r),
            ]),
            Row::new(vec![
                "NXDOMAIN".to_string(),
                c.dns_nxdomain.to_string(),
                pct(c.dns_nxdomain, r),
            ]),
            Row::new(vec![
                "SERVFAIL".to_string(),
                c.dns_servfail.to_string(),
                pct(c.dns_servfail, r),
            ]),
            Row::new(vec![
                "REFUSED".to_string(),
                c.dns_refused.to_string(),
                pct(c.dns_refused, r),
            ]),
            Row::new(vec![
                "NODATA".to_string(),
                c.dns_nodata.to_string(),
                pct(c.dns_nodata, r),
            ]),
        ],
        [
            Constraint::Length(10),
            Constraint::Length(8),
            Constraint::Length(7),
        ],
    )
    .block(block("Rcodes"));
    f.render_widget(rc, h[0]);
    let rows = area.height.saturating_sub(3) as usize;
    f.render_widget(
        top_table("Top qnames", "msgs", &v.top.qnames, c.dns_messages, rows),
        h[1],
    );
}

fn slow(f: &mut Frame, area: Rect, v: &TopView) {
    let body: Vec<Row> = v
        .slow
        .iter()
        .map(|s| {
            Row::new(vec![
                format!("{:.1}", s.latency_us as f64 / 1000.0),
                s.qname.clone().unwrap_or_else(|| "?".into()),
                s.client.clone(),
                s.server.clone(),
            ])
        })
        .collect();
    let empty = body.is_empty();
    let t = Table::new(
        body,
        [
            Constraint::Length(8),
            Constraint::Min(20),
            Constraint::Length(16),
            Constraint::Length(16),
        ],
    )
    .header(Row::new(vec!["ms", "qname", "client", "server"]).style(HEAD))
    .block(block(if empty {
        "Slowest DNS transactions (none matched yet)"
    } else {
        "Slowest DNS transactions"
    }));
    f.render_widget(t, area);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{TopLists, TrafficCounters};
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    fn screen(app: &App) -> String {
        let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
        term.draw(|f| draw(f, app)).unwrap();
        let buf = term.backend().buffer().clone();
        (0..24)
            .map(|y| {
                (0..80)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect::<String>()
                    + "\n"
            })
            .collect()
    }

    #[test]
    fn keys_switch_panels_pause_and_quit() {
        let mut app = App::default();
        let view = TopView {
            source: "eth0".into(),
            counters: TrafficCounters {
                packets: 10,
                tcp: 6,
                udp: 4,
                bytes: 1000,
                ..Default::default()
            },
            top: TopLists {
                src_ips_by_bytes: vec![TopEntry {
                    key: "192.0.2.7".into(),
                    value: 700,
                }],
                qnames: vec![TopEntry {
                    key: "example.org".into(),
                    value: 3,
                }],
                ..Default::default()
            },
            ..Default::default()
        };
        app.receive(Update::View(Box::new(view.clone())));
        assert!(screen(&app).contains("Protocol mix"));
        assert!(app.on_key(Key::Char('2')));
        assert!(screen(&app).contains("192.0.2.7"));
        app.on_key(Key::Tab);
        assert_eq!(app.panel, Panel::Ports);
        app.on_key(Key::Tab);
        assert!(screen(&app).contains("example.org"));
        app.on_key(Key::BackTab);
        assert_eq!(app.panel, Panel::Ports);
        app.on_key(Key::Char('p'));
        let mut newer = view;
        newer.source = "eth1".into();
        app.receive(Update::View(Box::new(newer)));
        assert!(screen(&app).contains("PAUSED") && !screen(&app).contains("eth1"));
        app.on_key(Key::Char('p'));
        assert!(screen(&app).contains("eth1"));
        assert!(!app.on_key(Key::Char('q')));
    }
}
