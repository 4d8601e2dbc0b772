//! The validated, ready-to-run form of a scenario: request classes with
//! parsed templates, headers and bodies; phases with their schedules.

use crate::measure::totals::{Layout, PhaseLayout, RequestLayout};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request};
use http_body_util::Full;
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};

use super::endpoint::Endpoint;
use crate::scenario::{
    Field, Phase, RequestSpec, Scenario, ScenarioError, TokenClass, body_len, header_map,
    within_max_body,
};
use crate::schedule::Schedule;
use crate::seed::mix;
use crate::template::Template;
use crate::token::{Carried, Put, SystemClock, Tokens};

/// One request class.
#[derive(Debug)]
pub struct ReqPlan {
    pub name: String,
    pub method: Method,
    pub path: Template,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub expect: Option<u16>,
    /// `[auth]`: the token class (and its slot in `Tokens::classes`).
    pub token: Option<(usize, TokenClass)>,
    /// `[auth]`: a fixed consumer index.
    pub consumer: Option<usize>,
    /// `[auth]`: the per-request signer's queue this request draws from,
    /// an index into [`Plan::token_sources`].
    pub source: Option<usize>,
}

/// Open or closed loop.
#[derive(Debug)]
pub enum PhaseKind {
    Open { schedule: Schedule, poisson: bool },
    Closed { concurrency: usize, think: Duration },
}

/// One phase.
#[derive(Debug)]
pub struct PhasePlan {
    pub name: String,
    /// From the start of the run of one target.
    pub offset: Duration,
    pub duration: Duration,
    pub kind: PhaseKind,
    pub record: bool,
}

/// Everything the workers need, shared read-only.
#[derive(Debug)]
pub struct Plan {
    pub seed: u64,
    pub requests: Vec<ReqPlan>,
    /// The per-request signer's queues: each (class slot, pinned consumer)
    /// the requests draw from, once, in request order.
    pub token_sources: Vec<crate::token::Source>,
    /// Cumulative weights of `requests`.
    cumulative: Vec<u64>,
    pub phases: Vec<PhasePlan>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub max_in_flight: usize,
    pub grace: Duration,
    /// Spin the last stretch before each send (see `engine::timer`).
    pub spin: bool,
    /// `[auth]`: consumers, token sources and classes.
    pub tokens: Option<std::sync::Arc<Tokens>>,
    /// `[[event]]`s, resolved, in time order.
    pub events: super::events::Events,
}

impl ReqPlan {
    /// Request class `i` of `s`, its body read or generated (checked only,
    /// not built, for [`Bodies::Check`]) and its token resolved.
    fn new(
        s: &Scenario,
        i: usize,
        r: &RequestSpec,
        tokens: Option<&Tokens>,
        bodies: Bodies,
    ) -> Result<ReqPlan, ScenarioError> {
        let invalid = |key: &str, msg: String| s.error_at(Field::new("request", Some(i), key), msg);
        let headers = header_map(&r.headers).map_err(|e| invalid("headers", e.0))?;
        let body = if let Some(b) = &r.body {
            Bytes::from(b.clone())
        } else if let Some(f) = &r.body_file {
            let path = s.dir().join(f);
            let bad = |e: String| invalid("body_file", format!("{}: {e}", path.display()));
            let meta = std::fs::metadata(&path).map_err(|e| bad(e.to_string()))?;
            if !meta.is_file() {
                return Err(bad("not a regular file".into()));
            }
            within_max_body(meta.len()).map_err(|e| bad(e.0))?;
            match bodies {
                Bodies::Build => Bytes::from(std::fs::read(&path).map_err(|e| bad(e.to_string()))?),
                Bodies::Check => Bytes::new(),
            }
        } else if let Some(size) = &r.body_size {
            let n = body_len(size).map_err(|e| invalid("body_size", e.0))?;
            match bodies {
                Bodies::Build => {
                    // n <= MAX_BODY, which fits a usize on every target.
                    let mut v = vec![0u8; n as usize];
                    SmallRng::seed_from_u64(mix(&[s.seed, i as u64])).fill_bytes(&mut v);
                    Bytes::from(v)
                }
                Bodies::Check => Bytes::new(),
            }
        } else {
            Bytes::new()
        };
        Ok(ReqPlan {
            name: r.name.clone(),
            method: r
                .method
                .as_deref()
                .map_or(Ok(Method::GET), |m| Method::from_bytes(m.as_bytes()))
                .map_err(|e| invalid("method", e.to_string()))?,
            path: Template::parse(&r.path).map_err(|e| invalid("path", e.to_string()))?,
            headers,
            body,
            expect: r
                .expect
                .or_else(|| Some(r.token?.expected(tokens?.profile))),
            token: r
                .token
                .and_then(|class| Some((tokens?.slot(class)?, class))),
            consumer: r
                .consumer
                .as_ref()
                .and_then(|c| tokens?.consumers.iter().position(|x| &x.name == c)),
            source: None,
        })
    }
}

