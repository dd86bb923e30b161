//! The real `gatewatch` binary: subcommands, exit codes, messages, and `serve` as a process.

mod common;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const PW: &str = "a long enough password";

/// A scratch directory with a data dir inside, and the binary run against it.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The binary with a clean environment: no GATEWATCH_* variables, HOME and the working
    /// directory in the scratch dir.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(common::gatewatch_bin());
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("HOME", self.dir.path())
            .env("USER", "tester")
            .env_remove("SUDO_USER")
            .env_remove("RUST_LOG");
        for (k, _) in std::env::vars() {
            if k.starts_with("GATEWATCH_") {
                cmd.env_remove(k);
            }
        }
        cmd
    }

    /// Runs `args` with `stdin` piped in (empty when `None`).
    fn run_with(&self, args: &[&str], stdin: Option<&str>, extra_env: &[(&str, &str)]) -> Run {
        let mut cmd = self.command(args);
        cmd.envs(extra_env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        {
            let mut input = child.stdin.take().unwrap();
            if let Some(text) = stdin {
                // A command that fails before reading stdin (a usage error) closes it first.
                match input.write_all(text.as_bytes()) {
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                    other => other.unwrap(),
                }
            }
        }
        Run::from(child.wait_with_output().unwrap(), args)
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, None, &[])
    }

    /// Runs `args` followed by `--data-dir <data>`.
    fn run_data(&self, args: &[&str], stdin: Option<&str>) -> Run {
        let data = self.data();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--data-dir", data.to_str().unwrap()]);
        self.run_with(&all, stdin, &[])
    }

    fn user_list(&self) -> String {
        let r = self.run_data(&["user", "list"], None);
        r.ok();
        r.stdout
    }
}

struct Run {
    what: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn from(out: Output, args: &[&str]) -> Run {
        Run {
            what: args.join(" "),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn expect(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "`gatewatch {}`\nstdout: {}\nstderr: {}",
            self.what,
            self.stdout,
            self.stderr
        );
        self
    }

    fn ok(&self) -> &Self {
        self.expect(0)
    }

    fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "`gatewatch {}`: stderr lacks {needle:?}: {}",
            self.what,
            self.stderr
        );
        self
    }
}

/// The row of `user list` for `name`, as (name, role).
fn listed_users(list: &str) -> Vec<(String, String)> {
    list.lines()
        .skip_while(|l| !l.starts_with("USER"))
        .skip(1)
        .filter_map(|l| {
            let mut cols = l.split_whitespace();
            Some((cols.next()?.to_string(), cols.next()?.to_string()))
        })
        .collect()
}

#[test]
fn version_help_and_example() {
    let env = Env::new();
    let r = env.run(&["version"]);
    r.ok();
    assert_eq!(
        r.stdout.trim(),
        format!("gatewatch {}", env!("CARGO_PKG_VERSION"))
    );

    let r = env.run(&["--help"]);
    r.ok();
    assert!(r.stdout.contains("Usage: gatewatch"), "{}", r.stdout);
    for sub in [
        "serve",
        "check-config",
        "config",
        "user",
        "token",
        "backup",
        "restore",
        "version",
    ] {
        assert!(r.stdout.contains(sub), "--help does not list {sub}");
    }

    let r = env.run(&["config", "example"]);
    r.ok();
    let parsed: toml::Table = toml::from_str(&r.stdout).expect("config example is TOML");
    assert!(parsed["web"].get("listen").is_some(), "{parsed:?}");
    assert!(r.stdout.contains("GATEWATCH_WEB_LISTEN"));
    // The example is a valid config file for this binary.
    let example = env.path("example.toml");
    std::fs::write(&example, &r.stdout).unwrap();
    let r = env.run_data(&["check-config", "--config", example.to_str().unwrap()], None);
    r.ok();
    assert!(r.stdout.contains("OK"), "{}", r.stdout);
}

