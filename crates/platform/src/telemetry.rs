//! Logging setup: human-readable by default, JSON lines when `LOG_FORMAT=json`; spans exported
//! over OTLP when the environment names an endpoint (see [`crate::traces`]).
//!
//! A JSON line carries `timestamp`, `level`, `target` (the module), `message`, the event's fields,
//! the fields of the spans it happened in (`request_id`, `method`, `uri` of the request span), the
//! `trace_id` and `span_id` when traces are on, and the process's `service` and `targets`. Log
//! shippers label lines only by `service`, `level` and the pod; the ids stay in the line.
//!
//! Log output is bounded, so that a flood of failures cannot fill a disk or starve the process:
//! every line is cut at [`MAX_LINE_BYTES`], and at most [`LINES_PER_SECOND`] lines (with a burst of
//! [`LINE_BURST`]) are written; what is dropped is counted and reported by the next line written.

use std::{
    fmt,
    io::{self, Write},
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex,
    },
    time::Instant,
};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::{Map, Value};
use tracing::{field::Field, Event, Subscriber};
use tracing_subscriber::{
    fmt::{
        self as tfmt,
        format::{JsonFields, Writer},
        FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter,
    },
    layer::SubscriberExt,
    registry::LookupSpan,
    util::SubscriberInitExt,
    EnvFilter, Layer,
};

/// Longest log line written; longer ones are cut (and say so).
pub const MAX_LINE_BYTES: usize = 4096;
/// Sustained log lines per second; more are dropped.
pub const LINES_PER_SECOND: f64 = 500.0;
/// Lines that may be written at once after a quiet spell.
pub const LINE_BURST: f64 = 2000.0;

/// How a process logs and traces.
pub struct TelemetrySettings {
    /// JSON lines instead of human-readable text.
    pub json: bool,
    /// What this process is: `ticketgw` (every service) or its targets (`bookings`, `events+bookings`).
    pub service: String,
    /// The `--target` list as given.
    pub targets: String,
    /// Export spans when the environment names an OTLP endpoint (the server does; CLI commands do not).
    pub traces: bool,
}

/// Flushes the spans not yet exported when the process ends.
#[must_use = "dropping the guard stops the export of spans"]
pub struct TelemetryGuard(Option<SdkTracerProvider>);

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.0.take() {
            let _ = provider.shutdown();
        }
    }
}

pub fn init(settings: TelemetrySettings) -> TelemetryGuard {
    // lapin logs every message the broker returns, body included: one line per publish in a sale.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,lapin::returned_messages=error"));
    let writer = BoundedStderr::new(settings.json);
    let fmt_layer = if settings.json {
        let format = JsonLine { service: settings.service.clone(), targets: settings.targets.clone() };
        tfmt::layer().fmt_fields(JsonFields::new()).event_format(format).with_writer(writer).boxed()
    } else {
        tfmt::layer().with_writer(writer).boxed()
    };
    let provider = if settings.traces && crate::traces::export_requested() {
        match crate::traces::provider(&settings.service) {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("traces not exported: {e:#}");
                None
            }
        }
    } else {
        None
    };
    // The spans exported are those `RUST_LOG` enables (the default enables every service's spans).
    let otel_layer = provider.as_ref().map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("ticketgw")));
    // A second init (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry().with(filter).with(fmt_layer).with(otel_layer).try_init();
    TelemetryGuard(provider)
}

/// One JSON object per event, with the fields of its spans and its trace (see the module's doc).
struct JsonLine {
    service: String,
    targets: String,
}

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert("timestamp".into(), crate::clock::rfc3339(crate::clock::now_ms()).into());
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        if let Some(scope) = ctx.event_scope() {
            let spans: Vec<_> = scope.from_root().collect();
            for span in &spans {
                // The spans' fields were formatted as JSON objects (JsonFields).
                if let Some(fields) = span.extensions().get::<FormattedFields<N>>() {
                    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(fields) {
                        line.extend(map);
                    }
                }
            }
            if let Some(leaf) = spans.last() {
                line.insert("span".into(), leaf.name().into());
                if let Some(otel) = leaf.extensions().get::<tracing_opentelemetry::OtelData>() {
                    if let (Some(trace), Some(span)) = (otel.trace_id(), otel.span_id()) {
                        line.insert("trace_id".into(), trace.to_string().into());
                        line.insert("span_id".into(), span.to_string().into());
                    }
                }
            }
        }
        event.record(&mut FieldsInto(&mut line));
        line.insert("service".into(), self.service.as_str().into());
        line.insert("targets".into(), self.targets.as_str().into());
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// Records an event's fields into a JSON object.
struct FieldsInto<'a>(&'a mut Map<String, Value>);

impl tracing::field::Visit for FieldsInto<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), format!("{value:#}").into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}").into());
    }
}

