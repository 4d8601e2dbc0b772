//! The event thread of one (round, target) run: it does each `[[event]]`
//! at its time through the Admin API (or the
//! JWKS file), notes when it was issued and took effect in the run's
//! [`Watch`], and afterwards undoes what is left changed, so that every
//! round starts equal.

#![allow(
    clippy::disallowed_methods,
    reason = "an event's moments (issued, effective) and its exchanges' durations are what it measures"
)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use reports::events::EventCall;
use serde_json::Value;

use super::plan::Planned;
use super::watch::{Occurrence, Watch};
use crate::admin_api::{AdminError, HttpClient, credential, seg, send};
use crate::scenario::Action;
use crate::token::{Consumer, Tokens};

/// What a (round, target) run's event thread needs.
#[derive(Debug)]
pub struct SlotEvents {
    /// The events that apply to this target, in time order.
    pub events: Vec<Planned>,
    pub tokens: Option<Arc<Tokens>>,
    pub watch: Arc<Watch>,
    /// The target's Admin API (`target.admin`, or builtin:gateway's).
    pub admin: Option<String>,
    pub round: u32,
    pub target: String,
    pub phase_names: Vec<String>,
    /// Per phase, its end from the run's start (ns).
    pub phase_ends: Vec<u64>,
    pub stop: Arc<AtomicBool>,
}

/// The running event thread of one (round, target) run.
#[derive(Debug)]
pub struct Running {
    done: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<(Vec<Occurrence>, Vec<String>)>,
}

impl Running {
    /// Tells the thread the traffic is over, waits for its undo, and returns
    /// what every event did and anything that could not be undone.
    pub fn finish(self) -> (Vec<Occurrence>, Vec<String>) {
        let _ = self.done.send(());
        self.thread
            .join()
            .unwrap_or_else(|_| (Vec::new(), vec!["the event thread panicked".into()]))
    }
}

/// Starts the event thread of one (round, target) run.
pub fn start(ctx: SlotEvents) -> std::io::Result<Running> {
    let (done, done_rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("loadgen-events".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    return (
                        Vec::new(),
                        vec![format!("cannot start the event runtime: {e}")],
                    );
                }
            };
            rt.block_on(run(ctx, done_rx))
        })?;
    Ok(Running { done, thread })
}

