//! Exit codes, and the error type that carries one.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | Cleared (or: the command succeeded) |
//! | 10 | Conditional |
//! | 20 | Blocked |
//! | 1 | refused by a rule: promote without a clearing review, re-lock criteria, a signature that does not count, an approver without authority |
//! | 2 | usage error (clap) |
//! | 3 | the registry does not verify: an event edited, inserted, reordered or deleted, or truncation against a kept checkpoint |
//! | 65 | invalid input: malformed YAML, unknown/missing field, duplicate key, wrong type, bad date, impossible value, path out of the agent folder, review date before the pilot, bad telemetry row |
//! | 66 | input missing or unreadable |
//! | 70 | internal error, or an output (`--out`, standard output) that cannot be written |
//! | 74 | registry or its key cannot be opened, read or written |

use stagegate_core::decision::Outcome;
use stagegate_load::LoadError;
use stagegate_registry::RegistryError;
use stagegate_telemetry::TelemetryError;

/// Cleared.
pub const CLEARED: u8 = 0;
/// Conditional.
pub const CONDITIONAL: u8 = 10;
/// Blocked.
pub const BLOCKED: u8 = 20;
/// Refused by a registry rule.
pub const REFUSED: u8 = 1;
/// The registry does not verify.
pub const TAMPERED: u8 = 3;
/// Invalid input (sysexits EX_DATAERR).
pub const INVALID: u8 = 65;
/// Missing or unreadable input (sysexits EX_NOINPUT).
pub const NO_INPUT: u8 = 66;
/// Internal error (sysexits EX_SOFTWARE).
pub const INTERNAL: u8 = 70;
/// Registry IO (sysexits EX_IOERR).
pub const REGISTRY: u8 = 74;

/// The exit code of a decision.
pub fn of_outcome(o: Outcome) -> u8 {
    match o {
        Outcome::Cleared => CLEARED,
        Outcome::Conditional => CONDITIONAL,
        Outcome::Blocked => BLOCKED,
    }
}

/// A failed command, with its exit code.
#[derive(Debug)]
pub enum Failure {
    /// Exit 65.
    Invalid(String),
    /// Exit 66.
    NoInput(String),
    /// Exit 74.
    Registry(String),
    /// Exit 1.
    Refused(String),
    /// Exit 3.
    Tampered(String),
    /// Exit 70.
    Internal(String),
}

impl Failure {
    /// The exit code.
    pub fn code(&self) -> u8 {
        match self {
            Failure::Invalid(_) => INVALID,
            Failure::NoInput(_) => NO_INPUT,
            Failure::Registry(_) => REGISTRY,
            Failure::Refused(_) => REFUSED,
            Failure::Tampered(_) => TAMPERED,
            Failure::Internal(_) => INTERNAL,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Invalid(m) => write!(f, "invalid input: {m}"),
            Failure::NoInput(m) => write!(f, "{m}"),
            Failure::Registry(m)
            | Failure::Refused(m)
            | Failure::Tampered(m)
            | Failure::Internal(m) => f.write_str(m),
        }
    }
}

impl From<LoadError> for Failure {
    fn from(e: LoadError) -> Self {
        if e.is_invalid_content() {
            Failure::Invalid(e.to_string())
        } else {
            Failure::NoInput(e.to_string())
        }
    }
}

impl From<TelemetryError> for Failure {
    fn from(e: TelemetryError) -> Self {
        match e {
            TelemetryError::Unreadable { .. } => Failure::NoInput(e.to_string()),
            TelemetryError::Invalid { .. } => Failure::Invalid(e.to_string()),
        }
    }
}

impl From<RegistryError> for Failure {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Database { .. }
            | RegistryError::Key { .. }
            | RegistryError::Missing(_) => Failure::Registry(e.to_string()),
            RegistryError::Rule(_) => Failure::Refused(e.to_string()),
            RegistryError::Tampered { .. } => Failure::Tampered(e.to_string()),
        }
    }
}
