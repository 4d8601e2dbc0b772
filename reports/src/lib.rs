//! gatebench's result model and file formats.
//!
//! `loadgen` writes through this crate and `report`, `compare` and `merge`
//! read through it, so none of them depends on the load generator:
//! - [`summary`]: the `summary.json` types (schema in `docs/summary-schema.md`);
//! - [`hlog`]: HdrHistogram interval logs, format 1.3, as the Java reference writes them;
//! - [`hgrm`]: the Java `outputPercentileDistribution` text layout;
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

pub mod hgrm;
pub mod hlog;
pub mod summary;

use std::io::Write as _;
use std::path::Path;

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory, flushed to disk, then renamed over `path`. Readers see the old
/// file or the new one, never a torn one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
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
