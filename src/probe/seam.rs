//! The one seam between scheduling and probing.
//!
//! Every probe kind, and the [`super::Probers`] dispatch over them, has one
//! entry point: [`Probe::start`], given a [`Request`] (which target, by when)
//! and a [`Completion`] that takes the [`Observation`]. The future-returning
//! path (`linkwatch probe`, tests) is the adapter [`observe`] over it.
//!
//! Why completion-first and not future-first: ICMP to a literal address, by
//! far the most frequent probe, is completed by the shared socket's receive
//! task, so it needs no task, timer or allocation per probe. A future-first
//! seam would add a task (or a channel and a waker) per probe on that path,
//! while the kinds that do need a task (names to resolve, TCP, HTTP, DNS)
//! simply spawn one ([`spawn`]).
//!
//! A [`Completion`] is opaque to probes: it carries whatever the caller needs
//! back (the scheduler's permit, busy flag and in-flight gauge, through
//! [`Slots`], and the results channel) without the probes knowing about any
//! of it, so `probe` never imports the scheduler or the metrics.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Observation, Outcome, ProbeResult, Reason};
use crate::config::{
    Config, DnsSpec, HttpSpec, IcmpSpec, Kind, Target, TargetSpec, TcpSpec, ThroughputSpec,
};

/// Starts one probe; the one signature every kind implements.
pub trait Probe: Send + Sync + 'static {
    /// Starts probing `req`'s target. `done` is completed with the
    /// observation by the request's deadline (a timeout at the latest), or
    /// dropped if the prober goes away first; either way the caller's slot
    /// is released. Must be called inside the tokio runtime.
    fn start(self: &Arc<Self>, req: Request, done: Completion);
}

/// One probe to run: target `index` of `config`, ending by `deadline`.
#[derive(Clone)]
pub struct Request {
    config: Arc<Config>,
    index: usize,
    deadline: Instant,
}

impl Request {
    /// `None` when `index` names no target of `config`.
    pub fn new(config: Arc<Config>, index: usize, deadline: Instant) -> Option<Self> {
        (index < config.targets.len()).then_some(Self {
            config,
            index,
            deadline,
        })
    }

    /// Index of the target in `Config::targets`.
    pub fn index(&self) -> usize {
        self.index
    }

    pub fn target(&self) -> &Target {
        // `new` checked the index.
        &self.config.targets[self.index]
    }

    /// The configuration the target belongs to.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// When the probe must have ended (start + the target's timeout).
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The target's spec of kind `S`. The dispatch in [`super::Probers`]
    /// routes by kind, so the error is a routing bug made visible, not a
    /// configuration check.
    pub fn spec<S: KindSpec>(&self) -> Result<&S, Outcome> {
        let target = self.target();
        S::of(&target.spec).ok_or_else(|| {
            Outcome::error(
                Reason::Io,
                format!(
                    "target {} is a {} target, not {}",
                    target.name,
                    target.kind().as_str(),
                    S::KIND.as_str()
                ),
            )
        })
    }
}

/// A kind's spec, as picked out of a [`TargetSpec`].
pub trait KindSpec: Sized {
    const KIND: Kind;
    fn of(spec: &TargetSpec) -> Option<&Self>;
}

macro_rules! kind_spec {
    ($spec:ty, $variant:ident) => {
        impl KindSpec for $spec {
            const KIND: Kind = Kind::$variant;
            fn of(spec: &TargetSpec) -> Option<&Self> {
                match spec {
                    TargetSpec::$variant(s) => Some(s),
                    _ => None,
                }
            }
        }
    };
}
kind_spec!(IcmpSpec, Icmp);
kind_spec!(TcpSpec, Tcp);
kind_spec!(HttpSpec, Http);
kind_spec!(DnsSpec, Dns);
kind_spec!(ThroughputSpec, Throughput);

