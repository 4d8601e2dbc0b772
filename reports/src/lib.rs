//! gatebench's result model and file formats.
//!
//! `loadgen` writes through this crate and `loadgen report` and `loadgen
//! compare` read through it, so none of them depends on the load generator:
//! - [`summary`]: the `summary.json` types (described in
//!   `docs/summary-schema.md`, with the JSON Schema `docs/summary.schema.json`
//!   generated from these types);
//! - [`calibration`]: this machine's resolution, from `loadgen calibrate` (part of `summary.json`);
//! - [`capacity`]: what `loadgen capacity` found (part of `summary.json`);
//! - [`events`]: what `[[event]]`s measured (part of `summary.json`);
//! - [`hlog`]: HdrHistogram interval logs, format 1.3, as the Java reference writes them;
//! - [`hgrm`]: the Java `outputPercentileDistribution` text layout;
//! - [`compare`]: the regression gate's verdicts and its BMF and
//!   github-action-benchmark exports;
//! - [`charts`], [`report`]: charts (plotters) and the Markdown/HTML report;
//! - [`write_atomic`]: every result file is written to a temporary file, then renamed.
//!
//! ```
//! use hdrhistogram::Histogram;
//! let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
//! h.record(1_500_000).unwrap(); // 1.5 ms in nanoseconds
//! let mut out = Vec::new();
//! reports::hgrm::write(&h, 1e6, &mut out).unwrap(); // in milliseconds
//! assert!(String::from_utf8(out).unwrap().contains("#[Max     ="));
//! ```

pub mod calibration;
pub mod capacity;
pub mod charts;
pub mod compare;
pub mod counts;
pub mod events;
pub mod export;
pub mod hgrm;
pub mod hlog;
pub mod interval;
mod metric;
pub mod percentiles;
pub mod precision;
pub mod report;
pub mod summary;
pub mod text;

use std::io::Write as _;
use std::path::Path;

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory, flushed to disk, then renamed over `path`. Readers see the old
/// file or the new one, never a torn one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = atomic_write_file::AtomicWriteFile::open(path)?;
    f.write_all(bytes)?;
    f.commit()
}

/// The largest result file gatebench reads (1 GiB): a run's biggest file,
/// `totals.json`, holds a few histograms per target, class and round, tens
/// of MB for a long run with many classes.
pub const MAX_INPUT_BYTES: u64 = 1 << 30;

/// Reads a result file that may be anything a user points at: only a
/// regular file (a FIFO would block forever, `/dev/zero` never ends) of at
/// most [`MAX_INPUT_BYTES`] (a huge file is refused before it is read).
pub fn read_input(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::{Error, ErrorKind, Read as _};
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(Error::new(ErrorKind::InvalidInput, "not a regular file"));
    }
    let too_big = |n: u64| {
        Error::new(
            ErrorKind::InvalidData,
            format!("{n} bytes; a result file is at most {MAX_INPUT_BYTES} bytes"),
        )
    };
    if meta.len() > MAX_INPUT_BYTES {
        return Err(too_big(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // A file that grows while it is read stops at the bound too.
    std::fs::File::open(path)?
        .take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// [`read_input`] as UTF-8 text.
pub fn read_input_text(path: &Path) -> std::io::Result<String> {
    String::from_utf8(read_input(path)?)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// `123us`, `4.56ms`, `1.20s`: wrk2's units (µs below 850 µs).
pub fn fmt_ns(ns: u64) -> String {
    let us = ns as f64 / 1e3;
    if us < 850.0 {
        format!("{us:.0}us")
    } else if us < 1e6 {
        format!("{:.2}ms", us / 1e3)
    } else {
        format!("{:.2}s", us / 1e6)
    }
}

/// A signed difference in the same units: `+74us`, `-1.20ms`.
pub fn fmt_signed_ns(ns: i64) -> String {
    let sign = if ns < 0 { '-' } else { '+' };
    format!("{sign}{}", fmt_ns(ns.unsigned_abs()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("summary.json");
        super::write_atomic(&p, b"one").unwrap();
        super::write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
