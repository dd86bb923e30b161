#!/usr/bin/env bash
# Static cross builds of gatewatch for routers, on a plain Debian 12 machine (no docker).
#
#   packaging/build.sh all                          the six binaries, then the .ipk, .deb and .pkg files
#   packaging/build.sh x86_64-unknown-linux-musl    one target (several may be listed; short
#                                                   names: x86_64 aarch64 armv7 mipsel mips freebsd)
#   packaging/build.sh packages                     only the .ipk/.deb/.pkg from binaries built before
#
# Targets: x86_64-unknown-linux-musl, aarch64-unknown-linux-musl, armv7-unknown-linux-musleabihf,
# mipsel-unknown-linux-musl, mips-unknown-linux-musl (static; mips* soft-float mips32r2) and
# x86_64-unknown-freebsd (libpcap static, FreeBSD base libc dynamic).
#
# Installs what it needs and is idempotent: apt packages (needs root), zig and cargo-zigbuild
# from PyPI in a venv (pinned), the Debian libpcap source (deb-src) built once per target, and
# the pinned nightly with rust-src: every target rebuilds std (-Zbuild-std), for size.
# Everything it writes lives under target-cross/ (gitignored); normal builds are not touched.
# Binaries: target-cross/dist/<target>/gatewatch; packages: target-cross/dist/packages/.
#
# LMDB keeps its robust process-shared mutexes (no -DMDB_USE_ROBUST=0): qemu-user lacks the
# get_robust_list syscall musl probes, so the store cannot open under qemu, but every real
# kernel has it, and robust mutexes are what lets a CLI command (backup, user add) recover the
# lock if the server died holding it. packaging/smoke.sh therefore runs no store commands.
#
# Size (goal <= 8 MB stripped per binary, for routers with 16 MB of flash): the release-small
# profile (Cargo.toml), std rebuilt with its optimize_for_size variants and without backtrace
# symbolization or unwind tables (-Zbuild-std, below), and .pdr dropped on mips.
#
# Env: PROFILE (cargo profile, default release-small), NIGHTLY (toolchain for -Zbuild-std,
#      default nightly-2026-05-20, pinned), SKIP_INSTALL=1 (tools are known to be there), JOBS (cargo -j).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT="$ROOT/target-cross"
TOOLS="$OUT/tools"
DIST="$OUT/dist"
PROFILE=${PROFILE:-release-small}
# Pinned: -Zbuild-std changes between nightlies; this one built all six targets here.
PINNED_NIGHTLY=nightly-2026-05-20
PINNED_RUSTC="rustc 1.97.0-nightly (e50aa6fba 2026-05-19)" # what `rustc -V` of that pin prints
NIGHTLY=${NIGHTLY:-$PINNED_NIGHTLY}
ZIG_VERSION=0.17.1
ZIGBUILD_VERSION=0.24.0
ALL_TARGETS="x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf mipsel-unknown-linux-musl mips-unknown-linux-musl x86_64-unknown-freebsd"
# FreeBSD base-system libraries a FreeBSD binary may need (all in base on FreeBSD 14 and 15).
FREEBSD_BASE_LIBS="libc.so.7 libthr.so.3 libm.so.5 libgcc_s.so.1 libutil.so.9 libexecinfo.so.1 libkvm.so.7 libelf.so.2"

log() { printf '\n=== %s\n' "$*" >&2; }
die() { echo "build.sh: $*" >&2; exit 1; }

# Short names: x86_64, aarch64, armv7, mipsel, mips, freebsd.
full_target() {
    case $1 in
        x86_64 | x86_64-musl) echo x86_64-unknown-linux-musl ;;
        aarch64) echo aarch64-unknown-linux-musl ;;
        armv7) echo armv7-unknown-linux-musleabihf ;;
        mipsel) echo mipsel-unknown-linux-musl ;;
        mips) echo mips-unknown-linux-musl ;;
        freebsd) echo x86_64-unknown-freebsd ;;
        *) echo "$1" ;;
    esac
}

