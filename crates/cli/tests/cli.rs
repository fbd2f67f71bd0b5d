//! The headless CLI against the real stack: the devserver (in this process) and the test
//! livekit-server (ESTRADE_LIVEKIT_URL, started by scripts/test.sh).

use std::process::{Command, Output, Stdio};

use estrade_devserver::{Config, seed};
use serde_json::Value;

fn livekit_url() -> String {
    std::env::var("ESTRADE_LIVEKIT_URL").unwrap_or_else(|_| "ws://127.0.0.1:7880".into())
}

fn cli() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_estrade-cli"));
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

async fn run(mut command: Command) -> (Output, Vec<Value>) {
    let child = command.spawn().expect("estrade-cli starts");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    (out, lines)
}

fn events<'a>(lines: &'a [Value], name: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["event"] == name).collect()
}

async fn devserver() -> estrade_devserver::RunningServer {
    estrade_devserver::spawn(Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        livekit_url: livekit_url(),
        // Unique per devserver: tests run at once in this process, and two started in
        // the same millisecond shared a room (one test's moderator removed the other's bot).
        room_prefix: format!("cli-{}-{}-{}-", std::process::id(), unix_ms(), {
            static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        }),
        ..Config::default()
    })
    .await
    .unwrap()
}

/// The CLI as `email`, joining the live demo session through `server` for 8 s.
fn through_backend(
    server: &estrade_devserver::RunningServer,
    email: &str,
    extra: &[&str],
) -> Command {
    let mut c = cli();
    c.args(["--backend", &server.url(), "--email", email])
        .args([
            "--session",
            &seed::sessions::LIVE.to_string(),
            "--seconds",
            "8",
        ])
        .args(extra)
        .env("ESTRADE_PASSWORD", seed::DEMO_PASSWORD);
    c
}

