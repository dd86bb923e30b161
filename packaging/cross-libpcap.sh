#!/bin/sh
# cross-rs pre-build hook (Cross.toml): builds a static libpcap into /opt/libpcap inside the
# cross image, with the image's own cross compiler (CROSS_TOOLCHAIN_PREFIX, set by cross's
# images). The source is Debian's libpcap orig tarball, the one packaging/build.sh uses.
set -eu

VER=1.10.3
URL=https://deb.debian.org/debian/pool/main/libp/libpcap/libpcap_${VER}.orig.tar.gz
HOST=${CROSS_TOOLCHAIN_PREFIX%-}
TARGET=${1:-$HOST}
case $TARGET in *freebsd*) PCAP=bpf ;; *) PCAP=linux ;; esac

apt-get update -qq
apt-get install -y -qq --no-install-recommends flex bison curl ca-certificates make >/dev/null
cd /tmp
curl -fsSL "$URL" | tar -xz
cd "libpcap-$VER"
./configure --host="$HOST" --prefix=/opt/libpcap --with-pcap="$PCAP" --disable-shared \
    --enable-static --without-libnl --disable-dbus --disable-rdma --disable-bluetooth \
    --disable-netmap --without-dpdk --disable-remote --disable-usb --without-openssl \
    CC="${CROSS_TOOLCHAIN_PREFIX}gcc" CFLAGS="-Os -fPIC"
make -j"$(nproc)" libpcap.a
mkdir -p /opt/libpcap/lib
cp libpcap.a /opt/libpcap/lib/
cd /tmp && rm -rf "libpcap-$VER"
