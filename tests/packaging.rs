//! Packaging checks: `systemd-analyze verify` accepts the systemd unit and its
//! `systemd-analyze security` exposure stays low; shellcheck accepts every shell script
//! under packaging/; the OpenWrt UCI defaults map to real config keys that validate; the
//! .ipk files (make-ipk.sh), Debian .deb files (make-deb.sh, read with dpkg-deb) and FreeBSD
//! .pkg files (make-pkg.sh) are unpacked and their
//! control fields, manifests, checksums and modes checked; the cross-built binaries
//! (packaging/build.sh) pass packaging/smoke.sh when they exist.
//! Needs systemd-analyze and shellcheck (apt: systemd, shellcheck): CI installs them and
//! fails without them; elsewhere the test skips with a message.

mod common;
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
    let unit = unit.replace(
        "/usr/local/bin/gatewatch",
        &common::gatewatch_bin().to_string_lossy(),
    );
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
    let mut cmd = Command::new(common::gatewatch_bin());
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
        let out = Command::new(common::gatewatch_bin())
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

// ---------------------------------------------------------------- cross builds and packages

const LINUX_TARGETS: [(&str, &[&str]); 5] = [
    ("x86_64-unknown-linux-musl", &["x86_64"]),
    (
        "aarch64-unknown-linux-musl",
        &[
            "aarch64_cortex-a53",
            "aarch64_cortex-a72",
            "aarch64_cortex-a76",
            "aarch64_generic",
        ],
    ),
    (
        "armv7-unknown-linux-musleabihf",
        &[
            "arm_cortex-a7_neon-vfpv4",
            "arm_cortex-a9_vfpv3-d16",
            "arm_cortex-a15_neon-vfpv4",
        ],
    ),
    ("mipsel-unknown-linux-musl", &["mipsel_24kc"]),
    ("mips-unknown-linux-musl", &["mips_24kc"]),
];

fn dist() -> PathBuf {
    repo().join("target-cross/dist")
}

/// One member of an ar archive or a tar archive.
struct Entry {
    name: String,
    mode: u32,
    uid: u64,
    gid: u64,
    data: Vec<u8>,
}

/// Parses a common-format ar archive (what opkg reads), checking every header.
fn ar_members(bytes: &[u8]) -> Vec<Entry> {
    assert!(bytes.starts_with(b"!<arch>\n"), "no ar magic");
    let mut out = Vec::new();
    let mut pos = 8;
    while pos < bytes.len() {
        let h = &bytes[pos..pos + 60];
        assert_eq!(&h[58..60], b"`\n", "bad ar header at {pos}");
        let field = |a: usize, b: usize| std::str::from_utf8(&h[a..b]).unwrap().trim().to_string();
        let size: usize = field(48, 58).parse().unwrap();
        let name = field(0, 16);
        assert!(!name.ends_with('/'), "GNU-style ar name {name:?}");
        out.push(Entry {
            name,
            mode: u32::from_str_radix(&field(40, 48), 8).unwrap(),
            uid: field(28, 34).parse().unwrap(),
            gid: field(34, 40).parse().unwrap(),
            data: bytes[pos + 60..pos + 60 + size].to_vec(),
        });
        pos += 60 + size + size % 2;
    }
    out
}