#[test]
fn help_for_every_subcommand() {
    let env = Env::new();
    let commands: &[&[&str]] = &[
        &["serve"],
        &["check-config"],
        &["config"],
        &["config", "example"],
        &["user"],
        &["user", "add"],
        &["user", "passwd"],
        &["user", "list"],
        &["user", "remove"],
        &["token"],
        &["token", "create"],
        &["token", "list"],
        &["token", "revoke"],
        &["backup"],
        &["restore"],
        &["import"],
        &["import", "nmap"],
        &["version"],
    ];
    for sub in commands {
        let usage = format!("Usage: gatewatch {}", sub.join(" "));
        let mut args = vec!["help"];
        args.extend_from_slice(sub);
        let r = env.run(&args);
        r.ok();
        assert!(
            r.stdout.contains(&usage),
            "`gatewatch help {}`: {}",
            sub.join(" "),
            r.stdout
        );
        let mut args = sub.to_vec();
        args.push("--help");
        let r = env.run(&args);
        r.ok();
        assert!(
            r.stdout.contains(&usage),
            "`gatewatch {} --help`: {}",
            sub.join(" "),
            r.stdout
        );
    }
}

#[test]
fn usage_and_config_errors_have_their_exit_codes() {
    let env = Env::new();
    env.run(&["--bogus"]).expect(2);
    env.run(&["version", "--bogus"]).expect(2);
    env.run(&["frobnicate"]).expect(2);
    env.run_data(&["user", "add", "alice"], Some(PW)).expect(2); // no --role

    let bad = env.path("bad.toml");
    std::fs::write(&bad, "[web]\nlisten = \"127.0.0.1:8443\"\nlistne = 3\n").unwrap();
    env.run_data(&["check-config", "--config", bad.to_str().unwrap()], None)
        .expect(3)
        .stderr_has("listne")
        .stderr_has("line 3");

    let data = env.data();
    let args = ["check-config", "--data-dir", data.to_str().unwrap()];
    env.run_with(&args, None, &[]).ok();
    env.run_with(&args, None, &[("GATEWATCH_WEB_LISTEN", "nope")])
        .expect(3)
        .stderr_has("GATEWATCH_WEB_LISTEN");
    env.run_with(&args, None, &[("GATEWATCH_WEB_LISTN", "127.0.0.1:1")])
        .expect(3)
        .stderr_has("GATEWATCH_WEB_LISTN");
    let missing = env.path("missing.toml");
    env.run_data(&["check-config", "--config", missing.to_str().unwrap()], None)
        .expect(3)
        .stderr_has("missing.toml");
}

#[test]
fn user_commands() {
    let env = Env::new();
    let r = env.run_data(
        &["user", "add", "alice", "--role", "admin"],
        Some(&format!("{PW}\n")),
    );
    r.ok();
    assert!(r.stdout.contains("alice"), "{}", r.stdout);
    env.run_data(
        &["user", "add", "alice", "--role", "admin"],
        Some(&format!("{PW}\n")),
    )
    .expect(6)
    .stderr_has("already exists");
    env.run_data(&["user", "add", "bob", "--role", "viewer"], Some("short\n"))
        .expect(6);
    env.run_data(
        &["user", "add", "bob", "--role", "wizard"],
        Some(&format!("{PW}\n")),
    )
    .expect(6)
    .stderr_has("wizard");
    env.run_data(&["user", "add", "bob", "--role", "viewer"], None)
        .expect(6);
    env.run_data(&["user", "add", "bad name", "--role", "viewer"], Some(PW))
        .expect(6);
    assert_eq!(
        listed_users(&env.user_list()),
        [("alice".to_string(), "admin".to_string())],
        "refused adds left no trace"
    );

    env.run_data(&["user", "passwd", "alice"], Some("new password, long\n"))
        .ok();
    env.run_data(&["user", "passwd", "alice"], Some("short\n"))
        .expect(6);
    env.run_data(&["user", "passwd", "nobody"], Some(&format!("{PW}\n")))
        .expect(6)
        .stderr_has("nobody");

    env.run_data(&["user", "remove", "alice"], None)
        .expect(6)
        .stderr_has("last admin");
    env.run_data(&["user", "remove", "nobody"], None).expect(6);
    env.run_data(&["user", "add", "bob", "--role", "admin"], Some(PW))
        .ok();
    env.run_data(&["user", "remove", "alice"], None).ok();
    assert_eq!(
        listed_users(&env.user_list()),
        [("bob".to_string(), "admin".to_string())]
    );

    // The CLI's writes reached the store the server reads.
    let store = gatewatch::store::Store::open(&env.data(), Default::default()).unwrap();
    let accounts = gatewatch::accounts::Accounts::new(std::sync::Arc::new(store), Default::default());
    let ip = "127.0.0.1".parse().unwrap();
    let now = gatewatch::model::Timestamp::now();
    assert!(accounts.login("bob", PW, ip, now).is_ok());
    let mut actions: Vec<String> = accounts
        .audit_page(None, 100)
        .unwrap()
        .into_iter()
        .map(|(_, e)| {
            assert_eq!(e.actor, "cli:tester");
            e.action
        })
        .collect();
    actions.reverse();
    assert_eq!(actions, ["user.add", "user.passwd", "user.add", "user.remove"]);
}

