//! The percentile distribution text layout of HdrHistogram's Java
//! `AbstractHistogram.outputPercentileDistribution(out, 5, ratio)`, byte for
//! byte (checked against HdrHistogram 2.1.11 in a golden test), so that the
//! standard HdrHistogram plotter reads our `.hgrm` files.

use std::io::{self, Write};

use hdrhistogram::Histogram;

/// Percentile ticks per half distance, the Java default.
pub const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// Writes `hist` with values divided by `scale` (1e6 for nanoseconds → milliseconds).
pub fn write(hist: &Histogram<u64>, scale: f64, out: &mut impl Write) -> io::Result<()> {
    let digits = usize::from(hist.sigfig());
    writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    )?;
    for (value, level, total) in java_percentile_rows(hist) {
        let value = java_fixed(value as f64 / scale, digits);
        let q = level / 100.0;
        let pct = java_fixed(q, 12);
        if level < 100.0 {
            let inv = java_fixed(1.0 / (1.0 - q), 2);
            writeln!(out, "{value:>12} {pct:>2} {total:>10} {inv:>14}")?;
        } else {
            writeln!(out, "{value:>12} {pct:>2} {total:>10}")?;
        }
    }
    let mean = java_fixed(hist.mean() / scale, digits);
    let sd = java_fixed(hist.stdev() / scale, digits);
    writeln!(out, "#[Mean    = {mean:>12}, StdDeviation   = {sd:>12}]")?;
    let max = java_fixed(hist.max() as f64 / scale, digits);
    writeln!(
        out,
        "#[Max     = {max:>12}, Total count    = {:>12}]",
        hist.len()
    )?;
    writeln!(
        out,
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        hist.buckets(),
        sub_bucket_count(hist.sigfig())
    )
}

/// A `.hgrm` line that is not a percentile row.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct HgrmError {
    /// 1-based.
    pub line: usize,
    pub problem: String,
}

/// Reads a `.hgrm` file's rows back as (value in the file's unit,
/// percentile as a fraction in 0..=1). Errors name the line.
pub fn read(text: &str) -> Result<Vec<(f64, f64)>, HgrmError> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with("Value") {
            continue;
        }
        let mut cols = line.split_whitespace();
        let (Some(v), Some(p)) = (cols.next(), cols.next()) else {
            return Err(HgrmError {
                line: i + 1,
                problem: "expected `value percentile ...`".into(),
            });
        };
        let value: f64 = v.parse().map_err(|_| HgrmError {
            line: i + 1,
            problem: format!("bad value {v:?}"),
        })?;
        let pct: f64 = p.parse().map_err(|_| HgrmError {
            line: i + 1,
            problem: format!("bad percentile {p:?}"),
        })?;
        if !(0.0..=1.0).contains(&pct) {
            return Err(HgrmError {
                line: i + 1,
                problem: format!("percentile {pct} outside 0..1"),
            });
        }
        rows.push((value, pct));
    }
    Ok(rows)
}

/// The rows of Java's `PercentileIterator` as (highest equivalent value,
/// percentile level in percent, cumulative count). The hdrhistogram crate's
/// quantile iterator steps in quantile space and so lands one bucket off at
/// levels such as 75 % where `count × level` is exact; this mirrors Java's
/// arithmetic in percent instead.
pub fn java_percentile_rows(hist: &Histogram<u64>) -> Vec<(u64, f64, u64)> {
    let n = hist.len();
    let mut rows = Vec::new();
    if n == 0 {
        return rows;
    }
    let mut level = 0.0f64;
    let mut total = 0u64;
    for v in hist.iter_recorded() {
        total += v.count_at_value();
        let value = v.value_iterated_to();
        while 100.0 * total as f64 / n as f64 >= level {
            rows.push((value, level, total));
            if total == n {
                // The last recorded value: Java ends with a 100 % row.
                rows.push((value, 100.0, total));
                return rows;
            }
            let halvings = ((100.0 / (100.0 - level)).ln() / 2f64.ln()) as i32;
            let ticks = u64::from(TICKS_PER_HALF_DISTANCE) * 2f64.powi(halvings + 1) as u64;
            level += 100.0 / ticks as f64;
        }
    }
    rows
}

