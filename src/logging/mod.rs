//! Log formats: which of three this process writes on stderr, the journal
//! lines, and the small helpers that keep Rust's debug syntax (`Some(…)`,
//! `["a"]`) out of log lines. Pure; installing the subscriber is
//! [`setup`]'s.
//!
//! - Human (the default): timestamp, level, message, `key=value` fields.
//! - Journal: under systemd (stderr is the journal stream named by
//!   `JOURNAL_STREAM`), no timestamp of our own (journald adds one) and a
//!   `<N>` syslog priority prefix per line, so `journalctl -p warning`
//!   filters by level.
//! - JSON (`IMDSD_LOG_FORMAT=json`): one object per line, for log shippers.
//!
//! The level comes from `IMDSD_LOG` (default `info`), in `tracing`'s
//! env-filter syntax. The signing library's own tracing is always off: it
//! traces canonical requests, which older releases printed with the session
//! token in them. No secret ever reaches our own log calls: credential
//! types print redacted (see `secret`).

mod setup;

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::format::{self, FormatEvent, FormatFields, Writer};
use tracing_subscriber::registry::LookupSpan;

use crate::environment::Environment;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Human,
    Journal,
    Json,
}

/// The format for this process: `IMDSD_LOG_FORMAT` (`json`, `journal`,
/// `human`), else the journal when stderr is the stream systemd named in
/// `JOURNAL_STREAM` (`DEVICE:INODE`), else human. `stderr` is stderr's
/// device and inode.
pub(crate) fn format_for(env: &Environment, stderr: Option<(u64, u64)>) -> Format {
    match env.get("IMDSD_LOG_FORMAT") {
        Some(f) if f.eq_ignore_ascii_case("json") => return Format::Json,
        Some(f) if f.eq_ignore_ascii_case("journal") => return Format::Journal,
        Some(f) if f.eq_ignore_ascii_case("human") => return Format::Human,
        _ => {}
    }
    // A child of a systemd service inherits JOURNAL_STREAM with its
    // stderr redirected: only the very stream counts.
    let journal = env
        .get("JOURNAL_STREAM")
        .and_then(|v| v.split_once(':'))
        .and_then(|(dev, ino)| Some((dev.parse().ok()?, ino.parse().ok()?)));
    match (journal, stderr) {
        (Some(named), Some(ours)) if named == ours => Format::Journal,
        _ => Format::Human,
    }
}

/// The syslog priority journald files a line at: err, warning, info,
/// debug.
pub(crate) fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

pub use setup::init;

/// The default line, without a timestamp, each line after a `<N>` priority
/// prefix.
struct Journal(format::Format<format::Full, ()>);

impl Journal {
    fn new() -> Self {
        Journal(format::format().without_time().with_target(false))
    }
}

impl<S, N> FormatEvent<S, N> for Journal
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // Every line of a multi-line message (a config's problems) gets the
        // prefix: journald files each line as an entry of its own.
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        let priority = priority(event.metadata().level());
        for part in line.lines() {
            writeln!(writer, "<{priority}>{part}")?;
        }
        Ok(())
    }
}

/// An optional value as a log field: the value, or `-`.
pub(crate) struct Opt<'a, T>(pub(crate) &'a Option<T>);

impl<T: fmt::Display> fmt::Display for Opt<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(v) => v.fmt(f),
            None => f.write_str("-"),
        }
    }
}

/// A list as a log field: `a, b, c`, or `-` when empty.
pub(crate) struct List<'a, T>(pub(crate) &'a [T]);

impl<T: fmt::Display> fmt::Display for List<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("-");
        }
        for (i, item) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            item.fmt(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_format_only_for_the_stream_systemd_named() {
        let env = Environment::from_pairs([("JOURNAL_STREAM", "8:12345")]);
        assert_eq!(format_for(&env, Some((8, 12345))), Format::Journal);
        assert_eq!(
            format_for(&env, Some((8, 999))),
            Format::Human,
            "stderr redirected by a child of the service"
        );
        assert_eq!(
            format_for(&Environment::default(), Some((8, 1))),
            Format::Human
        );
        let garbled = Environment::from_pairs([("JOURNAL_STREAM", "x")]);
        assert_eq!(format_for(&garbled, Some((8, 1))), Format::Human);
    }

    #[test]
    fn imdsd_log_format_wins() {
        let env = Environment::from_pairs([
            ("JOURNAL_STREAM", "8:1"),
            ("IMDSD_LOG_FORMAT", "JSON"),
        ]);
        assert_eq!(format_for(&env, Some((8, 1))), Format::Json);
        let env = Environment::from_pairs([("IMDSD_LOG_FORMAT", "journal")]);
        assert_eq!(format_for(&env, None), Format::Journal);
        let env = Environment::from_pairs([
            ("JOURNAL_STREAM", "8:1"),
            ("IMDSD_LOG_FORMAT", "human"),
        ]);
        assert_eq!(format_for(&env, Some((8, 1))), Format::Human);
    }

    #[test]
    fn an_unknown_imdsd_log_format_falls_back_to_detection() {
        let env = Environment::from_pairs([
            ("JOURNAL_STREAM", "8:1"),
            ("IMDSD_LOG_FORMAT", "fancy"),
        ]);
        assert_eq!(format_for(&env, Some((8, 1))), Format::Journal);
    }

    #[test]
    fn journal_lines_each_carry_the_priority_and_no_timestamp() {
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let sink = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || Sink(sink.clone()))
            .with_ansi(false)
            .event_format(Journal::new())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(role = "dev", "two problems:\nline two");
            tracing::info!("fine");
        });
        let text = String::from_utf8(lines.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "<4> WARN two problems:",
                "<4>line two role=\"dev\"",
                "<6> INFO fine"
            ],
            "{text}"
        );
    }

    /// A log writer appending to a shared buffer.
    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn priorities_are_syslogs() {
        assert_eq!(priority(&Level::ERROR), 3);
        assert_eq!(priority(&Level::WARN), 4);
        assert_eq!(priority(&Level::INFO), 6);
        assert_eq!(priority(&Level::DEBUG), 7);
        assert_eq!(priority(&Level::TRACE), 7);
    }

    #[test]
    fn fields_print_without_debug_syntax() {
        assert_eq!(Opt(&Some(1000)).to_string(), "1000");
        assert_eq!(Opt::<u32>(&None).to_string(), "-");
        assert_eq!(List(&["a", "b"]).to_string(), "a, b");
        assert_eq!(List::<&str>(&[]).to_string(), "-");
    }
}
