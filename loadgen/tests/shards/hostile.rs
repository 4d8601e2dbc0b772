//! `loadgen merge` on shards it must not trust: each case is refused with
//! exit 2 naming the shard and what is wrong, in bounded time, and nothing
//! is written to `--out`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_loadgen");

/// A copy of shard directory `from` as `to`, its `totals.json` edited by
/// `edit` (None: unchanged).
fn copy_shard(from: &Path, to: &Path, edit: Option<&dyn Fn(&mut serde_json::Value)>) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
    if let Some(edit) = edit {
        let p = to.join("totals.json");
        let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        edit(&mut v);
        std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
    }
}

/// `loadgen merge --out OUT DIRS…` with a deadline: (exit code, stderr).
fn merge(dirs: &[&Path], out: &Path) -> (Option<i32>, String) {
    let mut child = Command::new(BIN)
        .args(["merge", "--quiet", "--no-report", "--out"])
        .arg(out)
        .args(dirs)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read as _;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status.code(), err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("merge of {dirs:?} did not end within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The hostile-shard table, on two good shards of a three-shard run
/// (`--allow-missing` is not given, so the third must be `third`).
pub fn hostile_shards_are_refused(dir: &Path, shards: &[PathBuf]) {
    let (s0, s1, s2) = (&shards[0], &shards[1], &shards[2]);
    let work = dir.join("hostile");
    std::fs::create_dir_all(&work).unwrap();
    let out = work.join("out");

    // --out is an input, or inside one: refused, the shard untouched.
    let before = std::fs::read(s1.join("summary.json")).unwrap();
    for o in [s1.clone(), s1.join("merged"), s1.join("../shard-1/.")] {
        let (code, err) = merge(&[s0, s1, s2], &o);
        assert_eq!(code, Some(2), "--out {}: {err}", o.display());
        assert!(err.contains("would overwrite a shard"), "{err}");
    }
    assert_eq!(std::fs::read(s1.join("summary.json")).unwrap(), before);
    assert!(!s1.join("merged").exists());

    // A request class that shard 0 sent requests in (the warm-up's are not
    // recorded): u64::MAX there cannot be added to it.
    let totals: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s0.join("totals.json")).unwrap()).unwrap();
    let busy = totals["targets"][0]["classes"]
        .as_array()
        .unwrap()
        .iter()
        .position(|c| c["counts"]["scheduled"].as_u64() > Some(0))
        .unwrap();
    let count_field = format!("targets[0].classes[{busy}].counts.scheduled does not fit");
    let count_pointer = format!("/targets/0/classes/{busy}/counts/scheduled");
    type Case<'a> = (&'a str, Box<dyn Fn(&Path)>, &'a str);
    let set = |pointer: String, value: serde_json::Value| {
        move |v: &mut serde_json::Value| *v.pointer_mut(&pointer).unwrap() = value.clone()
    };
    let cases: Vec<Case<'_>> = vec![
        (
            "a missing .hlog",
            Box::new(|d| std::fs::remove_file(d.join("direct.hlog")).unwrap()),
            "direct.hlog",
        ),
        (
            "a corrupt .hlog",
            Box::new(|d| {
                std::fs::write(d.join("direct.hlog"), "#[StartTime: x]\n0.1,1,2,@@@\n").unwrap()
            }),
            "direct.hlog",
        ),
        (
            "a truncated .hlog",
            Box::new(|d| {
                let p = d.join("again.hlog");
                let b = std::fs::read(&p).unwrap();
                std::fs::write(&p, &b[..b.len() * 2 / 3]).unwrap();
            }),
            "again.hlog",
        ),
        (
            "a FIFO as totals.json",
            Box::new(|d| {
                let p = d.join("totals.json");
                std::fs::remove_file(&p).unwrap();
                assert!(Command::new("mkfifo").arg(&p).status().unwrap().success());
            }),
            "not a regular file",
        ),
        (
            "/dev/zero as totals.json",
            Box::new(|d| {
                let p = d.join("totals.json");
                std::fs::remove_file(&p).unwrap();
                std::os::unix::fs::symlink("/dev/zero", &p).unwrap();
            }),
            "not a regular file",
        ),
        (
            "a 1 GiB + 1 summary.json",
            Box::new(|d| {
                let f = std::fs::File::create(d.join("summary.json")).unwrap();
                f.set_len((1 << 30) + 1).unwrap();
            }),
            "a result file is at most",
        ),
        (
            "a count that overflows the sum",
            Box::new(move |d| {
                let p = d.join("totals.json");
                let mut v: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
                set(count_pointer.clone(), u64::MAX.into())(&mut v);
                std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
            }),
            &count_field,
        ),
    ];
    for (what, spoil, says) in cases {
        let bad = work.join(what.replace([' ', '/', '.'], "_"));
        copy_shard(s2, &bad, None);
        spoil(&bad);
        let (code, err) = merge(&[s0, s1, &bad], &out);
        assert_eq!(code, Some(2), "{what}: {err}");
        assert!(err.contains(says), "{what}: {err}");
        assert!(!out.exists(), "{what}: --out was written");
    }

    // Values no run writes.
    let values: [(&str, &str, serde_json::Value, &str); 4] = [
        (
            "share 0",
            "/schedule_share",
            0.0.into(),
            "schedule_share 0 is outside (0, 1]",
        ),
        (
            "share 1e308",
            "/schedule_share",
            1e308.into(),
            "schedule_share",
        ),
        (
            "elapsed 2^64 s",
            "/elapsed/secs",
            u64::MAX.into(),
            "elapsed",
        ),
        (
            "share -1",
            "/schedule_share",
            (-1.0).into(),
            "outside (0, 1]",
        ),
    ];
    for (what, pointer, value, says) in values {
        let bad = work.join(what.replace([' ', '^'], "_"));
        copy_shard(s2, &bad, Some(&set(pointer.to_owned(), value)));
        let (code, err) = merge(&[s0, s1, &bad], &out);
        assert_eq!(code, Some(2), "{what}: {err}");
        assert!(
            err.contains(says) && err.contains(&*bad.to_string_lossy()),
            "{what}: {err}"
        );
        assert!(!out.exists(), "{what}: --out was written");
    }

    // The good shards still merge.
    let (code, err) = merge(&[s0, s1, s2], &out);
    assert!(matches!(code, Some(0 | 3)), "{err}");
    assert!(out.join("summary.json").exists());
}
