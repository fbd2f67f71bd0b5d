//! `estrade-cli`: Estrade without a window. Joins through the organization's backend
//! (`--backend --email --session`, password in ESTRADE_PASSWORD) or straight to LiveKit
//! (`--url` with a token in ESTRADE_TOKEN, or `--api-key` with ESTRADE_API_SECRET to mint
//! one per bot), publishes a synthetic microphone and camera, decodes remote cameras, sends
//! chat, and prints every event as a JSON line on stdout (`{"bot": i, "t_ms": …, "event": …}`). `--bots N` runs N participants in
//! one process, for demos and load tests. Secrets come from the environment, never argv,
//! and are removed from it once read (see `secrets.rs`).
//! Real devices: `--list-devices`, `--mic`, `--speaker`, `--camera-device` (with echo
//! cancellation, noise suppression and gain control unless `--no-aec/--no-ns/--no-agc`);
//! commands on stdin, one per line (see `commands.rs`): mute, camera off, mic/speaker
//! switches, say, leave.

mod commands;
mod devices;
mod json;
mod secrets;
mod video;

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use estrade_backend::api::SessionId;
use estrade_backend::{Backend, BackendUrl};
use estrade_devices::ProcessingConfig;
use estrade_engine::synthetic::ToneBursts;
use estrade_engine::synthetic_video::TestPattern;
use estrade_engine::{
    CameraSettings, JoinOptions, PulseRecorder, RoomEvent, SessionEvent, TrackKind, TrackSettings,
};
use serde_json::json;
use tokio::sync::broadcast;

use crate::secrets::Secrets;

/// Where `--help` tells the secrets go, since none of them is a flag.
const SECRETS_HELP: &str = "\
Secrets are read from the environment, never from the command line (where other users and
shell history would see them), and removed from it once read:
  ESTRADE_PASSWORD    the backend account's password (with --backend)
  ESTRADE_TOKEN       a LiveKit access token (with --url)
  ESTRADE_API_SECRET  the LiveKit API secret (with --url and --api-key)";

/// The command line. Holds no secret (see [`Secrets`]), so `Debug` is safe.
#[derive(Parser, Debug)]
#[command(
    version,
    about = "Headless Estrade: join, publish synthetic media, print events as JSON lines",
    after_help = SECRETS_HELP
)]
struct Args {
    /// The organization's backend (https://…, or http:// on loopback); the password is
    /// read from ESTRADE_PASSWORD.
    #[arg(long, requires_all = ["email", "session"], conflicts_with = "url")]
    backend: Option<String>,
    #[arg(long)]
    email: Option<String>,
    /// The live session to join (its id in the backend).
    #[arg(long)]
    session: Option<String>,
    /// A LiveKit URL, to join without the backend (with a token in ESTRADE_TOKEN, or
    /// --api-key).
    #[arg(long)]
    url: Option<String>,
    /// With --url: mint a token per bot (identities bot-1…bot-N) instead of ESTRADE_TOKEN,
    /// signed with the API secret in ESTRADE_API_SECRET.
    #[arg(long, requires = "room")]
    api_key: Option<String>,
    #[arg(long)]
    room: Option<String>,
    /// How many participants to run (more than one needs --api-key).
    #[arg(long, default_value_t = 1)]
    bots: usize,
    /// Publish a synthetic microphone: tone bursts at this frequency (Hz).
    #[arg(long, conflicts_with = "mic")]
    tone: Option<f64>,
    /// List microphones, speakers and cameras (JSON) and exit.
    #[arg(long, exclusive = true)]
    list_devices: bool,
    /// Publish this microphone (an id from --list-devices, or `default`), processed.
    #[arg(long, num_args = 0..=1, default_missing_value = "default")]
    mic: Option<String>,
    /// Play remote microphones on this speaker (an id, or `default`).
    #[arg(long, num_args = 0..=1, default_missing_value = "default")]
    speaker: Option<String>,
    /// Publish this camera (an id, `default`, or synthetic:pattern), at 720p30 or the nearest
    /// it offers.
    #[arg(long, num_args = 0..=1, default_missing_value = "default", conflicts_with = "camera")]
    camera_device: Option<String>,
    /// No echo cancellation on the microphone (for comparisons).
    #[arg(long)]
    no_aec: bool,
    /// No noise suppression.
    #[arg(long)]
    no_ns: bool,
    /// No automatic gain control.
    #[arg(long)]
    no_agc: bool,
    /// Send this chat message once connected and someone else is in the room.
    #[arg(long)]
    say: Option<String>,
    /// Publish a synthetic camera (the stamped test pattern) of this size, e.g. 1280x720
    /// (even width and height).
    #[arg(long, value_parser = video::parse_camera_size)]
    camera: Option<(u32, u32)>,
    /// The camera's codec: h264 (the default: lower latency, measured) or vp8.
    #[arg(long, default_value = "h264")]
    codec: String,
    /// Send the camera as simulcast (full, half and quarter size).
    #[arg(long)]
    simulcast: bool,
    /// Decode remote cameras (and report frames and sizes per participant at the end).
    #[arg(long)]
    watch: bool,
    /// With --watch: ask for remote cameras at this tile size (the server picks the layer).
    #[arg(long, value_parser = video::parse_size, requires = "watch")]
    tile: Option<(u32, u32)>,
    /// Every 250 ms, report what is heard (each remote microphone's frames played from
    /// data, from FEC, concealed) and, with --watch, seen (frames, size) so far.
    #[arg(long)]
    stats: bool,
    /// Leave after this many seconds (default: run until Ctrl-C or the room ends).
    #[arg(long)]
    seconds: Option<u64>,
}