/// The caller's bookkeeping for probes in flight (the scheduler's permits,
/// busy flags, in-flight gauge). Probes never see it.
pub trait Slots: Send + Sync + 'static {
    /// Called exactly once per probe, when its completion is completed
    /// (after the result is queued) or dropped.
    fn release(&self, index: usize);

    /// Sees a probe's result before it is queued (the scheduler charges a
    /// throughput test's bytes to its daily budget here).
    fn observed(&self, _result: &ProbeResult) {}
}

/// Takes a probe's observation to whoever started it; releases the caller's
/// slot when completed or dropped. Opaque to probes.
pub struct Completion {
    at: jiff::Timestamp,
    mono: Instant,
    lateness: Duration,
    results: mpsc::Sender<ProbeResult>,
    hold: Hold,
}

/// Releases the slot on drop, completed or not.
struct Hold {
    index: usize,
    slots: Option<Arc<dyn Slots>>,
    completed: bool,
}

impl Drop for Hold {
    fn drop(&mut self) {
        if !self.completed {
            if std::thread::panicking() {
                tracing::error!(
                    target_index = self.index,
                    "a probe panicked; no result for it"
                );
            } else {
                tracing::debug!(target_index = self.index, "probe dropped without a result");
            }
        }
        if let Some(slots) = &self.slots {
            slots.release(self.index);
        }
    }
}

impl Completion {
    /// A completion for a probe of target `index` started at `mono` (`lateness`
    /// after its slot) whose result goes to `results`; `slots` is told when it ends.
    pub fn new(
        index: usize,
        mono: Instant,
        lateness: Duration,
        results: mpsc::Sender<ProbeResult>,
        slots: Arc<dyn Slots>,
    ) -> Self {
        Self {
            at: jiff::Timestamp::now(),
            mono,
            lateness,
            results,
            hold: Hold {
                index,
                slots: Some(slots),
                completed: false,
            },
        }
    }

    /// A completion outside the scheduler, with the receiver of its result.
    pub fn detached(index: usize) -> (Self, mpsc::Receiver<ProbeResult>) {
        let (tx, rx) = mpsc::channel(1);
        let done = Self {
            at: jiff::Timestamp::now(),
            mono: Instant::now(),
            lateness: Duration::ZERO,
            results: tx,
            hold: Hold {
                index,
                slots: None,
                completed: false,
            },
        };
        (done, rx)
    }

    /// Delivers the observation (waits while the results queue is full),
    /// then releases the slot.
    pub async fn complete(self, observation: Observation) {
        let Completion {
            at,
            mono,
            lateness,
            results,
            mut hold,
        } = self;
        hold.completed = true;
        let result = ProbeResult {
            target: hold.index,
            at,
            mono,
            lateness,
            observation,
        };
        if let Some(slots) = &hold.slots {
            slots.observed(&result);
        }
        // An error means the receiver is gone: the daemon is stopping.
        let _ = results.send(result).await;
        drop(hold);
    }
}

/// Runs `probe` in a task of its own, cut at `deadline`, and completes
/// `done` with its observation.
pub fn spawn(
    deadline: Instant,
    done: Completion,
    probe: impl Future<Output = Observation> + Send + 'static,
) {
    tokio::spawn(async move {
        let observation = match tokio::time::timeout_at(deadline, probe).await {
            Ok(o) => o,
            Err(_) => Observation::new(Outcome::Timeout { phase: None }),
        };
        done.complete(observation).await;
    });
}

/// Completes `done` with an observation known at once (in a task: the
/// results queue may be full).
pub fn finish(done: Completion, observation: Observation) {
    tokio::spawn(done.complete(observation));
}

