//! Static files (CSS, JS, icons) embedded in the binary, gzip-compressed at build time by
//! `build.rs` (only that form is embedded), served with a content hash in the URL and a
//! one-year immutable cache. Clients that do not accept gzip get the file inflated per request.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

pub struct Asset {
    pub name: &'static str,
    pub hash: &'static str,
    pub gzip: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

/// The URL of an asset with its content hash, for pages to link.
pub fn url(name: &str) -> String {
    match find(name) {
        Some(a) => format!("/static/{}?v={}", a.name, a.hash),
        None => format!("/static/{name}"),
    }
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

pub async fn serve(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some(asset) = find(&file) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    respond(asset, &headers)
}

pub async fn favicon(headers: HeaderMap) -> Response {
    match find("favicon.svg") {
        Some(a) => respond(a, &headers),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn respond(asset: &'static Asset, headers: &HeaderMap) -> Response {
    let etag = format!("\"{}\"", asset.hash);
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let gzip_ok = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let mut resp = if gzip_ok {
        let mut r = asset.gzip.into_response();
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        match crate::embedded::inflate(asset.gzip) {
            Ok(raw) => raw.into_response(),
            Err(e) => {
                tracing::error!(asset = asset.name, "embedded asset does not inflate: {e}");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        }
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(asset.name)),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every embedded asset inflates to the file in `static/` it was built from, and a client
    /// without gzip gets those bytes with no Content-Encoding.
    #[tokio::test]
    async fn gzip_only_assets_serve_the_original_bytes() {
        assert!(!ASSETS.is_empty());
        for asset in ASSETS {
            let original = std::fs::read(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("static")
                    .join(asset.name),
            )
            .unwrap();
            assert_eq!(
                crate::embedded::inflate(asset.gzip).unwrap(),
                original,
                "{}",
                asset.name
            );
        }
        let asset = find("app.css").unwrap();
        let plain = respond(asset, &HeaderMap::new());
        assert_eq!(plain.status(), StatusCode::OK);
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        let body = axum::body::to_bytes(plain.into_body(), usize::MAX).await.unwrap();
        assert_eq!(
            body,
            std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/static/app.css")).unwrap()
        );

        let mut accept = HeaderMap::new();
        accept.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip, br"));
        let gz = respond(asset, &accept);
        assert_eq!(gz.headers()[header::CONTENT_ENCODING], "gzip");
        let body = axum::body::to_bytes(gz.into_body(), usize::MAX).await.unwrap();
        assert_eq!(body, asset.gzip);
    }
}
