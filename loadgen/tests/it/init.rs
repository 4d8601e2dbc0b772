//! `loadgen init`: each kind's starter validates and runs at once against
//! the builtin targets, its invalid tokens refused by the stand-in; the
//! peer configs it writes pass the peers' own checks where they are here.

use std::path::Path;
use std::process::Command;

use reports::summary::Summary;

use crate::cmd::{loadgen, ok};

const KINDS: [&str; 6] = ["kong", "aws", "envoy", "rust", "haproxy", "nginx"];

fn summary(dir: &Path) -> Summary {
    let raw: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    serde_json::from_value(raw).unwrap()
}

#[test]
fn every_starter_validates_and_runs_on_the_builtin_targets() {
    let _serial = crate::support::serial();
    let tmp = tempfile::tempdir().unwrap();
    for kind in KINDS {
        let dir = tmp.path().join(kind);
        let d = dir.to_str().unwrap();
        let printed = ok(&loadgen(&["init", "--gateway", kind, "--dir", d]));
        let scenario = dir.join("scenario.toml");
        assert!(printed.contains("next: loadgen run"), "{printed}");
        for f in [
            "scenario.toml",
            "gateway.yml",
            "README.md",
            "keys/mobile-app/private.pem",
        ] {
            assert!(dir.join(f).exists(), "{kind}: {f} missing");
        }
        ok(&loadgen(&["validate", scenario.to_str().unwrap()]));
        let out = dir.join("out");
        let run = loadgen(&[
            "run",
            scenario.to_str().unwrap(),
            "--rounds",
            "1",
            "--rate",
            "400",
            "--duration",
            "1s",
            "--out",
            out.to_str().unwrap(),
            "--quiet",
            "--no-calibrate",
            "--no-report",
        ]);
        let s = summary(&out);
        assert!(
            run.status.success() || crate::support::ok_or_stalled(run.status, &out),
            "{kind}: {:?} {}",
            s.invalid_reasons,
            String::from_utf8_lossy(&run.stderr)
        );
        let gateway = s.targets.iter().find(|t| t.name == kind).unwrap();
        assert_eq!(
            gateway.total.counts.unexpected, 0,
            "{kind}: every status as expected"
        );
        assert!(
            gateway.total.counts.ok >= 390,
            "{kind}: {:?}",
            gateway.total.counts
        );
        // The refusals happened: the stand-in answered 401 to them.
        for class in ["bad-signature", "expired"] {
            let c = gateway.classes.iter().find(|c| c.request == class).unwrap();
            assert!(
                c.counts.ok > 0,
                "{kind}: no {class} request was sent and refused"
            );
        }
        // A second init does not overwrite the first.
        let again = loadgen(&["init", "--gateway", kind, "--dir", d]);
        assert_eq!(again.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    }
}

#[test]
fn the_peer_configs_pass_the_peers_own_checks_where_installed() {
    let tmp = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for (kind, bin, flags, conf) in [
        (
            "haproxy",
            "haproxy",
            vec!["-c", "-q", "-f"],
            "haproxy/haproxy.cfg",
        ),
        (
            "nginx",
            "nginx",
            vec!["-e", "stderr", "-t", "-q", "-c"],
            "nginx/nginx.conf",
        ),
    ] {
        let dir = tmp.path().join(kind);
        ok(&loadgen(&[
            "init",
            "--gateway",
            kind,
            "--dir",
            dir.to_str().unwrap(),
        ]));
        let conf = dir.join(conf);
        let Ok(o) = Command::new(bin).args(&flags).arg(&conf).output() else {
            continue;
        };
        // nginx -t needs its js module installed; without it, say so and skip.
        let err = String::from_utf8_lossy(&o.stderr);
        if kind == "nginx" && err.contains("ngx_http_js_module.so") {
            continue;
        }
        assert!(o.status.success(), "{bin}: {err}");
        checked += 1;
    }
    eprintln!("{checked} peer configs checked by their own binaries");
}
