use crate::app::{AppState, Application};
use crate::clock::Clock;
use crate::config::Settings;
use crate::crypto::MasterKeySource;

pub fn serve(settings: Settings) -> anyhow::Result<()> {
    crate::telemetry::init(settings.log_format, &settings.log_level);
    actix_web::rt::System::new().block_on(async move {
        let (state, report) = AppState::open_async(settings, Clock::System).await?;
        let app = Application::serve(state)?;
        let settings = &app.state().settings;
        let listen = format!("http://{}:{}", settings.bind.ip(), app.port());
        println!(
            "passgate {} is listening on {listen}",
            env!("CARGO_PKG_VERSION")
        );
        println!("  public URL   {}", settings.public_base());
        println!(
            "  database     {} (schema {}{})",
            report.database,
            report.migrations.latest,
            match report.migrations.applied_now.len() {
                0 => String::new(),
                n => format!(", {n} migration(s) applied now"),
            }
        );
        println!("  data dir     {}", settings.data_dir.display());
        match &report.master_key {
            MasterKeySource::Setting => println!("  master key   from PASSGATE_MASTER_KEY"),
            MasterKeySource::File(p) => println!("  master key   {}", p.display()),
            MasterKeySource::Generated(p) => println!(
                "  master key   generated at {} (back it up with the database)",
                p.display()
            ),
        }
        app.run_until_stopped().await?;
        eprintln!("passgate stopped");
        Ok(())
    })
}