install_tools() {
    local targets=$1
    log "apt packages"
    local pkgs="build-essential flex bison file binutils python3-venv xz-utils zstd ca-certificates qemu-user-static shellcheck"
    # shellcheck disable=SC2086
    if ! dpkg -s $pkgs >/dev/null 2>&1; then
        [ "$(id -u)" = 0 ] || die "missing apt packages ($pkgs); run as root or install them"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
    fi

    if [ -f "${HOME:-/root}/.cargo/env" ]; then
        # shellcheck disable=SC1091
        . "${HOME:-/root}/.cargo/env"
    fi
    command -v rustup >/dev/null || die "rustup is required (https://rustup.rs; Debian 12 has no package)"

    [ -n "$targets" ] || return 0
    log "zig $ZIG_VERSION + cargo-zigbuild $ZIGBUILD_VERSION (PyPI, venv in $TOOLS/venv)"
    [ -x "$TOOLS/venv/bin/pip" ] || python3 -m venv "$TOOLS/venv"
    if ! "$TOOLS/venv/bin/python" -m ziglang version 2>/dev/null | grep -qx "$ZIG_VERSION" ||
        ! "$TOOLS/venv/bin/cargo-zigbuild" --version 2>/dev/null | grep -q "$ZIGBUILD_VERSION"; then
        "$TOOLS/venv/bin/pip" install -q "ziglang==$ZIG_VERSION" "cargo-zigbuild==$ZIGBUILD_VERSION"
    fi
    ln -sfn "$("$TOOLS/venv/bin/python" -c 'import ziglang,os;print(os.path.dirname(ziglang.__file__))')/zig" "$TOOLS/venv/bin/zig"

    log "$NIGHTLY with rust-src (for -Zbuild-std)"
    # A floating `nightly` that is the very build of the pin (as on this project's build
    # machines) is used as is, so no toolchain download is needed.
    if [ "$NIGHTLY" = "$PINNED_NIGHTLY" ] && ! rustup toolchain list | grep -q "^$NIGHTLY" &&
        [ "$(rustc "+nightly" -V 2>/dev/null)" = "$PINNED_RUSTC" ]; then
        NIGHTLY=nightly
    fi
    rustup toolchain list | grep -q "^$NIGHTLY" || rustup toolchain install "$NIGHTLY" --profile minimal
    rustup component list --toolchain "$NIGHTLY" --installed | grep -q '^rust-src' ||
        rustup component add rust-src --toolchain "$NIGHTLY"
}

# Debian's libpcap source package (apt deb-src), unpacked once under $TOOLS/src.
fetch_libpcap() {
    mkdir -p "$TOOLS/src"
    local orig
    orig=$(find "$TOOLS/src" -maxdepth 1 -name 'libpcap_*.orig.tar.gz' | head -1)
    if [ -z "$orig" ]; then
        log "libpcap source via apt-get source (deb-src)"
        if ! grep -rqs '^Types:.*deb-src\|^deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/; then
            [ "$(id -u)" = 0 ] || die "no deb-src entry for apt; run as root once to add one"
            local uri
            uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
            [ -n "$uri" ] || uri=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list)
            printf 'Types: deb-src\nURIs: %s\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" \
                >/etc/apt/sources.list.d/gatewatch-deb-src.sources
            apt-get update -qq
        fi
        (cd "$TOOLS/src" && apt-get source --download-only libpcap >/dev/null 2>&1) || die "apt-get source libpcap failed"
        orig=$(find "$TOOLS/src" -maxdepth 1 -name 'libpcap_*.orig.tar.gz' | head -1)
    fi
    PCAP_VER=$(basename "$orig" | sed -E 's/libpcap_([0-9.]+)\.orig.*/\1/')
    PCAP_SRC="$TOOLS/src/libpcap-$PCAP_VER"
    [ -f "$PCAP_SRC/configure" ] || tar -C "$TOOLS/src" -xzf "$orig"
}