impl PhasePlan {
    /// Phase `p`, starting `offset` into the run of one target.
    fn new(p: &Phase, offset: Duration) -> PhasePlan {
        let kind = match (&p.rate, p.concurrency) {
            (Some(rate), _) => PhaseKind::Open {
                schedule: Schedule::new(rate, p.duration.0),
                poisson: p.poisson,
            },
            (None, c) => PhaseKind::Closed {
                concurrency: c.unwrap_or(1),
                think: p.think_time.map_or(Duration::ZERO, |d| d.0),
            },
        };
        PhasePlan {
            name: p.name.clone(),
            offset,
            duration: p.duration.0,
            kind,
            record: p.recorded(),
        }
    }
}

/// The per-request signer's queues the requests draw from: each (class
/// slot, pinned consumer), once; each request told its queue's index.
fn sources(requests: &mut [ReqPlan]) -> Vec<crate::token::Source> {
    let mut v = Vec::new();
    for r in requests {
        let Some((slot, _)) = r.token else { continue };
        let source = (slot, r.consumer);
        r.source = Some(v.iter().position(|s| *s == source).unwrap_or_else(|| {
            v.push(source);
            v.len() - 1
        }));
    }
    v
}

/// Whether a plan's bodies are built or only checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bodies {
    Build,
    Check,
}

impl Plan {
    /// Phases × requests as the result files record them.
    pub fn layout(&self) -> Layout {
        Layout {
            phases: self
                .phases
                .iter()
                .map(|p| PhaseLayout {
                    name: p.name.clone(),
                    record: p.record,
                    duration_s: p.duration.as_secs_f64(),
                    expected: match &p.kind {
                        PhaseKind::Open { schedule, .. } => Some(schedule.expected_count()),
                        PhaseKind::Closed { .. } => None,
                    },
                })
                .collect(),
            requests: self
                .requests
                .iter()
                .map(|r| RequestLayout {
                    name: r.name.clone(),
                    token: r.token.map(|(_, c)| c.name().to_owned()),
                })
                .collect(),
        }
    }

    /// Resolves what the scenario refers to (body files, `[auth]` keys,
    /// relative to the scenario's directory); errors are located in its file.
    pub fn new(s: &Scenario) -> Result<Plan, ScenarioError> {
        Plan::with_bodies(s, Bodies::Build)
    }

    /// As [`Plan::new`], for `loadgen validate`: every body is checked (its
    /// size, its file's kind and length) but none is read or generated, so
    /// validating a scenario allocates no body.
    pub fn check(s: &Scenario) -> Result<(), ScenarioError> {
        Plan::with_bodies(s, Bodies::Check).map(drop)
    }

    fn with_bodies(s: &Scenario, bodies: Bodies) -> Result<Plan, ScenarioError> {
        let tokens = if s.token_classes().is_empty() {
            None
        } else {
            Some(std::sync::Arc::new(Tokens::for_scenario(
                s,
                std::sync::Arc::new(SystemClock),
            )?))
        };
        let mut requests: Vec<ReqPlan> = s
            .requests
            .iter()
            .enumerate()
            .map(|(i, r)| ReqPlan::new(s, i, r, tokens.as_deref(), bodies))
            .collect::<Result<Vec<_>, _>>()?;
        let token_sources = sources(&mut requests);
        let cumulative = s
            .requests
            .iter()
            .scan(0u64, |total, r| {
                *total += u64::from(r.weight.unwrap_or(1));
                Some(*total)
            })
            .collect();
        let mut offset = Duration::ZERO;
        let phases: Vec<PhasePlan> = s
            .phases
            .iter()
            .map(|p| {
                let plan = PhasePlan::new(p, offset);
                offset += p.duration.0;
                plan
            })
            .collect();
        let offsets: Vec<(String, Duration)> =
            phases.iter().map(|p| (p.name.clone(), p.offset)).collect();
        let events = super::events::Events::new(s, tokens.as_deref(), &offsets)?;
        Ok(Plan {
            seed: s.seed,
            requests,
            token_sources,
            cumulative,
            phases,
            timeout: s.timeout.map_or(Duration::from_secs(10), |d| d.0),
            connect_timeout: s.connect_timeout.map_or(Duration::from_secs(3), |d| d.0),
            max_in_flight: s.max_in_flight.unwrap_or(10_000),
            grace: s.grace.map_or(Duration::from_secs(5), |d| d.0),
            spin: s.spin.unwrap_or(true),
            tokens,
            events,
        })
    }

