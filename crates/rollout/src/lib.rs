//! stagegate's rollout, without IO: the plan as data ([`plan`]), the state machine whose
//! transitions are the registry's rollout events ([`state`]), rollback triggers judged by an
//! always-valid confidence sequence ([`judge`]), and the controller that turns a phase's
//! telemetry into advance, pause or rollback ([`controller`]), fed by spans or by a metrics
//! system's counters ([`counters`]).
//!
//! Sources: seed 000 "Phased Rollout" and "Rollback Planning", seed 002's rollout weeks and
//! triggers, seed 004's rollout paths and "expand, pause or retire"; the statistics are
//! `stagegate_stats::sequential::asymptotic_cs` (Waudby-Smith et al. 2024).

pub mod controller;
pub mod counters;
pub mod judge;
pub mod plan;
pub mod state;

pub use controller::{Arm, Controller, Fields, Outlook, Tally};
pub use judge::{ArmMoments, Judgement, Verdict};
pub use plan::{PlanError, RollbackTrigger, RolloutPhase, RolloutPlan};
pub use state::{Exposure, Rollout, Status, Transition, TransitionError};
