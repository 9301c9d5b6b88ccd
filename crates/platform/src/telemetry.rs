//! Logging setup: human-readable by default, JSON lines when `LOG_FORMAT=json`.
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

use tracing_subscriber::{fmt as tfmt, fmt::MakeWriter, EnvFilter};

/// Longest log line written; longer ones are cut (and say so).
pub const MAX_LINE_BYTES: usize = 4096;
/// Sustained log lines per second; more are dropped.
pub const LINES_PER_SECOND: f64 = 500.0;
/// Lines that may be written at once after a quiet spell.
pub const LINE_BURST: f64 = 2000.0;

pub fn init(json: bool) {
    // lapin logs every message the broker returns, body included: one line per publish in a sale.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,lapin::returned_messages=error"));
    let writer = BoundedStderr::new(json);
    let builder = tfmt().with_env_filter(filter).with_writer(writer);
    let res = if json { builder.json().flatten_event(true).try_init() } else { builder.try_init() };
    // A second init (tests) keeps the first subscriber.
    let _ = res;
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