/// Parses a ustar/GNU tar stream (regular files and directories; GNU long names).
fn tar_entries(bytes: &[u8]) -> Vec<Entry> {
    let octal = |b: &[u8]| {
        let s = std::str::from_utf8(b)
            .unwrap()
            .trim_matches(|c| c == '\0' || c == ' ');
        u64::from_str_radix(if s.is_empty() { "0" } else { s }, 8).unwrap()
    };
    let cstr = |b: &[u8]| String::from_utf8(b.split(|&c| c == 0).next().unwrap().to_vec()).unwrap();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut long_name = None;
    while pos + 512 <= bytes.len() && bytes[pos..pos + 512].iter().any(|&b| b != 0) {
        let h = &bytes[pos..pos + 512];
        let size = octal(&h[124..136]) as usize;
        let data = bytes[pos + 512..pos + 512 + size].to_vec();
        pos += 512 + size.div_ceil(512) * 512;
        match h[156] {
            b'L' => long_name = Some(cstr(&data)),
            b'0' | 0 | b'5' => {
                let prefix = cstr(&h[345..500]);
                let name = long_name.take().unwrap_or_else(|| {
                    if prefix.is_empty() {
                        cstr(&h[0..100])
                    } else {
                        format!("{prefix}/{}", cstr(&h[0..100]))
                    }
                });
                out.push(Entry {
                    name,
                    mode: octal(&h[100..108]) as u32 & 0o7777,
                    uid: octal(&h[108..116]),
                    gid: octal(&h[116..124]),
                    data,
                });
            }
            other => panic!("unexpected tar entry type {other}"),
        }
    }
    out
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

fn find<'a>(entries: &'a [Entry], name: &str) -> &'a Entry {
    entries.iter().find(|e| e.name == name).unwrap_or_else(|| {
        panic!(
            "{name} missing; have {:?}",
            entries.iter().map(|e| &e.name).collect::<Vec<_>>()
        )
    })
}