/// `--stats`: one line per remote microphone and camera, counters since it arrived.
fn print_stats(bot: usize, t_ms: u64, recorder: &PulseRecorder, screen: &video::FrameCounter) {
    for (from, heard) in recorder.all() {
        let jitter = heard.playout.jitter;
        print_line(json!({
            "event": "audio_stats", "bot": bot, "t_ms": t_ms, "from": from.as_str(),
            "played": jitter.played, "recovered": jitter.recovered,
            "concealed": jitter.concealed, "discarded": jitter.discarded,
            "received": jitter.received, "trimmed": jitter.trimmed,
            "from_copies": jitter.from_copies,
        }));
    }
    for (from, seen) in screen.snapshot() {
        print_line(json!({
            "event": "video_stats", "bot": bot, "t_ms": t_ms, "from": from,
            "frames": seen.frames, "width": seen.size.0, "height": seen.size.1,
        }));
    }
}

/// Synchronous on purpose: the secrets are taken out of the environment while this process
/// still has a single thread, and only then is the tokio runtime (and its threads) started.
fn main() -> anyhow::Result<()> {
    // SAFETY: nothing has started a thread yet: std starts none before `main`, nothing
    // linked into this binary starts one from a static initializer (strace shows no clone
    // before the runtime is built), and the runtime and every other thread (stdin, devices,
    // cameras) come after this line.
    let secrets = unsafe { secrets::take_from_env() }?;
    secrets::refuse_on_command_line(std::env::args_os())?;
    let args = Args::parse();
    // Diagnostics on stderr (stdout is the JSON event stream): warnings unless RUST_LOG
    // asks for more.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("the tokio runtime")?
        .block_on(run(args, secrets))
}

