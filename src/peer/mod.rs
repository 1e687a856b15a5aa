//! Peers (issue 20): other linkwatch sites that corroborate this one. A
//! peer sees the same destinations from elsewhere (`observations`), keeps
//! receipts of our journal head (`witness`), and notices when we go silent.
//!
//! This room sits below `server` (which routes `/api/v1/peer/*` here) and
//! above `journal`, `history` and `config`, whose records, minutes and
//! `[[peer]]` tables it reads. [`wire`] holds the JSON bodies and limits both
//! sides use.

pub mod auth;
pub mod caller;
pub mod client;
pub mod corroborate;
pub mod serve;
pub mod verify;
pub mod wire;
pub mod witness;

pub use wire::{
    ENDPOINT_OBSERVATIONS, ENDPOINT_WITNESS, ENDPOINT_WITNESSES, MAX_MINUTES_PER_CALL,
    MAX_REQUEST_BODY, MAX_RESPONSE_BODY, MAX_SPAN, MAX_TARGETS_PER_CALL, MAX_WITNESSES,
    MinuteObservation, Observations, ObservationsRequest, PATH_OBSERVATIONS, PATH_WITNESS,
    PATH_WITNESSES, STEP_SECONDS, TargetObservations, WitnessRecord, WitnessRequest,
};
