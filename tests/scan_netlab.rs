//! The scanner against the namespace lab (../shared/netlab): brings the lab up, runs
//! `gatewatch scan` inside its gateway namespace, grades the JSON with the reference grader
//! (../shared/tools/grade_scan.py) and tears the lab down, also on failure. Traffic stays
//! inside the namespaces the lab creates. Needs root and `ip netns`: under CI=true it must
//! run; elsewhere it skips with a message when it cannot.

use std::path::{Path, PathBuf};
use std::process::Command;

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared")
}

/// Tears the lab down when dropped.
struct Lab;

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new(shared().join("netlab/down.sh"))
            .arg("--quiet")
            .status();
    }
}

fn can_run() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let netns = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .is_ok_and(|o| o.status.success());
    if root && netns {
        return true;
    }
    let msg = "skipping: the netlab test needs root and `ip netns` (iproute2)";
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{msg}, and CI=true");
    }
    eprintln!("{msg}");
    false
}

#[test]
fn scan_finds_the_lab() {
    if !can_run() {
        return;
    }
    let up = Command::new(shared().join("netlab/up.sh"))
        .arg("--quiet")
        .status()
        .expect("run up.sh");
    let _lab = Lab;
    assert!(up.success(), "netlab up.sh failed");

    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            "gw",
            env!("CARGO_BIN_EXE_gatewatch"),
            "scan",
            "10.200.1.0/24",
            "10.200.2.0/24",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scan failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let scan_json = dir.path().join("scan.json");
    std::fs::write(&scan_json, &out.stdout).unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    println!("scan took {} ms", report["duration_ms"]);

    let grade = Command::new("python3")
        .arg(shared().join("tools/grade_scan.py"))
        .arg("/run/netlab/expected.json")
        .arg(&scan_json)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&grade.stdout);
    println!("{text}");
    assert!(grade.status.success(), "grade_scan.py: {text}");
}
