//! Just enough of multipart/form-data (RFC 7578) for the upload forms and the CSRF check:
//! find one named part in a body that is already in memory (and size-limited).

/// One part of a multipart body.
#[derive(Debug, PartialEq, Eq)]
pub struct Part<'a> {
    pub filename: Option<String>,
    pub data: &'a [u8],
}

fn boundary(content_type: &str) -> Option<&str> {
    let (mime, params) = content_type.split_once(';')?;
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"'))
            .filter(|b| !b.is_empty() && b.len() <= 200)
    })
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Parses `name="x"` / `filename="y"` from a Content-Disposition header value.
fn disposition_param(header: &str, key: &str) -> Option<String> {
    header.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case(key)).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// The part named `name`, if the body is multipart/form-data and has it.
pub fn field<'a>(content_type: &str, body: &'a [u8], name: &str) -> Option<Part<'a>> {
    let delim = format!("--{}", boundary(content_type)?);
    let delim = delim.as_bytes();
    let mut pos = find(body, delim, 0)? + delim.len();
    loop {
        // After a delimiter: "--" ends the body, else CRLF and the part's headers.
        if body.get(pos..pos + 2) == Some(b"--") {
            return None;
        }
        let headers_start = pos + 2;
        let headers_end = find(body, b"\r\n\r\n", headers_start)?;
        let data_start = headers_end + 4;
        let next = find(body, delim, data_start)?;
        let data_end = next.checked_sub(2).filter(|e| *e >= data_start)?;
        let headers = String::from_utf8_lossy(&body[headers_start..headers_end]);
        let disposition = headers
            .split("\r\n")
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim().eq_ignore_ascii_case("content-disposition").then_some(v)
            })
            .unwrap_or("");
        if disposition_param(disposition, "name").as_deref() == Some(name) {
            return Some(Part {
                filename: disposition_param(disposition, "filename").filter(|f| !f.is_empty()),
                data: &body[data_start..data_end],
            });
        }
        pos = next + delim.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_fields_and_files() {
        // As Chromium sends it.
        let body = b"------WebKitFormBoundaryx7\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\ntok123\r\n------WebKitFormBoundaryx7\r\nContent-Disposition: form-data; name=\"file\"; filename=\"scan.xml\"\r\nContent-Type: text/xml\r\n\r\n<nmaprun>\r\n</nmaprun>\r\n------WebKitFormBoundaryx7--\r\n";
        let ct = "multipart/form-data; boundary=----WebKitFormBoundaryx7";
        assert_eq!(field(ct, body, "csrf").unwrap().data, b"tok123");
        let f = field(ct, body, "file").unwrap();
        assert_eq!(f.filename.as_deref(), Some("scan.xml"));
        assert_eq!(f.data, b"<nmaprun>\r\n</nmaprun>");
        assert!(field(ct, body, "other").is_none());
        assert!(field("application/x-www-form-urlencoded", body, "csrf").is_none());
        assert!(field(ct, b"garbage", "csrf").is_none());
        assert!(field(ct, &body[..60], "file").is_none(), "truncated body");
    }
}
