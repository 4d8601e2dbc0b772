//! The rules across fields that deserialisation cannot check: names unique,
//! `builtin:gateway` with its `[gateway]`, tokens with their `[auth]`,
//! open or closed loop, something recorded.

use super::{Field, Scenario, Target};

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
        if self.rounds == Some(0) {
            return Err(top("rounds", "must be at least 1"));
        }
        if self.workers == Some(0) {
            return Err(top("workers", "must be at least 1"));
        }
        if self.max_in_flight == Some(0) {
            return Err(top("max_in_flight", "must be at least 1"));
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
        self.validate_phases()
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
            t.validate().map_err(at("target", Some(i)))?;
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
            p.validate().map_err(at("phase", Some(i)))?;
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
