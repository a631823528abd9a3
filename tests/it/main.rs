//! One integration-test binary (STYLE lesson 11): it links once and shares the harness.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod account;
mod authenticator;
mod browser;
mod harness;
mod pg;

mod cli;
mod e2e;
mod health;
mod oidc_cli;
mod oidc_flow;
mod oidc_keys;
mod oidc_negative;
mod oidc_support;
mod passkey_refusals;
mod signin;
mod store;
