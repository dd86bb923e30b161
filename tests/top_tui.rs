//! `gatewatch top` in a real terminal (tmux, 80×24): against a running instance (the binary
//! started with `serve`, replaying the map fixture) over HTTPS with its self-signed
//! certificate, and straight from the pcap. Asserts panel content against tshark's reading
//! of the file (the top talker, DNS names) and that the keys switch panels, pause and quit.
//! The captured screens are saved to `target/top-*.txt`.
//!
//! Needs tmux and tshark; without tmux the test is skipped, except under `CI=true`.

mod common;
use common::{free_loopback_port, gatewatch_bin};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixture() -> PathBuf {
    manifest().join("tests/fixtures/map/geo-replay.pcap")
}

/// The address that sent the most bytes, as tshark counts them (`-z endpoints,ip`).
fn top_talker() -> String {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(fixture())
        .args(["-q", "-z", "endpoints,ip"])
        .output()
        .expect("tshark runs");
    let text = String::from_utf8_lossy(&out.stdout);
    // Address  Packets Bytes  Tx Packets  Tx Bytes  Rx Packets  Rx Bytes ...
    let mut best: Option<(u64, String)> = None;
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 7 || cols[0].parse::<std::net::IpAddr>().is_err() {
            continue;
        }
        // Byte columns may be "14 kB"-style in some versions; use raw numbers only.
        let nums: Vec<u64> = cols[1..].iter().filter_map(|c| c.parse().ok()).collect();
        if nums.len() >= 6 {
            let tx_bytes = nums[3];
            if best.as_ref().is_none_or(|(b, _)| tx_bytes > *b) {
                best = Some((tx_bytes, cols[0].to_string()));
            }
        }
    }
    best.expect("tshark listed endpoints").1
}

struct Tmux {
    session: String,
}

impl Tmux {
    fn start(name: &str, cmd: &str) -> Tmux {
        let session = format!("viz-{name}-{}", std::process::id());
        let ok = Command::new("tmux")
            .args(["new-session", "-d", "-s", &session, "-x", "80", "-y", "24", cmd])
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux new-session failed");
        Tmux { session }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &str) {
        Command::new("tmux")
            .args(["send-keys", "-t", &self.session, keys])
            .status()
            .unwrap();
    }

    fn alive(&self) -> bool {
        Command::new("tmux")
            .args(["has-session", "-t", &self.session])
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    }

    /// Waits until the screen contains every one of `words`; returns it.
    fn wait_for(&self, words: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.screen();
            if words.iter().all(|w| s.contains(w)) {
                return s;
            }
            assert!(Instant::now() < deadline, "screen never showed {words:?}:\n{s}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn save(&self, name: &str) -> String {
        let s = self.screen();
        let dir = manifest().join("target");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("top-{name}.txt")), &s).unwrap();
        s
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .stderr(Stdio::null())
            .status();
    }
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tools_present() -> bool {
    let have = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("tmux missing: the top test must run in CI");
        }
        println!("skipping: tmux not installed");
    }
    have
}

/// Panels, keys and quitting, the same whatever the feed.
fn exercise(t: &Tmux, talker: &str, label: &str) {
    let first = t.wait_for(&["Protocol mix", "Percentiles"]);
    assert!(first.lines().count() <= 24 && first.lines().all(|l| l.chars().count() <= 80));
    t.keys("2");
    let s = t.wait_for(&["Top sources", talker]);
    let first_row = s.lines().nth(4).unwrap_or_default();
    assert!(
        first_row.starts_with(&format!("│{talker} ")),
        "{talker} is not first:\n{s}"
    );
    println!("--- {label}: talkers panel ---\n{s}");
    t.save(&format!("{label}-talkers"));
    t.keys("Tab");
    t.wait_for(&["Top dst ports"]);
    t.keys("4");
    let s = t.wait_for(&["Rcodes", "NXDOMAIN"]);
    assert!(
        s.contains("google.com"),
        "DNS panel lacks the fixture's names:\n{s}"
    );
    t.save(&format!("{label}-dns"));
    t.keys("5");
    t.wait_for(&["Slowest DNS"]);
    t.keys("1");
    t.wait_for(&["Protocol mix"]);
    t.keys("p");
    t.wait_for(&["PAUSED"]);
    t.save(&format!("{label}-paused"));
    t.keys("p");
    t.keys("q");
    let deadline = Instant::now() + Duration::from_secs(10);
    while t.alive() {
        assert!(Instant::now() < deadline, "q did not quit:\n{}", t.screen());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn top_against_a_running_instance_and_a_file() {
    if !tools_present() {
        return;
    }
    let talker = top_talker();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("gatewatch.toml");
    let port = free_loopback_port();
    std::fs::write(
        &config,
        format!(
            "[web]\nlisten = \"127.0.0.1:{port}\"\n\n[capture]\nreplay = {:?}\nreplay_speed = \"fast\"\n",
            fixture()
        ),
    )
    .unwrap();
    let bin = gatewatch_bin();
    let data_args = [
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ];
    let out = Command::new(&bin)
        .args(["token", "create", "--name", "top", "--role", "viewer"])
        .args(data_args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let server = Server(
        Command::new(&bin)
            .arg("serve")
            .args(data_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "serve did not listen on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }

    let cmd = format!(
        "{} top --url https://127.0.0.1:{port} --token {token} --insecure",
        bin.display()
    );
    let t = Tmux::start("top-url", &cmd);
    exercise(&t, &talker, "url");
    drop(t);

    // A wrong token says so on screen instead of showing nothing.
    let cmd = format!(
        "{} top --url https://127.0.0.1:{port} --token gw_x_nope --insecure",
        bin.display()
    );
    let t = Tmux::start("top-badtoken", &cmd);
    t.wait_for(&["401"]);
    t.keys("q");
    drop(t);
    drop(server);

    let cmd = format!("{} top --pcap {} --fast", bin.display(), fixture().display());
    let t = Tmux::start("top-pcap", &cmd);
    t.wait_for(&["ENDED"]);
    exercise(&t, &talker, "pcap");
}