fn unix_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs livekit-server: scripts/test.sh starts it"]
async fn two_cli_participants_join_through_the_backend_talk_and_chat() {
    let server = devserver().await;
    let through_backend = |email: &str, extra: &[&str]| through_backend(&server, email, extra);
    let trainer = through_backend(
        seed::DEMO_TRAINER_EMAIL,
        &["--tone", "440", "--say", "Bonjour de la CLI <b>!</b>"],
    );
    let student = through_backend("lea.dubois@estrade.example", &[]);
    let ((t_out, t_lines), (s_out, s_lines)) = tokio::join!(run(trainer), run(student));
    assert!(
        t_out.status.success(),
        "{}",
        String::from_utf8_lossy(&t_out.stderr)
    );
    assert!(
        s_out.status.success(),
        "{}",
        String::from_utf8_lossy(&s_out.stderr)
    );

    let joined = events(&t_lines, "joined");
    let trainer_id = joined[0]["local"]["identity"].as_str().unwrap().to_owned();
    assert_eq!(events(&t_lines, "local_track_published").len(), 1);
    let chat = events(&s_lines, "chat_received");
    assert_eq!(chat.len(), 1, "{s_lines:#?}");
    assert_eq!(chat[0]["text"], "Bonjour de la CLI <b>!</b>");
    assert_eq!(chat[0]["from"], trainer_id.as_str());
    let heard = events(&s_lines, "audio_heard");
    let from_trainer = heard
        .iter()
        .find(|h| h["from"] == trainer_id.as_str())
        .expect("the student heard the trainer");
    assert!(
        from_trainer["bursts"].as_u64().unwrap() >= 5,
        "{from_trainer}"
    );
    let freqs: Vec<f64> = from_trainer["frequencies_hz"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f.as_f64())
        .collect();
    assert!(
        estrade_engine::synthetic::mostly_at(&freqs, 440.0),
        "{freqs:?}"
    );
    for lines in [&t_lines, &s_lines] {
        let last = events(lines, "disconnected");
        assert_eq!(last.len(), 1);
        assert_eq!(last[0]["reason"], "ClientInitiated");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs livekit-server: scripts/test.sh starts it"]
async fn a_cli_camera_is_watched_by_another_cli_at_its_tile_size() {
    let server = devserver().await;
    let through_backend = |email: &str, extra: &[&str]| through_backend(&server, email, extra);
    let camera = through_backend(
        "karim.benali@estrade.example",
        &["--camera", "640x360", "--simulcast", "--codec", "h264"],
    );
    let viewer = through_backend(seed::DEMO_TRAINER_EMAIL, &["--watch", "--tile", "320x180"]);
    let ((c_out, c_lines), (v_out, v_lines)) = tokio::join!(run(camera), run(viewer));
    for out in [&c_out, &v_out] {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let camera_id = events(&c_lines, "joined")[0]["local"]["identity"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(events(&c_lines, "local_track_published").len(), 1);
    let seen = events(&v_lines, "video_seen");
    let from_camera = seen
        .iter()
        .find(|s| s["from"] == camera_id.as_str())
        .unwrap_or_else(|| panic!("the viewer saw no camera: {v_lines:#?}"));
    eprintln!("the viewer saw the camera: {from_camera}");
    // ~8 s at 30 fps minus the join: a few seconds of frames, at least.
    assert!(
        from_camera["frames"].as_u64().unwrap() >= 60,
        "{from_camera}"
    );
    let sizes = from_camera["sizes"].as_array().unwrap();
    assert!(
        sizes.contains(&Value::from("320x180")),
        "the tile asked for the quarter layer: {from_camera}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs livekit-server: scripts/test.sh starts it"]
async fn three_bots_in_one_process_see_each_other() {
    let room = format!("cli-bots-{}", unix_ms());
    let mut c = cli();
    c.args([
        "--url",
        &livekit_url(),
        "--api-key",
        "devkey",
        "--room",
        &room,
        "--bots",
        "3",
        "--seconds",
        "4",
    ])
    .env("ESTRADE_API_SECRET", "secret");
    let (out, lines) = run(c).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for bot in 1..=3u64 {
        let mine: Vec<&Value> = lines.iter().filter(|l| l["bot"] == bot).collect();
        let others_at_join = mine.iter().find(|l| l["event"] == "joined").unwrap()["others"]
            .as_array()
            .unwrap()
            .len();
        let joined_later = mine
            .iter()
            .filter(|l| l["event"] == "participant_joined")
            .count();
        assert_eq!(
            others_at_join + joined_later,
            2,
            "bot {bot} sees the two others: {mine:#?}"
        );
        assert!(
            mine.iter().any(|l| l["event"] == "media_connected"),
            "bot {bot} connected"
        );
    }
}

#[tokio::test]
async fn bad_invocations_fail_clearly_without_echoing_secrets() {
    let (out, _) = run(cli()).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--backend"));

    let mut c = cli();
    c.args(["--url", "ws://127.0.0.1:9", "--bots", "2"])
        .env("ESTRADE_TOKEN", "tok-secret-123");
    let (out, _) = run(c).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--api-key"), "{stderr}");
    assert!(!stderr.contains("tok-secret-123"));

    for (flag, value, says) in [
        ("--camera", "720p", "WIDTHxHEIGHT"),
        ("--camera", "99999x10", "3840x2160"),
        // Odd sizes used to be taken, then failed on every frame once published.
        ("--camera", "641x360", "width and height must be even"),
        ("--camera", "640x361", "width and height must be even"),
    ] {
        let mut c = cli();
        c.args(["--url", "ws://127.0.0.1:9", flag, value]);
        let (out, _) = run(c).await;
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{flag} {value}: {stderr}");
    }

    let server = devserver().await;
    let mut c = cli();
    c.args([
        "--backend",
        &server.url(),
        "--email",
        seed::DEMO_TRAINER_EMAIL,
        "--session",
        "1",
    ])
    .env("ESTRADE_PASSWORD", "wrong-password");
    let (out, _) = run(c).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("wrong-password"), "{stderr}");
    server.shutdown().await;
}

/// Secrets on the command line are readable by every local user and kept by shell history:
/// refused, before anything else, without repeating the value, pointing at the variable.
#[tokio::test]
async fn secrets_on_the_command_line_are_refused_without_echoing_them() {
    for (args, var) in [
        (&["--password", "hunter2"][..], "ESTRADE_PASSWORD"),
        (&["--password=hunter2"], "ESTRADE_PASSWORD"),
        (
            &["--url", "ws://127.0.0.1:9", "--token", "hunter2"],
            "ESTRADE_TOKEN",
        ),
        (
            &[
                "--url",
                "ws://127.0.0.1:9",
                "--api-key",
                "k",
                "--room",
                "r",
                "--api-secret",
                "hunter2",
            ],
            "ESTRADE_API_SECRET",
        ),
    ] {
        let mut c = cli();
        c.args(args);
        let (out, lines) = run(c).await;
        assert!(!out.status.success(), "{args:?}");
        assert!(lines.is_empty(), "{args:?}: {lines:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("hunter2"), "{args:?}: {stderr}");
        assert!(
            stderr.contains("not taken on the command line"),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains(var), "{args:?}: {stderr}");
    }

    // --api-key without its secret: said, now that clap no longer knows the secret.
    let mut c = cli();
    c.args(["--url", "ws://127.0.0.1:9", "--api-key", "k", "--room", "r"])
        .env_remove("ESTRADE_API_SECRET");
    let (out, _) = run(c).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("set ESTRADE_API_SECRET"), "{stderr}");
}

/// `--help` lists the variables the secrets are read from, since they are no flags.
#[test]
fn help_names_the_secret_variables() {
    let out = cli().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for var in ["ESTRADE_PASSWORD", "ESTRADE_TOKEN", "ESTRADE_API_SECRET"] {
        assert!(help.contains(var), "{help}");
    }
    assert!(!help.contains("--password"), "{help}");
}

/// A bot the server removes (a moderator's `RemoveParticipant`) says why and exits with a
/// failure status: scripts must not take a lost class for a finished one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs livekit-server: scripts/test.sh starts it"]
async fn a_bot_the_server_removes_exits_with_a_failure() {
    let server = devserver().await;
    let mut student = cli();
    student
        .args([
            "--backend",
            &server.url(),
            "--email",
            "lea.dubois@estrade.example",
        ])
        .args([
            "--session",
            &seed::sessions::LIVE.to_string(),
            "--seconds",
            "40",
        ])
        .env("ESTRADE_PASSWORD", seed::DEMO_PASSWORD);
    let bot = tokio::spawn(run(student));

    // The lead trainer's own join token may moderate its room.
    let backend =
        estrade_backend::Backend::new(estrade_backend::BackendUrl::parse(&server.url()).unwrap())
            .unwrap();
    let trainer = backend
        .login(
            seed::DEMO_TRAINER_EMAIL,
            &estrade_backend::Secret::new(seed::DEMO_PASSWORD),
        )
        .await
        .unwrap();
    let grant = trainer
        .join_session(&estrade_backend::api::SessionId(
            seed::sessions::LIVE.to_string(),
        ))
        .await
        .unwrap();
    let twirp = |method: &str| {
        format!(
            "{}/twirp/livekit.RoomService/{method}",
            grant.url.replacen("ws://", "http://", 1)
        )
    };
    let http = reqwest::Client::new();
    let mut lea = None;
    for _ in 0..100 {
        let list: Value = http
            .post(twirp("ListParticipants"))
            .bearer_auth(&grant.token)
            .json(&serde_json::json!({"room": grant.room_name}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        lea = list["participants"][0]["identity"]
            .as_str()
            .map(str::to_owned);
        if lea.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let lea = lea.expect("the bot joined");
    let removed = http
        .post(twirp("RemoveParticipant"))
        .bearer_auth(&grant.token)
        .json(&serde_json::json!({"room": grant.room_name, "identity": lea}))
        .send()
        .await
        .unwrap();
    assert!(removed.status().is_success(), "{removed:?}");

    let (out, lines) = bot.await.unwrap();
    assert!(!out.status.success(), "a removed bot fails: {lines:#?}");
    let error = events(&lines, "error");
    assert!(
        error[0]["error"]
            .as_str()
            .unwrap()
            .contains("the room ended"),
        "{lines:#?}"
    );
    let ended = events(&lines, "disconnected");
    assert_eq!(ended.len(), 1, "{lines:#?}");
    assert!(
        ended[0]["reason"].as_str().unwrap().contains("Server"),
        "{}",
        ended[0]
    );
}

/// Where a secret shows in `text`: the password, a backend token (`at_…`, `rt_…`: 43
/// base64url characters) or a JWT (a LiveKit token: `eyJ…`).
fn secrets_in(text: &str) -> Vec<String> {
    let token_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut found = Vec::new();
    if text.contains(seed::DEMO_PASSWORD) {
        found.push("the password".to_string());
    }
    for prefix in ["at_", "rt_", "eyJ"] {
        for (at, _) in text.match_indices(prefix) {
            let rest = &text[at + prefix.len()..];
            let run = rest.chars().take_while(|c| token_char(*c)).count();
            if run >= 20 {
                found.push(format!("{prefix}{}…", &rest[..8.min(rest.len())]));
            }
        }
    }
    found
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            let path = e.path();
            if path.is_dir() {
                files_under(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs livekit-server: scripts/test.sh starts it"]
async fn a_whole_session_leaves_no_secret_in_logs_argv_environ_or_files() {
    let server = devserver().await;
    let home = std::env::temp_dir().join(format!(
        "estrade-secrets-{}-{}",
        std::process::id(),
        unix_ms()
    ));
    std::fs::create_dir_all(&home).unwrap();
    let mut bot = through_backend(&server, "lea.dubois@estrade.example", &["--tone", "440"]);
    // Every log line the engine and the backend client write, and a home of its own.
    bot.env("RUST_LOG", "debug")
        .env("HOME", &home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_CACHE_HOME", home.join("cache"));
    let child = bot.spawn().expect("estrade-cli starts");
    let pid = child.id();
    // In the room (signed in, joined, publishing, chatting): what the process shows now.
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for step in [
        "\"joined\"",
        "\"media_connected\"",
        "\"local_track_published\"",
    ] {
        assert!(
            stdout.contains(step),
            "the session really ran ({step}): {stdout}"
        );
    }
    assert!(
        stderr.lines().count() > 20,
        "debug logs were written: {stderr}"
    );
    let mut leaks = Vec::new();
    for (what, text) in [
        ("stdout", stdout.to_string()),
        ("the logs", stderr.to_string()),
        ("argv", String::from_utf8_lossy(&cmdline).replace('\0', " ")),
        (
            "the environment",
            String::from_utf8_lossy(&environ).replace('\0', "\n"),
        ),
    ] {
        leaks.extend(
            secrets_in(&text)
                .into_iter()
                .map(|s| format!("{s} in {what}")),
        );
    }
    for file in files_under(&home) {
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).to_string();
        leaks.extend(
            secrets_in(&text)
                .into_iter()
                .map(|s| format!("{s} in {}", file.display())),
        );
    }
    let _ = std::fs::remove_dir_all(&home);
    assert!(leaks.is_empty(), "secrets leaked: {leaks:?}");
    // The check itself works: it finds each kind of secret.
    assert_eq!(secrets_in(seed::DEMO_PASSWORD).len(), 1);
    assert_eq!(
        secrets_in("rt_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG").len(),
        1
    );
}
