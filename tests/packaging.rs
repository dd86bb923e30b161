//! Packaging checks: `systemd-analyze verify` accepts the systemd unit and its
//! `systemd-analyze security` exposure stays low; shellcheck accepts every shell script
//! under packaging/; the OpenWrt UCI defaults map to real config keys that validate.
//! Needs systemd-analyze and shellcheck (apt: systemd, shellcheck): CI installs them and
//! fails without them; elsewhere the test skips with a message.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// True when `tool` runs; otherwise skips (or fails under CI=true) with why.
fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let msg = format!("{tool} is not installed (apt-get install -y systemd shellcheck)");
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg}");
        }
        eprintln!("skipping: {msg}");
    }
    ok
}

/// The unit with ExecStart pointed at the binary cargo built, so verify can check it.
fn unit_for_test(dir: &Path) -> PathBuf {
    let unit = std::fs::read_to_string(repo().join("packaging/systemd/gatewatch.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/gatewatch serve"));
    let unit = unit.replace("/usr/local/bin/gatewatch", env!("CARGO_BIN_EXE_gatewatch"));
    let path = dir.join("gatewatch.service");
    std::fs::write(&path, unit).unwrap();
    path
}

#[test]
fn unit_verifies_and_is_hardened() {
    if !have("systemd-analyze") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_for_test(dir.path());
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("gatewatch.service"))
        .collect();
    assert!(out.status.success() && ours.is_empty(), "verify: {stderr}");

    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&unit)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let exposure: f64 = text
        .lines()
        .find_map(|l| l.split("Overall exposure level for gatewatch.service:").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure in: {text}"));
    println!("systemd-analyze security exposure: {exposure}");
    assert!(exposure <= 2.5, "exposure {exposure} > 2.5:\n{text}");
    for line in [
        "AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
    ] {
        assert!(std::fs::read_to_string(&unit).unwrap().contains(line), "{line}");
    }
}

/// Every shell script under packaging/ (by shebang).
fn shell_scripts() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let p = entry.path();
            if p.is_dir() {
                walk(&p, out);
            } else if std::fs::read_to_string(&p).is_ok_and(|t| t.starts_with("#!/bin/sh")) {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo().join("packaging"), &mut out);
    out
}

#[test]
fn shell_scripts_pass_shellcheck() {
    let scripts = shell_scripts();
    assert!(scripts.len() >= 3, "found only {scripts:?}");
    if !have("shellcheck") {
        return;
    }
    for script in scripts {
        let out = Command::new("shellcheck").arg(&script).output().unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            script.display(),
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

/// The OpenWrt init script turns UCI options into GATEWATCH_* variables; every variable it
/// sets must be a real config key, and the shipped defaults (the 128 MB profile) must pass
/// `gatewatch check-config`.
#[test]
fn openwrt_uci_defaults_are_valid_config() {
    let init = std::fs::read_to_string(repo().join("packaging/openwrt/files/gatewatch.init")).unwrap();
    let uci = std::fs::read_to_string(repo().join("packaging/openwrt/files/gatewatch.config")).unwrap();
    let mapping: Vec<(String, String)> = init
        .lines()
        .filter_map(|l| l.trim().strip_prefix("env_from_uci "))
        .filter_map(|rest| {
            let mut it = rest.split_whitespace();
            Some((it.next()?.to_string(), format!("GATEWATCH_{}", it.next()?)))
        })
        .collect();
    assert!(mapping.len() >= 8, "{mapping:?}");
    let defaults: Vec<(String, String)> = uci
        .lines()
        .filter_map(|l| l.trim().strip_prefix("option "))
        .filter_map(|rest| {
            let (name, value) = rest.split_once(' ')?;
            Some((name.to_string(), value.trim().trim_matches('\'').to_string()))
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatewatch"));
    cmd.arg("check-config").arg("--data-dir").arg(dir.path());
    cmd.env_remove("GATEWATCH_CONFIG");
    let mut used = 0;
    for (option, value) in &defaults {
        if let Some((_, var)) = mapping.iter().find(|(o, _)| o == option) {
            cmd.env(var, value);
            used += 1;
        }
    }
    assert!(used >= 6, "only {used} UCI defaults map to variables");
    // Every mapped variable must be known to gatewatch, even when the default leaves it unset.
    for (_, var) in &mapping {
        let out = Command::new(env!("CARGO_BIN_EXE_gatewatch"))
            .args(["config", "example"])
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(var.as_str()),
            "{var} is not a config key"
        );
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "check-config with the UCI defaults failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("web.max_connections = 32"), "{shown}");
}
