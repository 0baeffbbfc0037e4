//! The core/v1 recorder's correlator, as client-go's `tools/record` EventCorrelator works
//! (`events_cache.go`): every event a component records passes, in this order,
//!
//! 1. the **aggregator**: events that differ only in their message (same source, object,
//!    type, reason, reporting controller and instance) are similar. Once a 10th distinct message
//!    arrives within 10 minutes of the previous similar event, the event becomes the aggregate:
//!    `(combined from similar events): <message>`, counted under the aggregate key, so later
//!    similar events bump that one event instead of creating new ones;
//! 2. the **logger**: an event seen before under the same key becomes a count bump (a PATCH of
//!    the event first written: same name and firstTimestamp, count+1); otherwise a new event;
//! 3. the **spam filter**: a token bucket per source and object (burst 25, one token back every
//!    300 s). An event without a token is not written, but the logger has already counted it, so
//!    the next write shows the jump in `count`.
//!
//! The correlator does no I/O and reads no clock: the recorder passes the cluster time in, so
//! tests can drive it over hours in microseconds.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::ObjectReference;

use super::EventType;

/// Entries each of the three caches keeps before it forgets the least recently used one
/// (upstream's `maxLruCacheEntries`).
const CACHE_ENTRIES: usize = 4096;

/// Distinct messages of similar events within the interval that turn them into an aggregate
/// (upstream's `defaultAggregateMaxEvents`).
const AGGREGATE_MAX_EVENTS: usize = 10;

/// Seconds after the last similar event when aggregation starts afresh
/// (`defaultAggregateIntervalInSeconds`).
const AGGREGATE_INTERVAL_SECONDS: i64 = 600;

/// Events a source may write about one object at once (`defaultSpamBurst`).
const SPAM_BURST: f64 = 25.0;

/// Tokens per second the spam filter gives back (`defaultSpamQPS`, 1/300, a Go float32).
const SPAM_QPS: f32 = 1.0 / 300.0;

/// The message of an aggregate event.
pub const COMBINED_PREFIX: &str = "(combined from similar events): ";

/// An event as a recorder makes it, before correlation.
#[derive(Clone, Debug)]
pub struct Candidate<'a> {
    /// `source.component`; also the reporting controller.
    pub component: &'a str,
    /// `source.host`; also the reporting instance.
    pub host: &'a str,
    /// `involvedObject`.
    pub object: &'a ObjectReference,
    /// `Normal` or `Warning`.
    pub type_: EventType,
    /// `reason`.
    pub reason: &'a str,
    /// `message`.
    pub message: &'a str,
}

/// What to write for an event that passed the correlator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    /// The Event's name: a new one, or the one written first under this key.
    pub name: String,
    /// The message, `(combined from similar events): ...` for the aggregate.
    pub message: String,
    /// `count`; more than 1 means PATCH the existing event.
    pub count: i32,
    /// `firstTimestamp`.
    pub first_timestamp: DateTime<Utc>,
    /// `lastTimestamp`.
    pub last_timestamp: DateTime<Utc>,
    /// Whether this is the aggregate event, which upstream builds without reporting
    /// controller and instance.
    pub combined: bool,
}

impl Write {
    /// Whether the event exists already and only needs its count, lastTimestamp and message
    /// patched (upstream: `Count > 1`).
    pub fn is_update(&self) -> bool {
        self.count > 1
    }
}

/// What the correlator decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Write this.
    Write(Write),
    /// The spam filter dropped it (it is still counted).
    Skip,
}

/// The involved object's identity as the keys use it (no fieldPath, no resourceVersion).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ObjectKey {
    kind: String,
    namespace: String,
    name: String,
    uid: String,
    api_version: String,
}

impl ObjectKey {
    fn of(o: &ObjectReference) -> Self {
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        Self {
            kind: s(&o.kind),
            namespace: s(&o.namespace),
            name: s(&o.name),
            uid: s(&o.uid),
            api_version: s(&o.api_version),
        }
    }
}

/// Source, object and type: what the spam filter rations (upstream's `getSpamKey`, which keys
/// Normal and Warning events apart).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct SpamKey {
    component: String,
    host: String,
    object: ObjectKey,
    type_: EventType,
}

/// Similar events (upstream's `EventAggregatorByReasonFunc`): everything but the message. The
/// reporting controller and instance are the source's for every event a recorder makes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct AggregateKey {
    spam: SpamKey,
    type_: EventType,
    reason: String,
}

/// One event (upstream's `getEventKey`): source, object with fieldPath, type, reason, message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct EventKey {
    aggregate: AggregateKey,
    field_path: String,
    message: String,
}

/// What the logger counts under: one event, or the aggregate of similar ones.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum LogKey {
    Event(EventKey),
    Aggregate(AggregateKey),
}