/// Why an event could not be carried out (reported as its error, and as a
/// target fault when it left the target changed).
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// The Admin API answered, with a status the event does not accept.
    #[error("{call}: HTTP {status} {reply}")]
    Status {
        call: String,
        status: u16,
        reply: Value,
    },
    #[error("no Admin API for this target")]
    NoAdmin,
    #[error("no consumer")]
    NoConsumer,
    #[error("no [auth]")]
    NoAuth,
    #[error("no new key")]
    NoNewKey,
    #[error("no new key or JWKS file")]
    NoNewKeyOrJwks,
    #[error("the new key has no public JWK")]
    NoPublicJwk,
    #[error("{}: cannot read: {source}", file.display())]
    JwksRead {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not JSON: {source}", file.display())]
    JwksJson {
        file: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: no \"keys\" array", .0.display())]
    JwksNoKeys(PathBuf),
    #[error("{}: cannot write: {source}", file.display())]
    JwksWrite {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Left changed by this run's events, or possibly changed (an Admin API
/// that answered 5xx or not at all may have applied the call), to undo
/// afterwards.
#[derive(Default)]
struct Changed {
    /// Consumers whose credential is, or may be, deleted (revoked, not
    /// restored).
    revoked: Vec<usize>,
    /// Rotations begun: the consumer, the new credential (added, or maybe),
    /// and whether the old one is, or may be, removed.
    rotated: Vec<(usize, Consumer, bool)>,
    /// JWKS files rewritten, with their original text.
    jwks: Vec<(usize, PathBuf, String)>,
}

struct Ctx {
    client: HttpClient,
    base: Instant,
}

impl Ctx {
    /// One Admin API exchange, timed and noted.
    async fn call(
        &self,
        admin: &str,
        (method, path): (&str, String),
        body: Option<&Value>,
        calls: &mut Vec<EventCall>,
    ) -> Result<(u16, Value), EventError> {
        let began = Instant::now();
        let r = send(&self.client, admin, method, &path, body).await;
        let took = began.elapsed();
        let status = r.as_ref().map_or(0, |(s, _)| *s);
        calls.push(EventCall {
            what: format!("{method} {path}"),
            status,
            at_s: began.saturating_duration_since(self.base).as_secs_f64(),
            took_ns: took.as_nanos() as u64,
        });
        Ok(r?)
    }

    /// One exchange that must answer `ok`; else the error names it and its body.
    async fn must(
        &self,
        admin: &str,
        (method, path): (&str, String),
        body: Option<&Value>,
        ok: impl Fn(u16) -> bool,
        calls: &mut Vec<EventCall>,
    ) -> Result<(), EventError> {
        let (status, reply) = self
            .call(admin, (method, path.clone()), body, calls)
            .await?;
        if ok(status) {
            Ok(())
        } else {
            Err(EventError::Status {
                call: format!("{method} {admin}{path}"),
                status,
                reply,
            })
        }
    }
}

impl Ctx {
    /// `POST /consumers/{c}/jwt` with the consumer's credential: must be 2xx.
    async fn post_credential(
        &self,
        admin: &str,
        c: &Consumer,
        calls: &mut Vec<EventCall>,
    ) -> Result<(), EventError> {
        self.put_back(admin, c, success, calls).await
    }

    /// `POST /consumers/{c}/jwt` with the consumer's credential, answered
    /// as `ok` says.
    async fn put_back(
        &self,
        admin: &str,
        c: &Consumer,
        ok: impl Fn(u16) -> bool,
        calls: &mut Vec<EventCall>,
    ) -> Result<(), EventError> {
        let path = format!("/consumers/{}/jwt", seg(&c.name));
        self.must(admin, ("POST", path), Some(&credential(c)), ok, calls)
            .await
    }

    /// `DELETE /consumers/{c}/jwt/{key}`, answered as `ok` says.
    async fn delete_credential(
        &self,
        admin: &str,
        c: &Consumer,
        ok: impl Fn(u16) -> bool,
        calls: &mut Vec<EventCall>,
    ) -> Result<(), EventError> {
        let path = format!("/consumers/{}/jwt/{}", seg(&c.name), seg(&c.key));
        self.must(admin, ("DELETE", path), None, ok, calls).await
    }
}

fn success(s: u16) -> bool {
    (200..300).contains(&s)
}

/// Whether a failed call may still have been applied: it got no answer
/// (a timeout, a connection closed after the request went out) or a 5xx.
/// Such a change is undone as if it had been made.
fn maybe_applied(e: &EventError) -> bool {
    match e {
        EventError::Admin(AdminError::Request { .. }) => true,
        EventError::Status { status, .. } => *status >= 500,
        _ => false,
    }
}

/// `r`, after noting with `note` the change it made or may have made.
fn noting<T>(r: Result<T, EventError>, note: impl FnOnce()) -> Result<T, EventError> {
    if r.as_ref().err().is_none_or(maybe_applied) {
        note();
    }
    r
}

async fn run(ctx: SlotEvents, done: mpsc::Receiver<()>) -> (Vec<Occurrence>, Vec<String>) {
    let c = Ctx {
        client: Client::builder(TokioExecutor::new()).build_http(),
        base: ctx.watch.base,
    };
    let events: Vec<&Planned> = ctx.events.iter().collect();
    let admins: Vec<String> = events
        .iter()
        .filter(|e| e.spec.action.needs_admin())
        .filter_map(|e| e.spec.admin.clone().or_else(|| ctx.admin.clone()))
        .collect();
    // Open the Admin API connections before the traffic (the answer does
    // not matter), so that an event's exchange is not a connect.
    for a in &admins {
        let _ = send(&c.client, a, "GET", "/", None).await;
    }
    let mut changed = Changed::default();
    let mut out = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let when = ctx.watch.base + e.offset;
        if !sleep_until(when, &ctx.stop).await {
            break;
        }
        let mut calls = Vec::new();
        let admin = e.spec.admin.clone().or_else(|| ctx.admin.clone());
        let error = act(&c, &ctx, (i, e), admin.as_deref(), &mut calls, &mut changed)
            .await
            .err()
            .map(|e| format!("{e:#}"));
        out.push(Occurrence {
            event: e.index,
            round: ctx.round,
            target: ctx.target.clone(),
            phase: ctx.phase_names[e.phase].clone(),
            action: e.spec.action,
            consumer: e.consumer.clone(),
            calls,
            error,
            phase_end: ctx.phase_ends[e.phase],
        });
    }
    // The traffic is over (or was stopped): undo what is left changed.
    let _ = tokio::task::spawn_blocking(move || done.recv()).await;
    let undo = undo(&c, &ctx, changed).await;
    (out, undo)
}

