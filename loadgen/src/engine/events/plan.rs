//! `[[event]]`s resolved once per run: each event's phase and time, its
//! consumer, a rotation's new key.

use std::path::PathBuf;
use std::time::Duration;

use crate::scenario::{Action, EventSpec, Field, Scenario, ScenarioError};
use crate::token::{Consumer, Tokens};

/// One `[[event]]`, resolved.
#[derive(Debug, Clone)]
pub struct Planned {
    pub index: usize,
    pub spec: EventSpec,
    pub phase: usize,
    /// From the start of the target's run (phase 0).
    pub offset: Duration,
    /// The consumer's index and name.
    pub consumer: Option<(usize, String)>,
    /// rotate, jwks-rotate: the consumer with its new key.
    pub next: Option<Consumer>,
    /// jwks-rotate: the file, resolved against the scenario's directory.
    pub jwks: Option<PathBuf>,
}

/// Every event of a run.
#[derive(Debug, Default)]
pub struct Events {
    pub events: Vec<Planned>,
}

impl Events {
    /// Resolves the scenario's events against its phases and consumers;
    /// errors name the event's field.
    pub fn new(
        s: &Scenario,
        tokens: Option<&Tokens>,
        phases: &[(String, Duration)],
    ) -> Result<Events, ScenarioError> {
        let mut events = Vec::new();
        for (i, e) in s.events.iter().enumerate() {
            let err = |key: &str, msg: String| s.error_at(Field::new("event", Some(i), key), msg);
            let phase = phases
                .iter()
                .position(|(name, _)| *name == e.phase)
                .ok_or_else(|| err("phase", format!("no [[phase]] named {:?}", e.phase)))?;
            let consumer = match (&e.consumer, tokens) {
                (Some(name), Some(t)) => {
                    let ci = t
                        .consumers
                        .iter()
                        .position(|c| &c.name == name)
                        .ok_or_else(|| err("consumer", format!("no [auth] consumer {name:?}")))?;
                    Some((ci, name.clone()))
                }
                (Some(_), None) => {
                    return Err(err(
                        "consumer",
                        "no [[request]] carries a token, so no consumer's traffic shows the event"
                            .into(),
                    ));
                }
                (None, _) => None,
            };
            let next = match (e.action, &consumer, tokens) {
                (Action::Rotate | Action::JwksRotate, Some((ci, _)), Some(t)) => {
                    let c = &t.consumers[*ci];
                    if e.action == Action::JwksRotate && c.alg.is_hmac() {
                        return Err(err(
                            "consumer",
                            format!(
                                "{} signs with {}: a JWKS holds public keys only",
                                c.name, c.alg
                            ),
                        ));
                    }
                    let old = if e.action == Action::JwksRotate {
                        c.kid_or_key().to_owned()
                    } else {
                        c.key.clone()
                    };
                    let key = e.new_key.clone().unwrap_or_else(|| format!("{old}-next"));
                    if key == old {
                        return Err(err("new_key", format!("{key:?} is the key in use")));
                    }
                    let mut next = t
                        .with_new_key(*ci, &key)
                        .map_err(|x| err("consumer", x.to_string()))?;
                    if e.action == Action::JwksRotate {
                        next.kid = Some(key);
                        if !t.key_in_kid() {
                            next.key = c.key.clone();
                        }
                    }
                    Some(next)
                }
                _ => None,
            };
            events.push(Planned {
                index: i,
                spec: e.clone(),
                phase,
                offset: phases[phase].1 + e.at.0,
                consumer,
                next,
                jwks: e.jwks.as_ref().map(|f| s.dir().join(f)),
            });
        }
        events.sort_by_key(|e| e.offset);
        Ok(Events { events })
    }

    /// The events that apply to `target`, as indices in time order
    /// (`checks`: whether the target checks tokens, i.e. is no baseline and
    /// has no `auth = false`).
    pub fn for_target(&self, target: &str, checks: bool) -> Vec<usize> {
        (0..self.events.len())
            .filter(|&i| match &self.events[i].spec.target {
                Some(t) => t == target,
                None => checks,
            })
            .collect()
    }
}
