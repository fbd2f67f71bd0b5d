//! The CLI on real devices (the user-mode PulseAudio of scripts/pulse.sh) and driven on
//! stdin mid-call: device listing, the microphone muted while the room's talker goes on
//! ("you are muted"), a microphone switch, chat, leave.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use estrade_devserver::{Config, seed};
use serde_json::Value;

fn cli() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_estrade-cli"));
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

#[test]
#[ignore = "needs PulseAudio: scripts/test.sh starts it"]
fn list_devices_shows_the_virtual_ones_with_defaults_and_the_synthetic_ones() {
    let out = cli().arg("--list-devices").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let has = |kind: &str, id: &str| {
        list[kind]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id)
            .cloned()
    };
    assert_eq!(
        has("microphones", "pulseaudio:estrade_mic").unwrap()["default"],
        true
    );
    assert_eq!(
        has("speakers", "pulseaudio:estrade_speaker").unwrap()["default"],
        true
    );
    assert!(has("microphones", "synthetic:tone").is_some());
    assert!(has("speakers", "synthetic:silent").is_some());
    assert!(has("cameras", "synthetic:pattern").is_some());
}

/// Lines from the CLI as they come, with a deadline.
struct Lines(mpsc::Receiver<Value>, Vec<Value>);

impl Lines {
    fn until(&mut self, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.0.recv_timeout(left) {
                Ok(line) => {
                    self.1.push(line.clone());
                    if want(&line) {
                        return line;
                    }
                }
                Err(_) => panic!("no {what} within 20 s; saw {:#?}", self.1),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs livekit-server and PulseAudio: scripts/test.sh starts them"]
async fn a_cli_on_real_devices_takes_commands_on_stdin() {
    let server = estrade_devserver::spawn(Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        livekit_url: std::env::var("ESTRADE_LIVEKIT_URL")
            .unwrap_or_else(|_| "ws://127.0.0.1:7880".into()),
        room_prefix: format!("cli-dev-{}-", std::process::id()),
        ..Config::default()
    })
    .await
    .unwrap();
    // The room's talker: a steady voice-like tone into the microphone the whole time.
    let talker_pcm: Vec<u8> = (0..48_000 * 30)
        .flat_map(|i| {
            let t = i as f32 / 48_000.0;
            let am = 0.6 + 0.4 * (std::f32::consts::TAU * 3.0 * t).sin();
            ((0.3 * am * (std::f32::consts::TAU * 300.0 * t).sin() * 32_767.0) as i16).to_le_bytes()
        })
        .collect();
    let mut talker = Command::new("pacat")
        .args([
            "-d",
            "estrade_nearend",
            "--raw",
            "--format=s16le",
            "--channels=1",
            "--rate=48000",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .expect("pacat runs");
    let mut talker_in = talker.stdin.take().unwrap();
    std::thread::spawn(move || talker_in.write_all(&talker_pcm));

    let mut child = cli()
        .args([
            "--backend",
            &server.url(),
            "--email",
            seed::DEMO_TRAINER_EMAIL,
        ])
        .args([
            "--session",
            &seed::sessions::LIVE.to_string(),
            "--seconds",
            "60",
        ])
        .args([
            "--mic",
            "pulseaudio:estrade_mic",
            "--speaker",
            "pulseaudio:estrade_speaker",
        ])
        .env("ESTRADE_PASSWORD", seed::DEMO_PASSWORD)
        .stdin(Stdio::piped())
        // Its errors in the test's output.
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            if tx.send(value).is_err() {
                break;
            }
        }
    });
    let mut lines = Lines(rx, Vec::new());
    let mut say = |command: &str| writeln!(stdin, "{command}").unwrap();
    lines.until("the microphone published", |l| {
        l["event"] == "local_track_published"
    });
    say("mute");
    lines.until("mute done", |l| l["event"] == "command_done");
    lines.until("you are muted", |l| l["event"] == "spoke_while_muted");
    say("unmute");
    lines.until("unmute done", |l| l["event"] == "command_done");
    say("mic synthetic:tone");
    lines.until("the switch", |l| {
        l["event"] == "device_switched" && l["device"] == "synthetic:tone"
    });
    say("camera off");
    let refused = lines.until("an answer", |l| {
        l["event"] == "command_failed" || l["event"] == "command_done"
    });
    assert_eq!(
        refused["event"], "command_failed",
        "no camera published: {refused}"
    );
    say("mic nowhere:at-all");
    let failed = lines.until("an answer", |l| {
        l["event"] == "command_failed" || l["event"] == "command_done"
    });
    assert!(
        failed["error"].as_str().unwrap().contains("nowhere:at-all"),
        "{failed}"
    );
    say("leave");
    lines.until("the end", |l| l["event"] == "disconnected");
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(
        status.success(),
        "the CLI ended well after a failed command"
    );
    let _ = talker.kill();
    let _ = talker.wait();
    server.shutdown().await;
}