/// Sleeps until `when`, looking at `stop` every 50 ms; false if stopped.
async fn sleep_until(when: Instant, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= when {
            return true;
        }
        tokio::time::sleep((when - now).min(Duration::from_millis(50))).await;
    }
}

/// Carries out one event.
async fn act(
    c: &Ctx,
    ctx: &SlotEvents,
    (i, e): (usize, &Planned),
    admin: Option<&str>,
    calls: &mut Vec<EventCall>,
    changed: &mut Changed,
) -> Result<(), EventError> {
    let watch = &ctx.watch;
    let admin_of = || admin.ok_or(EventError::NoAdmin);
    let consumer = e.consumer.as_ref().map(|(ci, _)| *ci);
    let current = |ci: usize| ctx.tokens.as_ref().map(|t| t.current(ci));
    watch.set_issued(i, Instant::now());
    match e.spec.action {
        Action::Revoke | Action::Restore => {
            let ci = consumer.ok_or(EventError::NoConsumer)?;
            let cur = current(ci).ok_or(EventError::NoAuth)?;
            if e.spec.action == Action::Revoke {
                let r = c.delete_credential(admin_of()?, &cur, success, calls).await;
                noting(r, || changed.revoked.push(ci))?;
            } else {
                // A restore that failed stays revoked, to be restored by
                // the undo (which takes 409, already there, as restored).
                c.post_credential(admin_of()?, &cur, calls).await?;
                changed.revoked.retain(|x| *x != ci);
            }
            watch.set_effective(i, Instant::now());
        }
        Action::Rotate => {
            let ci = consumer.ok_or(EventError::NoConsumer)?;
            rotate(c, ctx, (i, e), (ci, admin_of()?), calls, changed).await?;
        }
        Action::JwksRotate => {
            let ci = consumer.ok_or(EventError::NoConsumer)?;
            jwks_rotate(c, ctx, (i, e), ci, calls, changed).await?;
        }
        Action::Admin => {
            let method = e.spec.method.as_deref().unwrap_or("POST");
            let path = e.spec.path.clone().unwrap_or_default();
            let body: Option<Value> = e
                .spec
                .body
                .as_deref()
                .and_then(|b| serde_json::from_str(b).ok());
            let want = e.spec.expect;
            let ok = move |s: u16| want.map_or(success(s), |w| w == s);
            c.must(admin_of()?, (method, path), body.as_ref(), ok, calls)
                .await?;
            watch.set_effective(i, Instant::now());
        }
    }
    Ok(())
}

/// A key rotation through the Admin API: the new credential added, tokens
/// switched to it, and after the overlap the old one deleted.
async fn rotate(
    c: &Ctx,
    ctx: &SlotEvents,
    (i, e): (usize, &Planned),
    (ci, admin): (usize, &str),
    calls: &mut Vec<EventCall>,
    changed: &mut Changed,
) -> Result<(), EventError> {
    let watch = &ctx.watch;
    let (Some(next), Some(tokens)) = (&e.next, &ctx.tokens) else {
        return Err(EventError::NoNewKey);
    };
    let old = tokens.current(ci);
    let r = c.post_credential(admin, next, calls).await;
    noting(r, || changed.rotated.push((ci, next.clone(), false)))?;
    tokens.switch(ci, Some(next.clone()));
    watch.set_effective(i, Instant::now());
    if !sleep_until(Instant::now() + e.spec.overlap(), &ctx.stop).await {
        return Ok(());
    }
    let r = c.delete_credential(admin, &old, success, calls).await;
    noting(r, || {
        if let Some(r) = changed.rotated.iter_mut().find(|r| r.0 == ci) {
            r.2 = true;
        }
    })
}

