//! The one helper for live pages: a Server-Sent Events stream that sends a snapshot of
//! named fields every `period` until the client leaves or the server shuts down.
//!
//! The page side is `static/app.js`: an element with `data-live="/events/..."` opens the
//! stream and puts each field's text into the descendant with the matching `data-field`.
//! Without JavaScript the page still shows the values from when it was rendered.

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use std::convert::Infallible;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Field name → text, as sent in one event.
pub type Snapshot = Vec<(&'static str, String)>;

/// Streams `snapshot()` every `period`, as `event: update` with a JSON object body.
pub fn live<F>(
    period: Duration,
    shutdown: CancellationToken,
    snapshot: F,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>>
where
    F: Fn() -> Snapshot + Send + Sync + 'static,
{
    let stream = futures_util::stream::unfold((true, snapshot), move |(first, snapshot)| {
        let shutdown = shutdown.clone();
        async move {
            if !first {
                tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    _ = tokio::time::sleep(period) => {}
                }
            }
            let fields = snapshot();
            let json: serde_json::Map<String, serde_json::Value> = fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), serde_json::Value::String(v)))
                .collect();
            let event = Event::default()
                .event("update")
                .data(serde_json::Value::Object(json).to_string());
            Some((Ok(event), (false, snapshot)))
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// Streams what `rx` broadcasts, turned into events by `to_event` (`None` skips an item),
/// until the client leaves or the server shuts down. A client too slow to keep up skips the
/// items it missed instead of holding the sender back.
pub fn broadcast_events<T, F>(
    rx: tokio::sync::broadcast::Receiver<T>,
    shutdown: CancellationToken,
    to_event: F,
) -> impl Stream<Item = Result<Event, Infallible>>
where
    T: Clone + Send + 'static,
    F: Fn(T) -> Option<Event> + Send + 'static,
{
    use tokio::sync::broadcast::error::RecvError;
    futures_util::stream::unfold((rx, to_event), move |(mut rx, to_event)| {
        let shutdown = shutdown.clone();
        async move {
            loop {
                let item = tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    r = rx.recv() => r,
                };
                match item {
                    Ok(v) => {
                        if let Some(ev) = to_event(v) {
                            return Some((Ok(ev), (rx, to_event)));
                        }
                    }
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return None,
                }
            }
        }
    })
}