/// Shows at most [`Bounded::MAX`] characters of a value (an error carrying a request body, say).
pub struct Bounded<'a, T: fmt::Display + ?Sized>(pub &'a T);

impl<T: fmt::Display + ?Sized> Bounded<'_, T> {
    pub const MAX: usize = 512;
}

impl<T: fmt::Display + ?Sized> fmt::Display for Bounded<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = format!("{:#}", self.0);
        match text.char_indices().nth(Self::MAX) {
            Some((cut, _)) => write!(f, "{}… ({} bytes in all)", &text[..cut], text.len()),
            None => f.write_str(&text),
        }
    }
}

/// A token bucket of log lines, shared by every writer.
struct Budget {
    tokens: f64,
    last: Instant,
}

/// Standard error, bounded in line size and rate.
pub struct BoundedStderr {
    json: bool,
    budget: Mutex<Budget>,
    dropped: AtomicU64,
}

impl BoundedStderr {
    pub fn new(json: bool) -> Self {
        BoundedStderr {
            json,
            budget: Mutex::new(Budget { tokens: LINE_BURST, last: Instant::now() }),
            dropped: AtomicU64::new(0),
        }
    }

    /// Whether one more line may be written now.
    fn take(&self) -> bool {
        let mut b = self.budget.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * LINES_PER_SECOND).min(LINE_BURST);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// The bytes to write for one formatted line: itself, cut when too long, preceded by a note of
    /// the lines dropped before it. `None` when the line is dropped.
    pub fn admit(&self, line: &[u8]) -> Option<Vec<u8>> {
        if !self.take() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let mut out = Vec::with_capacity(line.len().min(MAX_LINE_BYTES) + 128);
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            let note = if self.json {
                format!("{{\"level\":\"WARN\",\"message\":\"log lines dropped (rate limit)\",\"dropped\":{dropped}}}\n")
            } else {
                format!("WARN {dropped} log lines dropped (rate limit)\n")
            };
            out.extend_from_slice(note.as_bytes());
        }
        if line.len() <= MAX_LINE_BYTES {
            out.extend_from_slice(line);
            return Some(out);
        }
        let head = String::from_utf8_lossy(&line[..MAX_LINE_BYTES / 2]);
        let head = head.trim_end_matches('\u{FFFD}');
        if self.json {
            // A cut JSON line is no JSON: say what it was, as JSON.
            let note = serde_json::json!({
                "level": "WARN", "message": "log line cut", "bytes": line.len(), "head": head,
            });
            out.extend_from_slice(note.to_string().as_bytes());
        } else {
            out.extend_from_slice(head.as_bytes());
            out.extend_from_slice(format!("… (log line cut: {} bytes)", line.len()).as_bytes());
        }
        out.push(b'\n');
        Some(out)
    }
}

/// One event's writer: tracing's formatter writes a whole line, then drops it.
pub struct LineWriter<'a> {
    owner: &'a BoundedStderr,
    buf: Vec<u8>,
}

impl Write for LineWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter<'_> {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        if let Some(out) = self.owner.admit(&self.buf) {
            let _ = io::stderr().lock().write_all(&out);
        }
    }
}

impl<'a> MakeWriter<'a> for BoundedStderr {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter { owner: self, buf: Vec::with_capacity(256) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_and_json_stays_json() {
        let w = BoundedStderr::new(true);
        let long = format!("{{\"message\":\"{}\"}}\n", "x".repeat(10_000));
        let out = w.admit(long.as_bytes()).unwrap();
        assert!(out.len() < MAX_LINE_BYTES);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["message"], "log line cut");
        assert_eq!(v["bytes"], long.len());
        let short = b"{\"message\":\"hi\"}\n";
        assert_eq!(w.admit(short).unwrap(), short.to_vec());
    }

    #[test]
    fn a_flood_is_cut_to_the_budget_and_the_drop_is_reported() {
        let w = BoundedStderr::new(false);
        let written = (0..10_000).filter(|_| w.admit(b"line\n").is_some()).count();
        // The burst, plus what refilled while the loop ran (well under a second here).
        assert!(written >= LINE_BURST as usize && written < LINE_BURST as usize + 1000, "{written}");
        std::thread::sleep(std::time::Duration::from_millis(20));
        let next = String::from_utf8(w.admit(b"after\n").unwrap()).unwrap();
        assert!(next.starts_with("WARN ") && next.contains("log lines dropped") && next.ends_with("after\n"), "{next}");
    }

    #[test]
    fn bounded_display_cuts_long_values() {
        let long = "y".repeat(5000);
        let shown = Bounded(&long).to_string();
        assert!(shown.len() < 600 && shown.ends_with("(5000 bytes in all)"));
        assert_eq!(Bounded("short").to_string(), "short");
    }
}
