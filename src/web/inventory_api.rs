//! `/api/v1` routes of the inventory: hosts (list, one, acknowledge, merge, split,
//! delete), subnets, scans (list, start, progress, cancel) and nmap imports. Documented in
//! the OpenAPI document through [`super::api::ApiDoc`].

use super::api::{ApiError, ApiJson};
use super::guard::ClientIp;
use super::pages::hosts::{audit, filter_hosts, HostQuery};
use super::AppState;
use crate::accounts::Principal;
use crate::discovery::oui::Mac;
use crate::discovery_service::scans::ScanProgress;
use crate::discovery_service::{hosts_per_subnet, DiscoveryError};
use crate::inventory::{Host, InventoryError, ScanOrigin, ScanRecord};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

type ApiResult<T> = Result<T, ApiError>;

impl From<DiscoveryError> for ApiError {
    fn from(e: DiscoveryError) -> Self {
        let (status, code) = match &e {
            DiscoveryError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            DiscoveryError::Inventory(InventoryError::NoSuchHost(_)) | DiscoveryError::NoSuchScan(_) => {
                (StatusCode::NOT_FOUND, "not_found")
            }
            _ => (StatusCode::BAD_REQUEST, "invalid"),
        };
        ApiError::new(status, code, &e.to_string())
    }
}

