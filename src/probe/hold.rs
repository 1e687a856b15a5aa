//! A hold on probes while a path trace re-probes: the groups named, until
//! an instant. The scheduler asks [`ProbeHold::holds`] before each slot; the
//! path tracer (`path`) raises the hold. It lives here, below both,
//! so that neither imports the other.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::trace::REPROBE_QUIET;

/// A hold lasts this long past the re-probe it makes room for (the request
/// reaches the router before anything held does).
pub const HOLD_AFTER: Duration = Duration::from_millis(100);

/// Probes held for a path trace's re-probe: the groups named, until the
/// instant given (see the module doc). Whoever starts probes asks
/// [`ProbeHold::holds`] first and skips a slot that falls in a hold: the
/// failing probes of a group in an outage each cost the router that
/// answers for the break one of its ICMP errors, and the re-probe needs one
/// left. Cheap to clone; without a hold, one atomic load per question.
#[derive(Clone, Default)]
pub struct ProbeHold(Arc<HoldShared>);

#[derive(Default)]
struct HoldShared {
    /// Some hold may be active (set with it, cleared lazily once it passed).
    any: std::sync::atomic::AtomicBool,
    state: Mutex<HoldState>,
}

#[derive(Default)]
struct HoldState {
    until: Option<Instant>,
    groups: Vec<String>,
    /// When the latest re-probe goes (they are spaced [`REPROBE_QUIET`]).
    last_reprobe: Option<Instant>,
}

impl ProbeHold {
    /// Are the probes of `group` held at `now`?
    pub fn holds(&self, group: &str, now: Instant) -> bool {
        use std::sync::atomic::Ordering;
        if !self.0.any.load(Ordering::Acquire) {
            return false;
        }
        let st = lock(&self.0.state);
        match st.until {
            Some(u) if now < u => st.groups.iter().any(|g| g == group),
            _ => false,
        }
    }

    /// The end of the hold in force at `now`, if any.
    pub fn until(&self, now: Instant) -> Option<Instant> {
        lock(&self.0.state).until.filter(|u| now < *u)
    }

    /// A re-probe wants to go at `at`: returns when it may (at least
    /// [`REPROBE_QUIET`] after the previous one), holding `groups` from now
    /// until a little after.
    pub fn reprobe_at(&self, at: Instant, groups: Vec<String>, now: Instant) -> Instant {
        use std::sync::atomic::Ordering;
        let mut st = lock(&self.0.state);
        let at = st.last_reprobe.map_or(at, |l| at.max(l + REPROBE_QUIET));
        st.last_reprobe = Some(at);
        if st.until.is_none_or(|u| u <= now) {
            st.groups.clear();
        }
        for g in groups {
            if !st.groups.contains(&g) {
                st.groups.push(g);
            }
        }
        st.until = Some(st.until.map_or(at, |u| u.max(at)) + HOLD_AFTER);
        self.0.any.store(true, Ordering::Release);
        at
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
