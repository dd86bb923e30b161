//! Inflating the data build.rs embeds gzip-compressed: static assets, the IEEE OUI table,
//! service definitions and the OpenAPI document. Owns only the decode; each caller decides
//! what a broken embedding means (they are our own build inputs, so it cannot happen short
//! of a broken build).

use std::io::Read;

/// The bytes of one embedded gzip member.
pub fn inflate(gz: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut raw = Vec::with_capacity(gz.len() * 4);
    flate2::read::GzDecoder::new(gz).read_to_end(&mut raw)?;
    Ok(raw)
}

/// The text of one embedded gzip member (UTF-8).
pub fn inflate_text(gz: &[u8]) -> std::io::Result<String> {
    let mut text = String::with_capacity(gz.len() * 4);
    flate2::read::GzDecoder::new(gz).read_to_string(&mut text)?;
    Ok(text)
}
