//! `loadgen merge`: the shards of one run (`run --shard K/N --start-at T`)
//! into one results directory, exactly.
//!
//! Every histogram is added count for count (HDR histograms of one
//! configuration add exactly), per target × request class × round; the
//! timeline and the `.hlog` interval logs are added interval by interval on
//! the common time base (offsets from the common start, not from each
//! shard's clock). The summary is then computed from the merged totals by
//! the same code as a one-machine run's, so percentiles, achieved rates,
//! added latency and the validity verdict are recomputed, never averaged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use hdrhistogram::Histogram;
use reports::hlog::HlogWriter;
use reports::summary::{ShardRow, Summary};

use crate::measure::record::new_hist;
use crate::measure::totals::{RunData, TargetTotals};

/// Why shards cannot be merged: an input error (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{dir}: {what}")]
    Unreadable { dir: PathBuf, what: String },
    #[error("{dir} is not a shard of the same run as {first}: {what}")]
    Foreign {
        dir: PathBuf,
        first: PathBuf,
        what: String,
    },
    #[error("shard {shard} appears twice: {a} and {b}")]
    Repeated {
        shard: String,
        a: PathBuf,
        b: PathBuf,
    },
    #[error(
        "shard(s) {missing} of {n} missing (--allow-missing merges what is there and marks the result partial)"
    )]
    Missing { missing: String, n: u32 },
    #[error("--out {out} is the input {dir} or inside it: the merge would overwrite a shard")]
    OutIsInput { out: PathBuf, dir: PathBuf },
    #[error("{dir}: {field} {what}")]
    Value {
        dir: PathBuf,
        field: String,
        what: String,
    },
    #[error("interrupted while reading the shards: nothing was written")]
    Interrupted,
}

/// One input: its totals, its own summary and each target's interval log
/// (in the order of `data.targets`), all read and parsed before anything
/// is written.
#[derive(Debug)]
pub struct Input {
    dir: PathBuf,
    data: RunData,
    summary: Summary,
    hlogs: Vec<Vec<reports::hlog::Interval>>,
}

impl Input {
    pub fn scenario_name(&self) -> &str {
        &self.summary.scenario_name
    }
}

fn load(dir: &Path) -> Result<Input, MergeError> {
    let unreadable = |what: String| MergeError::Unreadable {
        dir: dir.to_owned(),
        what,
    };
    let data = RunData::load(dir).map_err(|e| unreadable(format!("{e:#}")))?;
    let summary = reports::report::load(dir).map_err(|e| unreadable(e.to_string()))?;
    let hlogs = data
        .targets
        .iter()
        .map(|t| {
            let path = dir.join(format!("{}.hlog", t.name));
            let bytes = reports::read_input(&path)
                .map_err(|e| unreadable(format!("{}: {e}", path.display())))?;
            reports::hlog::read(&bytes).map_err(|e| unreadable(format!("{}: {e}", path.display())))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Input {
        dir: dir.to_owned(),
        data,
        summary: summary.summary,
        hlogs,
    })
}

/// Values no run writes, which would make the merge wrong while it exits 0:
/// a share of the schedule outside (0, 1], an elapsed time longer than the
/// layout's phases could take, and counters whose sum over the shards does
/// not fit a `u64`.
fn check_values(inputs: &[Input]) -> Result<(), MergeError> {
    let bad = |i: &Input, field: String, what: String| MergeError::Value {
        dir: i.dir.clone(),
        field,
        what,
    };
    for i in inputs {
        let d = &i.data;
        if !(d.schedule_share > 0.0 && d.schedule_share <= 1.0) {
            let what = format!("{} is outside (0, 1]", d.schedule_share);
            return Err(bad(i, "schedule_share".into(), what));
        }
        // Every target runs every phase in every round, one after another
        // at most; an hour on top for grace periods and events.
        let phases: f64 = d.layout.phases.iter().map(|p| p.duration_s).sum();
        let rounds = d
            .targets
            .iter()
            .map(|t| t.rounds_run)
            .max()
            .unwrap_or(1)
            .max(1);
        let most = phases * f64::from(rounds) * d.targets.len().max(1) as f64 + 3600.0;
        if d.elapsed.as_secs_f64() > most {
            let what = format!(
                "{:.0} s is longer than the run's phases could take ({most:.0} s)",
                d.elapsed.as_secs_f64()
            );
            return Err(bad(i, "elapsed".into(), what));
        }
    }
    let first = &inputs[0].data;
    for (t, target) in first.targets.iter().enumerate() {
        for c in 0..target.classes.len() {
            let mut sum = crate::measure::record::ClassStats::default();
            for i in inputs {
                let Some(x) = i.data.targets.get(t).and_then(|t| t.classes.get(c)) else {
                    continue;
                };
                if let Some(f) = sum.overflow_with(x) {
                    let field = format!("targets[{t}].classes[{c}].{f}");
                    let what = "does not fit a 64-bit count when added to the other shards'".into();
                    return Err(bad(i, field, what));
                }
                sum.add(x);
            }
        }
    }
    Ok(())
}

/// Refuses an `out` that is one of the inputs or inside one.
fn check_out(dirs: &[PathBuf], out: &Path) -> Result<(), MergeError> {
    let out_c = resolve(out);
    for d in dirs {
        let d_c = resolve(d);
        if out_c.starts_with(&d_c) {
            return Err(MergeError::OutIsInput {
                out: out.to_owned(),
                dir: d.clone(),
            });
        }
    }
    Ok(())
}

/// `p` with symlinks and `..` resolved as far as it exists (a directory not
/// yet made keeps its remaining components).
fn resolve(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
    let mut rest = Vec::new();
    let mut at = abs.as_path();
    loop {
        if let Ok(c) = at.canonicalize() {
            return rest.iter().rev().fold(c, |acc, r| acc.join(r));
        }
        match (at.parent(), at.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                at = parent;
            }
            _ => return abs,
        }
    }
}