/// Shellchecks `text` as a POSIX sh script named `what`.
fn shellcheck_text(what: &str, text: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("script");
    std::fs::write(&path, text).unwrap();
    let out = Command::new("shellcheck")
        .args(["-s", "sh"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Runs a package assembler (`SCRIPT DIST_DIR OUT_DIR`), failing with its stderr.
fn run_packager(script: &str, input: &Path, out_dir: &Path) {
    let out = Command::new(repo().join(script))
        .arg(input)
        .arg(out_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The .ipk files make-ipk.sh assembles are what opkg reads: an ar archive of debian-binary,
/// control.tar.gz and data.tar.gz, with the control fields, conffiles, maintainer scripts and
/// file modes an OpenWrt package needs, one per OpenWrt architecture name. Uses the cross
/// binaries when built (and checks each one's ELF header is for that architecture), else a
/// small stand-in file does (the debug binary is hundreds of MB: gzip -9 of it per
/// architecture took minutes), so every target's package names are checked either way.
#[test]
fn openwrt_ipks_have_the_opkg_layout_fields_and_modes() {
    let have_shellcheck = have("shellcheck");
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("dist");
    let mut expected = Vec::new();
    for (target, archs) in LINUX_TARGETS {
        let built = dist().join(target).join("gatewatch");
        let bin = if built.exists() {
            assert_elf_is_for(target, &std::fs::read(&built).unwrap());
            built
        } else {
            let stand_in = tmp.path().join(format!("stand-in-{target}"));
            let bytes: Vec<u8> = (0..100_000u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect();
            std::fs::write(&stand_in, bytes).unwrap();
            stand_in
        };
        std::fs::create_dir_all(input.join(target)).unwrap();
        std::fs::copy(&bin, input.join(target).join("gatewatch")).unwrap();
        for arch in archs {
            expected.push((arch.to_string(), std::fs::read(&bin).unwrap()));
        }
    }
    let out_dir = tmp.path().join("out");
    run_packager("packaging/openwrt/make-ipk.sh", &input, &out_dir);
    let made = std::fs::read_dir(&out_dir).unwrap().count();
    assert_eq!(made, expected.len(), "one .ipk per architecture name");

    let version = format!("{}-1", env!("CARGO_PKG_VERSION"));
    let init = std::fs::read(repo().join("packaging/openwrt/files/gatewatch.init")).unwrap();
    let uci = std::fs::read(repo().join("packaging/openwrt/files/gatewatch.config")).unwrap();
    for (arch, binary) in &expected {
        let path = out_dir.join(format!("gatewatch_{version}_{arch}.ipk"));
        let members = ar_members(&std::fs::read(&path).unwrap());
        let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            ["debian-binary", "control.tar.gz", "data.tar.gz"],
            "{arch}"
        );
        assert_eq!(members[0].data, b"2.0\n");
        let control = tar_entries(&gunzip(&members[1].data));
        let data = tar_entries(&gunzip(&members[2].data));

        let text = String::from_utf8(find(&control, "./control").data.clone()).unwrap();
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}: ")))
                .map(str::to_string)
        };
        assert_eq!(field("Package").as_deref(), Some("gatewatch"), "{text}");
        assert_eq!(field("Version").as_deref(), Some(version.as_str()));
        assert_eq!(field("Architecture").as_deref(), Some(arch.as_str()));
        // Static binary: no runtime dependencies, libpcap included.
        assert_eq!(field("Depends"), None, "{text}");
        let files_size: usize = data.iter().map(|e| e.data.len()).sum();
        assert_eq!(field("Installed-Size"), Some(files_size.to_string()));
        assert!(field("Description").is_some_and(|d| !d.is_empty()));
        assert_eq!(find(&control, "./conffiles").data, b"/etc/config/gatewatch\n");

        for (name, mode, content) in [
            ("./usr/bin/gatewatch", 0o755, binary.as_slice()),
            ("./etc/init.d/gatewatch", 0o755, init.as_slice()),
            ("./etc/config/gatewatch", 0o600, uci.as_slice()),
        ] {
            let e = find(&data, name);
            assert_eq!(e.mode, mode, "{arch} {name} mode {:o}", e.mode);
            assert!(e.data == content, "{arch} {name} content");
        }
        for e in control.iter().chain(&data) {
            assert_eq!((e.uid, e.gid), (0, 0), "{} owned by root", e.name);
        }
        for script in ["./postinst", "./prerm"] {
            let e = find(&control, script);
            assert_eq!(e.mode, 0o755, "{script}");
            assert!(e.data.starts_with(b"#!/bin/sh\n"), "{script}");
            if have_shellcheck {
                shellcheck_text(script, &e.data);
            }
        }
        assert!(
            String::from_utf8_lossy(&find(&control, "./postinst").data)
                .contains("/etc/init.d/gatewatch enable"),
            "postinst enables the service"
        );
    }
    if have_shellcheck {
        shellcheck_text("init", &init);
    }
    let sdk = std::fs::read_to_string(repo().join("packaging/openwrt/Makefile")).unwrap();
    assert!(
        sdk.contains(&format!("PKG_VERSION:={}\n", env!("CARGO_PKG_VERSION"))),
        "the SDK Makefile's PKG_VERSION follows Cargo.toml"
    );
}

/// The .deb files make-deb.sh assembles, read back with dpkg-deb itself: one per Debian
/// architecture, the control fields, the files with their modes and owners, the unit pointed
/// at /usr/bin, and maintainer scripts that pass shellcheck. Cross binaries when built, else
/// stand-in bytes (as for the .ipk test).
#[test]
fn debian_debs_have_the_dpkg_fields_files_and_scripts() {
    if !have("dpkg-deb") {
        return;
    }
    let have_shellcheck = have("shellcheck");
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("dist");
    let mut expected = Vec::new();
    for (target, arch) in [
        ("x86_64-unknown-linux-musl", "amd64"),
        ("aarch64-unknown-linux-musl", "arm64"),
        ("armv7-unknown-linux-musleabihf", "armhf"),
    ] {
        let built = dist().join(target).join("gatewatch");
        let bytes = if built.exists() {
            std::fs::read(&built).unwrap()
        } else {
            format!("stand-in for {target}").repeat(1000).into_bytes()
        };
        std::fs::create_dir_all(input.join(target)).unwrap();
        std::fs::write(input.join(target).join("gatewatch"), &bytes).unwrap();
        expected.push((arch, bytes));
    }
    let out_dir = tmp.path().join("out");
    run_packager("packaging/systemd/make-deb.sh", &input, &out_dir);
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), expected.len());

    let dpkg_deb = |args: &[&str], deb: &Path| {
        let out = Command::new("dpkg-deb").args(args).arg(deb).output().unwrap();
        assert!(
            out.status.success(),
            "dpkg-deb {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let version = format!("{}-1", env!("CARGO_PKG_VERSION"));
    let unit = std::fs::read_to_string(repo().join("packaging/systemd/gatewatch.service")).unwrap();
    for (arch, binary) in &expected {
        let deb = out_dir.join(format!("gatewatch_{version}_{arch}.deb"));
        let fields = String::from_utf8(dpkg_deb(&["-f"], &deb)).unwrap();
        let field = |k: &str| {
            fields
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{k}: ")).map(str::to_string))
        };
        assert_eq!(field("Package").as_deref(), Some("gatewatch"));
        assert_eq!(field("Version").as_deref(), Some(version.as_str()));
        assert_eq!(field("Architecture").as_deref(), Some(*arch));
        // Static binary: libpcap is inside; only useradd (passwd) is needed, by postinst.
        assert_eq!(field("Depends").as_deref(), Some("passwd"));

        let data = tar_entries(&dpkg_deb(&["--fsys-tarfile"], &deb));
        let packaged_unit = unit.replace("/usr/local/", "/usr/");
        for (name, mode, content) in [
            ("./usr/bin/gatewatch", 0o755, binary.as_slice()),
            (
                "./lib/systemd/system/gatewatch.service",
                0o644,
                packaged_unit.as_bytes(),
            ),
        ] {
            let e = find(&data, name);
            assert_eq!(e.mode, mode, "{arch} {name} mode {:o}", e.mode);
            assert!(e.data == content, "{arch} {name} content");
        }
        assert!(packaged_unit.contains("ExecStart=/usr/bin/gatewatch serve"));
        find(&data, "./usr/share/doc/gatewatch/copyright");
        let control = tar_entries(&dpkg_deb(&["--ctrl-tarfile"], &deb));
        for e in control.iter().chain(&data) {
            assert_eq!((e.uid, e.gid), (0, 0), "{} owned by root", e.name);
        }
        for script in ["./postinst", "./prerm", "./postrm"] {
            let e = find(&control, script);
            assert_eq!(e.mode, 0o755, "{script}");
            if have_shellcheck {
                shellcheck_text(script, &e.data);
            }
        }
        let postinst = String::from_utf8_lossy(&find(&control, "./postinst").data).into_owned();
        for needle in [
            "useradd --system",
            "/var/lib/gatewatch",
            "systemctl enable gatewatch.service",
        ] {
            assert!(postinst.contains(needle), "postinst lacks {needle}");
        }
    }
}

/// A cross-built binary's ELF header names the machine its packages claim: class, byte
/// order, e_machine, and for MIPS the mips32r2 ISA the 24Kc cores of mips(el)_24kc run.
fn assert_elf_is_for(target: &str, elf: &[u8]) {
    assert!(elf.len() > 52 && elf.starts_with(b"\x7fELF"), "{target}: not ELF");
    let (class, little) = (elf[4], elf[5] == 1);
    let u16_at = |o: usize| {
        let b = [elf[o], elf[o + 1]];
        if little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        }
    };
    let machine = u16_at(18);
    let (want_class, want_little, want_machine) = match target {
        "x86_64-unknown-linux-musl" => (2, true, 62),
        "aarch64-unknown-linux-musl" => (2, true, 183),
        "armv7-unknown-linux-musleabihf" => (1, true, 40),
        "mipsel-unknown-linux-musl" => (1, true, 8),
        "mips-unknown-linux-musl" => (1, false, 8),
        other => panic!("no ELF expectation for {other}"),
    };
    assert_eq!(
        (class, little, machine),
        (want_class, want_little, want_machine),
        "{target}: ELF class/byte order/machine"
    );
    if machine == 8 {
        // 32-bit ELF: e_flags at 36; EF_MIPS_ARCH (top nibble) 7 = mips32r2.
        let b = [elf[36], elf[37], elf[38], elf[39]];
        let flags = if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        };
        assert_eq!(flags >> 28, 7, "{target}: e_flags {flags:#x} is not mips32r2");
    }
}

/// The FreeBSD packages make-pkg.sh assembles have the layout pkg(8) writes: +COMPACT_MANIFEST
/// and +MANIFEST first, then every file the manifest lists with its sha256 and mode, and
/// nothing else. Uses the FreeBSD binary when built, else stand-in bytes (the archive layout
/// is what is checked).
#[test]
fn freebsd_pkgs_match_their_manifests() {
    let have_shellcheck = have("shellcheck");
    let tmp = tempfile::tempdir().unwrap();
    let mut bin = dist().join("x86_64-unknown-freebsd/gatewatch");
    if !bin.exists() {
        // A small stand-in keeps the xz step quick; make-pkg.sh checks it is FreeBSD unless told.
        bin = tmp.path().join("stand-in");
        let bytes: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        std::fs::write(&bin, bytes).unwrap();
    }
    let out_dir = tmp.path().join("out");
    let out = Command::new(repo().join("packaging/pfsense/make-pkg.sh"))
        .arg(&bin)
        .arg(&out_dir)
        .env("MAKE_PKG_ANY_BINARY", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "make-pkg.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let version = env!("CARGO_PKG_VERSION");
    let rc = std::fs::read(repo().join("packaging/pfsense/files/gatewatch.rc")).unwrap();

    for (name, files) in [
        (
            "gatewatch",
            vec![
                ("/usr/local/bin/gatewatch", 0o755),
                ("/usr/local/etc/rc.d/gatewatch", 0o755),
            ],
        ),
        (
            "pfSense-pkg-gatewatch",
            vec![
                ("/usr/local/pkg/gatewatch.xml", 0o644),
                ("/usr/local/pkg/gatewatch.inc", 0o644),
                ("/usr/local/www/gatewatch.php", 0o644),
                ("/etc/inc/priv/gatewatch.priv.inc", 0o644),
                ("/usr/local/share/pfSense-pkg-gatewatch/info.xml", 0o644),
            ],
        ),
    ] {
        let path = out_dir.join(format!("{name}-{version}.pkg"));
        let xz = Command::new("xz").arg("-dc").arg(&path).output().unwrap();
        assert!(xz.status.success(), "{name}: not xz");
        let entries = tar_entries(&xz.stdout);
        assert_eq!(entries[0].name, "+COMPACT_MANIFEST");
        assert_eq!(entries[1].name, "+MANIFEST");
        let compact: serde_json::Value = serde_json::from_slice(&entries[0].data).unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(&entries[1].data).unwrap();
        let s = |k: &str| manifest[k].as_str().unwrap_or_else(|| panic!("{name}: no {k}"));
        assert_eq!(s("name"), name);
        assert_eq!(s("version"), version);
        assert_eq!(s("prefix"), "/usr/local");
        assert_eq!(s("abi"), "FreeBSD:*:amd64");
        for k in ["origin", "comment", "desc", "maintainer", "www"] {
            assert!(!s(k).is_empty(), "{name}: empty {k}");
        }
        for k in ["name", "version", "origin", "abi"] {
            assert_eq!(compact[k], manifest[k], "{name}: compact {k}");
        }
        assert!(
            compact.get("files").is_none(),
            "the compact manifest lists no files"
        );

        let listed = manifest["files"].as_object().unwrap();
        assert_eq!(
            listed.len(),
            entries.len() - 2,
            "{name}: archive holds only listed files"
        );
        let mut flat = 0;
        for (path, want_mode) in &files {
            let e = find(&entries, path);
            let sum = listed[*path].as_str().unwrap();
            assert_eq!(
                sum,
                format!("1${}", hex_sha256(&e.data)),
                "{name}: {path} checksum"
            );
            assert_eq!(e.mode, *want_mode, "{name}: {path} mode {:o}", e.mode);
            assert_eq!((e.uid, e.gid), (0, 0));
            flat += e.data.len();
        }
        assert_eq!(manifest["flatsize"].as_u64(), Some(flat as u64));
        let scripts = manifest["scripts"].as_object().unwrap();
        assert!(scripts.contains_key("post-install") && scripts.contains_key("pre-deinstall"));
        if have_shellcheck {
            for (k, v) in scripts {
                shellcheck_text(k, v.as_str().unwrap().as_bytes());
            }
        }
        if name == "gatewatch" {
            assert!(find(&entries, "/usr/local/bin/gatewatch").data == std::fs::read(&bin).unwrap());
            assert!(find(&entries, "/usr/local/etc/rc.d/gatewatch").data == rc);
        } else {
            assert_eq!(manifest["deps"]["gatewatch"]["version"], version);
            let xml = String::from_utf8(find(&entries, "/usr/local/pkg/gatewatch.xml").data.clone()).unwrap();
            for needle in [
                "<section>Diagnostics</section>",
                "<url>/gatewatch.php</url>",
                "<rcfile>gatewatch.sh</rcfile>",
                "<include_file>/usr/local/pkg/gatewatch.inc</include_file>",
                "<custom_php_install_command>gatewatch_install();",
            ] {
                assert!(xml.contains(needle), "gatewatch.xml lacks {needle}");
            }
            assert_balanced_xml(&xml);
            let info = String::from_utf8(
                find(&entries, "/usr/local/share/pfSense-pkg-gatewatch/info.xml")
                    .data
                    .clone(),
            )
            .unwrap();
            assert!(info.contains(&format!("<version>{version}</version>")), "{info}");
            assert!(info.contains("<configurationfile>gatewatch.xml</configurationfile>"));
            assert_balanced_xml(&info);
        }
    }
}

fn hex_sha256(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every element is closed in order (enough to catch a broken edit of the package XML).
fn assert_balanced_xml(xml: &str) {
    let mut stack = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').expect("unclosed tag") + start;
        let tag = &rest[start + 1..end];
        rest = &rest[end + 1..];
        if tag.starts_with('?') || tag.starts_with('!') || tag.ends_with('/') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop(), Some(name.to_string()), "mismatched </{name}>");
        } else {
            stack.push(tag.split_whitespace().next().unwrap().to_string());
        }
    }
    assert!(stack.is_empty(), "unclosed {stack:?}");
}

