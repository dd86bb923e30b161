//! Wires the subsystems together and owns shutdown: opens the store, binds the listener,
//! starts the traffic sensor, prints where to go, runs the web server and housekeeping until
//! SIGINT/SIGTERM, then stops the capture threads (flushing their windows) and joins them.

use crate::accounts::Accounts;
use crate::cli::{store_options, CliError, Exit, VERSION};
use crate::config::{Config, TlsFiles};
use crate::model::Timestamp;
use crate::store::Store;
use crate::web::{self, AppState, Facts, WebDeps};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often expired sessions are swept.
const HOUSEKEEPING_PERIOD: Duration = Duration::from_secs(300);

/// Runs `gatewatch serve` to completion.
pub fn serve(cfg: Config) -> Result<(), CliError> {
    if let Err(msg) = crate::logging::init(&cfg.log) {
        return Err(CliError::new(Exit::Config, msg));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::new(Exit::Failure, format!("cannot start the runtime: {e}")))?;
    runtime.block_on(serve_async(cfg))
}

async fn serve_async(cfg: Config) -> Result<(), CliError> {
    let store = Store::open(&cfg.data_dir, store_options(&cfg)).map_err(|e| {
        CliError::new(
            Exit::Store,
            format!("cannot open the database in {}: {e}", cfg.data_dir.display()),
        )
    })?;
    let store = Arc::new(store);
    let tls = match &cfg.web.tls {
        Some(files) => Some(web::tls::server_config(files, &cfg.data_dir).map_err(|e| {
            let hint = match files {
                TlsFiles::SelfSigned => format!("check that {} is writable", cfg.data_dir.display()),
                TlsFiles::User { .. } => "check web.cert_file and web.key_file".to_string(),
            };
            CliError::new(Exit::Config, format!("TLS: {e}; {hint}"))
        })?),
        None => None,
    };
    let syslog_tls = if cfg.syslog.enabled && cfg.syslog.tls_listen.is_some() {
        match web::tls::plain_server_config(&cfg.syslog.tls, &cfg.data_dir) {
            Ok(c) => Some(Arc::new(c)),
            Err(e) => {
                tracing::warn!(error = %e, "syslog TLS receiver off: cannot load its certificate");
                None
            }
        }
    } else {
        None
    };
    let (syslog_listeners, syslog_status) = crate::syslog::bind(&cfg.syslog, syslog_tls).await;
    let logs_hub = Arc::new(crate::syslog::LogsHub::default());
    if let Ok(mut l) = logs_hub.listeners.lock() {
        l.clone_from(&syslog_status);
    }
    let listener = tokio::net::TcpListener::bind(cfg.web.listen)
        .await
        .map_err(|e| bind_error(cfg.web.listen, e))?;
    let local = listener.local_addr().unwrap_or(cfg.web.listen);
    let sensor = crate::sensor::Sensor::start(&cfg, store.clone());

    let accounts = Arc::new(Accounts::new(store, cfg.auth.clone()));
    let needs_setup = accounts
        .needs_setup()
        .map_err(|e| CliError::new(Exit::Store, e.to_string()))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let urls = display_urls(scheme, local);
    let setup_token = crate::accounts::random_token(12);
    let shutdown = CancellationToken::new();
    let discovery = crate::discovery_service::Discovery::open(
        accounts.store().clone(),
        cfg.discovery.clone(),
        shutdown.clone(),
        Arc::new(Timestamp::now),
    )
    .map_err(|e| CliError::new(Exit::Store, format!("cannot load the inventory: {e}")))?;
    feed_inventory_from_traffic(&sensor.hub, &discovery);
    let state = Arc::new(AppState {
        accounts: accounts.clone(),
        config: Arc::new(cfg),
        facts: Facts {
            version: VERSION,
            started_at: Timestamp::now(),
            started: Instant::now(),
            urls: urls.clone(),
            tls: tls.is_some(),
        },
        setup_token: setup_token.clone(),
        metrics: Default::default(),
        shutdown: shutdown.clone(),
        clock: Arc::new(Timestamp::now),
        discovery: discovery.clone(),
        traffic: sensor.hub.clone(),
        logs: logs_hub.clone(),
    });

    let stop = stop_signal();
    // The console is where a first-time user looks; say where to go.
    println!("gatewatch {VERSION} listening on {}", urls.join(" "));
    if needs_setup {
        println!(
            "first start: create the admin account at {}setup?token={setup_token}",
            urls[0]
        );
        println!("(or run `gatewatch user add NAME --role admin`)");
    }
    tracing::info!(listen = %local, tls = state.facts.tls, data_dir = %state.config.data_dir.display(), "serving");
    for s in &syslog_status {
        match &s.result {
            Ok(addr) => println!("syslog receiver listening on {} {addr}", s.transport.as_str()),
            Err(e) => {
                println!("syslog receiver ({}) off: {e}", s.transport.as_str());
                tracing::warn!(transport = s.transport.as_str(), error = %e, "syslog receiver off");
            }
        }
    }
    let syslog = tokio::spawn(crate::syslog::run(
        crate::syslog::SyslogDeps {
            listeners: syslog_listeners,
            store: accounts.store().clone(),
            hub: logs_hub,
            cfg: state.config.syslog.clone(),
            clock: Arc::new(Timestamp::now),
        },
        shutdown.clone(),
    ));

    let housekeeping = tokio::spawn(housekeeping(accounts, shutdown.clone()));
    let passive = tokio::spawn(discovery.clone().run_passive());
    let schedules = tokio::spawn(discovery.run_schedules());
    let web = tokio::spawn(web::run(WebDeps { listener, tls, state }, shutdown.clone()));
    stop.await;
    tracing::info!("shutting down");
    shutdown.cancel();
    let _ = web.await;
    // Stops receiving and commits what was received before returning.
    let _ = syslog.await;
    let _ = housekeeping.await;
    let _ = passive.await;
    let _ = schedules.await;
    // Capture threads see the stop flag within one poll interval and flush their window.
    let _ = tokio::task::spawn_blocking(move || sensor.stop()).await;
    tracing::info!("stopped");
    Ok(())
}