/// What differs between two shards that must be of the same run, if anything.
fn difference(a: &RunData, b: &RunData) -> Option<String> {
    let (sa, sb) = (&a.shard, &b.shard);
    let short = |h: &str| h.chars().take(12).collect::<String>();
    if sa.scenario_hash != sb.scenario_hash {
        return Some(format!(
            "scenario hash {} differs from {} (the scenario files or command-line overrides differ)",
            short(&sb.scenario_hash),
            short(&sa.scenario_hash)
        ));
    }
    if a.seed != b.seed {
        return Some(format!("seed {} differs from {}", b.seed, a.seed));
    }
    if sa.count != sb.count {
        return Some(format!(
            "shard count {} differs from {}",
            sb.count, sa.count
        ));
    }
    if a.hist != b.hist {
        return Some(format!(
            "histogram configuration {:?} differs from {:?}",
            b.hist, a.hist
        ));
    }
    if sa.start_at_unix_s != sb.start_at_unix_s {
        let t = |s: Option<f64>| s.map_or_else(|| "none".to_owned(), |s| format!("{s:.3}"));
        return Some(format!(
            "start time {} differs from {}",
            t(sb.start_at_unix_s),
            t(sa.start_at_unix_s)
        ));
    }
    if a.layout != b.layout {
        return Some("the phases or requests differ".into());
    }
    let names = |d: &RunData| d.targets.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
    if names(a) != names(b) {
        return Some(format!("targets {:?} differ from {:?}", names(b), names(a)));
    }
    None
}

/// Checks that `inputs` are shards of one run, each once; returns the
/// missing shard indices (an error unless `allow_missing`).
fn check(inputs: &[Input], allow_missing: bool) -> Result<Vec<u32>, MergeError> {
    let first = &inputs[0];
    for i in &inputs[1..] {
        if let Some(what) = difference(&first.data, &i.data) {
            return Err(MergeError::Foreign {
                dir: i.dir.clone(),
                first: first.dir.clone(),
                what,
            });
        }
    }
    let n = first.data.shard.count;
    let mut seen: BTreeMap<u32, &Path> = BTreeMap::new();
    for i in inputs {
        let k = i.data.shard.index;
        if let Some(a) = seen.insert(k, &i.dir) {
            return Err(MergeError::Repeated {
                shard: format!("{k}/{n}"),
                a: a.to_owned(),
                b: i.dir.clone(),
            });
        }
    }
    let missing: Vec<u32> = (0..n).filter(|k| !seen.contains_key(k)).collect();
    if !missing.is_empty() && !allow_missing {
        return Err(MergeError::Missing {
            missing: shard_list(&missing, n),
            n,
        });
    }
    Ok(missing)
}

