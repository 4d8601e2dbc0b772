//! What loadgen's test binaries share: loadgen run through its CLI parser
//! on a scenario written to a temp dir, a mock upstream on 127.0.0.1:0,
//! the machine's busy/stalled test, the summary schema check.

#![allow(
    clippy::disallowed_methods,
    reason = "tests time their own deadlines; the send-path rule is for the library"
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::Parser as _;
use reports::summary::{ClassResult, Summary, TargetResult};

#[derive(Debug)]
pub struct Run {
    pub code: loadgen::cli::Exit,
    pub dir: PathBuf,
    pub summary: Summary,
    _tmp: tempfile::TempDir,
}

impl Run {
    /// The run came out valid — or invalid for send lag alone while the
    /// machine itself stalled ([`stalled`]).
    pub fn assert_valid(&self) {
        let s = &self.summary;
        if self.code == loadgen::cli::Exit::Ok {
            return;
        }
        assert!(
            self.code == loadgen::cli::Exit::Invalid && stalled(s),
            "exit {:?}: {:?} (hiccup p99 {} ns)",
            self.code,
            s.invalid_reasons,
            s.health.hiccup.p99
        );
    }

    pub fn target(&self, name: &str) -> &TargetResult {
        self.summary
            .targets
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no target {name}"))
    }

    pub fn total(&self, name: &str) -> &ClassResult {
        &self.target(name).total
    }
}

/// Whether the machine was busy or stalling under a run, by the run's own
/// evidence. These 2-core VMs now and then lose a core to the host for
/// seconds (send-lag p90 goes from tens of µs to tens of ms for every
/// target of a run alike): then the hiccup probe (a thread of its own, sleeping 1 ms in a loop) wakes over
/// 1 ms late at its p99. Or other processes take the CPU (the run's health
/// records how much of a core they used; at 100 % they had half of these
/// machines), and the generator's threads wait for it while the probe's
/// short sleeps still wake on time.
pub fn busy(s: &Summary) -> bool {
    s.health.hiccup.p99 >= 1_000_000 || s.health.other_cpu_percent >= 100.0
}

/// Whether a run is invalid for send lag alone while the machine was
/// [`busy`], which can push a short run's send-lag p90 over 1 ms with no
/// defect in the run under test. A generator that lags on a calm machine is
/// not excused.
pub fn stalled(s: &Summary) -> bool {
    let excused = !s.valid
        && !s.partial
        && s.invalid_reasons.iter().all(|r| r.contains("schedule-lag"))
        && busy(s);
    if excused {
        eprintln!(
            "invalid for send lag only ({:?}) while 1 ms sleeps woke {} ns late at p99 and \
             other processes used {:.0}% of a core: the machine was busy; not counted \
             against the test",
            s.invalid_reasons, s.health.hiccup.p99, s.health.other_cpu_percent
        );
    }
    excused
}

