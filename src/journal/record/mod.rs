//! The records the journal carries, one file per family. Producers (the
//! outage detector, the slow-period tracker, the path tracer, the service)
//! build them; their `serde` names are the journal's contract
//! (`/work/shared/DESIGN.md`) and do not change.

pub mod gap;
pub mod interference;
pub mod outage;
pub mod path;
pub mod peer;
pub mod run;
pub mod slow;
pub mod stall;

pub use gap::{Gap, push_gap};
pub use interference::{InterferenceSeen, InterferenceSummary};
pub use outage::{DurationClock, EndReason, OutageEnded, OutageResumed, OutageStarted};
pub use path::{Hop, LastHop, PathEvent, PathSummary, Reprobe, TraceProtocol, When};
pub use peer::{
    CorroboratedTarget, Corroboration, PeerVerdict, PeriodKind, Receipt, TargetVerdict,
    WitnessReceived, Witnessed, judge,
};
pub use run::{
    ConfigReload, DaemonStart, DaemonStop, JournalReopened, PlanRecord, ThroughputTarget,
};
pub use slow::{
    DegradedEnded, DegradedResumed, DegradedStarted, Figures, PeriodFigures, Trigger,
    describe_figures, triggers_text,
};
pub use stall::{StallCause, Stalled};