fn shard_list(ks: &[u32], n: u32) -> String {
    ks.iter()
        .map(|k| format!("{k}/{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Adds `b` into `a`; both of one layout.
fn add_target(a: &mut TargetTotals, b: &TargetTotals) {
    for u in &b.urls {
        if !a.urls.contains(u) {
            a.urls.push(u.clone());
        }
    }
    a.connections += b.connections;
    for (x, y) in a.classes.iter_mut().zip(&b.classes) {
        x.add(y);
    }
    for (xs, ys) in a.rounds.iter_mut().zip(&b.rounds) {
        if xs.len() < ys.len() {
            xs.resize_with(ys.len(), new_hist);
        }
        for (x, y) in xs.iter_mut().zip(ys) {
            let _ = x.add(y);
        }
    }
    a.rounds_run = a.rounds_run.max(b.rounds_run);
    // The timeline, second by second on the common time base.
    let key = |t: &reports::summary::Tick| (t.round, t.phase.clone(), (t.t_s * 1e3).round() as i64);
    let mut at: BTreeMap<(u32, String, i64), usize> = a
        .timeline
        .iter()
        .enumerate()
        .map(|(i, t)| (key(t), i))
        .collect();
    for (t, h) in b.timeline.iter().zip(&b.tick_latency) {
        match at.get(&key(t)) {
            Some(&i) => {
                let x = &mut a.timeline[i];
                x.counts += &t.counts;
                let _ = a.tick_latency[i].add(h);
            }
            None => {
                at.insert(key(t), a.timeline.len());
                a.timeline.push(t.clone());
                a.tick_latency.push(h.clone());
            }
        }
    }
    for s in &b.phases {
        match a
            .phases
            .iter_mut()
            .find(|x| x.round == s.round && x.phase == s.phase)
        {
            Some(x) => {
                x.start_s = x.start_s.min(s.start_s);
                x.end_s = x.end_s.max(s.end_s);
            }
            None => a.phases.push(s.clone()),
        }
    }
}

/// Percentiles of the merged timeline, from its merged histograms.
fn finish_timeline(t: &mut TargetTotals) {
    let mut order: Vec<usize> = (0..t.timeline.len()).collect();
    order.sort_by(|&i, &j| {
        let (a, b) = (&t.timeline[i], &t.timeline[j]);
        (a.round, a.t_s)
            .partial_cmp(&(b.round, b.t_s))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let timeline = order.iter().map(|&i| t.timeline[i].clone()).collect();
    let hists: Vec<Histogram<u64>> = order.iter().map(|&i| t.tick_latency[i].clone()).collect();
    t.timeline = timeline;
    t.tick_latency = hists;
    for (tick, h) in t.timeline.iter_mut().zip(&t.tick_latency) {
        let (p50, p99, max) = if h.is_empty() {
            (0, 0, 0)
        } else {
            (h.value_at_quantile(0.5), h.value_at_quantile(0.99), h.max())
        };
        (tick.p50, tick.p99, tick.max) = (p50, p99, max);
    }
}

/// Adds every shard's totals into one.
fn add_all(inputs: &[Input]) -> RunData {
    let mut m = inputs[0].data.clone();
    for i in &inputs[1..] {
        let d = &i.data;
        for (a, b) in m.targets.iter_mut().zip(&d.targets) {
            add_target(a, b);
        }
        let _ = m.hiccup.add(&d.hiccup);
        m.start = m.start.min(d.start);
        m.elapsed = m.elapsed.max(d.elapsed);
        m.partial |= d.partial;
        m.other_cpu_percent = m.other_cpu_percent.max(d.other_cpu_percent);
        m.own_cpu_percent = m.own_cpu_percent.max(d.own_cpu_percent);
        if let (Some(a), Some(b)) = (m.auth.as_mut(), d.auth.as_ref()) {
            let _ = a.signing.add(&b.signing);
            a.summary.tokens_signed += b.summary.tokens_signed;
            a.summary.signed_on_send_path += b.summary.signed_on_send_path;
            a.summary.signer_behind += b.summary.signer_behind;
        }
    }
    for t in &mut m.targets {
        finish_timeline(t);
    }
    if let Some(a) = m.auth.as_mut() {
        a.summary.signing = reports::summary::Percentiles::of(&a.signing);
    }
    m.schedule_share = inputs.len() as f64 / f64::from(m.shard.count.max(1));
    m.shard.index = 0;
    m.shard.start_skew_ns = None;
    m.shard.host = format!("{} shards", inputs.len());
    m
}

/// The `shards` table of the merged summary.
fn row(i: &Input) -> ShardRow {
    let s = &i.summary;
    let targets = s.targets.len().max(1) as f64;
    ShardRow {
        shard: i.data.shard.clone(),
        achieved_rps: s.targets.iter().map(|t| t.total.achieved_rps).sum::<f64>() / targets,
        valid: s.valid,
        invalid_reasons: s.invalid_reasons.clone(),
        partial: s.partial,
        health: s.health.clone(),
    }
}

/// Adds the interval logs of target `t` (`target`) on the common time base.
fn merge_hlog(
    inputs: &[Input],
    (t, target): (usize, &str),
    start: std::time::SystemTime,
) -> anyhow::Result<Vec<u8>> {
    // (start in ms, tag) → (length, histogram), in the order first seen.
    let mut order: Vec<(i64, Option<String>)> = Vec::new();
    let mut sums: BTreeMap<(i64, Option<String>), (f64, Histogram<u64>)> = BTreeMap::new();
    for i in inputs {
        // This shard's log starts at its own start; place it on the merged one's.
        let shift = crate::shard::unix_s(i.data.start) - crate::shard::unix_s(start);
        for iv in i.hlogs.get(t).into_iter().flatten().cloned() {
            let key = (((iv.start + shift) * 1e3).round() as i64, iv.tag.clone());
            match sums.get_mut(&key) {
                Some((_, h)) => {
                    let _ = h.add(&iv.hist);
                }
                None => {
                    order.push(key.clone());
                    sums.insert(key, (iv.length, iv.hist));
                }
            }
        }
    }
    order.sort_by_key(|(ms, _)| *ms);
    let tool = format!(
        "gatebench-loadgen {} (target {target}, merged from {} shards)",
        env!("CARGO_PKG_VERSION"),
        inputs.len()
    );
    let mut w = HlogWriter::new(Vec::new(), &tool, start)?;
    for key in &order {
        if let Some((length, h)) = sums.get(key) {
            let at = std::time::Duration::from_secs_f64(key.0.max(0) as f64 / 1e3);
            w.interval(
                key.1.as_deref(),
                at,
                std::time::Duration::from_secs_f64(*length),
                h,
            )?;
        }
    }
    Ok(w.into_inner())
}

/// A merged run, written.
#[derive(Debug)]
pub struct Merged {
    pub summary: Summary,
    pub data: RunData,
}

/// Reads and checks the shards in `dirs`, to be merged into `out` (a new
/// directory when None): every file read, parsed and its values checked
/// before anything is written (input errors are [`MergeError`]s). `stop`
/// (Ctrl-C, SIGTERM) ends the reading between shards.
pub fn read(
    dirs: &[PathBuf],
    (allow_missing, out): (bool, Option<&Path>),
    stop: &AtomicBool,
) -> Result<(Vec<Input>, Vec<u32>), MergeError> {
    if let Some(out) = out {
        check_out(dirs, out)?;
    }
    let mut inputs = Vec::with_capacity(dirs.len());
    for d in dirs {
        if stop.load(Ordering::Relaxed) {
            return Err(MergeError::Interrupted);
        }
        inputs.push(load(d)?);
    }
    let missing = check(&inputs, allow_missing)?;
    check_values(&inputs)?;
    Ok((inputs, missing))
}

/// Merges checked inputs and writes the results directory `out`.
pub fn write(inputs: &[Input], missing: &[u32], out: &Path) -> anyhow::Result<Merged> {
    let data = add_all(inputs);
    let first = &inputs[0].summary;
    let mut summary =
        crate::measure::summarize::summarize((&first.scenario_name, first.scenario.clone()), &data);
    summary.shard = None;
    let mut sorted: Vec<&Input> = inputs.iter().collect();
    sorted.sort_by_key(|i| i.data.shard.index);
    summary.shards = sorted.iter().map(|i| row(i)).collect();
    for i in &sorted {
        let s = &i.data.shard;
        for r in &i.summary.invalid_reasons {
            summary
                .invalid_reasons
                .push(format!("shard {}/{}: {r}", s.index, s.count));
        }
    }
    if !missing.is_empty() {
        summary.partial = true;
        summary.invalid_reasons.push(format!(
            "merged without shard(s) {}: results are partial",
            shard_list(missing, data.shard.count)
        ));
    }
    summary.valid = summary.invalid_reasons.is_empty();
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for (i, t) in data.targets.iter().enumerate() {
        let log = merge_hlog(inputs, (i, &t.name), data.start)?;
        reports::write_atomic(&out.join(format!("{}.hlog", t.name)), &log)?;
    }
    crate::measure::summarize::write(out, &summary, &data)?;
    Ok(Merged { summary, data })
}
