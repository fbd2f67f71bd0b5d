//! The Tauri shell: it maps IPC commands onto the core crates and holds the signed-in
//! state. No protocol or media logic lives here (see ARCHITECTURE.md).

mod commands;
mod error;
mod launch;
mod state;

use tauri::Manager as _;

pub use error::IpcError;

pub fn run() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "estrade=info,estrade_app=info,estrade_backend=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let launch = match launch::Launch::from_env() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("estrade: {e}");
            std::process::exit(2);
        }
    };
    let result = tauri::Builder::default()
        .setup(move |app| {
            let config_dir = app.path().app_config_dir()?;
            app.manage(state::AppState::new(config_dir, launch));
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::app_info,
            commands::restore_session,
            commands::sign_in,
            commands::sign_out,
            commands::list_sessions,
        ])
        .run(tauri::generate_context!("tauri.conf.json"));
    if let Err(e) = result {
        tracing::error!(error = %e, "the app failed");
        std::process::exit(1);
    }
}