#[test]
fn user_passwd_changes_the_password() {
    let env = Env::new();
    env.run_data(&["user", "add", "alice", "--role", "admin"], Some(PW))
        .ok();
    env.run_data(&["user", "passwd", "alice"], Some("the second password\r\n"))
        .ok();
    let store = gatewatch::store::Store::open(&env.data(), Default::default()).unwrap();
    let accounts = gatewatch::accounts::Accounts::new(std::sync::Arc::new(store), Default::default());
    let ip = "127.0.0.1".parse().unwrap();
    let now = gatewatch::model::Timestamp::now();
    assert!(
        accounts.login("alice", PW, ip, now).is_err(),
        "old password still works"
    );
    assert!(accounts.login("alice", "the second password", ip, now).is_ok());
}

#[test]
fn token_commands() {
    let env = Env::new();
    let r = env.run_data(&["token", "create", "--name", "ci", "--role", "viewer"], None);
    r.ok();
    let token = r.stdout.trim().to_string();
    assert!(token.starts_with("gw_"), "{token}");
    assert_eq!(
        r.stdout.lines().count(),
        1,
        "stdout is only the token: {}",
        r.stdout
    );
    let id = token["gw_".len()..].split('_').next().unwrap().to_string();
    assert!(!id.is_empty());
    let secret = &token["gw_".len() + id.len() + 1..];
    assert!(secret.len() >= 20, "{token}");

    let r = env.run_data(&["token", "list"], None);
    r.ok();
    let row = r
        .stdout
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("token {id} not listed: {}", r.stdout));
    assert!(row.contains("ci") && row.contains("viewer"), "{row}");
    assert!(!r.stdout.contains(secret), "token list shows the secret");

    env.run_data(&["token", "create", "--name", "x", "--role", "wizard"], None)
        .expect(6);
    env.run_data(&["token", "create", "--name", " ", "--role", "viewer"], None)
        .expect(6);

    env.run_data(&["token", "revoke", &id], None).ok();
    env.run_data(&["token", "revoke", &id], None)
        .expect(6)
        .stderr_has(&id);
    let r = env.run_data(&["token", "list"], None);
    r.ok();
    assert!(!r.stdout.contains(&id), "revoked token still listed");
}

#[test]
fn backup_and_restore() {
    let env = Env::new();
    env.run_data(&["user", "add", "alice", "--role", "admin"], Some(PW))
        .ok();
    env.run_data(&["user", "add", "bob", "--role", "viewer"], Some(PW))
        .ok();
    let backup = env.path("gw.backup");
    let b = backup.to_str().unwrap();
    env.run_data(&["backup", b], None).ok();
    assert!(backup.is_file());
    let size = std::fs::metadata(&backup).unwrap().len();
    assert!(size > 0);

    env.run_data(&["backup", b], None).expect(4).stderr_has("exists");
    assert_eq!(
        std::fs::metadata(&backup).unwrap().len(),
        size,
        "backup was overwritten"
    );

    env.run_data(&["user", "add", "carol", "--role", "viewer"], Some(PW))
        .ok();
    let names = |list: String| {
        listed_users(&list)
            .into_iter()
            .map(|(n, _)| n)
            .collect::<Vec<_>>()
    };
    assert_eq!(names(env.user_list()), ["alice", "bob", "carol"]);

    env.run_data(&["restore", b], None).ok();
    assert_eq!(
        names(env.user_list()),
        ["alice", "bob"],
        "restore brings back the backup's users"
    );
    let aside = std::fs::read_dir(env.data())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("data.mdb.before-restore")
        })
        .count();
    assert_eq!(aside, 1, "the replaced database is kept beside it");

    let garbage = env.path("garbage.backup");
    std::fs::write(&garbage, vec![0x5au8; 64 * 1024]).unwrap();
    env.run_data(&["restore", garbage.to_str().unwrap()], None)
        .expect(4);
    let missing = env.path("missing.backup");
    env.run_data(&["restore", missing.to_str().unwrap()], None)
        .expect(4);
    assert_eq!(
        names(env.user_list()),
        ["alice", "bob"],
        "a failed restore left the data dir working"
    );
    env.run_data(&["user", "add", "dave", "--role", "viewer"], Some(PW))
        .ok();
}