/// The future-returning path: starts one probe through `prober` and waits
/// for its observation until the request's deadline.
pub async fn observe<P: Probe>(prober: &Arc<P>, req: Request) -> Observation {
    let deadline = req.deadline();
    let (done, mut rx) = Completion::detached(req.index());
    prober.start(req, done);
    match tokio::time::timeout_at(deadline, rx.recv()).await {
        Ok(Some(r)) => r.observation,
        Ok(None) => Observation::new(Outcome::error(
            Reason::Io,
            "the probe ended without a result",
        )),
        Err(_) => Observation::new(Outcome::Timeout { phase: None }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    use crate::config::{Group, Host};

    /// Records every release.
    #[derive(Default)]
    struct Released(Mutex<Vec<usize>>);

    impl Slots for Released {
        fn release(&self, index: usize) {
            self.0.lock().unwrap().push(index);
        }
    }

    fn completion(index: usize) -> (Completion, mpsc::Receiver<ProbeResult>, Arc<Released>) {
        let (tx, rx) = mpsc::channel(4);
        let released = Arc::new(Released::default());
        let slots: Arc<dyn Slots> = released.clone();
        let done = Completion::new(index, Instant::now(), Duration::ZERO, tx, slots);
        (done, rx, released)
    }

    #[tokio::test]
    async fn completing_queues_the_result_then_releases_the_slot() {
        let (done, mut rx, released) = completion(3);
        done.complete(Observation::new(Outcome::Timeout { phase: None }))
            .await;
        let r = rx.recv().await.unwrap();
        assert_eq!(r.target, 3);
        assert_eq!(r.observation.outcome, Outcome::Timeout { phase: None });
        assert_eq!(*released.0.lock().unwrap(), vec![3]);
    }

    #[tokio::test]
    async fn dropping_releases_the_slot_without_a_result() {
        let (done, mut rx, released) = completion(1);
        drop(done);
        assert_eq!(*released.0.lock().unwrap(), vec![1]);
        assert!(rx.recv().await.is_none());
    }

    /// A prober that drops every completion, or keeps it forever.
    struct Lossy {
        keep: Mutex<Vec<Completion>>,
        hold: bool,
    }

    impl Probe for Lossy {
        fn start(self: &Arc<Self>, _req: Request, done: Completion) {
            if self.hold {
                self.keep.lock().unwrap().push(done);
            }
        }
    }

    fn config() -> Arc<Config> {
        let t = Duration::from_secs(1);
        let mut cfg = Config::new(vec![Group::new("g")], Vec::new());
        cfg.daemon.max_concurrency = 1;
        cfg.defaults.interval = t;
        cfg.defaults.timeout = t / 2;
        let spec = TargetSpec::Icmp(IcmpSpec::new(Host::Ip("127.0.0.1".parse().unwrap())));
        cfg.targets = vec![Target::new("t", "g", &cfg.defaults, spec)];
        Arc::new(cfg)
    }

    #[tokio::test(start_paused = true)]
    async fn the_future_path_ends_by_the_deadline_whatever_the_prober_does() {
        let cfg = config();
        let deadline = Instant::now() + Duration::from_millis(500);
        let dropped = Arc::new(Lossy {
            keep: Mutex::new(Vec::new()),
            hold: false,
        });
        let o = observe(&dropped, Request::new(cfg.clone(), 0, deadline).unwrap()).await;
        assert!(matches!(o.outcome, Outcome::Error(ref e) if e.reason == Reason::Io));
        let kept = Arc::new(Lossy {
            keep: Mutex::new(Vec::new()),
            hold: true,
        });
        let o = observe(&kept, Request::new(cfg.clone(), 0, deadline).unwrap()).await;
        assert_eq!(o.outcome, Outcome::Timeout { phase: None });
        assert_eq!(Instant::now(), deadline);
    }

    #[test]
    fn requests_name_a_target_and_its_spec() {
        let cfg = config();
        assert!(Request::new(cfg.clone(), 1, Instant::now()).is_none());
        let req = Request::new(cfg, 0, Instant::now()).unwrap();
        assert!(req.spec::<IcmpSpec>().is_ok());
        let Err(Outcome::Error(e)) = req.spec::<TcpSpec>() else {
            panic!("an ICMP target has no TCP spec")
        };
        assert!(e.detail.contains("icmp target, not tcp"), "{}", e.detail);
    }
}