/// Similar events seen lately.
#[derive(Clone, Debug)]
struct AggregateRecord {
    /// Distinct messages (never more than `AGGREGATE_MAX_EVENTS - 1` between calls).
    messages: Vec<String>,
    /// When the last similar event came.
    last: DateTime<Utc>,
}

/// An event written (or counted) before.
#[derive(Clone, Debug)]
struct LogRecord {
    count: i32,
    first_timestamp: DateTime<Utc>,
    name: String,
}

/// A token bucket as `golang.org/x/time/rate` keeps one: tokens as of `last`.
#[derive(Clone, Debug)]
struct Bucket {
    tokens: f64,
    last: DateTime<Utc>,
}

impl Bucket {
    fn full(now: DateTime<Utc>) -> Self {
        Self {
            tokens: SPAM_BURST,
            last: now,
        }
    }

    /// Take a token if there is one at `now`.
    fn try_take(&mut self, now: DateTime<Utc>) -> bool {
        let elapsed = (now - self.last)
            .to_std()
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let tokens = (self.tokens + elapsed * f64::from(SPAM_QPS)).min(SPAM_BURST);
        if tokens >= 1.0 {
            self.tokens = tokens - 1.0;
            self.last = now.max(self.last);
            true
        } else {
            // As rate.Limiter does, a refused take leaves the bucket as it was: the refill keeps
            // accruing from the last take.
            false
        }
    }
}

/// A map that forgets its least recently used entry beyond a capacity (groupcache's `lru`).
#[derive(Debug)]
struct Lru<K, V> {
    entries: HashMap<K, (V, u64)>,
    by_use: BTreeMap<u64, K>,
    tick: u64,
    capacity: usize,
}