/// Waits up to `limit` for `child` to exit.
fn wait_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Lines the child prints on stdout, delivered as they come.
fn stdout_lines(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn spawn_serve(env: &Env, listen: &str, stderr: Stdio) -> Child {
    let data = env.data();
    env.command(&[
        "serve",
        "--listen",
        listen,
        "--http",
        "--data-dir",
        data.to_str().unwrap(),
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(stderr)
    .spawn()
    .unwrap()
}

#[tokio::test]
async fn serve_prints_where_to_go_and_stops_on_sigterm() {
    let env = Env::new();
    let mut child = spawn_serve(&env, "127.0.0.1:0", Stdio::null());
    let lines = stdout_lines(&mut child);
    let (mut base, mut setup_link) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(30);
    while base.is_none() || setup_link.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = lines.recv_timeout(left) else {
            let _ = child.kill();
            panic!("serve did not print its URL and setup link (got {base:?}, {setup_link:?})");
        };
        if let Some(rest) = line.split_once(" listening on ").map(|(_, r)| r) {
            base = rest.split_whitespace().next().map(str::to_string);
        }
        if line.starts_with("first start:") {
            setup_link = line
                .split_whitespace()
                .find(|w| w.contains("setup?token="))
                .map(str::to_string);
        }
    }
    let (base, setup_link) = (base.unwrap(), setup_link.unwrap());
    assert!(
        base.starts_with("http://127.0.0.1:") && base.ends_with('/'),
        "{base}"
    );
    assert!(
        !base.ends_with(":0/"),
        "the printed URL has the bound port: {base}"
    );
    assert!(
        setup_link.starts_with(&format!("{base}setup?token=")),
        "{setup_link}"
    );
    let token = setup_link.rsplit('=').next().unwrap();
    assert!(token.len() >= 12, "{setup_link}");

    let c = common::client();
    let r = c.get(&base).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/setup");
    let r = c.get(&setup_link).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.text().await.unwrap().contains(token),
        "setup form is prefilled with the code"
    );

    // SAFETY: kill only sends a signal to the child we spawned.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let status =
        wait_exit(&mut child, Duration::from_secs(10)).expect("serve did not stop within 10 s of SIGTERM");
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn serve_on_a_busy_port_exits_5() {
    let env = Env::new();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let mut child = spawn_serve(&env, &addr, Stdio::piped());
    let mut stderr = child.stderr.take().unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(20)).expect("serve kept running on a busy port");
    let mut msg = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut msg).unwrap();
    assert_eq!(status.code(), Some(5), "{msg}");
    assert!(msg.contains(&addr), "{msg}");
    assert!(msg.contains("in use"), "{msg}");
    drop(busy);
}

#[test]
fn data_dir_flag_is_where_the_data_goes() {
    let env = Env::new();
    env.run_data(&["user", "add", "alice", "--role", "admin"], Some(PW))
        .ok();
    assert!(Path::new(&env.data()).join("data.mdb").is_file());
    assert!(
        !env.path("gatewatch-data").exists(),
        "the default data dir was used"
    );
}

#[test]
fn import_nmap_stores_hosts_and_refuses_bad_xml() {
    let env = Env::new();
    let bad = env.path("bad.xml");
    std::fs::write(&bad, "<nmaprun><host>").unwrap();
    env.run_data(&["import", "nmap", bad.to_str().unwrap()], None)
        .expect(2)
        .stderr_has("nothing was imported");
    env.run_data(&["import", "nmap", "/no/such/file.xml"], None)
        .expect(2)
        .stderr_has("cannot read");
    let xml = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/nmap/loopback-sV.xml");
    let r = env.run_data(&["import", "nmap", xml], None);
    r.ok();
    assert!(
        r.stdout
            .contains("imported 1 hosts and 4 open ports from nmap (1 new)"),
        "{}",
        r.stdout
    );
    // Importing again finds the same host: nothing new.
    let r = env.run_data(&["import", "nmap", xml], None);
    r.ok();
    assert!(r.stdout.contains("(0 new)"), "{}", r.stdout);
}