/// Hosts the traffic engine sees (endpoints of active flows, once per closed window) and the
/// names DNS answers gave them feed the inventory's passive traffic source. Non-blocking: a
/// full queue drops the batch; the next window brings the hosts again.
pub fn feed_inventory_from_traffic(
    hub: &crate::sensor::TrafficHub,
    discovery: &crate::discovery_service::Discovery,
) {
    let tx = discovery.traffic_sink();
    let _ = hub.hosts_seen.set(Box::new(move |ips, names| {
        let names: Vec<(std::net::IpAddr, &str)> = names.iter().map(|(ip, n)| (*ip, &**n)).collect();
        let seen: Vec<_> = ips.iter().map(|ip| (*ip, None)).collect();
        for o in crate::inventory::sources::from_traffic(&seen, &names) {
            let _ = tx.try_send(o);
        }
    }));
}

fn bind_error(addr: SocketAddr, e: std::io::Error) -> CliError {
    let hint = match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            "another program uses this port; pick another with --listen or web.listen"
        }
        std::io::ErrorKind::PermissionDenied => {
            "ports below 1024 need root or CAP_NET_BIND_SERVICE; use a port above 1024"
        }
        std::io::ErrorKind::AddrNotAvailable => {
            "this machine has no such address; use 127.0.0.1, 0.0.0.0 or one of its own"
        }
        _ => "check web.listen",
    };
    CliError::new(Exit::Listen, format!("cannot listen on {addr}: {e} ({hint})"))
}

/// The URLs to print: an unspecified address is shown as loopback, which always works locally.
fn display_urls(scheme: &str, addr: SocketAddr) -> Vec<String> {
    let host = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_string(),
        ip if ip.is_unspecified() => "[::1]".to_string(),
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        ip => ip.to_string(),
    };
    vec![format!("{scheme}://{host}:{}/", addr.port())]
}

async fn housekeeping(accounts: Arc<Accounts>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(HOUSEKEEPING_PERIOD) => {}
        }
        let a = accounts.clone();
        let result = tokio::task::spawn_blocking(move || a.prune_sessions(Timestamp::now())).await;
        match result {
            Ok(Ok(n)) if n > 0 => tracing::debug!(removed = n, "pruned expired sessions"),
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot prune sessions"),
            _ => {}
        }
    }
}

/// Registers SIGTERM and SIGINT now and returns a future that ends at the first of them.
/// Registering before the "listening on" line matters: a service manager or a test may
/// stop us as soon as we say we are up, and an unregistered SIGTERM kills the process
/// without the orderly shutdown (final commits, receivers drained).
fn stop_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}
