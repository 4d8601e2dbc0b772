//! One generator thread: a current-thread tokio runtime with its own
//! connections, schedule share and histograms. Nothing on the request path is
//! shared with other threads.

#![allow(
    clippy::disallowed_methods,
    reason = "the worker's sample points: when a request was sent and done, an HTTP/2 response head, and the 1 s ticks"
)]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::conn::{Endpoint, Lease, Slot, classify};
use super::events::watch::{MAX_SEEN, Seen, Watch};
use super::h1::write_request;
use super::plan::{PhaseKind, Plan};
use super::timer::Sleeper;
use crate::measure::record::{ClassStats, ErrorClass, Outcome, Sample, Timing, upstream_time};
use crate::seed::mix;
use crate::token::{Carried, Feed, Tokens};

/// What a worker reports to the collector.
#[derive(Debug)]
pub enum Msg {
    /// Everything recorded during one 1-second tick (index = phase × requests + request).
    Interval { tick: u32, stats: Vec<ClassStats> },
    /// The worker's first phase began (wall clock, read on waking for it).
    Started(std::time::SystemTime),
    /// The responses of watched consumers (before `Done`, with events only).
    Seen(Vec<Seen>),
    /// The worker has finished and flushed everything.
    Done,
}

/// A worker's share of one (round, target) run.
#[derive(Debug)]
pub struct WorkerCtx {
    pub id: usize,
    pub workers: usize,
    pub endpoints: Vec<Endpoint>,
    pub http2: bool,
    pub keep_alive: bool,
    /// HTTP/1 connections, or HTTP/2 connections, of this worker.
    pub connections: usize,
    pub streams: usize,
    pub plan: Arc<Plan>,
    pub round: u32,
    /// This process's share of the schedule.
    pub shard: crate::shard::Shard,
    /// When phase 0 starts.
    pub start: Instant,
    pub stop: Arc<AtomicBool>,
    pub tx: mpsc::Sender<Msg>,
    /// `[auth]` per-request source: this worker's signer queues.
    pub feed: Option<Feed>,
    /// Whether the target checks tokens (`auth = false`: token classes expect 2xx).
    pub checks_tokens: bool,
    /// `[[event]]`s of this run: their moments, and which consumers to watch.
    pub watch: Option<Arc<Watch>>,
}

#[derive(Debug, Clone, Copy)]
struct Job {
    seq: u64,
    class: usize,
    intended: Instant,
    /// When the worker woke to send it: `ready − intended` is the timer's
    /// (and the worker's) lateness; what follows, until the request is
    /// written, is the wait for a connection.
    ready: Instant,
}

struct Local {
    idle: Vec<Slot>,
    queue: VecDeque<Job>,
    stats: Vec<ClassStats>,
    /// Open loop: jobs on a slot, per class (what is unfinished if the
    /// grace period runs out; the interval stats may hold none of them).
    running: Vec<u64>,
    /// Responses of the consumers `[[event]]`s act on, for the collector.
    seen: Vec<Seen>,
}

type Shared = Rc<RefCell<Local>>;

/// Runs the worker on the calling thread until its phases end (or stop is set).
pub fn run(ctx: WorkerCtx) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start a worker runtime");
            let _ = ctx.tx.send(Msg::Done);
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, main(ctx));
}