/// The rc.d script follows rc.subr conventions (rcvar gatewatch_enable, load_rc_config,
/// run_rc_command) with config and data where FreeBSD keeps them, and passes `shellcheck -s sh`.
#[test]
fn freebsd_rc_script_uses_rc_subr() {
    let rc = std::fs::read_to_string(repo().join("packaging/pfsense/files/gatewatch.rc")).unwrap();
    for needle in [
        ". /etc/rc.subr",
        "name=gatewatch",
        "rcvar=gatewatch_enable",
        "load_rc_config \"$name\"",
        ": \"${gatewatch_enable:=NO}\"",
        "/usr/local/etc/gatewatch/gatewatch.toml",
        "/var/db/gatewatch",
        "run_rc_command \"$1\"",
    ] {
        assert!(rc.contains(needle), "rc script lacks {needle}");
    }
    if have("shellcheck") {
        shellcheck_text("gatewatch.rc", rc.as_bytes());
    }
}

/// packaging/smoke.sh on the cross binaries: `version` and `pcap --json` on fixtures, under
/// qemu-user for the foreign ones, byte-equal to the reference. Needs packaging/build.sh first;
/// CI builds the x86_64 musl binary, so under CI=true at least that one must be there.
#[test]
fn cross_binaries_pass_the_smoke_test() {
    let built: Vec<&str> = LINUX_TARGETS
        .iter()
        .map(|(t, _)| *t)
        .filter(|t| dist().join(t).join("gatewatch").exists())
        .collect();
    if built.is_empty() {
        let msg = "no cross binaries in target-cross/dist (run packaging/build.sh all)";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg}");
        }
        eprintln!("skipping: {msg}");
        return;
    }
    let out = Command::new(repo().join("packaging/smoke.sh"))
        .args(&built)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    assert!(
        out.status.success(),
        "smoke.sh failed:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("FAIL"), "{text}");
    for t in built {
        assert!(
            text.contains(&format!("ok   {t}: version")),
            "{t} not run:\n{text}"
        );
    }
}