# build_libpcap PREFIX HOST PCAP_TYPE CC AR RANLIB EXTRA_CFLAGS: a static libpcap.a, once.
build_libpcap() {
    local prefix=$1 host=$2 type=$3 cc=$4 ar=$5 ranlib=$6 cflags=$7
    [ -f "$prefix/lib/libpcap.a" ] && return 0
    log "libpcap $PCAP_VER for $host ($cc)"
    local b
    b=$(mktemp -d "$TOOLS/pcapbuild.XXXX")
    (
        cd "$b"
        CC="$cc" AR="$ar" RANLIB="$ranlib" "$PCAP_SRC/configure" --host="$host" --prefix="$prefix" \
            --with-pcap="$type" --disable-shared --enable-static --without-libnl --disable-dbus \
            --disable-rdma --disable-bluetooth --disable-netmap --without-dpdk --disable-remote \
            --disable-usb --without-openssl CFLAGS="-Os -fPIC $cflags" >configure.log 2>&1 || {
            tail -30 configure.log
            exit 1
        }
        nice -n 15 make -j"$(nproc)" libpcap.a >make.log 2>&1 || {
            tail -30 make.log
            exit 1
        }
        mkdir -p "$prefix/lib" "$prefix/include"
        cp libpcap.a "$prefix/lib/"
    )
    rm -rf "$b"
}

# Two locked crates assume a little-endian host, so for mips (big-endian) only the build uses a
# vendored copy of the locked crates with them fixed (Cargo.lock stays as it is):
# - datasketches refuses big-endian targets with a blanket compile_error!
#   (apache/datasketches-rust#28: a policy carried over from the Java library, whose
#   compression code is byte-order dependent; the Rust HLL, KLL and frequent-items code
#   gatewatch uses reads and writes explicit little-endian bytes): the line is removed.
# - pcap-parser 0.17 reads a pcapng block type as little-endian and then "converts" it with
#   u32::from_le/from_be, which swaps on a big-endian host, so every pcapng block after the
#   section header fails its type check there: the conversion becomes host-independent.
# smoke.sh checks that the mips binary's summaries equal the x86_64 ones byte for byte.
# -Zbuild-std resolves std's own dependencies through the same source, so the vendored set
# includes the toolchain's library/Cargo.lock too.
# big_endian_sources TOOLCHAIN: prints the cargo --config arguments.
big_endian_sources() {
    local v="$TOOLS/vendor-be" tc=$1 lib
    if [ "$(cat "$v/.patched" 2>/dev/null)" != "$tc" ]; then
        log "vendored crates for big-endian targets (datasketches and pcap-parser fixed)"
        rm -rf "$v"
        lib="$(rustc "+$tc" --print sysroot)/lib/rustlib/src/rust/library/Cargo.toml"
        (cd "$ROOT" && cargo "+$tc" vendor --locked --versioned-dirs -s "$lib" "$v" >/dev/null)
        python3 - "$v" <<'PY'
import glob, hashlib, json, sys

def patch(pattern, rel, old, new):
    (crate,) = glob.glob(sys.argv[1] + "/" + pattern)
    path = crate + "/" + rel
    src = open(path).read()
    if old not in src:
        sys.exit("build.sh: " + path + " changed; re-check the big-endian patch")
    open(path, "w").write(src.replace(old, new))
    sums = json.load(open(crate + "/.cargo-checksum.json"))
    sums["files"][rel] = hashlib.sha256(open(path, "rb").read()).hexdigest()
    json.dump(sums, open(crate + "/.cargo-checksum.json", "w"))

patch("datasketches-0.6.*", "src/lib.rs",
      '#[cfg(target_endian = "big")]\ncompile_error!("datasketches does not support big-endian targets");\n', "")
patch("pcap-parser-0.17.*", "src/endianness.rs", "u32::from_be(n)", "n.swap_bytes()")
patch("pcap-parser-0.17.*", "src/endianness.rs", "u32::from_le(n)", "n")
PY
        echo "$tc" >"$v/.patched"
    fi
    echo "--config source.crates-io.replace-with='vendored-be' --config source.vendored-be.directory='$v'"
}

