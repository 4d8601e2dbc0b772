//! The validated, ready-to-run form of a scenario: request classes with
//! parsed templates, headers and bodies; phases with their schedules.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request};
use http_body_util::Full;
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};

use super::conn::Endpoint;
use super::worker::mix;
use crate::scenario::{Scenario, ScenarioError};
use crate::schedule::Schedule;
use crate::template::Template;

/// One request class.
#[derive(Debug)]
pub struct ReqPlan {
    pub name: String,
    pub method: Method,
    pub path: Template,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub expect: Option<u16>,
    /// `[auth]`: the token class (and its slot in `Auth::classes`).
    pub token: Option<(usize, crate::auth::TokenClass)>,
    /// `[auth]`: a fixed consumer index.
    pub consumer: Option<usize>,
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
    pub auth: Option<std::sync::Arc<crate::auth::Auth>>,
}

impl Plan {
    /// `scenario_dir` resolves `body_file` paths.
    pub fn new(
        s: &Scenario,
        scenario_dir: &std::path::Path,
        file: &str,
    ) -> Result<Plan, ScenarioError> {
        let invalid = |i: usize, field: &str, msg: String| ScenarioError::Invalid {
            file: file.to_owned(),
            line: 1,
            col: 1,
            field: format!("request[{i}].{field}"),
            msg,
        };
        let classes: Vec<crate::auth::TokenClass> = s
            .requests
            .iter()
            .filter_map(|r| r.token.as_deref())
            .filter_map(|t| crate::auth::TokenClass::parse(t).ok())
            .collect();
        let auth = match &s.auth {
            Some(spec) if !classes.is_empty() => {
                let a = crate::auth::Auth::new(
                    spec,
                    &classes,
                    scenario_dir,
                    std::sync::Arc::new(crate::auth::SystemClock),
                )
                .map_err(|msg| ScenarioError::Invalid {
                    file: file.to_owned(),
                    line: 1,
                    col: 1,
                    field: msg.split(':').next().unwrap_or("auth").to_owned(),
                    msg: msg
                        .split_once(": ")
                        .map_or(msg.clone(), |(_, m)| m.to_owned()),
                })?;
                Some(std::sync::Arc::new(a))
            }
            _ => None,
        };
        let mut requests = Vec::new();
        let mut cumulative = Vec::new();
        let mut total = 0u64;
        for (i, r) in s.requests.iter().enumerate() {
            let mut headers = HeaderMap::new();
            for (k, v) in &r.headers {
                let name = HeaderName::from_bytes(k.as_bytes())
                    .map_err(|e| invalid(i, "headers", e.to_string()))?;
                let value =
                    HeaderValue::from_str(v).map_err(|e| invalid(i, "headers", e.to_string()))?;
                headers.append(name, value);
            }
            let body = if let Some(b) = &r.body {
                Bytes::from(b.clone())
            } else if let Some(f) = &r.body_file {
                let path = scenario_dir.join(f);
                let bytes = std::fs::read(&path)
                    .map_err(|e| invalid(i, "body_file", format!("{}: {e}", path.display())))?;
                Bytes::from(bytes)
            } else if let Some(size) = &r.body_size {
                let n = size
                    .parse::<mock_upstream::Size>()
                    .map_err(|e| invalid(i, "body_size", e.to_string()))?
                    .0;
                let mut v = vec![0u8; usize::try_from(n).unwrap_or(0)];
                SmallRng::seed_from_u64(mix(&[s.seed, i as u64])).fill_bytes(&mut v);
                Bytes::from(v)
            } else {
                Bytes::new()
            };
            total += u64::from(r.weight.unwrap_or(1));
            cumulative.push(total);
            requests.push(ReqPlan {
                name: r.name.clone(),
                method: r
                    .method
                    .as_deref()
                    .map_or(Ok(Method::GET), |m| Method::from_bytes(m.as_bytes()))
                    .map_err(|e| invalid(i, "method", e.to_string()))?,
                path: Template::parse(&r.path).map_err(|e| invalid(i, "path", e))?,
                headers,
                body,
                expect: r.expect.or_else(|| {
                    let (a, t) = (auth.as_ref()?, r.token.as_deref()?);
                    Some(crate::auth::TokenClass::parse(t).ok()?.expected(a.profile))
                }),
                token: r.token.as_deref().and_then(|t| {
                    let class = crate::auth::TokenClass::parse(t).ok()?;
                    Some((auth.as_ref()?.slot(class)?, class))
                }),
                consumer: r
                    .consumer
                    .as_ref()
                    .and_then(|c| auth.as_ref()?.consumers.iter().position(|x| &x.name == c)),
            });
        }
        let mut offset = Duration::ZERO;
        let phases = s
            .phases
            .iter()
            .map(|p| {
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
                let plan = PhasePlan {
                    name: p.name.clone(),
                    offset,
                    duration: p.duration.0,
                    kind,
                    record: p.recorded(),
                };
                offset += p.duration.0;
                plan
            })
            .collect();
        Ok(Plan {
            seed: s.seed,
            requests,
            cumulative,
            phases,
            timeout: s.timeout.map_or(Duration::from_secs(10), |d| d.0),
            connect_timeout: s.connect_timeout.map_or(Duration::from_secs(3), |d| d.0),
            max_in_flight: s.max_in_flight.unwrap_or(10_000),
            grace: s.grace.map_or(Duration::from_secs(5), |d| d.0),
            spin: s.spin.unwrap_or(true),
            auth,
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
    fn seq_rng(&self, round: u32, phase: usize, seq: u64) -> SmallRng {
        SmallRng::seed_from_u64(mix(&[self.seed, u64::from(round), phase as u64, seq]))
    }

    /// The request of sequence number `seq` (of `round` and `phase`), with
    /// its templates rendered and its token placed.
    pub fn build(
        &self,
        (round, phase, seq): (u32, usize, u64),
        r: &ReqPlan,
        endpoint: &Endpoint,
        carried: Option<&crate::auth::Carried>,
    ) -> Request<Full<Bytes>> {
        let mut path = String::with_capacity(64);
        r.path
            .render(seq, &mut self.seq_rng(round, phase, seq), &mut path);
        let mut headers = std::borrow::Cow::Borrowed(&r.headers);
        if let (Some(c), Some(a)) = (carried, &self.auth) {
            a.place(c, &mut |at, parts| match at {
                crate::auth::Put::Query => {
                    path.push(if path.contains('?') { '&' } else { '?' });
                    path.extend(parts);
                }
                crate::auth::Put::Header(name) => {
                    if let Ok(v) = HeaderValue::from_str(&parts.concat()) {
                        headers.to_mut().append(name.clone(), v);
                    }
                }
            });
        }
        request(&r.method, endpoint, &path, &headers, &r.body)
    }
}

impl Plan {
    /// Writes the HTTP/1.1 request of sequence number `seq` into `out`
    /// (reused: no allocation once it has grown to size).
    pub fn write_h1(
        &self,
        (round, phase, seq): (u32, usize, u64),
        r: &ReqPlan,
        endpoint: &Endpoint,
        carried: Option<&crate::auth::Carried>,
        out: &mut Vec<u8>,
    ) {
        use std::io::Write as _;
        out.clear();
        out.extend_from_slice(r.method.as_str().as_bytes());
        out.push(b' ');
        let path_start = out.len();
        r.path
            .render_bytes(seq, &mut self.seq_rng(round, phase, seq), out);
        // The token: query parameters inside the request target, then header lines.
        let auth = carried.zip(self.auth.as_deref());
        if let Some((c, a)) = auth {
            a.place(c, &mut |at, parts| {
                if let crate::auth::Put::Query = at {
                    let sep = if out[path_start..].contains(&b'?') {
                        b'&'
                    } else {
                        b'?'
                    };
                    out.push(sep);
                    parts
                        .iter()
                        .for_each(|p| out.extend_from_slice(p.as_bytes()));
                }
            });
        }
        out.extend_from_slice(b" HTTP/1.1\r\n");
        if let Some((c, a)) = auth {
            a.place(c, &mut |at, parts| {
                if let crate::auth::Put::Header(name) = at {
                    out.extend_from_slice(name.as_str().as_bytes());
                    out.extend_from_slice(b": ");
                    parts
                        .iter()
                        .for_each(|p| out.extend_from_slice(p.as_bytes()));
                    out.extend_from_slice(b"\r\n");
                }
            });
        }
        if !r.headers.contains_key(http::header::HOST) {
            out.extend_from_slice(b"host: ");
            out.extend_from_slice(endpoint.authority.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        for (k, v) in &r.headers {
            out.extend_from_slice(k.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        let needs_length =
            !r.body.is_empty() || matches!(r.method, Method::POST | Method::PUT | Method::PATCH);
        if needs_length && !r.headers.contains_key(http::header::CONTENT_LENGTH) {
            let _ = write!(out, "content-length: {}\r\n", r.body.len());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&r.body);
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
    h.extend(headers.iter().map(|(k, v)| (k.clone(), v.clone())));
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
        let plan = Plan::new(&s, std::path::Path::new("."), "t.toml").unwrap();
        let picks: Vec<usize> = (0..10_000).map(|i| plan.pick(0, 0, i)).collect();
        let b = picks.iter().filter(|c| **c == 1).count();
        assert!((2300..2700).contains(&b), "{b}");
        let again: Vec<usize> = (0..100).map(|i| plan.pick(0, 0, i)).collect();
        assert_eq!(&picks[..100], &again[..]);
        let other_round: Vec<usize> = (0..100).map(|i| plan.pick(1, 0, i)).collect();
        assert_ne!(&picks[..100], &other_round[..]);
    }
}