    /// Request classes × phases.
    pub fn classes(&self) -> usize {
        self.requests.len() * self.phases.len()
    }

    /// The run length of one target (all phases).
    pub fn duration(&self) -> Duration {
        self.phases.iter().map(|p| p.duration).sum()
    }

    /// The request class of sequence number `seq`: the same for every target.
    pub fn pick(&self, round: u32, phase: usize, seq: u64) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(1);
        if self.requests.len() == 1 {
            return 0;
        }
        let x = mix(&[self.seed, u64::from(round), phase as u64, seq, 0xC1A55]) % total;
        self.cumulative.partition_point(|c| *c <= x)
    }

    /// The generator of request `seq`'s template values: the same for every target.
    pub(super) fn seq_rng(&self, round: u32, phase: usize, seq: u64) -> SmallRng {
        SmallRng::seed_from_u64(mix(&[self.seed, u64::from(round), phase as u64, seq]))
    }

    /// The request of sequence number `seq` (of `round` and `phase`), with
    /// its templates rendered and its token placed.
    pub fn build(
        &self,
        (round, phase, seq): (u32, usize, u64),
        r: &ReqPlan,
        endpoint: &Endpoint,
        carried: Option<&Carried>,
    ) -> Request<Full<Bytes>> {
        let mut path = String::with_capacity(64);
        r.path
            .render(seq, &mut self.seq_rng(round, phase, seq), &mut path);
        let mut headers = std::borrow::Cow::Borrowed(&r.headers);
        if let (Some(c), Some(a)) = (carried, &self.tokens) {
            a.place(c, &mut |at, parts| match at {
                Put::Query => {
                    path.push(if path.contains('?') { '&' } else { '?' });
                    path.extend(parts);
                }
                Put::Header(name) => {
                    if let Ok(v) = HeaderValue::from_str(&parts.concat()) {
                        headers.to_mut().append(name.clone(), v);
                    }
                }
            });
        }
        request(&r.method, endpoint, &path, &headers, &r.body)
    }
}

/// Builds a request for `endpoint`: origin-form with a Host header over
/// HTTP/1.1, absolute-form (for `:authority`) over HTTP/2.
pub fn request(
    method: &Method,
    endpoint: &Endpoint,
    path: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Request<Full<Bytes>> {
    let mut r = Request::new(Full::new(body.clone()));
    *r.method_mut() = method.clone();
    let uri = if endpoint.http2 {
        format!("{}://{}{path}", endpoint.scheme, endpoint.authority)
    } else {
        path.to_owned()
    };
    *r.uri_mut() = uri.parse().unwrap_or_else(|_| http::Uri::from_static("/"));
    let h = r.headers_mut();
    for (k, v) in headers.iter().chain(&endpoint.headers) {
        h.append(k.clone(), v.clone());
    }
    if !endpoint.http2
        && !h.contains_key(http::header::HOST)
        && let Ok(host) = HeaderValue::from_str(&endpoint.authority)
    {
        h.insert(http::header::HOST, host);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_follow_weights_and_are_seeded() {
        let text = r#"
name = "t"
seed = 3
[[target]]
name = "d"
url = "builtin:upstream"
[[request]]
name = "a"
weight = 3
path = "/a"
[[request]]
name = "b"
weight = 1
path = "/b"
[[phase]]
name = "p"
duration = "1s"
rate = 10
"#;
        let s = Scenario::parse(text, "t.toml").unwrap();
        let plan = Plan::new(&s).unwrap();
        let picks: Vec<usize> = (0..10_000).map(|i| plan.pick(0, 0, i)).collect();
        let b = picks.iter().filter(|c| **c == 1).count();
        assert!((2300..2700).contains(&b), "{b}");
        let again: Vec<usize> = (0..100).map(|i| plan.pick(0, 0, i)).collect();
        assert_eq!(&picks[..100], &again[..]);
        let other_round: Vec<usize> = (0..100).map(|i| plan.pick(1, 0, i)).collect();
        assert_ne!(&picks[..100], &other_round[..]);
    }
}