/// A JWKS rotation: the new key added to the file, tokens switched to it,
/// and after the overlap the old key removed.
async fn jwks_rotate(
    c: &Ctx,
    ctx: &SlotEvents,
    (i, e): (usize, &Planned),
    ci: usize,
    calls: &mut Vec<EventCall>,
    changed: &mut Changed,
) -> Result<(), EventError> {
    let watch = &ctx.watch;
    let (Some(next), Some(tokens), Some(file)) = (&e.next, &ctx.tokens, &e.jwks) else {
        return Err(EventError::NoNewKeyOrJwks);
    };
    let old = tokens.current(ci);
    let original = std::fs::read_to_string(file).map_err(|source| EventError::JwksRead {
        file: file.clone(),
        source,
    })?;
    let mut doc: Value =
        serde_json::from_str(&original).map_err(|source| EventError::JwksJson {
            file: file.clone(),
            source,
        })?;
    let keys = doc
        .get_mut("keys")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| EventError::JwksNoKeys(file.clone()))?;
    let jwk = next
        .signing
        .jwk(next.kid.as_deref())
        .ok_or(EventError::NoPublicJwk)?;
    keys.push(jwk);
    write_jwks(c, file, &doc, calls)?;
    changed.jwks.push((ci, file.clone(), original));
    tokens.switch(ci, Some(next.clone()));
    watch.set_effective(i, Instant::now());
    if !sleep_until(Instant::now() + e.spec.overlap(), &ctx.stop).await {
        return Ok(());
    }
    let old_kid = old.kid_or_key().to_owned();
    if let Some(keys) = doc.get_mut("keys").and_then(Value::as_array_mut) {
        keys.retain(|k| k.get("kid").and_then(Value::as_str) != Some(old_kid.as_str()));
    }
    write_jwks(c, file, &doc, calls)?;
    Ok(())
}

/// Writes a JWKS file atomically, noted as an exchange.
fn write_jwks(
    c: &Ctx,
    file: &std::path::Path,
    doc: &Value,
    calls: &mut Vec<EventCall>,
) -> Result<(), EventError> {
    let began = Instant::now();
    let text = format!("{doc:#}\n");
    let r = reports::write_atomic(file, text.as_bytes());
    calls.push(EventCall {
        what: format!(
            "write {} ({} keys)",
            file.display(),
            doc["keys"].as_array().map_or(0, Vec::len)
        ),
        status: 0,
        at_s: began.saturating_duration_since(c.base).as_secs_f64(),
        took_ns: began.elapsed().as_nanos() as u64,
    });
    r.map_err(|source| EventError::JwksWrite {
        file: file.to_owned(),
        source,
    })
}

/// Puts back what the events left changed: revoked credentials restored,
/// rotations reverted (the old credential back, the new one removed, the
/// tokens on the old key), JWKS files rewritten as they were.
async fn undo(c: &Ctx, ctx: &SlotEvents, changed: Changed) -> Vec<String> {
    let mut errors = Vec::new();
    let mut calls = Vec::new();
    let Some(tokens) = &ctx.tokens else {
        return errors;
    };
    let admin_for = |ci: usize| {
        ctx.events
            .iter()
            .find(|e| e.consumer.as_ref().is_some_and(|(c, _)| *c == ci))
            .and_then(|e| e.spec.admin.clone())
            .or_else(|| ctx.admin.clone())
    };
    let mut fail = |what: String| {
        errors.push(format!(
            "round {} target {}: could not undo an event ({what}); the next round does not start equal",
            ctx.round + 1,
            ctx.target
        ));
    };
    // A change that may not have happened is undone all the same: a
    // credential put back that is still there answers 409, one removed
    // that is already gone 404; both mean "as before".
    let gone = |s| success(s) || s == 404;
    let back = |s| success(s) || s == 409;
    for (ci, next, old_removed) in changed.rotated {
        let Some(admin) = admin_for(ci) else { continue };
        tokens.switch(ci, None);
        let old = tokens.current(ci);
        if old_removed && let Err(e) = c.put_back(&admin, &old, back, &mut calls).await {
            fail(format!("{e:#}"));
        }
        if let Err(e) = c.delete_credential(&admin, &next, gone, &mut calls).await {
            fail(format!("{e:#}"));
        }
    }
    for ci in changed.revoked {
        let Some(admin) = admin_for(ci) else { continue };
        if let Err(e) = c
            .put_back(&admin, &tokens.current(ci), back, &mut calls)
            .await
        {
            fail(format!("{e:#}"));
        }
    }
    for (ci, file, original) in changed.jwks {
        tokens.switch(ci, None);
        if let Err(e) = reports::write_atomic(&file, original.as_bytes()) {
            fail(format!("{}: {e}", file.display()));
        }
    }
    errors
}