/// Formats like Java's `%.Nf`: the shortest round-trip decimal digits of `x`,
/// rounded half-up (so 1.005 → "1.01" and 0.125 → "0.13", where Rust's own
/// formatting gives "1.00" and "0.12").
pub fn java_fixed(x: f64, decimals: usize) -> String {
    if !x.is_finite() {
        return if x.is_nan() {
            "NaN".into()
        } else if x > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let digits: Vec<u8> = mantissa
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect();
    // x = 0.d1 d2 d3 ... × 10^(exp + 1); keep the digits down to 10^-decimals.
    let keep = exp + 1 + decimals as i64;
    let mut kept: Vec<u8> = (0..keep.max(0) as usize)
        .map(|i| digits.get(i).copied().unwrap_or(0))
        .collect();
    let first_dropped = usize::try_from(keep)
        .ok()
        .and_then(|k| digits.get(k).copied())
        .unwrap_or(0);
    if keep >= 0 && first_dropped >= 5 {
        let mut i = kept.len();
        loop {
            if i == 0 {
                kept.insert(0, 1);
                break;
            }
            i -= 1;
            if kept[i] == 9 {
                kept[i] = 0;
            } else {
                kept[i] += 1;
                break;
            }
        }
    }
    while kept.len() < decimals + 1 {
        kept.insert(0, 0);
    }
    let split = kept.len() - decimals;
    let text = |d: &[u8]| d.iter().map(|d| char::from(b'0' + d)).collect::<String>();
    let negative = x < 0.0 && kept.iter().any(|d| *d != 0);
    let sign = if negative { "-" } else { "" };
    if decimals == 0 {
        format!("{sign}{}", text(&kept))
    } else {
        format!("{sign}{}.{}", text(&kept[..split]), text(&kept[split..]))
    }
}

/// Java's `subBucketCount`: the power of two above `2 × 10^digits`.
fn sub_bucket_count(sigfig: u8) -> u64 {
    let largest_single_unit = 2 * 10u64.pow(u32::from(sigfig));
    largest_single_unit.next_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The histogram of `tests/golden/fixed.hgrm`: 1..=10_000 µs in ns, plus
    /// outliers, as produced by `tests/golden/Golden.java` (HdrHistogram 2.1.11).
    pub(crate) fn fixed_histogram() -> Histogram<u64> {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        for us in 1..=10_000u64 {
            h.record(us * 1000).unwrap();
        }
        h.record_n(250_000_000, 3).unwrap();
        h.record(1_000_000_000).unwrap();
        h
    }

    #[test]
    fn matches_java_reference_byte_for_byte() {
        let mut out = Vec::new();
        write(&fixed_histogram(), 1e6, &mut out).unwrap();
        let golden = include_str!("../tests/golden/fixed.hgrm");
        let ours = String::from_utf8(out).unwrap();
        for (i, (a, b)) in ours.lines().zip(golden.lines()).enumerate() {
            assert_eq!(a, b, "line {}", i + 1);
        }
        assert_eq!(ours.lines().count(), golden.lines().count());
    }

    #[test]
    fn reads_back_what_it_writes() {
        let golden = include_str!("../tests/golden/fixed.hgrm");
        let rows = read(golden).unwrap();
        assert_eq!(rows.first(), Some(&(0.001, 0.0)));
        assert_eq!(rows.last().map(|r| r.1), Some(1.0));
        assert!(
            rows.windows(2)
                .all(|w| w[0].1 <= w[1].1 && w[0].0 <= w[1].0)
        );
        let e = read("  1.0 0.5 3 2.0\n  x 0.5\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(e.to_string(), "line 2: bad value \"x\"");
    }

    #[test]
    fn java_rounding() {
        // Each expectation printed by Java 17's String.format(Locale.US, ...).
        assert_eq!(java_fixed(1.005, 2), "1.01");
        assert_eq!(java_fixed(0.125, 2), "0.13");
        assert_eq!(java_fixed(2.0005, 3), "2.001");
        assert_eq!(java_fixed(0.9997802734375, 12), "0.999780273438");
        assert_eq!(java_fixed(0.0004, 3), "0.000");
        assert_eq!(java_fixed(0.0005, 3), "0.001");
        assert_eq!(java_fixed(9.9996, 3), "10.000");
        assert_eq!(java_fixed(0.0, 3), "0.000");
        assert_eq!(java_fixed(1234.5, 0), "1235");
        assert_eq!(java_fixed(-1.5, 1), "-1.5");
    }

    #[test]
    fn empty_histogram_has_header_and_footer() {
        let h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        let mut out = Vec::new();
        write(&h, 1e6, &mut out).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n#[Mean"));
    }
}
