//! Who calls the stagegate server, and what they may do.
//!
//! - [`token`]: API tokens `sgt_<id>_<secret>`, shown once, stored as an argon2id hash
//!   (RFC 9106), expiring and revocable.
//! - [`oidc`]: OIDC bearer JWTs checked against the issuer's JWKS (RFC 7517/7519): signature,
//!   issuer, audience, expiry at an injected time.
//! - [`roles`]: the roles (admin, coe-lead, builder, sponsor, peer-approver, on-call, auditor,
//!   ci) and [`roles::authorize`], the rule of who may do what to which agent — pure, no IO.
//!
//! Invariant: a [`roles::Caller`] is only ever built from a verified credential; an
//! accountable act still needs the person's own SSH signature (checked by the server against
//! the allowed-signers file), and the signer must be the caller.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod oidc;
pub mod roles;
pub mod token;

pub use roles::{Action, Caller, Denied, Role, authorize};
