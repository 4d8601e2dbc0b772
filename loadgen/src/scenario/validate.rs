//! The rules across fields that deserialisation cannot check: names unique,
//! `builtin:gateway` with its `[gateway]`, tokens with their `[auth]`,
//! open or closed loop, something recorded.

use super::{Field, Scenario, Target, limits};

fn n(v: Option<usize>) -> Option<u64> {
    v.map(|v| v as u64)
}

type Violation = (Field, String);

fn at(table: &str, index: Option<usize>) -> impl Fn((&'static str, String)) -> Violation + '_ {
    move |(key, msg)| (Field::new(table, index, key), msg)
}

impl Scenario {
    pub(super) fn validate(&self) -> Result<(), Violation> {
        let top = |key: &str, msg: &str| (Field::top(key), msg.to_owned());
        if self.name.trim().is_empty() {
            return Err(top("name", "must not be empty"));
        }
        let field = |(key, msg): (&str, String)| (Field::top(key), msg);
        limits::ROUNDS
            .check(self.rounds.map(u64::from))
            .map_err(field)?;
        limits::WORKERS.check(n(self.workers)).map_err(field)?;
        limits::MAX_IN_FLIGHT
            .check(n(self.max_in_flight))
            .map_err(field)?;
        for (key, d) in [
            ("timeout", self.timeout),
            ("connect_timeout", self.connect_timeout),
        ] {
            if d.is_some_and(|d| d.0 < limits::MIN_TIMEOUT) {
                return Err(top(key, "must be at least 1ms"));
            }
        }
        self.validate_gateway()?;
        if let Some(a) = &self.auth {
            let auth = |(key, msg): (&'static str, String)| (Field::new("auth", None, key), msg);
            limits::POOL_SIZE.check(n(a.pool_size)).map_err(auth)?;
            for (i, g) in a.generated.iter().enumerate() {
                limits::CONSUMERS
                    .check(Some(g.count as u64))
                    .map_err(at("auth.consumers", Some(i)))?;
            }
        }
        self.validate_upstream()?;
        self.validate_targets()?;
        self.validate_requests()?;
        if let Some(a) = &self.auth
            && a.consumer.is_empty()
            && a.generated.is_empty()
        {
            return Err((
                Field::new("auth", None, "consumer"),
                "at least one [[auth.consumer]] or [[auth.consumers]] is needed".into(),
            ));
        }
        self.validate_phases()?;
        self.validate_precision()?;
        if let Some(c) = &self.capacity {
            for (i, t) in c.slo.iter().enumerate() {
                t.parse::<super::capacity::Term>()
                    .map_err(|e| (Field::new("capacity", None, "slo"), format!("[{i}]: {e}")))?;
            }
            if let Some(p) = &c.precision {
                super::capacity::parse_percent(p)
                    .map_err(|e| (Field::new("capacity", None, "precision"), e.to_string()))?;
            }
            let positive = |v: Option<f64>| v.is_none_or(|m| m > 0.0);
            if !positive(c.min) || !positive(c.max) {
                return Err((
                    Field::new("capacity", None, "min"),
                    "rates must be above 0".into(),
                ));
            }
        }
        self.validate_events()
    }

    fn validate_precision(&self) -> Result<(), Violation> {
        let Some(p) = &self.precision else {
            return Ok(());
        };
        let at = |(key, msg): (&'static str, String)| (Field::new("precision", None, key), msg);
        p.validate(self.rounds()).map_err(at)?;
        let gateways = self.targets.iter().filter(|t| !t.baseline).count();
        if gateways == 0 || gateways == self.targets.len() {
            return Err((
                Field::top("precision"),
                "needs a baseline target and another to measure against it (it bounds added figures)".into(),
            ));
        }
        Ok(())
    }

    fn validate_events(&self) -> Result<(), Violation> {
        for (i, e) in self.events.iter().enumerate() {
            let v = at("event", Some(i));
            e.validate().map_err(&v)?;
            let Some(phase) = self.phases.iter().find(|p| p.name == e.phase) else {
                return Err(v(("phase", format!("no [[phase]] named {:?}", e.phase))));
            };
            if e.at.0 >= phase.duration.0 {
                return Err(v((
                    "at",
                    format!(
                        "{:?} is not within phase {:?} ({:?} long)",
                        e.at.0, e.phase, phase.duration.0
                    ),
                )));
            }
            if e.action.needs_consumer() && self.auth.is_none() {
                return Err(v((
                    "consumer",
                    "needs an [auth] section with consumers".into(),
                )));
            }
            let targets: Vec<&Target> = match &e.target {
                Some(name) => match self.targets.iter().find(|t| &t.name == name) {
                    Some(t) => vec![t],
                    None => return Err(v(("target", format!("no [[target]] named {name:?}")))),
                },
                None => self.event_targets(),
            };
            if targets.is_empty() {
                return Err(v((
                    "target",
                    "no target checks tokens (every one is a baseline or has auth = false)".into(),
                )));
            }
            if e.action.needs_admin() && e.admin.is_none() {
                let builtin = |t: &Target| t.url_list() == [super::TargetUrl::BuiltinGateway];
                if let Some(t) = targets.iter().find(|t| t.admin.is_none() && !builtin(t)) {
                    return Err(v((
                        "admin",
                        format!(
                            "target {:?} has no Admin API: give admin = \"http://…\" here or on the target",
                            t.name
                        ),
                    )));
                }
            }
        }
        Ok(())
    }

    /// The targets an event without `target` applies to: those that check tokens.
    pub fn event_targets(&self) -> Vec<&Target> {
        self.targets.iter().filter(|t| t.takes_events()).collect()
    }

    /// `[gateway]`: its workers, TLS in pairs, and `provision` with an `[auth]`.
    fn validate_gateway(&self) -> Result<(), Violation> {
        let Some(g) = &self.gateway else {
            return Ok(());
        };
        let gateway = |key| Field::new("gateway", None, key);
        limits::GATEWAY_WORKERS
            .check(n(g.workers))
            .map_err(|(key, msg)| (gateway(key), msg))?;
        match (&g.tls_cert, &g.tls_key) {
            (Some(_), None) => {
                return Err((gateway("tls_key"), "missing: tls_cert needs it".into()));
            }
            (None, Some(_)) => {
                return Err((gateway("tls_cert"), "missing: tls_key needs it".into()));
            }
            _ => {}
        }
        if g.provision == Some(true) && self.auth.is_none() {
            return Err((
                gateway("provision"),
                "needs an [auth] section: its consumers are what it provisions".into(),
            ));
        }
        Ok(())
    }

    fn validate_upstream(&self) -> Result<(), Violation> {
        let u = &self.upstream;
        for (key, spec) in [
            ("latency", &u.latency),
            ("size", &u.size),
            ("status", &u.status),
        ] {
            let err = spec.as_deref().and_then(|s| match key {
                "latency" => s.parse::<mock_upstream::Latency>().err(),
                "size" => s.parse::<mock_upstream::Size>().err(),
                _ => s.parse::<mock_upstream::StatusMix>().err(),
            });
            if let Some(e) = err {
                return Err((Field::new("upstream", None, key), e.to_string()));
            }
        }
        Ok(())
    }

    fn validate_targets(&self) -> Result<(), Violation> {
        if self.targets.is_empty() {
            return Err((
                Field::top("target"),
                "at least one [[target]] is needed".into(),
            ));
        }
        let wants_gateway = self
            .targets
            .iter()
            .flat_map(Target::url_list)
            .any(|u| u == super::TargetUrl::BuiltinGateway);
        if wants_gateway && self.gateway.is_none() {
            return Err((
                Field::top("gateway"),
                "builtin:gateway needs a [gateway] section with config = \"kong.yml\"".into(),
            ));
        }
        for (i, t) in self.targets.iter().enumerate() {
            let v = at("target", Some(i));
            t.validate().map_err(&v)?;
            limits::CONNECTIONS.check(n(t.connections)).map_err(&v)?;
            limits::STREAMS.check(n(t.streams)).map_err(&v)?;
            limits::check_open_files(n(t.connections).unwrap_or(16)).map_err(&v)?;
            if t.token_source.is_some() && self.auth.is_none() {
                return Err(v(("token_source", "needs an [auth] section".into())));
            }
            if self.targets[..i].iter().any(|o| o.name == t.name) {
                return Err(at("target", Some(i))((
                    "name",
                    format!("duplicate target name {:?}", t.name),
                )));
            }
        }
        Ok(())
    }

    fn validate_requests(&self) -> Result<(), Violation> {
        if self.requests.is_empty() {
            return Err((
                Field::top("request"),
                "at least one [[request]] is needed".into(),
            ));
        }
        for (i, r) in self.requests.iter().enumerate() {
            let v = at("request", Some(i));
            r.validate().map_err(&v)?;
            limits::WEIGHT.check(r.weight.map(u64::from)).map_err(&v)?;

            if self.requests[..i].iter().any(|o| o.name == r.name) {
                return Err(v(("name", format!("duplicate request name {:?}", r.name))));
            }
            if r.token.is_some() && self.auth.is_none() {
                return Err(v((
                    "token",
                    "needs an [auth] section with consumers".into(),
                )));
            }
            if let Some(c) = &r.consumer {
                if r.token.is_none() {
                    return Err(v(("consumer", "only with token = \"…\"".into())));
                }
                let listed = self
                    .auth
                    .iter()
                    .flat_map(|a| &a.consumer)
                    .any(|x| &x.name == c);
                if !listed {
                    return Err(v(("consumer", format!("no [[auth.consumer]] named {c:?}"))));
                }
            }
        }
        if self.requests.iter().all(|r| r.weight == Some(0)) {
            return Err(at("request", Some(0))((
                "weight",
                "all weights are zero".into(),
            )));
        }
        Ok(())
    }

    fn validate_phases(&self) -> Result<(), Violation> {
        if self.phases.is_empty() {
            return Err((
                Field::top("phase"),
                "at least one [[phase]] is needed".into(),
            ));
        }
        for (i, p) in self.phases.iter().enumerate() {
            let v = at("phase", Some(i));
            p.validate().map_err(&v)?;
            limits::CONCURRENCY.check(n(p.concurrency)).map_err(&v)?;
        }
        if self.phases.iter().all(|p| p.record == Some(false)) {
            return Err(at("phase", Some(0))((
                "record",
                "no phase is recorded".into(),
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn gateway_provision_needs_auth() {
        let text = "name = \"t\"\n[[target]]\nname = \"g\"\nurl = \"builtin:gateway\"\n[[request]]\nname = \"r\"\npath = \"/\"\n[[phase]]\nname = \"p\"\nduration = \"1s\"\nrate = 1\n[gateway]\nconfig = \"g.yml\"\nprovision = true\n";
        let e = super::Scenario::parse(text, "s.toml")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "s.toml:14:1: gateway.provision: needs an [auth] section: its consumers are what it provisions"
        );
    }
}
