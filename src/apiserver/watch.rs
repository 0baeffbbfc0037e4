//! Watch streams: newline-delimited `{"type","object"}` events over a chunked response, with
//! initial events, bookmarks, timeouts and label/field selector transitions as upstream.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::{FutureExt, StreamExt};
use serde_json::json;
use std::pin::Pin;
use tokio::time::Sleep;

use super::error::{ApiError, ApiResult};
use super::registry::Kind;
use super::rest::{query_flag, Query};
use super::selector::{FieldSelector, LabelSelector};
use super::serve::Streaming;
use super::{table, ApiServer};
use crate::store::{self, Attrs, Event, EventType, Object, Revision};

/// How often a watch that allows bookmarks gets one (cluster time), as upstream (about a minute).
const BOOKMARK_PERIOD: Duration = Duration::from_secs(60);
/// Upstream's default watch lifetime is randomised in [1800 s, 3600 s).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);
/// How many events are written to the connection in one chunk at most.
const MAX_BATCH: usize = 256;

/// Which events a watch sends, and how it encodes them.
struct Filter {
    kind: &'static Kind,
    labels: LabelSelector,
    fields: FieldSelector,
    as_table: bool,
}

impl Filter {
    fn matches(&self, obj: &Attrs) -> bool {
        self.labels.matches(obj) && self.fields.matches(obj)
    }

    /// What a store event becomes for this watch: events moving an object into or out of the
    /// selection become ADDED or DELETED, as upstream's watch cache does.
    fn translate<'a>(&self, event: &'a Event) -> Option<(&'static str, &'a Object)> {
        let now = self.matches(&event.object.attrs);
        let before = event.prev.as_ref().is_some_and(|p| self.matches(&p.attrs));
        match event.kind {
            EventType::Added => now.then_some(("ADDED", &event.object)),
            EventType::Modified => match (before, now) {
                (true, true) => Some(("MODIFIED", &event.object)),
                (false, true) => Some(("ADDED", &event.object)),
                (true, false) => Some(("DELETED", &event.object)),
                (false, false) => None,
            },
            EventType::Deleted => before.then_some(("DELETED", &event.object)),
        }
    }

    fn encode(&self, server: &ApiServer, kind_of_event: &str, obj: &Object, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"type\":\"");
        out.extend_from_slice(kind_of_event.as_bytes());
        out.extend_from_slice(b"\",\"object\":");
        if self.as_table {
            let stored = obj.value();
            let value = self.kind.present(&stored).unwrap_or(stored);
            let t = table::build_table(
                self.kind.resource,
                &[&value],
                &obj.mod_revision.to_string(),
                "Metadata",
                server.clock().now(),
            );
            out.extend_from_slice(&serde_json::to_vec(&t).unwrap_or_default());
        } else if let Some(v) = self
            .kind
            .from_storage
            .and_then(|_| self.kind.present(&obj.value()))
        {
            out.extend_from_slice(&serde_json::to_vec(&v).unwrap_or_default());
        } else {
            out.extend_from_slice(&obj.json);
        }
        out.extend_from_slice(b"}\n");
    }

    fn bookmark(&self, revision: Revision, initial_events_end: bool) -> Vec<u8> {
        let mut metadata = json!({"resourceVersion": revision.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let event = json!({
            "type": "BOOKMARK",
            "object": {"kind": self.kind.kind, "apiVersion": self.kind.api_version(), "metadata": metadata},
        });
        let mut line = serde_json::to_vec(&event).unwrap_or_default();
        line.push(b'\n');
        line
    }
}

fn error_line(err: &ApiError) -> Vec<u8> {
    let mut line = serde_json::to_vec(&json!({"type": "ERROR", "object": err.to_status()}))
        .unwrap_or_default();
    line.push(b'\n');
    line
}

fn stream_response(chunks: impl futures::Stream<Item = Bytes> + Send + 'static) -> Response {
    let body = Body::from_stream(chunks.map(Ok::<_, std::convert::Infallible>));
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response.extensions_mut().insert(Streaming);
    response
}

/// A watch after its initial events: the connection polls it for the next chunk, so an event
/// goes from the write to the socket without passing through another task.
struct Live {
    server: Arc<ApiServer>,
    filter: Filter,
    events: store::WatchStream,
    /// The last revision sent or skipped (what a bookmark reports).
    last: Revision,
    bookmarks: bool,
    deadline: Pin<Box<Sleep>>,
    bookmark_tick: Pin<Box<Sleep>>,
    shutdown: tokio_util::sync::CancellationToken,
    /// What goes out before anything else (initial events, or the error that ends the watch).
    first: Option<Bytes>,
    done: bool,
}

impl Live {
    /// The next chunk of the response, or None when the watch ends.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        loop {
            if self.done {
                return None;
            }
            // The end of the watch and its bookmarks come first: a stream of writes that never
            // pauses must not keep a watch past its timeout or the server's shutdown.
            tokio::select! {
                biased;
                _ = &mut self.deadline => return None,
                _ = self.shutdown.cancelled() => return None,
                _ = &mut self.bookmark_tick, if self.bookmarks => {
                    let period = self.server.clock().to_wall(BOOKMARK_PERIOD);
                    self.bookmark_tick = Box::pin(tokio::time::sleep(period));
                    return Some(Bytes::from(self.filter.bookmark(self.last, false)));
                }
                next = self.events.next() => {
                    let mut out = Vec::new();
                    let mut item = next;
                    let mut taken = 0;
                    loop {
                        match item {
                            Some(Ok(event)) => {
                                self.last = event.revision;
                                if let Some((t, obj)) = self.filter.translate(&event) {
                                    self.filter.encode(&self.server, t, obj, &mut out);
                                }
                            }
                            Some(Err(store::Error::Expired { requested, oldest })) => {
                                let err = ApiError::expired(format!(
                                    "too old resource version: {requested} ({})",
                                    oldest + 1
                                ));
                                out.extend_from_slice(&error_line(&err));
                                self.done = true;
                                return Some(Bytes::from(out));
                            }
                            Some(Err(_)) | None => {
                                self.done = true;
                                break;
                            }
                        }
                        taken += 1;
                        if taken >= MAX_BATCH {
                            break;
                        }
                        // Coalesce what is already there into one chunk.
                        match self.events.next().now_or_never() {
                            Some(i) => item = i,
                            None => break,
                        }
                    }
                    if !out.is_empty() {
                        return Some(Bytes::from(out));
                    }
                }
            }
        }
    }
}

