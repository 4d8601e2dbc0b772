//! HdrHistogram interval logs (`.hlog`), log format 1.3, laid out as the Java
//! `HistogramLogWriter` writes them: the version and `StartTime` comments, a
//! `BaseTime`, the legend, then one line per tag and interval with V2
//! compressed histograms in Base64. Values are nanoseconds; `Interval_Max` is
//! printed in milliseconds (divisor 1e6, the Java default).

use std::io::{self, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};

/// `Interval_Max` divisor: nanoseconds are printed as milliseconds.
pub const MAX_VALUE_DIVISOR: f64 = 1e6;

/// Why an interval log could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum HlogError {
    #[error("i/o")]
    Io(#[from] io::Error),
    #[error("tag {0:?} contains a comma, space or line break")]
    BadTag(String),
    #[error("cannot encode a histogram: {0}")]
    Encode(String),
    #[error("malformed interval log at byte {0}")]
    Parse(usize),
    #[error("cannot decode the histogram of an interval: {0}")]
    Decode(String),
}

/// Streams intervals to `out` as they come, so memory does not grow with run length.
pub struct HlogWriter<W: Write> {
    out: W,
    serializer: V2DeflateSerializer,
    buf: Vec<u8>,
}

impl<W: Write> std::fmt::Debug for HlogWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HlogWriter").finish_non_exhaustive()
    }
}

impl<W: Write> HlogWriter<W> {
    /// Writes the header; interval start times are then relative to `start`.
    pub fn new(mut out: W, tool: &str, start: SystemTime) -> Result<Self, HlogError> {
        let secs = start
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        writeln!(out, "#[Logged with {tool}]")?;
        writeln!(out, "#[Histogram log format version 1.3]")?;
        writeln!(
            out,
            "#[StartTime: {secs:.3} (seconds since epoch), {}]",
            http_date(start)
        )?;
        writeln!(out, "#[BaseTime: {secs:.3} (seconds since epoch)]")?;
        writeln!(
            out,
            "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
        )?;
        Ok(Self {
            out,
            serializer: V2DeflateSerializer::new(),
            buf: Vec::new(),
        })
    }

