//! stagegate's domain core.
//!
//! Agent cards ([`card`]), evidence records ([`evidence`]), gate templates ([`gates`]), the
//! rules that decide each checklist item ([`items`]), the decision matrix ([`decision`]), the
//! readiness assessment ([`readiness`]), economics ([`economics`]), the scaling plan
//! ([`plan`]) and values in their units ([`units`]). [`review::review`] ties them together.
//!
//! Invariant: this crate does no IO — no files, no clock, no network. Everything arrives as
//! values (the loader reads files, the telemetry crate measures, the binary injects the date),
//! so a review is a pure function of its inputs.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod card;
pub mod decision;
pub mod digest;
pub mod economics;
pub mod evidence;
pub mod gates;
pub mod items;
pub mod metric;
pub mod person;
pub mod plan;
pub mod readiness;
pub mod recheck;
pub mod review;
pub mod rollout_plan;
pub mod signing;
pub mod stage;
pub mod units;
pub mod ymd;

pub use jiff;
