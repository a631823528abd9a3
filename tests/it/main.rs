//! One integration-test binary (STYLE lesson 11): it links once and shares the harness.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod account;
mod authenticator;
mod bad_input;
mod browser;
mod harness;
mod pg;
mod recovery_support;
mod smtp;

mod cli;
mod e2e;
mod e2e_recovery;
mod e2e_support;
mod health;
mod mail;
mod oidc_cli;
mod oidc_flow;
mod oidc_hint;
mod oidc_keys;
mod oidc_negative;
mod oidc_redeem;
mod oidc_support;
mod passkey_refusals;
mod recovery_admin;
mod recovery_code;
mod recovery_links;
mod signin;
mod store;