#[derive(Serialize, ToSchema)]
pub struct AddressBody {
    pub ip: String,
    pub first_seen: String,
    pub last_seen: String,
    /// Sources that saw it: arp, ndp, dhcp, scan, nmap, docker, traffic, dns, router.
    pub sources: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct InterfaceBody {
    pub mac: Option<String>,
    pub vendor: Option<String>,
    /// Locally administered (randomised or made-up) MAC: it names no vendor.
    pub random_mac: bool,
    pub label: Option<String>,
    pub addresses: Vec<AddressBody>,
}

#[derive(Serialize, ToSchema)]
pub struct ServiceBody {
    /// Absent for applications named by host-level evidence only (mDNS, SSDP).
    pub port: Option<u16>,
    pub proto: String,
    /// Protocol name (ssh, http, domain …).
    pub name: Option<String>,
    pub product: Option<String>,
    /// The service definition that matched, e.g. "Home Assistant".
    pub application: Option<String>,
    pub category: Option<String>,
    pub evidence: Vec<String>,
    pub first_seen: String,
    pub last_seen: String,
}

#[derive(Serialize, ToSchema)]
pub struct HostBody {
    pub id: u64,
    /// The best name: DNS > DHCP > container > mDNS > NetBIOS > service.
    pub name: Option<String>,
    /// Every name by source.
    pub names: std::collections::BTreeMap<String, String>,
    pub vendor: Option<String>,
    /// Not yet acknowledged.
    pub new: bool,
    pub gateway: bool,
    pub dns_server: bool,
    pub dhcp_server: bool,
    pub first_seen: String,
    pub last_seen: String,
    pub sources: Vec<String>,
    pub interfaces: Vec<InterfaceBody>,
    pub services: Vec<ServiceBody>,
}

impl From<Host> for HostBody {
    fn from(h: Host) -> Self {
        HostBody {
            id: h.id,
            name: h.name().map(str::to_string),
            names: h
                .names
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), v.clone()))
                .collect(),
            vendor: h.vendor().map(str::to_string),
            new: h.is_new,
            gateway: h.infra.gateway,
            dns_server: h.infra.dns_server,
            dhcp_server: h.infra.dhcp_server,
            first_seen: h.first_seen.to_string(),
            last_seen: h.last_seen.to_string(),
            sources: h.sources.iter().map(|s| s.as_str().to_string()).collect(),
            interfaces: h
                .interfaces
                .into_iter()
                .map(|i| InterfaceBody {
                    mac: i.mac.map(|m| Mac(m).to_string()),
                    vendor: i.vendor,
                    random_mac: i.mac.is_some_and(|m| Mac(m).is_locally_administered()),
                    label: i.label,
                    addresses: i
                        .addresses
                        .into_iter()
                        .map(|a| AddressBody {
                            ip: a.ip.to_string(),
                            first_seen: a.first_seen.to_string(),
                            last_seen: a.last_seen.to_string(),
                            sources: a.sources.iter().map(|s| s.as_str().to_string()).collect(),
                        })
                        .collect(),
                })
                .collect(),
            services: h
                .services
                .into_iter()
                .map(|s| ServiceBody {
                    port: s.port,
                    proto: s.proto.as_str().into(),
                    name: s.name,
                    product: s.product,
                    application: s.application,
                    category: s.category,
                    evidence: s.evidence,
                    first_seen: s.first_seen.to_string(),
                    last_seen: s.last_seen.to_string(),
                })
                .collect(),
        }
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct HostsParams {
    /// Text search over names, addresses, MACs, vendors and services.
    pub q: Option<String>,
    /// Only hosts with an address in this CIDR.
    pub subnet: Option<String>,
    pub vendor: Option<String>,
    /// Application or protocol name.
    pub service: Option<String>,
    /// Only new (unacknowledged) hosts.
    pub new: Option<bool>,
    /// name (default), ip, vendor, first, last, services.
    pub sort: Option<String>,
    /// asc (default) or desc.
    pub dir: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct HostList {
    pub total: usize,
    pub hosts: Vec<HostBody>,
}

#[derive(Deserialize, ToSchema)]
pub struct MergeRequest {
    /// Hosts to fold into this one.
    pub from: Vec<u64>,
}

#[derive(Deserialize, ToSchema)]
pub struct SplitRequest {
    /// Index of the interface (in this host's `interfaces`) that is another device.
    pub interface: usize,
}

#[derive(Serialize, ToSchema)]
pub struct SplitResult {
    pub new_host: u64,
}

#[derive(Serialize, ToSchema)]
pub struct SubnetBody {
    pub cidr: String,
    /// lan, vlan, wan or internet.
    pub kind: String,
    pub interface: Option<String>,
    pub router_ip: Option<String>,
    pub hosts: usize,
}

#[derive(Serialize, ToSchema)]
pub struct ScanBody {
    pub id: u64,
    /// manual, schedule or nmap-import.
    pub origin: ScanOrigin,
    pub requested_by: String,
    pub targets: Vec<String>,
    pub ports: String,
    /// queued, running, done, cancelled, failed.
    pub state: String,
    pub queued_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub addresses: u64,
    pub hosts_found: u64,
    pub open_ports: u64,
    pub new_hosts: u64,
    pub summary: String,
}

impl From<ScanRecord> for ScanBody {
    fn from(s: ScanRecord) -> Self {
        ScanBody {
            id: s.id,
            origin: s.origin,
            requested_by: s.requested_by,
            targets: s.targets,
            ports: s.ports,
            state: s.state.as_str().into(),
            queued_at: s.queued_at.to_string(),
            started_at: s.started_at.map(|t| t.to_string()),
            finished_at: s.finished_at.map(|t| t.to_string()),
            addresses: s.addresses,
            hosts_found: s.hosts_found,
            open_ports: s.open_ports,
            new_hosts: s.new_hosts,
            summary: s.summary,
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct NewScan {
    /// Addresses or CIDRs; private ranges only unless discovery.allow_public_targets.
    pub targets: Vec<String>,
    /// default, top100, top1000, all or a list like "22,80,8000-8100"; the configured
    /// discovery.default_ports when absent.
    pub ports: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ScanDetail {
    #[serde(flatten)]
    pub scan: ScanBody,
    pub progress: ScanProgress,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DiscoveryError> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| ApiError::internal("internal error; see the server log"))?
        .map_err(ApiError::from)
}

/// Hosts, filtered and sorted like the hosts page.
#[utoipa::path(get, path = "/api/v1/hosts", tag = "inventory", params(HostsParams),
    responses((status = 200, body = HostList), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
pub async fn hosts_list(State(state): State<Arc<AppState>>, Query(p): Query<HostsParams>) -> Json<HostList> {
    let q = HostQuery {
        q: p.q.unwrap_or_default(),
        subnet: p.subnet.unwrap_or_default(),
        vendor: p.vendor.unwrap_or_default(),
        service: p.service.unwrap_or_default(),
        new: if p.new.unwrap_or(false) {
            "1".into()
        } else {
            String::new()
        },
        sort: p.sort.unwrap_or_default(),
        dir: p.dir.unwrap_or_default(),
    };
    let hosts = filter_hosts(&state.discovery, &q);
    Json(HostList {
        total: hosts.len(),
        hosts: hosts.into_iter().map(HostBody::from).collect(),
    })
}

fn no_host(id: u64) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("no host with id {id}"),
    )
}

/// One host with its interfaces, addresses and services.
#[utoipa::path(get, path = "/api/v1/hosts/{id}", tag = "inventory",
    params(("id" = u64, Path, description = "Host id")),
    responses((status = 200, body = HostBody), (status = 404, body = ApiError)))]
pub async fn host_get(State(state): State<Arc<AppState>>, Path(id): Path<u64>) -> ApiResult<Json<HostBody>> {
    state
        .discovery
        .host(id)
        .map(|h| Json(h.into()))
        .ok_or_else(|| no_host(id))
}

/// Delete a host (it comes back if a source sees it again).
#[utoipa::path(delete, path = "/api/v1/hosts/{id}", tag = "inventory",
    params(("id" = u64, Path, description = "Host id")),
    responses((status = 204), (status = 404, body = ApiError)))]
