use std::io::Write;

use crate::app::{AppState, StartupReport};
use crate::clock::Clock;
use crate::config::Settings;
use crate::crypto::MasterKeySource;
use crate::startup::Application;

pub fn serve(settings: Settings) -> anyhow::Result<()> {
    crate::telemetry::init(settings.log_format, &settings.log_level);
    actix_web::rt::System::new().block_on(async move {
        let (state, report) = AppState::open_async(settings, Clock::System).await?;
        // Listen first: a second start on a busy port must fail before it mints a setup
        // link, which would void the one the running server printed.
        let app = Application::serve(state)?;
        let state = app.state();
        let (base, now) = (state.settings.public_base(), state.clock.now());
        let setup = state
            .store
            .write(move |conn| crate::enrollment::ensure_setup_link(conn, &base, now))
            .await?;
        let mut banner = banner(&app, &report);
        if let Some(link) = setup {
            banner += &format!(
                "\nNo owner has enrolled yet. Open this one-time link to create the first owner\n\
                 of the 'default' organisation with a passkey (a new link is printed at each\n\
                 start until it is used; it expires in 24 hours):\n\n  {}\n\n\
                 Or invite people from the command line:\n  \
                 passgate user invite --tenant default --email you@example.com --role owner\n",
                link.url
            );
        }
        // A closed stdout (a supervisor that stopped reading) must not bring the server down.
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
        drop(out);
        app.run_until_stopped().await?;
        eprintln!("passgate stopped");
        Ok(())
    })
}

fn banner(app: &Application, report: &StartupReport) -> String {
    let settings = &app.state().settings;
    let applied = match report.migrations.applied_now.len() {
        0 => String::new(),
        n => format!(", {n} migration(s) applied now"),
    };
    let master_key = match &report.master_key {
        MasterKeySource::Setting => "from PASSGATE_MASTER_KEY".to_string(),
        MasterKeySource::File(p) => p.display().to_string(),
        MasterKeySource::Generated(p) => {
            format!(
                "generated at {} (back it up with the database)",
                p.display()
            )
        }
    };
    format!(
        "passgate {version} is listening on http://{ip}:{port}\n\
         \x20 public URL   {public}\n\
         \x20 database     {db} (schema {schema}{applied})\n\
         \x20 data dir     {data}\n\
         \x20 master key   {master_key}\n\
         \x20 mail         {mail}\n",
        version = env!("CARGO_PKG_VERSION"),
        ip = settings.bind.ip(),
        port = app.port(),
        public = settings.public_base(),
        db = report.database,
        schema = report.migrations.latest,
        data = settings.data_dir.display(),
        mail = app.state().mailer.describe(settings),
    )
}
