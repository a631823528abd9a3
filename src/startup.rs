//! Start-up: the HTTP server and the node's scheduled jobs beside it. `Application::build`
//! is shared by `main.rs` and the tests (STYLE lesson 1): the tests bind port 0 and start as
//! many real servers as they need.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use tracing_actix_web::TracingLogger;

use crate::app::{AppState, StartupError};
use crate::clock::Clock;
use crate::config::Settings;

/// A running HTTP server bound to its listener.
pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
}

impl Application {
    /// Opens everything and binds `settings.bind` (port 0 picks a free port).
    pub async fn build(settings: Settings, clock: Clock) -> Result<Application, StartupError> {
        let (state, _report) = AppState::open_async(settings, clock).await?;
        Application::serve(state)
    }

    pub fn serve(state: AppState) -> Result<Application, StartupError> {
        let addr = state.settings.bind;
        let listener = TcpListener::bind(addr).map_err(|source| StartupError::Bind {
            addr: addr.to_string(),
            source,
        })?;
        Application::serve_on(state, listener)
    }

    /// Serves on a listener bound by the caller (tests bind first, to know the public URL).
    pub fn serve_on(state: AppState, listener: TcpListener) -> Result<Application, StartupError> {
        let addr = state.settings.bind;
        let bind_err = |source| StartupError::Bind {
            addr: addr.to_string(),
            source,
        };
        let port = listener.local_addr().map_err(bind_err)?.port();
        let data = web::Data::new(state.clone());
        let is_https = state.settings.is_https();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .wrap(from_fn(crate::web::csrf::csrf_guard))
                .wrap(crate::web::security_headers(is_https))
                .wrap(from_fn(crate::web::request_id_header))
                .wrap(TracingLogger::<crate::web::RequestSpan>::new())
                .configure(crate::web::routes)
        })
        .workers(state.settings.http_workers())
        .shutdown_timeout(10)
        .listen(listener)
        .map_err(bind_err)?
        .run();
        Ok(Application {
            port,
            server,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGINT/SIGTERM (actix-web handles both), finishing requests in flight;
    /// the node's scheduled jobs (housekeeping, key rotation, mail delivery) run beside it.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let background = self
            .state
            .scheduler()
            .spawn(&self.state.store, &self.state.clock);
        let result = self.server.await;
        for task in background {
            task.abort();
        }
        result
    }
}
