//! Lifecycle stages of an agent in the registry.
//!
//! Source: seed 003 (Evaluation → Pilot → Production rollout), seed 001 ("Status in registry
//! will move from Pilot → Production at launch"). The only way from Pilot to Production is a
//! Cleared or Conditional review whose sign-offs are valid (enforced by the registry). A
//! pilot or a production agent may be paused (the kill switch pulled, an incident; seed 001
//! item 9) and resumed to the stage it was paused from; any agent may be retired, for good.

use serde::Serialize;

/// A lifecycle stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Piloting with a cohort; success criteria locked.
    Pilot,
    /// In production.
    Production,
    /// Stopped for now (from Pilot or Production, to which it resumes).
    Paused,
    /// Out of service for good.
    Retired,
}

impl Stage {
    /// Lower-case name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Pilot => "pilot",
            Stage::Production => "production",
            Stage::Paused => "paused",
            Stage::Retired => "retired",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Stage> {
        match s {
            "pilot" => Some(Stage::Pilot),
            "production" => Some(Stage::Production),
            "paused" => Some(Stage::Paused),
            "retired" => Some(Stage::Retired),
            _ => None,
        }
    }
}
