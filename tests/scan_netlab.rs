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
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("/run/netlab/expected.json").unwrap()).unwrap();
    let misses = udp_and_names(&expected, &report);
    for m in &misses {
        println!("miss: {m}");
    }
    assert!(grade.status.success(), "grade_scan.py: {text}");
    assert!(
        misses.is_empty(),
        "{} UDP/mDNS/SSDP/SNMP/TLS misses",
        misses.len()
    );
    assert!(
        report["warnings"].as_array().unwrap().is_empty(),
        "warnings: {}",
        report["warnings"]
    );
}

/// What grade_scan.py does not grade, against the same expected.json: answering UDP ports
/// among those the scanner probes, mDNS host name / types / instances / ports / TXT, SSDP
/// fields, SNMP sysDescr/sysName and TLS certificate subject CNs.
fn udp_and_names(expected: &serde_json::Value, report: &serde_json::Value) -> Vec<String> {
    use serde_json::Value;
    const PROBED_UDP: [u64; 6] = [53, 123, 137, 161, 1900, 5353];
    let mut misses = Vec::new();
    let hosts = report["hosts"].as_array().unwrap();
    for e in expected["hosts"].as_array().unwrap() {
        let name = e["hostname"].as_str().unwrap();
        let Some(g) = hosts.iter().find(|h| h["ip"] == e["ipv4"]) else {
            misses.push(format!("{name}: not found"));
            continue;
        };
        let ports = g["ports"].as_array().unwrap();
        let port = |proto: &str, n: u64| ports.iter().find(|p| p["proto"] == proto && p["port"] == n);
        let want: Vec<u64> = e["udp_open"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_u64)
            .filter(|p| PROBED_UDP.contains(p))
            .collect();
        let have: Vec<u64> = ports
            .iter()
            .filter(|p| p["proto"] == "udp")
            .filter_map(|p| p["port"].as_u64())
            .collect();
        if want != have {
            misses.push(format!("{name}: udp {have:?}, expected {want:?}"));
        }
        for s in e["services"].as_array().unwrap() {
            let n = s["port"].as_u64().unwrap();
            if let Some(snmp) = s.get("snmp") {
                let got = port("udp", n).map(|p| &p["snmp"]);
                for key in ["sysDescr", "sysName"] {
                    if got.map(|g| &g[key]) != Some(&snmp[key]) {
                        misses.push(format!("{name}: snmp {key} {:?}", got.map(|g| &g[key])));
                    }
                }
            }
            if let Some(cn) = s.get("tls").map(|t| &t["subject_cn"]) {
                let got = port("tcp", n).map(|p| &p["tls_cert"]["subject_cn"]);
                if got != Some(cn) {
                    misses.push(format!("{name}: tcp/{n} certificate CN {got:?}, expected {cn}"));
                }
            }
        }
        if let Some(m) = e.get("mdns") {
            let got = &g["mdns"];
            if got["hostname"] != m["hostname"] {
                misses.push(format!("{name}: mdns hostname {}", got["hostname"]));
            }
            for svc in m["services"].as_array().unwrap() {
                let found = got["services"].as_array().and_then(|list| {
                    list.iter()
                        .find(|x| x["type"] == svc["type"] && x["instance"] == svc["instance"])
                });
                match found {
                    Some(f) if f["port"] == svc["port"] && f["txt"] == svc["txt"] => {}
                    other => misses.push(format!(
                        "{name}: mdns {} {} → {other:?}",
                        svc["type"], svc["instance"]
                    )),
                }
            }
        }
        if let Some(x) = e.get("ssdp") {
            let got = &g["ssdp"];
            for key in ["location", "server", "usn_uuid", "device_type"] {
                if got[key] != x[key] {
                    misses.push(format!("{name}: ssdp {key} {}", got[key]));
                }
            }
            let mut a: Vec<&Value> = got["st"]
                .as_array()
                .map(|v| v.iter().collect())
                .unwrap_or_default();
            let mut b: Vec<&Value> = x["st"].as_array().unwrap().iter().collect();
            a.sort_by_key(|v| v.to_string());
            b.sort_by_key(|v| v.to_string());
            if a != b {
                misses.push(format!("{name}: ssdp st {a:?}"));
            }
        }
    }
    misses
}
