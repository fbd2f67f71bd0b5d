// The app's own commands are declared here so that tauri-build generates a permission per
// command; tauri.conf.json grants the main window exactly these and nothing else.
const COMMANDS: &[&str] = &[
    "app_info",
    "restore_session",
    "sign_in",
    "sign_out",
    "list_sessions",
];

fn main() {
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)),
    )
    .expect("tauri-build failed");
}