/// Serve a watch request.
///
/// # Errors
/// 400 for bad selectors or parameters. An expired resourceVersion is reported in-stream as an
/// ERROR event with a 410 Status, as upstream does.
pub(super) async fn serve(
    server: Arc<ApiServer>,
    kind: &'static Kind,
    namespace: Option<String>,
    query: &Query,
    as_table: bool,
) -> ApiResult<Response> {
    let filter = Filter {
        kind,
        labels: LabelSelector::parse(query.get("labelSelector").map(String::as_str).unwrap_or(""))?,
        fields: FieldSelector::parse(
            kind,
            query.get("fieldSelector").map(String::as_str).unwrap_or(""),
        )?,
        as_table,
    };
    let bookmarks = query_flag(query, "allowWatchBookmarks");
    let send_initial = query_flag(query, "sendInitialEvents");
    // Any int64 is accepted, as upstream: a negative timeout ends the watch at once, a huge one
    // never (the timer saturates).
    let timeout = match query.get("timeoutSeconds").map(|t| t.parse::<i64>()) {
        None | Some(Ok(0)) => DEFAULT_TIMEOUT,
        Some(Ok(seconds)) => Duration::from_secs(seconds.max(0).unsigned_abs()),
        Some(Err(e)) => {
            return Err(ApiError::bad_request(format!(
                "timeoutSeconds: invalid value {:?}: {e}",
                query
                    .get("timeoutSeconds")
                    .map(String::as_str)
                    .unwrap_or_default()
            )))
        }
    };
    let rv = query
        .get("resourceVersion")
        .map(String::as_str)
        .unwrap_or("");
    let requested: Option<Revision> =
        match rv {
            "" | "0" => None,
            other => Some(other.parse().map_err(|_| {
                ApiError::bad_request(format!("invalid resource version: {other}"))
            })?),
        };
    let prefix = kind.prefix(namespace.as_deref());

    // Initial state: synthetic ADDED events for what exists, when asked for.
    let mut initial = Vec::new();
    let start = if requested.is_none() || send_initial {
        let list = server
            .store
            .list(&prefix, None)
            .await
            .map_err(ApiError::internal)?;
        for o in list.items.iter().filter(|o| filter.matches(&o.attrs)) {
            filter.encode(&server, "ADDED", o, &mut initial);
        }
        if send_initial && bookmarks {
            initial.extend_from_slice(&filter.bookmark(list.revision, true));
        }
        list.revision
    } else {
        requested.unwrap_or_default()
    };
    let events = match server.store.watch(&prefix, start).await {
        Ok(events) => events,
        Err(store::Error::Expired { requested, oldest }) => {
            let err = ApiError::expired(format!(
                "too old resource version: {requested} ({})",
                oldest + 1
            ));
            let line = Bytes::from(error_line(&err));
            return Ok(stream_response(futures::stream::once(async move { line })));
        }
        Err(e) => return Err(ApiError::internal(e)),
    };
    let clock = server.clock().clone();
    let live = Live {
        shutdown: server.shutdown.clone(),
        deadline: Box::pin(tokio::time::sleep(clock.to_wall(timeout))),
        bookmark_tick: Box::pin(tokio::time::sleep(clock.to_wall(BOOKMARK_PERIOD))),
        server,
        filter,
        events,
        last: start,
        bookmarks,
        first: (!initial.is_empty()).then(|| Bytes::from(initial)),
        done: false,
    };
    Ok(stream_response(futures::stream::unfold(
        live,
        |mut live| async move {
            let chunk = live.next_chunk().await?;
            Some((chunk, live))
        },
    )))
}