// long: a worker's whole life on its thread (connections, ticker, each phase open or closed loop, the drain), in order
async fn main(ctx: WorkerCtx) {
    let ctx = Rc::new(ctx);
    let plan = ctx.plan.clone();
    let mut slots = Vec::new();
    for c in 0..ctx.connections {
        let ep = Rc::new(ctx.endpoints[(ctx.id + c * ctx.workers) % ctx.endpoints.len()].clone());
        if ctx.http2 {
            slots.extend(Slot::h2_group(ep, ctx.streams));
        } else {
            slots.push(Slot::h1(ep, ctx.keep_alive));
        }
    }
    if ctx.keep_alive {
        let now = Instant::now();
        for s in &mut slots {
            s.warm(now).await;
        }
    }
    let total_slots = slots.len();
    let local: Shared = Rc::new(RefCell::new(Local {
        idle: slots,
        queue: VecDeque::new(),
        stats: vec![ClassStats::default(); plan.classes()],
        running: vec![0; plan.classes()],
        seen: Vec::new(),
    }));
    let ticker = tokio::task::spawn_local(tick_loop(ctx.clone(), local.clone()));
    let mut sleeper = match Sleeper::new(plan.spin) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot create a timerfd");
            let _ = ctx.tx.send(Msg::Done);
            return;
        }
    };
    for (p, phase) in plan.phases.iter().enumerate() {
        if ctx.stop.load(Ordering::Relaxed) {
            break;
        }
        let phase_start = ctx.start + phase.offset;
        sleeper.sleep_until(phase_start).await.ok();
        if p == 0 {
            let _ = ctx.tx.send(Msg::Started(std::time::SystemTime::now()));
        }
        match &phase.kind {
            PhaseKind::Open { schedule, poisson } => {
                let rng = SmallRng::seed_from_u64(mix(&[
                    plan.seed,
                    u64::from(ctx.round),
                    p as u64,
                    0x5EED,
                ]));
                for (seq, offset) in schedule.offsets(*poisson, rng) {
                    // The global arrival `seq` is this shard's, and of its
                    // arrivals, this worker's.
                    let mine = ctx
                        .shard
                        .local(seq)
                        .is_some_and(|local| local % ctx.workers as u64 == ctx.id as u64);
                    if !mine {
                        continue;
                    }
                    if ctx.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let intended = phase_start + offset;
                    sleeper.sleep_until(intended).await.ok();
                    let class = p * plan.requests.len() + plan.pick(ctx.round, p, seq);
                    dispatch(
                        &ctx,
                        &local,
                        Job {
                            seq,
                            class,
                            intended,
                            ready: Instant::now(),
                        },
                    );
                }
            }
            PhaseKind::Closed { concurrency, think } => {
                let concurrency = ctx.shard.share(*concurrency);
                let share =
                    concurrency / ctx.workers + usize::from(ctx.id < concurrency % ctx.workers);
                let end = phase_start + phase.duration;
                let mut loopers = Vec::new();
                for i in 0..share {
                    let Some(slot) = local.borrow_mut().idle.pop() else {
                        break;
                    };
                    let (ctx, local, think) = (ctx.clone(), local.clone(), *think);
                    loopers.push(tokio::task::spawn_local(closed_loop(
                        ctx, local, slot, p, i, end, think,
                    )));
                }
                for l in loopers {
                    let _ = l.await;
                }
            }
        }
    }
    // Let the last phase's requests finish, up to the grace period.
    let end = ctx.start
        + plan
            .phases
            .last()
            .map_or(Duration::ZERO, |p| p.offset + p.duration);
    let deadline = end.max(Instant::now()) + plan.grace;
    loop {
        {
            let l = local.borrow();
            if l.queue.is_empty() && l.idle.len() == total_slots {
                break;
            }
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    ticker.abort();
    let mut l = local.borrow_mut();
    let waiting: Vec<Job> = l.queue.drain(..).collect();
    for job in waiting {
        l.stats[job.class].counts.unfinished += 1;
    }
    // Requests still on the wire when the grace period ran out.
    let running = std::mem::take(&mut l.running);
    for (class, n) in running.into_iter().enumerate() {
        l.stats[class].counts.unfinished += n;
    }
    let tick = tick_of(ctx.start, Instant::now());
    let stats = std::mem::take(&mut l.stats);
    let _ = ctx.tx.send(Msg::Interval { tick, stats });
    if ctx.watch.is_some() {
        let _ = ctx.tx.send(Msg::Seen(std::mem::take(&mut l.seen)));
    }
    let _ = ctx.tx.send(Msg::Done);
}

fn tick_of(start: Instant, now: Instant) -> u32 {
    u32::try_from(now.saturating_duration_since(start).as_secs()).unwrap_or(u32::MAX)
}

/// Flushes the interval stats to the collector at every 1-second boundary.
async fn tick_loop(ctx: Rc<WorkerCtx>, local: Shared) {
    let mut k: u32 = 1;
    loop {
        let at = ctx.start + Duration::from_secs(u64::from(k));
        tokio::time::sleep_until(at.into()).await;
        let stats = {
            let mut l = local.borrow_mut();
            let fresh = l.stats.iter().map(|_| ClassStats::default()).collect();
            std::mem::replace(&mut l.stats, fresh)
        };
        if ctx.tx.send(Msg::Interval { tick: k - 1, stats }).is_err() {
            return;
        }
        k += 1;
    }
}

/// Open loop: hand the job to an idle slot, queue it, or drop it past `max_in_flight`.
fn dispatch(ctx: &Rc<WorkerCtx>, local: &Shared, job: Job) {
    let mut l = local.borrow_mut();
    l.stats[job.class].counts.scheduled += 1;
    if let Some(slot) = l.idle.pop() {
        l.running[job.class] += 1;
        drop(l);
        tokio::task::spawn_local(slot_loop(ctx.clone(), local.clone(), slot, job));
    } else if l.queue.len() < ctx.plan.max_in_flight {
        l.queue.push_back(job);
    } else {
        l.stats[job.class].counts.dropped += 1;
    }
}

/// Runs jobs on one slot until the queue is empty, then returns the slot.
async fn slot_loop(ctx: Rc<WorkerCtx>, local: Shared, mut slot: Slot, mut job: Job) {
    loop {
        let (sample, seen) = execute(&ctx, &mut slot, &job).await;
        let mut l = local.borrow_mut();
        l.stats[job.class].record(&sample);
        l.running[job.class] -= 1;
        keep(&mut l.seen, seen);
        match l.queue.pop_front() {
            Some(next) => {
                l.running[next.class] += 1;
                job = next;
            }
            None => {
                l.idle.push(slot);
                return;
            }
        }
    }
}

async fn closed_loop(
    ctx: Rc<WorkerCtx>,
    local: Shared,
    mut slot: Slot,
    phase: usize,
    looper: usize,
    end: Instant,
    think: Duration,
) {
    let plan = ctx.plan.clone();
    // Each looper numbers its requests apart from the others (and from
    // other shards').
    let (k, n) = (u64::from(ctx.shard.k), u64::from(ctx.shard.n));
    let mut seq = (looper * ctx.workers + ctx.id) as u64 * n + k;
    let stride = ctx.workers as u64 * n * 1_000_003;
    while Instant::now() < end && !ctx.stop.load(Ordering::Relaxed) {
        let class = phase * plan.requests.len() + plan.pick(ctx.round, phase, seq);
        let now = Instant::now();
        let job = Job {
            seq,
            class,
            intended: now,
            ready: now,
        };
        let (sample, seen) = execute(&ctx, &mut slot, &job).await;
        {
            let mut l = local.borrow_mut();
            l.stats[class].counts.scheduled += 1;
            l.stats[class].record(&sample);
            keep(&mut l.seen, seen);
        }
        seq += stride;
        if !think.is_zero() {
            tokio::time::sleep(think).await;
        }
    }
    local.borrow_mut().idle.push(slot);
}

/// Keeps a watched response, up to [`MAX_SEEN`].
fn keep(seen: &mut Vec<Seen>, s: Option<Seen>) {
    if let Some(s) = s
        && seen.len() < MAX_SEEN
    {
        seen.push(s);
    }
}

/// Sends one request and reads the whole response; with events, the
/// response as a watched consumer's too.
async fn execute(ctx: &WorkerCtx, slot: &mut Slot, job: &Job) -> (Sample, Option<Seen>) {
    let marks = Marks::default();
    let result = tokio::time::timeout(ctx.plan.timeout, attempt(ctx, slot, job, &marks)).await;
    let done = Instant::now();
    let (sent, outcome) = match result {
        Ok(r) => r,
        Err(_) => (marks.sent.get(), Outcome::Failed(ErrorClass::Timeout)),
    };
    let seen = match (&ctx.watch, marks.watched.get()) {
        (Some(w), Some(consumer)) => Some(Seen {
            consumer: consumer as u32,
            sent: w.offset(sent.unwrap_or(job.ready)),
            done: w.offset(done),
            status: match outcome {
                Outcome::Response { status, .. } => status,
                Outcome::Failed(_) => 0,
            },
        }),
        _ => None,
    };
    let sample = Sample {
        intended: job.intended,
        schedule_lag: job.ready.saturating_duration_since(job.intended) + marks.token_wait.get(),
        sent,
        done,
        outcome,
        timing: marks.timing.get(),
    };
    (sample, seen)
}

/// What an attempt noted on its way, kept if it times out.
#[derive(Default)]
struct Marks {
    sent: std::cell::Cell<Option<Instant>>,
    /// Time spent waiting for the per-request signer (the generator's own lateness).
    token_wait: std::cell::Cell<Duration>,
    /// The consumer of a valid token that an event watches.
    watched: std::cell::Cell<Option<usize>>,
    /// The timing breakdown so far.
    timing: std::cell::Cell<Timing>,
}

// long: one request's life on the send path (token, connection, send, read, sample), its marks in order
async fn attempt(
    ctx: &WorkerCtx,
    slot: &mut Slot,
    job: &Job,
    marks: &Marks,
) -> (Option<Instant>, Outcome) {
    let plan = &ctx.plan;
    let req_plan = &plan.requests[job.class % plan.requests.len()];
    let mut lease = match slot.lease(job.ready).await {
        Ok((l, opened)) => {
            marks.timing.set(Timing {
                opened,
                ..Timing::default()
            });
            l
        }
        Err(e) => return (None, Outcome::Failed(e)),
    };
    let phase = job.class / plan.requests.len();
    let carried = match (req_plan.token, &plan.tokens) {
        (Some((slot, class)), Some(tokens)) => {
            let (ci, t, waited) = token(ctx, tokens, slot, req_plan, job.seq).await;
            marks.token_wait.set(waited);
            if class == crate::scenario::TokenClass::Valid
                && ctx.watch.as_ref().is_some_and(|w| w.watches(ci))
            {
                marks.watched.set(Some(ci));
            }
            Some(t)
        }
        _ => None,
    };
    let carried = carried.as_deref();
    let expect = if req_plan.token.is_some() && !ctx.checks_tokens {
        None
    } else {
        req_plan.expect
    };
    // A revoked consumer's valid token may be refused (or, stale, accepted)
    // once its response comes after the revoke was issued (a request on the
    // wire then may meet either state): the event's figures judge which
    // came when.
    let revocable = || match (&ctx.watch, marks.watched.get()) {
        (Some(w), Some(ci)) => w.refusal_allowed(ci, Instant::now()),
        _ => false,
    };
    let expected = |status: u16| match expect {
        _ if matches!(status, 200..=299 | 401 | 403) && revocable() => true,
        Some(s) => s == status,
        None => (200..300).contains(&status),
    };
    if let Lease::H1(conn) = &mut lease {
        write_request(
            plan,
            (ctx.round, phase, job.seq),
            req_plan,
            &slot.endpoint,
            carried,
            &mut conn.out,
        );
        let sent = Instant::now();
        marks.sent.set(Some(sent));
        let head_only = req_plan.method == http::Method::HEAD;
        let result = conn.exchange(head_only).await;
        let mut t = marks.timing.get();
        (t.written, t.first_byte) = (conn.written, conn.first_byte);
        marks.timing.set(t);
        return match result {
            Ok(r) => {
                slot.give_back(lease);
                (
                    Some(sent),
                    Outcome::Response {
                        status: r.status,
                        expected: expected(r.status),
                        upstream: r.upstream,
                        bytes: r.body_bytes,
                    },
                )
            }
            Err(e) => (Some(sent), Outcome::Failed(e)),
        };
    }
    let request = plan.build(
        (ctx.round, phase, job.seq),
        req_plan,
        &slot.endpoint,
        carried,
    );
    let Lease::H2(sender) = &mut lease else {
        unreachable!("HTTP/1 returned above")
    };
    if let Err(e) = sender.ready().await {
        return (None, Outcome::Failed(classify(&e)));
    }
    let sent = Instant::now();
    marks.sent.set(Some(sent));
    let response = match sender.send_request(request).await {
        Ok(r) => r,
        Err(e) => return (Some(sent), Outcome::Failed(classify(&e))),
    };
    let mut t = marks.timing.get();
    t.first_byte = Some(Instant::now());
    marks.timing.set(t);
    let status = response.status().as_u16();
    let upstream = response
        .headers()
        .get("server-timing")
        .and_then(|v| v.to_str().ok())
        .and_then(upstream_time);
    let mut body = response.into_body();
    let mut bytes = 0;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => bytes += f.data_ref().map_or(0, |d| d.len() as u64),
            Err(_) => return (Some(sent), Outcome::Failed(ErrorClass::Body)),
        }
    }
    slot.give_back(lease);
    (
        Some(sent),
        Outcome::Response {
            status,
            expected: expected(status),
            upstream,
            bytes,
        },
    )
}

/// The token(s) request `seq` carries and its consumer: from the pool, or
/// from this worker's signer. A signer that is behind makes the send wait (it yields, so the
/// worker's other requests go on); the wait is returned, counts as the
/// generator's schedule lag, and is counted.
async fn token(
    ctx: &WorkerCtx,
    tokens: &Tokens,
    slot: usize,
    r: &super::plan::ReqPlan,
    seq: u64,
) -> (usize, Arc<Carried>, Duration) {
    let ci = tokens.consumer_of(r.consumer, ctx.plan.seed, seq);
    // The plan gives every request that carries a token its queue.
    let (Some(feed), Some(source)) = (ctx.feed.as_ref(), r.source) else {
        return (ci, tokens.pooled(slot, ci, seq), Duration::ZERO);
    };
    if let Some((ci, t)) = tokens.try_next(feed, source) {
        return (ci, Arc::new(t), Duration::ZERO);
    }
    tokens.note_behind();
    let began = Instant::now();
    let deadline = began + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Some((ci, t)) = tokens.try_next(feed, source) {
            return (ci, Arc::new(t), began.elapsed());
        }
        tokio::task::yield_now().await;
    }
    (ci, Arc::new(Carried::None), began.elapsed())
}
