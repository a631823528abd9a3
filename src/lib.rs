//! passgate: a passkey-first OpenID Connect identity provider for B2B SaaS.
//!
//! Three layers, arrows down only: `web` (handlers, templates) → the domain (`signin`,
//! `oidc`, `passkeys`, `enrollment`, `recovery`, `admin`, `audit`, `auth_events`, …) →
//! `store` (diesel, both backends). `app` is what the application holds and `startup` the
//! server and its scheduled jobs; only `main`, the CLI, the web layer and the tests use them.

pub mod account;
pub mod admin;
pub mod app;
pub mod audit;
pub mod auth_events;
pub mod cache;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod enrollment;
pub mod links;
pub mod mail;
pub mod maintenance;
pub mod oidc;
pub mod passkeys;
pub mod passwords;
pub mod policy;
pub mod ratelimit;
pub mod recovery;
pub mod scheduler;
pub mod sessions;
pub mod signin;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tenants;
pub mod users;
pub mod web;

pub use app::{AppState, StartupError, StartupReport};
pub use clock::Clock;
pub use config::Settings;
pub use startup::Application;