# Checks that a binary only needs what the target promises: nothing for the Linux targets
# (static), FreeBSD base libraries for FreeBSD.
check_linkage() {
    local t=$1 bin=$2 needed lib
    needed=$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
    case $t in
        *freebsd*)
            for lib in $needed; do
                case " $FREEBSD_BASE_LIBS " in *" $lib "*) ;; *) die "$t needs $lib, which is not in FreeBSD base" ;; esac
            done
            echo "NEEDED (FreeBSD base): $(echo "$needed" | tr '\n' ' ')"
            ;;
        *)
            [ -z "$needed" ] || die "$t is not static; it needs: $needed"
            readelf -l "$bin" | grep -q 'Requesting program interpreter' && die "$t has a program interpreter"
            echo "NEEDED: none (static)"
            ;;
    esac
}

build_target() {
    local t=$1 up tc=$NIGHTLY zt pcapt cc ar ranlib
    # Size: std is rebuilt for every target (nightly -Zbuild-std) with its optimize_for_size
    # variants and without backtrace symbolization (gimli). The profile aborts on panic, so
    # nothing ever unwinds and unwind tables would only serve panic backtraces (panics still
    # print message and location): force-unwind-tables=no drops the ~0.5-1 MB .eh_frame, but
    # only because std is rebuilt with it too. rustc's own crt objects are absent for a rebuilt
    # std; zig supplies musl's crt, libc and libunwind (link-self-contained=no), and links a
    # static non-PIE executable (no .rela.dyn). Measured on x86_64 musl, same sources: prebuilt
    # std linked by musl-gcc 9.55 MB, rebuilt std linked by zig 7.44 MB (.eh_frame and its
    # header -1.08 MB, .rela.dyn -0.48 MB, the rest std's optimize_for_size code).
    local buildstd="-Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size"
    local rflags="-C force-unwind-tables=no"
    up=$(echo "$t" | tr 'a-z-' 'A-Z_')
    case $t in
        x86_64-unknown-linux-musl) zt=x86_64-linux-musl pcapt=linux ;;
        aarch64-unknown-linux-musl) zt=aarch64-linux-musl pcapt=linux ;;
        armv7-unknown-linux-musleabihf) zt="arm-linux-musleabihf -mcpu=generic+v7a+vfp3d16" pcapt=linux ;;
        mipsel-unknown-linux-musl) zt="mipsel-linux-musleabi -mcpu=mips32r2" pcapt=linux ;;
        mips-unknown-linux-musl) zt="mips-linux-musleabi -mcpu=mips32r2" pcapt=linux ;;
        x86_64-unknown-freebsd) zt=x86_64-freebsd pcapt=bpf ;; # FreeBSD >= 14.0 ABI (zig default)
        *) die "unknown target $t (known: $ALL_TARGETS)" ;;
    esac
    cc="zig cc -target $zt" ar="zig ar" ranlib="zig ranlib"
    # musl targets: zig's crt objects, not rustc's (the option exists only for musl and windows).
    case $t in *-musl*) rflags="$rflags -C link-self-contained=no" ;; esac
    # mips musl defaults to dynamic linking. The binary is fully static, so MIPS code needs no
    # PIC: with it every call and global access goes through the GOT.
    case $t in mips*) rflags="$rflags -C target-feature=+crt-static -C relocation-model=static" ;; esac

    local tdir="$OUT/$tc"

    local prefix="$TOOLS/sysroot/$t"
    build_libpcap "$prefix" "${zt%% *}" "$pcapt" "$cc" "$ar" "$ranlib" ""
    # The pcap crate links `pcap` as a dylib. Static musl links pick libpcap.a; FreeBSD links
    # libc dynamically, so give the linker a libpcap.so that is a linker script naming the archive.
    [ $pcapt = bpf ] && echo 'INPUT(libpcap.a)' >"$prefix/lib/libpcap.so"

    local sources=""
    if [ "${t%%-*}" = mips ]; then
        sources=$(big_endian_sources "$tc")
        # Cargo never re-checks registry sources, so a re-patched copy would not be rebuilt.
        # shellcheck disable=SC2086
        (cd "$ROOT" && cargo "+$tc" clean -q $sources -p datasketches -p pcap-parser --target "$t" \
            --profile "$PROFILE" --target-dir "$tdir")
    fi

    log "cargo +$tc zigbuild --profile $PROFILE --target $t $buildstd"
    local start=$SECONDS
    (
        cd "$ROOT"
        export LIBPCAP_LIBDIR="$prefix/lib" LIBPCAP_VER="$PCAP_VER"
        export "CARGO_TARGET_${up}_RUSTFLAGS=$rflags"
        local jobs=()
        [ -n "${JOBS:-}" ] && jobs=(-j "$JOBS")
        # shellcheck disable=SC2086
        nice -n 15 cargo "+$tc" zigbuild --locked $sources $buildstd --profile "$PROFILE" --target "$t" --target-dir "$tdir" "${jobs[@]}"
    )
    local secs=$((SECONDS - start))
    local bin="$tdir/$t/$PROFILE/gatewatch"
    check_linkage "$t" "$bin"
    mkdir -p "$DIST/$t"
    cp "$bin" "$DIST/$t/gatewatch"
    case $t in
        mips*)
            # LLVM writes MIPS procedure descriptors (.pdr, ~600 kB) that nothing reads at run
            # time and the linker's strip keeps; the toolchain's llvm-objcopy drops them.
            local sysroot
            sysroot=$(rustc "+$tc" --print sysroot)
            LD_LIBRARY_PATH="$sysroot/lib" "$sysroot/lib/rustlib/x86_64-unknown-linux-gnu/bin/rust-objcopy" \
                --remove-section=.pdr "$DIST/$t/gatewatch"
            ;;
    esac
    echo "$t: built in ${secs}s" | tee -a "$OUT/build-times.txt"
}