    /// Appends one interval: `since_start` after the log's start, lasting `length`.
    pub fn interval(
        &mut self,
        tag: Option<&str>,
        since_start: Duration,
        length: Duration,
        hist: &Histogram<u64>,
    ) -> Result<(), HlogError> {
        if let Some(t) = tag {
            if t.is_empty() || t.contains([',', ' ', '\n', '\r']) {
                return Err(HlogError::BadTag(t.to_owned()));
            }
            write!(self.out, "Tag={t},")?;
        }
        self.buf.clear();
        self.serializer
            .serialize(hist, &mut self.buf)
            .map_err(|e| HlogError::Encode(format!("{e:?}")))?;
        let max = hist.max() as f64 / MAX_VALUE_DIVISOR;
        writeln!(
            self.out,
            "{:.3},{:.3},{max:.3},{}",
            since_start.as_secs_f64(),
            length.as_secs_f64(),
            STANDARD.encode(&self.buf)
        )?;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// One decoded interval.
#[derive(Debug, Clone)]
pub struct Interval {
    pub tag: Option<String>,
    /// Seconds since the log's start (or absolute, if the log has neither BaseTime nor relative stamps).
    pub start: f64,
    pub length: f64,
    pub hist: Histogram<u64>,
}

/// Decodes every interval of a log (with the hdrhistogram crate's parser).
pub fn read(bytes: &[u8]) -> Result<Vec<Interval>, HlogError> {
    let mut de = Deserializer::new();
    let mut out = Vec::new();
    for entry in IntervalLogIterator::new(bytes) {
        let entry = entry.map_err(|e| match e {
            hdrhistogram::serialization::interval_log::LogIteratorError::ParseError { offset } => {
                HlogError::Parse(offset)
            }
        })?;
        if let LogEntry::Interval(i) = entry {
            let raw = STANDARD
                .decode(i.encoded_histogram())
                .map_err(|e| HlogError::Decode(e.to_string()))?;
            let hist: Histogram<u64> = de
                .deserialize(&mut raw.as_slice())
                .map_err(|e| HlogError::Decode(format!("{e:?}")))?;
            out.push(Interval {
                tag: i.tag().map(|t| t.as_str().to_owned()),
                start: i.start_timestamp().as_secs_f64(),
                length: i.duration().as_secs_f64(),
                hist,
            });
        }
    }
    Ok(out)
}

/// One histogram as the interval logs carry it: V2 compressed, Base64.
pub fn encode(hist: &Histogram<u64>) -> Result<String, HlogError> {
    let mut buf = Vec::new();
    V2DeflateSerializer::new()
        .serialize(hist, &mut buf)
        .map_err(|e| HlogError::Encode(format!("{e:?}")))?;
    Ok(STANDARD.encode(&buf))
}

/// The inverse of [`encode`].
pub fn decode(text: &str) -> Result<Histogram<u64>, HlogError> {
    let raw = STANDARD
        .decode(text)
        .map_err(|e| HlogError::Decode(e.to_string()))?;
    Deserializer::new()
        .deserialize(&mut raw.as_slice())
        .map_err(|e| HlogError::Decode(format!("{e:?}")))
}

/// `#[serde(with = "reports::hlog::b64")]`: a histogram field as its
/// [`encode`]d text, exact (every count kept).
pub mod b64 {
    use hdrhistogram::Histogram;
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(h: &Histogram<u64>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::encode(h).map_err(serde::ser::Error::custom)?)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Histogram<u64>, D::Error> {
        let text = String::deserialize(d)?;
        super::decode(&text).map_err(serde::de::Error::custom)
    }

    /// The same for a list of histograms.
    pub mod vec {
        use hdrhistogram::Histogram;
        use serde::{Deserialize as _, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(v: &[Histogram<u64>], s: S) -> Result<S::Ok, S::Error> {
            let texts = v
                .iter()
                .map(super::super::encode)
                .collect::<Result<Vec<_>, _>>()
                .map_err(serde::ser::Error::custom)?;
            s.collect_seq(texts)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Vec<Histogram<u64>>, D::Error> {
            Vec::<String>::deserialize(d)?
                .iter()
                .map(|t| super::super::decode(t).map_err(serde::de::Error::custom))
                .collect()
        }
    }
}

/// `Sun Nov 29 17:27:15 UTC 2026`, as Java's `Date.toString()` prints in UTC.
pub fn http_date(t: SystemTime) -> String {
    let Utc {
        year: y,
        month: mo,
        day: d,
        hour: h,
        minute: m,
        second: s,
        days,
    } = utc(t);
    // 1970-01-01 was a Thursday.
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {d:02} {h:02}:{m:02}:{s:02} UTC {y}",
        WEEKDAYS[(days % 7) as usize],
        MONTHS[(mo - 1) as usize]
    )
}

/// A UTC calendar breakdown of a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u64,
    pub minute: u64,
    pub second: u64,
    /// Days since 1970-01-01.
    pub days: u64,
}

/// Breaks `t` down into UTC calendar fields (whole seconds).
pub fn utc(t: SystemTime) -> Utc {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    Utc {
        year,
        month,
        day,
        hour: rem / 3600,
        minute: rem % 3600 / 60,
        second: rem % 60,
        days,
    }
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_print_like_java_in_utc() {
        let t = UNIX_EPOCH + Duration::from_secs(1_796_491_635);
        assert_eq!(http_date(t), "Sat Dec 05 17:27:15 UTC 2026");
        assert_eq!(http_date(UNIX_EPOCH), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(
            http_date(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "Tue Feb 29 00:00:00 UTC 2000"
        );
    }

    #[test]
    fn round_trips_tagged_intervals() {
        let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut w = HlogWriter::new(Vec::new(), "gatebench test", start).unwrap();
        let mut a = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        for v in [1_000u64, 50_000, 2_500_000] {
            a.record(v).unwrap();
        }
        let mut b = a.clone();
        b.record(9_000_000).unwrap();
        w.interval(
            Some("read-order"),
            Duration::from_millis(0),
            Duration::from_secs(1),
            &a,
        )
        .unwrap();
        w.interval(
            Some("write"),
            Duration::from_millis(1000),
            Duration::from_secs(1),
            &b,
        )
        .unwrap();
        w.interval(
            None,
            Duration::from_millis(2000),
            Duration::from_millis(500),
            &b,
        )
        .unwrap();
        assert!(matches!(
            w.interval(Some("a b"), Duration::ZERO, Duration::ZERO, &a),
            Err(HlogError::BadTag(_))
        ));
        let text = String::from_utf8(w.into_inner()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "#[Histogram log format version 1.3]");
        assert!(lines[2].starts_with(
            "#[StartTime: 1700000000.000 (seconds since epoch), Tue Nov 14 22:13:20 UTC 2023]"
        ));
        assert!(
            lines[5].starts_with("Tag=read-order,0.000,1.000,2.501,HISTF"),
            "{}",
            lines[5]
        );

        let back = read(text.as_bytes()).unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(back[0].tag.as_deref(), Some("read-order"));
        assert_eq!(back[0].hist, a);
        assert_eq!(back[1].hist, b);
        assert_eq!(
            (back[1].start, back[2].tag.as_deref(), back[2].length),
            (1.0, None, 0.5)
        );
    }
}
