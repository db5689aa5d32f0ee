//! A watcher of the workload's keys: one watch stream on one member, from revision 1,
//! every response with events recorded as it arrives. When the stream breaks (its member
//! killed, restarted) it resumes from the revision after the last event it received, as
//! etcd tells clients to; a compacted start resumes from the compaction revision. What it
//! received is checked by `model::watch` against what the clients were told.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use etcd_client::{Client, EventType, WatchOptions};

use crate::model::history::{EventKind, OpKind, Output, Record, WatchEvent};

/// How often a quiet stream looks at the stop flag, and the pause before reconnecting.
const POLL: Duration = Duration::from_millis(200);

pub(super) struct Watcher {
    pub id: u64,
    pub url: String,
    pub prefix: String,
    pub t0: Instant,
}

impl Watcher {
    /// Watches until `stop`; `opts` carry no request timeout (a watch is one long request).
    pub async fn run(
        self,
        opts: etcd_client::ConnectOptions,
        stop: Arc<AtomicBool>,
    ) -> Vec<Record> {
        let mut out = vec![];
        let mut next = 1i64;
        // Each stream opened gets a number of its own: a resumed stream is checked apart.
        let mut streams = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let watched = async {
                let mut c = Client::connect([self.url.as_str()], Some(opts.clone())).await?;
                let o = WatchOptions::new().with_prefix().with_start_revision(next);
                c.watch(self.prefix.as_str(), Some(o)).await
            };
            let Ok(Ok(mut stream)) = tokio::time::timeout(POLL * 5, watched).await else {
                tokio::time::sleep(POLL).await;
                continue;
            };
            let start = next;
            streams += 1;
            while !stop.load(Ordering::Relaxed) {
                let resp = match tokio::time::timeout(POLL, stream.message()).await {
                    Err(_) => continue,
                    Ok(Ok(Some(resp))) => resp,
                    // The stream ended or broke: resume from `next`.
                    Ok(_) => break,
                };
                let compacted = (resp.compact_revision() > 0).then_some(resp.compact_revision());
                let events: Vec<WatchEvent> = resp.events().iter().filter_map(event).collect();
                if let Some(last) = events.last() {
                    next = last.revision + 1;
                }
                if let Some(c) = compacted {
                    next = next.max(c);
                }
                if !events.is_empty() || compacted.is_some() {
                    let at = self.t0.elapsed().as_micros() as u64;
                    out.push(Record {
                        client: self.id,
                        call: at,
                        ret: Some(at),
                        op: OpKind::Watch,
                        key: self.prefix.clone(),
                        start_revision: Some(start),
                        stream: Some(streams),
                        output: Some(Output {
                            revision: resp.header().map(|h| h.revision()),
                            events,
                            compacted,
                            ..Default::default()
                        }),
                        ..Default::default()
                    });
                }
                if resp.canceled() {
                    break;
                }
            }
        }
        out
    }
}

fn event(e: &etcd_client::Event) -> Option<WatchEvent> {
    let kv = e.kv()?;
    let kind = match e.event_type() {
        EventType::Put => EventKind::Put,
        EventType::Delete => EventKind::Delete,
    };
    Some(WatchEvent {
        kind,
        key: String::from_utf8_lossy(kv.key()).into_owned(),
        value: (kind == EventKind::Put).then(|| String::from_utf8_lossy(kv.value()).into_owned()),
        revision: kv.mod_revision(),
    })
}