/// A `loadgen run` process that exited 0, or 3 while the machine stalled
/// ([`stalled`]; its results are in `out`).
pub fn ok_or_stalled(status: std::process::ExitStatus, out: &Path) -> bool {
    status.success()
        || (status.code() == Some(3)
            && std::fs::read(out.join("summary.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<Summary>(&b).ok())
                .is_some_and(|s| stalled(&s)))
}

pub fn write_scenario(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("scenario.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Runs `loadgen run <scenario> --out <tmp>/out --quiet <extra…>` in the calling thread.
pub fn run(text: &str, extra: &[&str]) -> Run {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = write_scenario(tmp.path(), text);
    let out = tmp.path().join("out");
    let mut args: Vec<String> = vec![
        "loadgen".into(),
        "run".into(),
        "--no-calibrate".into(),
        scenario.display().to_string(),
    ];
    args.extend(["--out".into(), out.display().to_string(), "--quiet".into()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let code = loadgen::cli::main_with(
        loadgen::cli::Args::parse_from(&args),
        Arc::new(AtomicBool::new(false)),
    );
    let raw: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("summary.json")).expect("summary.json written"),
    )
    .unwrap();
    check_summary_schema(&raw);
    let summary: Summary = serde_json::from_value(raw).unwrap();
    Run {
        code,
        dir: out,
        summary,
        _tmp: tmp,
    }
}

/// A scenario with one target `t` at `url` and one GET request class `get`.
pub fn scenario(url: &str, phases: &str, target_extra: &str) -> String {
    format!(
        r#"
name = "test"
seed = 3
[[target]]
name = "t"
url = "{url}"
baseline = true
connections = 8
{target_extra}
[[request]]
name = "get"
path = "/orders/{{seq}}"
{phases}
"#
    )
}

pub async fn mock(config: mock_upstream::Config) -> mock_upstream::Handle {
    mock_upstream::spawn(config).await.unwrap()
}

/// [`run`] on a blocking thread, for tests whose mock upstream lives on the test's runtime.
pub async fn run_bg(text: String, extra: &[&str]) -> Run {
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        run(&text, &extra)
    })
    .await
    .unwrap()
}

/// One recorded open-loop phase named `steady`.
pub fn open_phase(duration: &str, rate: u32) -> String {
    format!("\n[[phase]]\nname = \"steady\"\nduration = \"{duration}\"\nrate = {rate}\n")
}

pub async fn mock_program(program: mock_upstream::Program) -> mock_upstream::Handle {
    mock(mock_upstream::Config {
        program,
        ..mock_upstream::Config::default()
    })
    .await
}

/// Our gateway on 127.0.0.1:0 serving `kong` (a Kong declarative file as
/// text), with its Admin API and an SQLite state in `dir`.
pub async fn gateway_with_admin(kong: &str, dir: &Path) -> gateway::Handle {
    let loopback: std::net::SocketAddr = ([127, 0, 0, 1], 0).into();
    gateway::start(gateway::Options {
        config: gateway::config::Declarative::parse(kong, "k.yml").unwrap(),
        listen: loopback,
        admin_listen: Some(loopback),
        state_file: Some(dir.join("state.db")),
        tls: None,
        limits: gateway::limits(),
        admin_apply_delay: std::time::Duration::ZERO,
        core: gateway::Core::default(),
    })
    .await
    .unwrap()
}

/// A mock upstream that answers after `latency` (the mock's spec syntax:
/// `fixed:10ms`, `uniform:1ms..41ms`).
pub async fn mock_latency(latency: &str) -> mock_upstream::Handle {
    mock_program(mock_upstream::Program {
        latency: latency.parse().unwrap(),
        ..mock_upstream::Program::default()
    })
    .await
}

/// Every run's `summary.json` must validate against the committed
/// `docs/summary.schema.json` (which a reports test keeps equal to the types).
pub fn check_summary_schema(summary: &serde_json::Value) {
    let errors = summary_schema_errors(summary);
    assert!(
        errors.is_empty(),
        "summary.json does not match the schema: {errors:#?}"
    );
}

/// What `docs/summary.schema.json` finds wrong with `summary`.
pub fn summary_schema_errors(summary: &serde_json::Value) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/summary.schema.json");
    let schema: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("docs/summary.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    validator
        .iter_errors(summary)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// Held by every test of a binary whose tests must run one after another
/// (timing-sensitive runs, or one that starves the CPU on purpose).
#[allow(
    dead_code,
    reason = "the faults and events binaries use it; the integration tests run in parallel"
)]
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A one-thread runtime for the servers a test runs beside an in-process
/// loadgen (which starts runtimes of its own).
pub fn server_runtime() -> tokio::runtime::Runtime {
    conn_guard::background_runtime("test-server", 1).expect("a runtime")
}

/// Polls `ready` every 5 ms until it holds; panics naming `what` after
/// `deadline`. For a test that must act once something has happened (the
/// run has sent so many requests, the attack is connected): never a sleep
/// that guesses how long that takes.
pub fn wait_until(what: &str, deadline: std::time::Duration, mut ready: impl FnMut() -> bool) {
    let until = std::time::Instant::now() + deadline;
    while !ready() {
        assert!(
            std::time::Instant::now() < until,
            "not within {deadline:?}: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// [`wait_until`] on a tokio runtime.
pub async fn wait_until_async(
    what: &str,
    deadline: std::time::Duration,
    mut ready: impl FnMut() -> bool,
) {
    let until = std::time::Instant::now() + deadline;
    while !ready() {
        assert!(
            std::time::Instant::now() < until,
            "not within {deadline:?}: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}