impl<K: Clone + Eq + Hash, V> Lru<K, V> {
    fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            by_use: BTreeMap::new(),
            tick: 0,
            capacity,
        }
    }

    /// The entry for `key`, now the most recently used.
    fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.tick += 1;
        let tick = self.tick;
        let (value, used) = self.entries.get_mut(key)?;
        self.by_use.remove(used);
        *used = tick;
        self.by_use.insert(tick, key.clone());
        Some(value)
    }

    fn insert(&mut self, key: K, value: V) {
        self.tick += 1;
        let tick = self.tick;
        if let Some((_, used)) = self.entries.insert(key.clone(), (value, tick)) {
            self.by_use.remove(&used);
        }
        self.by_use.insert(tick, key);
        while self.entries.len() > self.capacity {
            let Some((_, oldest)) = self.by_use.pop_first() else {
                break;
            };
            self.entries.remove(&oldest);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Filters, aggregates and counts the events of one recorder (upstream's `EventCorrelator`
/// with its defaults).
#[derive(Debug)]
pub struct Correlator {
    aggregates: Lru<AggregateKey, AggregateRecord>,
    log: Lru<LogKey, LogRecord>,
    spam: Lru<SpamKey, Bucket>,
}

impl Default for Correlator {
    fn default() -> Self {
        Self {
            aggregates: Lru::new(CACHE_ENTRIES),
            log: Lru::new(CACHE_ENTRIES),
            spam: Lru::new(CACHE_ENTRIES),
        }
    }
}

/// The name upstream gives an Event: `<object name>.<UnixNano in hex>`.
pub fn event_name(object_name: &str, now: DateTime<Utc>) -> String {
    format!(
        "{object_name}.{:x}",
        now.timestamp_nanos_opt().unwrap_or_default()
    )
}

impl Correlator {
    /// Decide what to write for `event`, which happened at `now`.
    pub fn correlate(&mut self, event: &Candidate<'_>, now: DateTime<Utc>) -> Outcome {
        let spam = SpamKey {
            component: event.component.to_string(),
            host: event.host.to_string(),
            object: ObjectKey::of(event.object),
            type_: event.type_,
        };
        let aggregate = AggregateKey {
            spam: spam.clone(),
            type_: event.type_,
            reason: event.reason.to_string(),
        };
        let object_name = event.object.name.clone().unwrap_or_default();

        // 1. Aggregation.
        let (key, message, combined) = if self.aggregated(&aggregate, event.message, now) {
            (
                LogKey::Aggregate(aggregate),
                format!("{COMBINED_PREFIX}{}", event.message),
                true,
            )
        } else {
            let key = EventKey {
                aggregate,
                field_path: event.object.field_path.clone().unwrap_or_default(),
                message: event.message.to_string(),
            };
            (LogKey::Event(key), event.message.to_string(), false)
        };

        // 2. Counting: a repeat keeps the first write's name and firstTimestamp.
        let write = match self.log.get_mut(&key) {
            Some(seen) if seen.count > 0 => Write {
                name: seen.name.clone(),
                message,
                count: seen.count.saturating_add(1),
                first_timestamp: seen.first_timestamp,
                last_timestamp: now,
                combined,
            },
            _ => Write {
                name: event_name(&object_name, now),
                message,
                count: 1,
                first_timestamp: now,
                last_timestamp: now,
                combined,
            },
        };
        self.log.insert(
            key,
            LogRecord {
                count: write.count,
                first_timestamp: write.first_timestamp,
                name: write.name.clone(),
            },
        );

        // 3. The spam filter, after counting: a dropped event still counts.
        let allowed = match self.spam.get_mut(&spam) {
            Some(bucket) => bucket.try_take(now),
            None => {
                let mut bucket = Bucket::full(now);
                let allowed = bucket.try_take(now);
                self.spam.insert(spam, bucket);
                allowed
            }
        };
        if allowed {
            Outcome::Write(write)
        } else {
            Outcome::Skip
        }
    }

    /// Note `message` among the similar events of `key`; whether the event is to be the
    /// aggregate.
    fn aggregated(&mut self, key: &AggregateKey, message: &str, now: DateTime<Utc>) -> bool {
        let fresh = || AggregateRecord {
            messages: Vec::new(),
            last: now,
        };
        let mut record = match self.aggregates.get_mut(key) {
            Some(r) if now - r.last <= chrono::Duration::seconds(AGGREGATE_INTERVAL_SECONDS) => {
                r.clone()
            }
            _ => fresh(),
        };
        if !record.messages.iter().any(|m| m == message) {
            record.messages.push(message.to_string());
        }
        record.last = now;
        let aggregate = record.messages.len() >= AGGREGATE_MAX_EVENTS;
        if aggregate {
            // Keep the set below the threshold so every further new message aggregates too.
            // Upstream drops an arbitrary member; dropping the newest keeps the first nine
            // messages, whose repeats still bump their own events.
            record.messages.pop();
        }
        self.aggregates.insert(key.clone(), record);
        aggregate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> ObjectReference {
        ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some("web".into()),
            namespace: Some("default".into()),
            uid: Some("u-1".into()),
            ..Default::default()
        }
    }

    fn rs() -> ObjectReference {
        ObjectReference {
            api_version: Some("apps/v1".into()),
            kind: Some("ReplicaSet".into()),
            name: Some("web-5d8f".into()),
            namespace: Some("default".into()),
            uid: Some("u-rs".into()),
            ..Default::default()
        }
    }

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-05-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn secs(s: i64) -> DateTime<Utc> {
        t0() + chrono::Duration::seconds(s)
    }

    fn candidate<'a>(
        object: &'a ObjectReference,
        reason: &'a str,
        message: &'a str,
    ) -> Candidate<'a> {
        Candidate {
            component: "replicaset-controller",
            host: "cp-1",
            object,
            type_: EventType::Normal,
            reason,
            message,
        }
    }

    fn write(o: Outcome) -> Write {
        match o {
            Outcome::Write(w) => w,
            Outcome::Skip => panic!("dropped"),
        }
    }

    #[test]
    fn identical_events_bump_the_first_ones_count() {
        let mut c = Correlator::default();
        let o = pod();
        let first = write(c.correlate(&candidate(&o, "BackOff", "Back-off"), secs(0)));
        assert_eq!((first.count, first.is_update()), (1, false));
        assert_eq!(
            first.name,
            format!("web.{:x}", t0().timestamp_nanos_opt().unwrap())
        );
        let again = write(c.correlate(&candidate(&o, "BackOff", "Back-off"), secs(10)));
        assert_eq!(again.name, first.name);
        assert_eq!((again.count, again.is_update()), (2, true));
        assert_eq!(again.first_timestamp, secs(0));
        assert_eq!(again.last_timestamp, secs(10));
        assert_eq!(again.message, "Back-off");
    }

    #[test]
    fn the_tenth_distinct_message_becomes_the_combined_event() {
        let mut c = Correlator::default();
        let o = rs();
        let mut names = Vec::new();
        for i in 1..=9 {
            let msg = format!("Created pod: web-5d8f-{i}");
            let w = write(c.correlate(&candidate(&o, "SuccessfulCreate", &msg), secs(i)));
            assert_eq!(
                (w.count, w.message.as_str(), w.combined),
                (1, msg.as_str(), false)
            );
            names.push(w.name);
        }
        let tenth = write(c.correlate(
            &candidate(&o, "SuccessfulCreate", "Created pod: web-5d8f-10"),
            secs(10),
        ));
        assert_eq!(
            tenth.message,
            "(combined from similar events): Created pod: web-5d8f-10"
        );
        assert_eq!((tenth.count, tenth.combined), (1, true));
        assert!(!names.contains(&tenth.name), "the aggregate is a new event");
        let eleventh = write(c.correlate(
            &candidate(&o, "SuccessfulCreate", "Created pod: web-5d8f-11"),
            secs(11),
        ));
        assert_eq!(eleventh.name, tenth.name);
        assert_eq!(eleventh.count, 2);
        assert_eq!(eleventh.first_timestamp, secs(10));
        assert_eq!(
            eleventh.message,
            "(combined from similar events): Created pod: web-5d8f-11"
        );
        // A repeat of one of the first nine messages still bumps its own event.
        let repeat = write(c.correlate(
            &candidate(&o, "SuccessfulCreate", "Created pod: web-5d8f-3"),
            secs(12),
        ));
        assert_eq!((repeat.name.as_str(), repeat.count), (names[2].as_str(), 2));
        // Another reason is not similar.
        let other = write(c.correlate(
            &candidate(&o, "SuccessfulDelete", "Deleted pod: x"),
            secs(13),
        ));
        assert_eq!((other.count, other.combined), (1, false));
    }

    #[test]
    fn aggregation_restarts_after_ten_quiet_minutes() {
        let mut c = Correlator::default();
        let o = rs();
        for i in 1..=9 {
            let msg = format!("Created pod: a-{i}");
            write(c.correlate(&candidate(&o, "SuccessfulCreate", &msg), secs(i)));
        }
        // 601 s after the ninth: a fresh window, so no aggregate.
        let w = write(c.correlate(
            &candidate(&o, "SuccessfulCreate", "Created pod: a-10"),
            secs(9 + 601),
        ));
        assert_eq!(
            (w.combined, w.message.as_str()),
            (false, "Created pod: a-10")
        );
        // Each similar event restarts the window: nine more 500 s apart still aggregate at the
        // tenth distinct message.
        for i in 11..=18 {
            let msg = format!("Created pod: a-{i}");
            let w = write(c.correlate(
                &candidate(&o, "SuccessfulCreate", &msg),
                secs(610 + (i - 10) * 500),
            ));
            assert!(!w.combined, "{i}");
        }
        let w = write(c.correlate(
            &candidate(&o, "SuccessfulCreate", "Created pod: a-19"),
            secs(610 + 9 * 500),
        ));
        assert!(w.combined);
    }

    #[test]
    fn the_spam_filter_allows_a_burst_of_25_then_one_per_five_minutes() {
        let mut c = Correlator::default();
        let o = pod();
        let mut written = 0;
        for i in 0..25 {
            let w = write(c.correlate(&candidate(&o, "BackOff", "Back-off"), secs(i)));
            written += 1;
            assert_eq!(w.count, written);
        }
        // Out of tokens: dropped, but counted.
        for i in 25..40 {
            assert_eq!(
                c.correlate(&candidate(&o, "BackOff", "Back-off"), secs(i)),
                Outcome::Skip
            );
        }
        // Another reason about the same object shares the bucket.
        assert_eq!(
            c.correlate(&candidate(&o, "Killing", "Stopping"), secs(40)),
            Outcome::Skip
        );
        // Another object has its own, and so do the object's Warning events.
        let other = rs();
        write(c.correlate(&candidate(&other, "BackOff", "Back-off"), secs(40)));
        let warning = Candidate {
            type_: EventType::Warning,
            ..candidate(&o, "Unhealthy", "Liveness probe failed")
        };
        write(c.correlate(&warning, secs(40)));
        // One token is back 300 s after the burst began; the write shows every drop in its count.
        assert_eq!(
            c.correlate(&candidate(&o, "BackOff", "Back-off"), secs(299)),
            Outcome::Skip
        );
        let w = write(c.correlate(&candidate(&o, "BackOff", "Back-off"), secs(301)));
        assert_eq!(w.count, 42);
        assert_eq!(w.last_timestamp, secs(301));
        assert_eq!(
            c.correlate(&candidate(&o, "BackOff", "Back-off"), secs(302)),
            Outcome::Skip
        );
        // The dropped Killing event was counted: its first write is a count of 2 (a PATCH that
        // finds nothing, so the recorder creates it).
        let k = write(c.correlate(&candidate(&o, "Killing", "Stopping"), secs(900)));
        assert_eq!((k.count, k.first_timestamp), (2, secs(40)));
    }

    #[test]
    fn caches_forget_the_least_recently_used() {
        let mut l: Lru<u32, u32> = Lru::new(3);
        for k in 0..3 {
            l.insert(k, k);
        }
        assert!(l.get_mut(&0).is_some());
        l.insert(3, 3);
        assert_eq!(l.len(), 3);
        assert!(l.get_mut(&1).is_none(), "1 was the least recently used");
        assert!(l.get_mut(&0).is_some() && l.get_mut(&2).is_some() && l.get_mut(&3).is_some());
    }
}
