//! The JSON API, OpenAPI document, metrics, health check and SSE, as a client sees them.

mod common;
use common::*;
use gatewatch::web::access::ROUTE_ACCESS;
use std::time::Duration;

fn url(s: &TestServer, path: &str) -> String {
    format!("{}{path}", s.url)
}

#[tokio::test]
async fn bearer_token_drives_the_user_api() {
    let s = TestServer::start(Options::default()).await;
    s.add_user("root", "admin");
    let token = token_for(&s, "ops", "admin");
    let c = client();
    let get = |path: &str| c.get(url(&s, path)).bearer_auth(&token).send();

    let r = get("/api/v1/me").await.unwrap();
    assert_eq!(r.status(), 200);
    let me: serde_json::Value = r.json().await.unwrap();
    assert_eq!(me["name"], "token:ops");
    assert_eq!(me["role"], "admin");
    let perms = me["permissions"].as_array().unwrap();
    assert_eq!(perms.len(), gatewatch::model::Permission::ALL.len(), "{me}");
    assert!(perms.iter().any(|p| p == "manage-users"), "{me}");

    let r = get("/api/v1/status").await.unwrap();
    assert_eq!(r.status(), 200);
    let st: serde_json::Value = r.json().await.unwrap();
    assert_eq!(st["version"], gatewatch::cli::VERSION);
    assert!(st["uptime_seconds"].is_u64(), "{st}");
    assert!(st["store"]["file_bytes"].as_u64().unwrap() > 0, "{st}");
    assert!(st["store"]["map_bytes"].as_u64().unwrap() > 0, "{st}");
    assert_eq!(st["tls"], false);
    assert!(st["urls"][0].as_str().unwrap().starts_with(&s.url), "{st}");
    assert!(st["process"]["rss_bytes"].as_u64().unwrap() > 0, "{st}");

    let post = |body: serde_json::Value| {
        c.post(url(&s, "/api/v1/users"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let bob = serde_json::json!({"username": "bob", "role": "viewer", "password": PASSWORD});
    let r = post(bob.clone()).await.unwrap();
    assert_eq!(r.status(), 201);
    let created: serde_json::Value = r.json().await.unwrap();
    assert_eq!(created["username"], "bob");
    assert_eq!(created["role"], "viewer");
    assert!(created.get("password_hash").is_none() && !created.to_string().contains("argon2"));
    assert_eq!(s.state.accounts.user("bob").unwrap().role, "viewer");

    assert_eq!(api_error(post(bob).await.unwrap(), 409).await, "conflict");
    let weak = serde_json::json!({"username": "weak", "role": "viewer", "password": "short"});
    assert_eq!(api_error(post(weak).await.unwrap(), 400).await, "invalid");
    assert!(s.state.accounts.user("weak").is_err());
    let bad_role = serde_json::json!({"username": "carol", "role": "wizard", "password": PASSWORD});
    let r = post(bad_role).await.unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    assert!(s.state.accounts.user("carol").is_err());
    let r = c
        .post(url(&s, "/api/v1/users"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"username\": \"dave\", ")
        .send()
        .await
        .unwrap();
    assert_eq!(api_error(r, 400).await, "invalid");
    let r = c
        .post(url(&s, "/api/v1/users"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"username\": \"dave\"}")
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    assert!(status == 400 || status == 422, "missing fields: {status}");
    assert_eq!(api_error(r, status).await, "invalid");

    let r = get("/api/v1/users").await.unwrap();
    let users: serde_json::Value = r.json().await.unwrap();
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bob", "root"]);

    let r = c
        .delete(url(&s, "/api/v1/users/bob"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(s.state.accounts.user("bob").is_err());
    let r = c
        .delete(url(&s, "/api/v1/users/bob"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(api_error(r, 404).await, "not_found");

    let r = get("/api/v1/tokens").await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let secret = token.rsplit('_').next().unwrap();
    assert!(!text.contains(secret), "token list shows a secret");
    let tokens: serde_json::Value = serde_json::from_str(&text).unwrap();
    let id = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ops")
        .and_then(|t| t["id"].as_str())
        .unwrap()
        .to_string();
    assert!(token.starts_with(&format!("gw_{id}_")));
    let r = c
        .delete(url(&s, &format!("/api/v1/tokens/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        api_error(get("/api/v1/me").await.unwrap(), 401).await,
        "unauthorized"
    );
    assert_eq!(
        api_error(get("/api/v1/status").await.unwrap(), 401).await,
        "unauthorized"
    );
    s.stop().await;
}

#[tokio::test]
async fn openapi_document_lists_every_api_route() {
    let s = TestServer::start(Options::default()).await;
    let r = client().get(url(&s, "/api/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), 200, "the document is public");
    let doc: serde_json::Value = r.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    let mut checked = 0;
    for (method, path, _) in ROUTE_ACCESS {
        if !path.starts_with("/api/v1") {
            continue;
        }
        let item = paths
            .get(*path)
            .unwrap_or_else(|| panic!("{path} missing from OpenAPI"));
        assert!(
            item.get(method.to_ascii_lowercase()).is_some(),
            "{method} {path} missing from OpenAPI"
        );
        checked += 1;
    }
    assert!(checked >= 10, "checked {checked} routes");
    s.stop().await;
}

/// True when `line` is `name{labels} value` in the Prometheus text format.
fn is_sample(line: &str) -> bool {
    let Some((series, value)) = line.rsplit_once(' ') else {
        return false;
    };
    let (name, labels) = match series.split_once('{') {
        Some((n, rest)) => (n, Some(rest)),
        None => (series, None),
    };
    let name_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    let labels_ok = labels.is_none_or(|l| {
        l.strip_suffix('}').is_some_and(|inner| {
            inner.split(',').all(|kv| {
                kv.split_once('=').is_some_and(|(k, v)| {
                    !k.is_empty()
                        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        && v.len() >= 2
                        && v.starts_with('"')
                        && v.ends_with('"')
                })
            })
        })
    });
    let value_ok = value.parse::<f64>().is_ok() || matches!(value, "NaN" | "+Inf" | "-Inf");
    name_ok && labels_ok && value_ok
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let s = TestServer::start(Options::default()).await;
    let token = token_for(&s, "prometheus", "viewer");
    let r = client()
        .get(url(&s, "/metrics"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let ctype = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ctype.starts_with("text/plain"), "{ctype}");
    let text = r.text().await.unwrap();
    let mut samples = 0;
    for line in text.lines() {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        assert!(is_sample(line), "not a comment or sample: {line:?}");
        samples += 1;
    }
    assert!(samples >= 5, "{text}");
    let value = |name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .and_then(|l| l.rsplit_once(' '))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    assert!(value("process_resident_memory_bytes") > 0.0);
    assert!(value("gatewatch_store_file_bytes") > 0.0);
    assert!(value("gatewatch_http_requests_total") >= 1.0);
    assert!(is_sample("a_b{x=\"1\",y=\"z\"} 1.5") && !is_sample("a b c") && !is_sample("1a 2"));
    s.stop().await;
}

#[tokio::test]
async fn healthz_is_public() {
    let s = TestServer::start(Options::default()).await;
    let r = client().get(url(&s, "/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    s.stop().await;
}

/// Reads from `resp` until a whole SSE event (ending in a blank line) has arrived.
async fn first_event(resp: &mut reqwest::Response) -> String {
    let mut buf = String::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        while !buf.contains("\n\n") {
            match resp.chunk().await.unwrap() {
                Some(bytes) => buf.push_str(&String::from_utf8_lossy(&bytes)),
                None => break,
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no event within 10 s; got {buf:?}");
    buf
}

#[tokio::test]
async fn dashboard_events_stream_live_facts() {
    let s = TestServer::start(Options::default()).await;
    s.add_user("alice", "viewer");
    let r = client().get(url(&s, "/events/dashboard")).send().await.unwrap();
    assert_eq!(api_error(r, 401).await, "unauthorized");
    let c = login(&s, "alice", PASSWORD).await;
    let mut r = c.get(url(&s, "/events/dashboard")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ctype = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ctype.starts_with("text/event-stream"), "{ctype}");
    let event = first_event(&mut r).await;
    assert!(event.contains("event: update"), "{event}");
    let data = event
        .lines()
        .find_map(|l| l.strip_prefix("data:"))
        .unwrap_or_else(|| panic!("no data line in {event:?}"));
    let fields: serde_json::Value = serde_json::from_str(data.trim()).unwrap();
    assert!(fields["uptime"].is_string(), "{fields}");
    assert!(fields["users"] == "1", "{fields}");
    s.stop().await;
}

#[tokio::test]
async fn shutdown_completes_with_an_event_stream_open() {
    let s = TestServer::start(Options::default()).await;
    s.add_user("alice", "admin");
    let c = login(&s, "alice", PASSWORD).await;
    let mut r = c.get(url(&s, "/events/dashboard")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    first_event(&mut r).await;
    let stopped = tokio::time::timeout(Duration::from_secs(10), s.stop()).await;
    assert!(stopped.is_ok(), "server did not stop within 10 s");
    // The stream ends instead of hanging.
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match r.chunk().await {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "event stream still open after shutdown");
}
