//! A minimal Docker Engine API client: `GET /containers/json` over the unix socket with
//! hyper's HTTP/1 client (no docker CLI). Read-only; a socket that is missing is "Docker
//! is not here", not an error.

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use std::path::Path;
use std::time::Duration;

/// Largest answer read (a host with hundreds of containers stays far below).
const MAX_BODY: usize = 8 * 1024 * 1024;
const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum DockerClientError {
    #[error("cannot connect to {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("Docker API: {0}")]
    Http(String),
    #[error("Docker API answered {0}")]
    Status(u16),
    #[error("Docker API did not answer within {0:?}")]
    Timeout(Duration),
}

/// `GET path` on the Docker socket; returns the body text.
pub async fn get(socket: &Path, path: &str) -> Result<String, DockerClientError> {
    tokio::time::timeout(TIMEOUT, get_inner(socket, path))
        .await
        .map_err(|_| DockerClientError::Timeout(TIMEOUT))?
}

async fn get_inner(socket: &Path, path: &str) -> Result<String, DockerClientError> {
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|e| DockerClientError::Connect(socket.display().to_string(), e))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| DockerClientError::Http(e.to_string()))?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = hyper::Request::get(path)
        .header(hyper::header::HOST, "docker")
        .body(Empty::<Bytes>::new())
        .map_err(|e| DockerClientError::Http(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| DockerClientError::Http(e.to_string()))?;
    if !resp.status().is_success() {
        driver.abort();
        return Err(DockerClientError::Status(resp.status().as_u16()));
    }
    let body = Limited::new(resp.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| DockerClientError::Http(e.to_string()))?
        .to_bytes();
    driver.abort();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// Running containers as observations; `Ok(None)` when there is no socket.
pub async fn containers(socket: &Path) -> Result<Option<Vec<crate::inventory::Observation>>, String> {
    if !socket.exists() {
        return Ok(None);
    }
    let body = get(socket, "/containers/json").await.map_err(|e| e.to_string())?;
    crate::inventory::docker::parse_containers(&body)
        .map(Some)
        .map_err(|e| e.to_string())
}
