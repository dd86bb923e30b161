//! Passive discovery, always on, sends nothing: every `discovery.poll_interval` it reads
//! the kernel's neighbour table (Linux `/proc/net/arp` and `ip -j neigh`; FreeBSD `arp -an`
//! and `ndp -an`), the configured DHCP lease files, Docker's container list and the
//! router's own addresses, plus what the traffic engine queued on
//! [`Discovery::traffic_sink`], and folds it all into the inventory in one write.

use super::{docker, ifaddrs, lock, Discovery, PassiveStatus};
use crate::discovery::passive::{self as parse, Lease, Neighbour, Parsed};
use crate::inventory::sources::{self, RouterAddress};
use crate::inventory::{NameSource, Observation};
use crate::model::Timestamp;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Which lease format a file holds, from its content.
pub fn parse_lease_file(text: &str, now: Timestamp) -> Parsed<Lease> {
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or_default();
    if first.starts_with("address,hwaddr") {
        parse::parse_kea_leases4(text, now)
    } else if text.contains("lease ") && text.contains('{') {
        parse::parse_isc_dhcpd_leases(text, now)
    } else {
        parse::parse_dnsmasq_leases(text, now)
    }
}

async fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::process::Command::new(program)
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .ok()?
    .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The kernel's neighbour table, with (source, entries) for the status line.
async fn neighbours(status: &mut PassiveStatus) -> Vec<Neighbour> {
    let mut all = Vec::new();
    if cfg!(target_os = "linux") {
        match tokio::fs::read_to_string("/proc/net/arp").await {
            Ok(text) => {
                let p = parse::parse_proc_net_arp(&text);
                status.read.push(("/proc/net/arp".into(), p.items.len()));
                all.extend(p.items);
            }
            Err(e) => status.problems.push(format!("/proc/net/arp: {e}")),
        }
        if let Some(text) = command_output("ip", &["-j", "neigh", "show"]).await {
            let p = parse::parse_ip_neigh_json(&text);
            status.read.push(("ip -j neigh".into(), p.items.len()));
            all.extend(p.items);
        }
    } else {
        if let Some(text) = command_output("arp", &["-an"]).await {
            let p = parse::parse_bsd_arp(&text);
            status.read.push(("arp -an".into(), p.items.len()));
            all.extend(p.items);
        }
        if let Some(text) = command_output("ndp", &["-an"]).await {
            let p = parse::parse_bsd_ndp(&text);
            status.read.push(("ndp -an".into(), p.items.len()));
            all.extend(p.items);
        }
    }
    all
}

fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable for its whole length; gethostname NUL-terminates
    // within it or we find no NUL and use the whole buffer.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).trim().to_string();
    (!name.is_empty()).then_some(name)
}

impl Discovery {
    /// One poll of every passive source; returns how many hosts were new.
    pub async fn poll_passive(&self) -> usize {
        let now = self.now();
        let mut status = PassiveStatus {
            last_poll: Some(now),
            ..Default::default()
        };
        let mut batch: Vec<Observation> = Vec::new();

        // The router itself: its addresses (one host), the subnets they make.
        let addresses: Vec<RouterAddress> = ifaddrs::router_addresses();
        let default_iface = tokio::fs::read_to_string("/proc/net/route")
            .await
            .ok()
            .and_then(|t| sources::proc_net_route_default(&t));
        *lock(&self.subnets) = sources::subnets(&addresses, default_iface.as_ref().map(|(i, _)| i.as_str()));

        let mut leases_found = false;
        let mut lease_obs = Vec::new();
        for path in &self.config.lease_files {
            match tokio::fs::read_to_string(path).await {
                Ok(text) => {
                    leases_found = true;
                    let p = parse_lease_file(&text, now);
                    status.read.push((path.display().to_string(), p.items.len()));
                    if p.skipped > 0 {
                        status.problems.push(format!(
                            "{}: {} lines not understood",
                            path.display(),
                            p.skipped
                        ));
                    }
                    lease_obs.extend(p.items.iter().map(sources::from_lease));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => status.problems.push(format!("{}: {e}", path.display())),
            }
        }
        let resolvers = tokio::fs::read_to_string("/etc/resolv.conf")
            .await
            .map(|t| sources::resolv_conf_nameservers(&t))
            .unwrap_or_default();
        let mut router = sources::router_observations(&addresses, leases_found, false);
        let name = hostname();
        let first_ip = router.first().and_then(|o| o.ip);
        for (i, o) in router.iter_mut().enumerate() {
            if let Some(n) = &name {
                o.names.push((NameSource::Dns, n.clone()));
            }
            if i > 0 {
                o.same_host_as = first_ip;
            }
            // A resolver on the router's own address means the router answers DNS.
            o.infra.dns_server = o.ip.is_some_and(|ip| resolvers.contains(&ip));
        }
        batch.extend(router);
        if let Some((_, gw)) = &default_iface {
            let mut o = Observation::new(crate::inventory::Source::Router);
            o.ip = Some(*gw);
            o.infra.gateway = true;
            batch.push(o);
        }
        for ip in resolvers.iter().filter(|ip| !ip.is_loopback()) {
            let mut o = Observation::new(crate::inventory::Source::Router);
            o.ip = Some(*ip);
            o.infra.dns_server = true;
            batch.push(o);
        }

        batch.extend(neighbours(&mut status).await.iter().map(sources::from_neighbour));
        batch.extend(lease_obs);

        if let Some(socket) = &self.config.docker_socket {
            match docker::containers(socket).await {
                Ok(Some(obs)) => {
                    status
                        .read
                        .push((format!("docker {}", socket.display()), obs.len()));
                    batch.extend(obs);
                }
                Ok(None) => {}
                Err(e) => status.problems.push(e),
            }
        }

        if let Some(rx) = lock(&self.traffic_rx).as_mut() {
            // Only addresses on the router's own networks are hosts of this network.
            let local: Vec<ipnet::IpNet> = lock(&self.subnets)
                .iter()
                .filter(|s| s.kind != crate::inventory::SubnetKind::Internet)
                .map(|s| s.cidr)
                .collect();
            let mut n = 0;
            while let Ok(o) = rx.try_recv() {
                if o.ip.is_some_and(|ip| local.iter().any(|net| net.contains(&ip))) {
                    batch.push(o);
                    n += 1;
                }
            }
            if n > 0 {
                status.read.push(("traffic".into(), n));
            }
        }

        let new = match self.observe_batch(batch, now) {
            Ok(n) => n,
            Err(e) => {
                status.problems.push(format!("cannot store: {e}"));
                0
            }
        };
        *lock(&self.passive_status) = status;
        new
    }

    /// Polls until shutdown (when `discovery.passive` is on).
    pub async fn run_passive(self: Arc<Self>) {
        if !self.config.passive {
            return;
        }
        loop {
            let new = self.poll_passive().await;
            if new > 0 {
                tracing::info!(new, "passive discovery found new devices");
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
    }
}

/// Reads a lease file the way the poll does (for `gatewatch import` and tests).
pub fn read_lease_file(path: &Path, now: Timestamp) -> std::io::Result<Parsed<Lease>> {
    Ok(parse_lease_file(&std::fs::read_to_string(path)?, now))
}