pub async fn host_delete(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<u64>,
) -> ApiResult<StatusCode> {
    let (d, now, actor) = (state.discovery.clone(), state.now(), who.name.clone());
    blocking(move || d.delete(&[id], now, &actor)).await?;
    audit(&state, &who, ip, "hosts.delete", format!("[{id}]")).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Clear the host's "new" badge.
#[utoipa::path(post, path = "/api/v1/hosts/{id}/acknowledge", tag = "inventory",
    params(("id" = u64, Path, description = "Host id")),
    responses((status = 200, body = HostBody), (status = 404, body = ApiError)))]
pub async fn host_acknowledge(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<u64>,
) -> ApiResult<Json<HostBody>> {
    let (d, now, actor) = (state.discovery.clone(), state.now(), who.name.clone());
    blocking(move || d.acknowledge(&[id], now, &actor)).await?;
    audit(&state, &who, ip, "hosts.acknowledge", format!("[{id}]")).await;
    host_get(State(state), Path(id)).await
}

/// Fold other hosts into this one (they are the same device).
#[utoipa::path(post, path = "/api/v1/hosts/{id}/merge", tag = "inventory", request_body = MergeRequest,
    params(("id" = u64, Path, description = "Host that stays")),
    responses((status = 200, body = HostBody), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
pub async fn host_merge(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<u64>,
    ApiJson(body): ApiJson<MergeRequest>,
) -> ApiResult<Json<HostBody>> {
    if body.from.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid",
            "from must name at least one host",
        ));
    }
    let (d, now, actor, from) = (
        state.discovery.clone(),
        state.now(),
        who.name.clone(),
        body.from.clone(),
    );
    blocking(move || d.merge(id, &from, now, &actor)).await?;
    audit(
        &state,
        &who,
        ip,
        "hosts.merge",
        format!("{:?} into {id}", body.from),
    )
    .await;
    host_get(State(state), Path(id)).await
}

/// Split one interface off into a new host.
#[utoipa::path(post, path = "/api/v1/hosts/{id}/split", tag = "inventory", request_body = SplitRequest,
    params(("id" = u64, Path, description = "Host id")),
    responses((status = 201, body = SplitResult), (status = 400, body = ApiError), (status = 404, body = ApiError)))]
pub async fn host_split(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<u64>,
    ApiJson(body): ApiJson<SplitRequest>,
) -> ApiResult<(StatusCode, Json<SplitResult>)> {
    let (d, now, actor, index) = (
        state.discovery.clone(),
        state.now(),
        who.name.clone(),
        body.interface,
    );
    let new_host = blocking(move || d.split(id, index, now, &actor)).await?;
    audit(
        &state,
        &who,
        ip,
        "hosts.split",
        format!("{id} interface {index} → {new_host}"),
    )
    .await;
    Ok((StatusCode::CREATED, Json(SplitResult { new_host })))
}

/// The router's subnets (LAN/VLAN/WAN from its interfaces) and the Internet.
#[utoipa::path(get, path = "/api/v1/subnets", tag = "inventory",
    responses((status = 200, body = Vec<SubnetBody>)))]