async fn run(args: Args, secrets: Secrets) -> anyhow::Result<()> {
    if args.list_devices {
        print_line(devices::list().await?);
        return Ok(());
    }
    let device_args = devices::DeviceArgs {
        mic: args.mic.clone(),
        speaker: args.speaker.clone(),
        camera: args.camera_device.clone(),
        processing: ProcessingConfig {
            echo_cancellation: !args.no_aec,
            noise_suppression: !args.no_ns,
            gain_control: !args.no_agc,
            ..ProcessingConfig::ALL
        },
    };
    if device_args.any() && args.bots != 1 {
        bail!("--mic, --speaker and --camera-device are for one participant (--bots 1)");
    }
    let joins = join_options(&args, &secrets).await?;
    let commands = stdin_commands();
    let started = Instant::now();
    let mut local = Some(devices::open(&device_args).await?);
    let bots: Vec<_> = joins
        .into_iter()
        .enumerate()
        .map(|(i, options)| {
            let media = Media {
                tone: args.tone,
                mic: args.mic.is_some(),
                codec: args.codec.clone(),
                simulcast: args.simulcast,
                camera: args
                    .camera
                    .map(|size| video::camera_settings(size, &args.codec, args.simulcast))
                    .transpose(),
                watch: args.watch,
                tile: args.tile,
                stats: args.stats,
            };
            let bot = Bot {
                number: i + 1,
                started,
                media,
                say: args.say.clone(),
                seconds: args.seconds,
                // Devices are one participant's.
                local: local.take(),
                commands: commands.resubscribe(),
            };
            tokio::spawn(run_bot(bot, options))
        })
        .collect();
    let mut failed = false;
    for bot in bots {
        if let Err(e) = bot.await? {
            print_line(json!({"event": "error", "error": format!("{e:#}")}));
            failed = true;
        }
    }
    if failed {
        bail!("a bot failed");
    }
    Ok(())
}

/// One `JoinOptions` per bot.
async fn join_options(args: &Args, secrets: &Secrets) -> anyhow::Result<Vec<JoinOptions>> {
    let options = |url: String, token: String| JoinOptions {
        url,
        token,
        audio_output: None,
        video_output: None,
    };
    if let Some(backend) = &args.backend {
        if args.bots != 1 {
            bail!("--bots needs --url with --api-key (one backend account is one participant)");
        }
        let password = secrets.password.as_ref().context("set ESTRADE_PASSWORD")?;
        let backend = Backend::new(BackendUrl::parse(backend)?)?;
        let user = backend
            .login(args.email.as_deref().unwrap_or_default(), password)
            .await?;
        let grant = user
            .join_session(&SessionId(args.session.clone().unwrap_or_default()))
            .await?;
        return Ok(vec![options(grant.url, grant.token)]);
    }
    let url = args
        .url
        .clone()
        .context("give --backend (with --email, --session) or --url")?;
    match (&args.api_key, &secrets.token) {
        (Some(key), _) => {
            let secret = secrets
                .api_secret
                .as_ref()
                .context("set ESTRADE_API_SECRET")?
                .expose();
            let room = args.room.as_deref().unwrap_or_default();
            (1..=args.bots)
                .map(|i| {
                    Ok(options(
                        url.clone(),
                        mint(key, secret, room, &format!("bot-{i}"))?,
                    ))
                })
                .collect()
        }
        (None, Some(token)) if args.bots == 1 => Ok(vec![options(url, token.expose().to_owned())]),
        (None, Some(_)) => bail!("--bots needs --api-key: one token is one participant"),
        (None, None) => bail!("give a token in ESTRADE_TOKEN, or --api-key and ESTRADE_API_SECRET"),
    }
}

fn mint(key: &str, secret: &str, room: &str, identity: &str) -> anyhow::Result<String> {
    use livekit_api::access_token::{AccessToken, VideoGrants};
    Ok(AccessToken::with_api_key(key, secret)
        .with_identity(identity)
        .with_name(identity)
        .with_ttl(Duration::from_secs(3600))
        .with_grants(VideoGrants {
            room_join: true,
            room: room.to_owned(),
            ..Default::default()
        })
        .to_jwt()?)
}

/// Lines read from stdin, each given to every bot. On a thread of its own, not tokio's
/// blocking pool: a read that never returns (stdin left open) must not hold up the exit.
fn stdin_commands() -> broadcast::Receiver<String> {
    let (tx, rx) = broadcast::channel(64);
    let spawned = std::thread::Builder::new()
        .name("estrade-stdin".into())
        .spawn(move || {
            for line in std::io::stdin().lines().map_while(Result::ok) {
                if !line.trim().is_empty() && tx.send(line).is_err() {
                    break;
                }
            }
        });
    if let Err(e) = spawned {
        print_line(json!({"event": "error", "error": format!("stdin is not read: {e}")}));
    }
    rx
}