summary() {
    log "binaries ($PROFILE)"
    local t bin
    for t in $1; do
        bin="$DIST/$t/gatewatch"
        [ -f "$bin" ] || continue
        printf '%-32s %9d bytes (%s MiB)\n  %s\n' "$t" "$(stat -c %s "$bin")" \
            "$(awk -v s="$(stat -c %s "$bin")" 'BEGIN{printf "%.2f", s/1048576}')" "$(file -b "$bin")"
    done
    if [ -d "$DIST/packages" ]; then
        log "packages"
        ls -l "$DIST/packages"
    fi
}

packages() {
    log "OpenWrt .ipk, Debian .deb and FreeBSD .pkg"
    mkdir -p "$DIST/packages"
    "$ROOT/packaging/openwrt/make-ipk.sh" "$DIST" "$DIST/packages"
    "$ROOT/packaging/systemd/make-deb.sh" "$DIST" "$DIST/packages"
    if [ -f "$DIST/x86_64-unknown-freebsd/gatewatch" ]; then
        "$ROOT/packaging/pfsense/make-pkg.sh" "$DIST/x86_64-unknown-freebsd/gatewatch" "$DIST/packages"
    fi
}

main() {
    [ $# -gt 0 ] || { sed -n '2,26p' "$0"; exit 2; }
    local targets="" pack=0
    case $1 in
        all) targets=$ALL_TARGETS pack=1 ;;
        packages) pack=1 ;;
        *)
            local a
            for a in "$@"; do targets="$targets $(full_target "$a")"; done
            ;;
    esac
    mkdir -p "$TOOLS" "$DIST"
    [ "${SKIP_INSTALL:-0}" = 1 ] || install_tools "$targets"
    if [ -f "${HOME:-/root}/.cargo/env" ]; then
        # shellcheck disable=SC1091
        . "${HOME:-/root}/.cargo/env"
    fi
    export PATH="$TOOLS/venv/bin:$PATH"
    if [ -n "$targets" ]; then
        fetch_libpcap
        local t
        for t in $targets; do build_target "$t"; done
    fi
    [ $pack = 1 ] && packages
    summary "${targets:-$ALL_TARGETS}"
}

# One line, so bash has read all of it before anything runs: editing the file during a
# build cannot change what the running script does.
main "$@"; exit $?