pub async fn subnets_list(State(state): State<Arc<AppState>>) -> Json<Vec<SubnetBody>> {
    let subnets = state.discovery.subnets();
    let counts = hosts_per_subnet(&subnets, &state.discovery.hosts());
    Json(
        subnets
            .into_iter()
            .map(|s| SubnetBody {
                hosts: counts.get(&s.cidr.to_string()).copied().unwrap_or(0),
                cidr: s.cidr.to_string(),
                kind: s.kind.as_str().to_ascii_lowercase(),
                interface: s.interface,
                router_ip: s.router_ip.map(|i| i.to_string()),
            })
            .collect(),
    )
}

/// Scan history, newest first (scans and nmap imports).
#[utoipa::path(get, path = "/api/v1/scans", tag = "inventory",
    responses((status = 200, body = Vec<ScanBody>)))]
pub async fn scans_list(State(state): State<Arc<AppState>>) -> ApiResult<Json<Vec<ScanBody>>> {
    let d = state.discovery.clone();
    let list = blocking(move || d.scan_history(200)).await?;
    Ok(Json(list.into_iter().map(ScanBody::from).collect()))
}

/// Start a scan; it is queued when max_concurrent_scans are running. Follow it at
/// `GET /api/v1/scans/{id}` or the SSE stream `/events/scans/{id}`.
#[utoipa::path(post, path = "/api/v1/scans", tag = "inventory", request_body = NewScan,
    responses((status = 202, body = ScanBody), (status = 400, body = ApiError)))]
pub async fn scans_start(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    ApiJson(body): ApiJson<NewScan>,
) -> ApiResult<(StatusCode, Json<ScanBody>)> {
    let rec = state.discovery.start_scan(
        body.targets.clone(),
        body.ports,
        ScanOrigin::Manual,
        &who.name,
        state.now(),
    )?;
    audit(
        &state,
        &who,
        ip,
        "scan.start",
        format!("{} ports {}", rec.targets.join(","), rec.ports),
    )
    .await;
    Ok((StatusCode::ACCEPTED, Json(rec.into())))
}

/// One scan with its progress.
#[utoipa::path(get, path = "/api/v1/scans/{id}", tag = "inventory",
    params(("id" = u64, Path, description = "Scan id")),
    responses((status = 200, body = ScanDetail), (status = 404, body = ApiError)))]
pub async fn scan_get(
    State(state): State<Arc<AppState>>,
    Path(id): Path<u64>,
) -> ApiResult<Json<ScanDetail>> {
    let d = state.discovery.clone();
    let (scan, progress) = blocking(move || Ok((d.scan(id)?, d.scan_progress(id)?))).await?;
    Ok(Json(ScanDetail {
        scan: scan.into(),
        progress,
    }))
}

/// Cancel a queued or running scan.
#[utoipa::path(post, path = "/api/v1/scans/{id}/cancel", tag = "inventory",
    params(("id" = u64, Path, description = "Scan id")),
    responses((status = 202), (status = 404, body = ApiError)))]
pub async fn scan_cancel(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<u64>,
) -> ApiResult<StatusCode> {
    if !state.discovery.cancel_scan(id) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("scan {id} is not running"),
        ));
    }
    audit(&state, &who, ip, "scan.cancel", id.to_string()).await;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ImportParams {
    /// Name recorded in the history (default "api upload").
    pub name: Option<String>,
}

/// Import an nmap XML report (the raw `nmap -oX` file as the body, at most
/// web.max_body_bytes). Bad XML is refused and nothing is stored.
#[utoipa::path(post, path = "/api/v1/imports/nmap", tag = "inventory", params(ImportParams),
    request_body(content = String, content_type = "application/xml"),
    responses((status = 201, body = ScanBody), (status = 400, body = ApiError), (status = 413)))]
pub async fn import_nmap(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Query(p): Query<ImportParams>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<ScanBody>)> {
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "invalid", "the body is not UTF-8 text"))?;
    let name = p.name.unwrap_or_else(|| "api upload".into());
    let (d, now, actor, n2) = (
        state.discovery.clone(),
        state.now(),
        who.name.clone(),
        name.clone(),
    );
    let rec = blocking(move || d.import_nmap(&text, &n2, &actor, now)).await?;
    audit(
        &state,
        &who,
        ip,
        "scan.import",
        format!("{name}: {}", rec.summary),
    )
    .await;
    Ok((StatusCode::CREATED, Json(rec.into())))
}