/// One participant of this process.
struct Bot {
    number: usize,
    started: Instant,
    media: Media,
    say: Option<String>,
    seconds: Option<u64>,
    local: Option<devices::Local>,
    commands: broadcast::Receiver<String>,
}

/// What a bot sends and receives besides chat.
struct Media {
    tone: Option<f64>,
    /// Publish the device microphone (`--mic`).
    mic: bool,
    codec: String,
    simulcast: bool,
    camera: anyhow::Result<Option<CameraSettings>>,
    watch: bool,
    tile: Option<(u32, u32)>,
    stats: bool,
}

async fn run_bot(bot: Bot, mut options: JoinOptions) -> anyhow::Result<()> {
    let Bot {
        number: bot,
        started,
        media,
        say,
        seconds,
        local,
        mut commands,
    } = bot;
    let (audio, mut device_events, device_camera) = match local {
        Some(l) => (l.audio, l.events, l.camera),
        None => (None, None, None),
    };
    let recorder = PulseRecorder::default();
    options.audio_output = Some(match &audio {
        Some(devices) => devices.output(),
        None => std::sync::Arc::new(recorder.clone()),
    });
    let screen = video::FrameCounter::default();
    if media.watch {
        options.video_output = Some(std::sync::Arc::new(screen.clone()));
    }
    let camera = media.camera?;
    // Before joining, as `--camera` is checked when parsed: a size the encoder cannot take
    // would fail on every frame once published (devices offer only even sizes today, but
    // that is the devices crate's choice, not this one's guarantee).
    let device_camera = match device_camera {
        Some(source) => {
            let format = source.format();
            let size = (format.width, format.height);
            let settings = video::camera_settings(size, &media.codec, media.simulcast)
                .with_context(|| format!("--camera-device {}", source.id().as_str()))?;
            Some((
                source,
                CameraSettings {
                    fps: format.fps,
                    ..settings
                },
            ))
        }
        None => None,
    };
    let (room, mut events) = estrade_engine::join(options).await?;
    if let Some(freq) = media.tone {
        room.publish_microphone(ToneBursts::new(freq)).await?;
    } else if let Some(devices) = audio.as_ref().filter(|_| media.mic) {
        room.publish_microphone(devices.microphone_source()).await?;
    }
    if let Some(settings) = camera {
        room.publish_camera(
            TestPattern::new(settings.width, settings.height, settings.fps),
            settings,
        )
        .await?;
    }
    if let Some((source, settings)) = device_camera {
        room.publish_camera(source, settings).await?;
    }
    let stop = tokio::time::sleep(seconds.map_or(Duration::MAX / 4, Duration::from_secs));
    tokio::pin!(stop);
    let mut said = say.is_none();
    // Why the room ended, once it has; the timer and Ctrl-C ask to leave once.
    let mut ended: Option<estrade_engine::DisconnectReason> = None;
    let mut leaving = false;
    let (mut connected, mut others) = (false, 0usize);
    let t_ms = || started.elapsed().as_millis() as u64;
    let mut stats_tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = stats_tick.tick(), if media.stats => {
                print_stats(bot, t_ms(), &recorder, &screen);
            }
            event = events.recv() => {
                let Some(event) = event else { break };
                let mut line = json::event(&event);
                line["bot"] = json!(bot);
                line["t_ms"] = json!(t_ms());
                print_line(line);
                match &event {
                    RoomEvent::MediaConnected { .. } => connected = true,
                    RoomEvent::TrackSubscribed { track, kind: TrackKind::Video, .. } => {
                        if let Some((width, height)) = media.tile {
                            let settings = TrackSettings { enabled: true, width, height };
                            if let Err(e) = room.set_track_settings(track.clone(), settings).await {
                                print_line(json!({"event": "command_failed", "bot": bot,
                                    "command": "tile", "error": e.to_string()}));
                            }
                        }
                    }
                    RoomEvent::Session(SessionEvent::Joined { others: o, .. }) => others += o.len(),
                    RoomEvent::Session(SessionEvent::ParticipantJoined(_)) => others += 1,
                    RoomEvent::Session(SessionEvent::ParticipantLeft { .. }) => others = others.saturating_sub(1),
                    _ => {}
                }
                // Chat is not history: say it once someone is there to read it.
                if !said && connected && others > 0 {
                    // A message that cannot be sent is said so; the participant stays.
                    if let Err(e) = room.send_chat(say.clone().unwrap_or_default()).await {
                        print_line(json!({"event": "chat_failed", "bot": bot, "error": e.to_string()}));
                    }
                    said = true;
                }
                if let RoomEvent::Session(SessionEvent::Disconnected { reason, .. }) = &event {
                    ended = Some(reason.clone());
                    break;
                }
            }
            Some(event) = async { device_events.as_mut()?.recv().await } => {
                let mut line = devices::event(&event);
                line["bot"] = json!(bot);
                line["t_ms"] = json!(t_ms());
                print_line(line);
            }
            Ok(text) = commands.recv() => {
                let mut line = match commands::parse(&text) {
                    Ok(command) => commands::run(&command, &room, audio.as_ref()).await,
                    Err(error) => json!({"event": "command_failed", "command": text, "error": error}),
                };
                line["bot"] = json!(bot);
                line["t_ms"] = json!(t_ms());
                print_line(line);
            }
            _ = &mut stop, if !leaving => {
                leaving = true;
                room.leave().await;
            }
            _ = tokio::signal::ctrl_c(), if !leaving => {
                leaving = true;
                room.leave().await;
            }
        }
    }
    if media.stats {
        print_stats(bot, t_ms(), &recorder, &screen);
    }
    for (from, heard) in recorder.all() {
        let mut latencies = heard.pulses.latencies_ms.clone();
        latencies.sort_by(f64::total_cmp);
        print_line(json!({
            "event": "audio_heard", "bot": bot, "from": from.as_str(),
            "bursts": latencies.len(),
            "mouth_to_ear_p50_ms": latencies.get(latencies.len() / 2),
            "frequencies_hz": heard.pulses.frequencies_hz.iter().map(|f| f.round()).collect::<Vec<_>>(),
        }));
    }
    for (from, seen) in screen.take() {
        print_line(json!({
            "event": "video_seen", "bot": bot, "from": from,
            "frames": seen.frames,
            "sizes": seen.sizes.iter().map(|(w, h)| format!("{w}x{h}")).collect::<Vec<_>>(),
        }));
    }
    // Ending because we left is success; the network or the server ending it is not
    // (scripts see it in the status).
    match ended {
        None | Some(estrade_engine::DisconnectReason::ClientInitiated) => Ok(()),
        Some(reason) => anyhow::bail!("the room ended: {reason:?}"),
    }
}

fn print_line(line: serde_json::Value) {
    println!("{line}");
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    /// Were a secret a flag again (or read by clap from the environment), it would be in
    /// argv or in `Args`, whose `Debug` prints everything.
    #[test]
    fn no_flag_takes_a_secret() {
        for arg in Args::command().get_arguments() {
            let id = arg.get_id().as_str();
            assert!(arg.get_env().is_none(), "--{id} reads the environment");
            assert!(
                !["password", "token", "api_secret"].contains(&id),
                "--{id} is a secret"
            );
        }
        let args =
            Args::try_parse_from(["estrade-cli", "--url", "ws://x", "--api-key", "k"]).unwrap_err();
        assert!(args.to_string().contains("--room"), "{args}");
    }

    #[test]
    fn help_says_where_the_secrets_go() {
        let help = Args::command().render_long_help().to_string();
        for var in secrets::SecretVar::ALL {
            assert!(help.contains(var.env()), "{help}");
        }
    }
}
