//! `join(...)`: connect, wait for the JoinResponse, start WebRTC, hand back a cheap-to-clone
//! [`Room`] handle and a bounded stream of [`RoomEvent`]s.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use estrade_media::{AudioSource, VideoSource};
use estrade_rtc::{PeerConnections, RtcConfig, RtcError};
use estrade_session::{
    ChatError, ChatMessage, DisconnectReason, PublishError, Session, SessionEvent, SessionState,
    TrackSettings, TrackSid, TrackSource,
};
use futures_util::StreamExt as _;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::audio::{self, AudioOutput};
use crate::driver::{Command, Driver, Joined, Publishing};
use crate::events::{LocalTrackEndReason, RoomEvent};
use crate::ice;
use crate::signal::{self, ConnectError};
use crate::video::{self, CameraSettings, VideoOutput};

/// The server must answer the upgrade with a JoinResponse within this.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `leave` waits for the microphone and camera tasks to stop (one frame each).
const MEDIA_STOP_TIMEOUT: Duration = Duration::from_secs(2);
/// Events waiting in the channel for the application. Beyond, they wait in the room
/// (`OUTBOX_CAP` more), and past that the room stops reading the network until the
/// application catches up. Nothing is dropped, and commands never wait on it.
const EVENT_CAPACITY: usize = 256;
const COMMAND_CAPACITY: usize = 32;

/// Where and as whom to join: what the organization's backend hands out.
#[derive(Clone)]
pub struct JoinOptions {
    /// The LiveKit URL (`wss://…`; `ws://` only on this machine).
    pub url: String,
    /// The LiveKit access token (a JWT). Never logged.
    pub token: String,
    /// Where remote microphones play; `None`: they are received but not decoded.
    pub audio_output: Option<Arc<dyn AudioOutput>>,
    /// Where remote cameras show; `None`: they are received but not decoded.
    pub video_output: Option<Arc<dyn VideoOutput>>,
}

impl std::fmt::Debug for JoinOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinOptions")
            .field("url", &self.url)
            .field("token", &"<redacted>")
            .field("audio_output", &self.audio_output.is_some())
            .field("video_output", &self.video_output.is_some())
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The server answered the upgrade with a LeaveRequest (room full, duplicate…).
    #[error("the server refused the join: {0}")]
    Refused(String),
    #[error("the server's first message was not a usable JoinResponse: {0}")]
    Protocol(String),
    #[error("no JoinResponse within {0:?}")]
    Timeout(Duration),
    #[error("the signalling connection closed during the join: {0}")]
    Closed(String),
    #[error("WebRTC could not start: {0}")]
    Rtc(#[from] RtcError),
}

/// Why a command on the [`Room`] handle failed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandError {
    #[error("the room is closed")]
    Closed,
    #[error(transparent)]
    Chat(#[from] ChatError),
    /// The role may not publish this, or the room is not connected.
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("this source is already published")]
    AlreadyPublished,
    #[error("this source is not published")]
    NotPublished,
    #[error("the media stack failed: {0}")]
    Media(String),
}

/// The bounded stream of what happens in the room; `Session(Disconnected { .. })` is last.
pub type RoomEvents = mpsc::Receiver<RoomEvent>;

/// A joined room. Clones share the same room; when the last clone is dropped the engine
/// leaves the room.
#[derive(Clone, Debug)]
pub struct Room {
    commands: mpsc::Sender<Command>,
    /// The microphone and camera tasks, so `leave` returns once they have stopped (a task
    /// still encoding when the runtime shuts down would panic on its next timer).
    media: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
    /// The tracks we published last, per source: their counters, for [`Room::frames_sent`].
    sent: Arc<std::sync::Mutex<Vec<(TrackSource, estrade_rtc::LocalTrack)>>>,
    /// The uplink estimate our cameras share, kbit/s (0 until a camera is published).
    uplink_kbps: Arc<std::sync::atomic::AtomicU32>,
}

/// Joins the room `options` points at.
pub async fn join(options: JoinOptions) -> Result<(Room, RoomEvents), JoinError> {
    let started = Instant::now();
    let url = signal::rtc_url(&options.url)?;
    let on_loopback = signal::is_loopback(&url);
    let mut ws = signal::connect(&url, &options.token).await?;
    let mut session = Session::new(Instant::now(), unix_ms_now());
    let deadline = started + JOIN_TIMEOUT;
    while session.state() == SessionState::Joining {
        let frame = match tokio::time::timeout_at(deadline.into(), ws.next()).await {
            Err(_) => return Err(JoinError::Timeout(JOIN_TIMEOUT)),
            Ok(Some(Ok(Message::Binary(frame)))) => frame,
            Ok(Some(Ok(Message::Close(close)))) => {
                return Err(JoinError::Closed(
                    close.map(|c| c.reason.to_string()).unwrap_or_default(),
                ));
            }
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => return Err(JoinError::Closed(e.to_string())),
            Ok(None) => return Err(JoinError::Closed("end of stream".into())),
        };
        session
            .handle_frame(Instant::now(), &frame)
            .map_err(|e| JoinError::Protocol(e.to_string()))?;
    }
    if session.state() == SessionState::Disconnected {
        let reason = std::iter::from_fn(|| session.poll_event())
            .find_map(|e| match e {
                SessionEvent::Disconnected {
                    reason: DisconnectReason::JoinRefused(r),
                    ..
                } => Some(r),
                _ => None,
            })
            .unwrap_or_default();
        return Err(JoinError::Refused(reason));
    }

    let (rtc_tx, rtc_events) = mpsc::channel(crate::driver::RTC_EVENT_CAPACITY);
    let config = RtcConfig {
        ice_servers: ice::usable(session.ice_servers(), on_loopback),
        allow_loopback: on_loopback,
    };
    let pcs = PeerConnections::new(config, rtc_tx).await?;
    // The data channels must be in the first publisher offer; offering now (as the SDKs do
    // with fast_publish) also gets the publisher PC connected before the first publish.
    let offer = pcs.create_publisher_offer().await?;
    session
        .publisher_offer(Instant::now(), offer)
        .map_err(|e| JoinError::Protocol(e.to_string()))?;

    let (events_tx, events) = mpsc::channel(EVENT_CAPACITY);
    let (commands, commands_rx) = mpsc::channel(COMMAND_CAPACITY);
    let uplink_kbps = Arc::default();
    let driver = Driver::new(
        Joined {
            started,
            url,
            token: options.token.clone(),
            on_loopback,
            ws,
            session,
            pcs,
            rtc_events,
        },
        commands_rx,
        events_tx,
        options.audio_output.clone(),
        options.video_output.clone(),
        Arc::clone(&uplink_kbps),
    );
    tokio::spawn(driver.run());
    let media = Arc::default();
    let sent = Arc::default();
    Ok((
        Room {
            commands,
            media,
            sent,
            uplink_kbps,
        },
        events,
    ))
}

impl Room {
    /// Sends a chat message to everyone (a `lk.chat` text stream, plus the legacy packet).
    /// Returns it as others will see it (id, our identity, timestamp).
    pub async fn send_chat(&self, text: impl Into<String>) -> Result<ChatMessage, CommandError> {
        let (reply, answer) = oneshot::channel();
        self.command(Command::SendChat {
            text: text.into(),
            reply,
        })
        .await?;
        Ok(answer.await.map_err(|_| CommandError::Closed)??)
    }

    /// Publishes a microphone whose audio comes from `source` (Opus, 20 ms, FEC, DTX). A role
    /// that may not publish a microphone gets [`PublishError::NotAllowed`] and nothing is
    /// sent. The track's sid arrives as `LocalTrackPublished`.
    pub async fn publish_microphone(&self, source: impl AudioSource) -> Result<(), CommandError> {
        let (track, control) = self.publish(Publishing::Microphone).await?;
        let notices = self.commands.clone();
        self.track_media(tokio::spawn(async move {
            let enabled = control.enabled;
            let end = audio::pump_microphone(source, track.clone(), enabled, notices.clone()).await;
            pump_ended(&notices, TrackSource::Microphone, track, end).await;
        }));
        Ok(())
    }

    /// Publishes a camera whose frames come from `source`, encoded as `settings` say
    /// (codec, size, simulcast layers). A role that may not publish a camera (a student)
    /// gets [`PublishError::NotAllowed`].
    pub async fn publish_camera(
        &self,
        source: impl VideoSource,
        settings: CameraSettings,
    ) -> Result<(), CommandError> {
        let layers = settings.layers();
        let (track, control) = self
            .publish(Publishing::Camera {
                codec: settings.codec,
                layers: layers.clone(),
            })
            .await?;
        let notices = self.commands.clone();
        self.track_media(tokio::spawn(async move {
            let (enabled, policy) = (control.enabled, control.policy);
            let end =
                video::pump_camera(source, settings, layers, track.clone(), enabled, policy).await;
            pump_ended(&notices, TrackSource::Camera, track, end).await;
        }));
        Ok(())
    }

    /// Stops publishing the microphone (renegotiation; the others see the track go).
    pub async fn unpublish_microphone(&self) -> Result<(), CommandError> {
        self.unpublish(TrackSource::Microphone).await
    }

    pub async fn unpublish_camera(&self) -> Result<(), CommandError> {
        self.unpublish(TrackSource::Camera).await
    }

    /// Mutes (false) or unmutes the published microphone: nothing is sent while muted and
    /// the others see the track muted. No renegotiation.
    pub async fn set_microphone_enabled(&self, enabled: bool) -> Result<(), CommandError> {
        self.set_enabled(TrackSource::Microphone, enabled).await
    }

    /// Turns the published camera off (muted, nothing sent) or back on (keyframe first).
    pub async fn set_camera_enabled(&self, enabled: bool) -> Result<(), CommandError> {
        self.set_enabled(TrackSource::Camera, enabled).await
    }

    /// Tells the server how a remote camera is shown here: the tile's size picks the
    /// simulcast layer it forwards (a 320×180 tile gets the quarter layer, not 720p), and a
    /// hidden tile (`enabled: false`) is not forwarded at all. Default: full size.
    pub async fn set_track_settings(
        &self,
        track: TrackSid,
        settings: TrackSettings,
    ) -> Result<(), CommandError> {
        self.command(Command::TrackSettings { track, settings })
            .await
    }

    /// Tests only: makes the room's task panic, as a bug would, to prove the room still
    /// ends properly (`Disconnected { Internal }`, connections closed).
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub async fn panic_for_tests(&self) {
        let _ = self.command(Command::Panic).await;
    }

    /// How fast our cameras may send together, in kbit/s, by the estimate the server's
    /// receiver reports feed: what a connection-quality badge or a test reads. 0 until a
    /// camera is published.
    pub fn uplink_estimate_kbps(&self) -> u32 {
        self.uplink_kbps.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Encoded frames sent from the last track published for `source` (0 if none): a
    /// muted or ended track's count stands still.
    pub fn frames_sent(&self, source: TrackSource) -> u64 {
        let sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        sent.iter()
            .find(|(s, _)| *s == source)
            .map_or(0, |(_, t)| t.frames_written())
    }

    async fn publish(
        &self,
        what: Publishing,
    ) -> Result<(estrade_rtc::LocalTrack, crate::driver::PumpControl), CommandError> {
        let source = match &what {
            Publishing::Microphone => TrackSource::Microphone,
            Publishing::Camera { .. } => TrackSource::Camera,
        };
        let (reply, answer) = oneshot::channel();
        self.command(Command::Publish { what, reply }).await?;
        let (track, control) = answer.await.map_err(|_| CommandError::Closed)??;
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        sent.retain(|(s, _)| *s != source);
        sent.push((source, track.clone()));
        Ok((track, control))
    }

    async fn unpublish(&self, source: TrackSource) -> Result<(), CommandError> {
        let (reply, answer) = oneshot::channel();
        self.command(Command::Unpublish { source, reply }).await?;
        answer.await.map_err(|_| CommandError::Closed)?
    }

    async fn set_enabled(&self, source: TrackSource, enabled: bool) -> Result<(), CommandError> {
        let (reply, answer) = oneshot::channel();
        self.command(Command::SetEnabled {
            source,
            enabled,
            reply,
        })
        .await?;
        answer.await.map_err(|_| CommandError::Closed)?
    }

    /// Leaves the room and waits until the server was told and the connections are closed.
    /// Leaving a room that is already closed is not an error.
    pub async fn leave(&self) {
        let (done, left) = oneshot::channel();
        if self.command(Command::Leave { done }).await.is_ok() {
            let _ = left.await;
        }
        // The room dropped its publications: each media task stops at its next frame.
        let tasks = std::mem::take(&mut *self.media_tasks());
        let aborts: Vec<_> = tasks.iter().map(JoinHandle::abort_handle).collect();
        let stopped = futures_util::future::join_all(tasks);
        if tokio::time::timeout(MEDIA_STOP_TIMEOUT, stopped)
            .await
            .is_err()
        {
            // Not left running detached: each stops at its next await.
            tracing::warn!("a media task did not stop within {MEDIA_STOP_TIMEOUT:?} of leaving");
            aborts.iter().for_each(|a| a.abort());
        }
    }

    fn track_media(&self, task: JoinHandle<()>) {
        let mut tasks = self.media_tasks();
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    fn media_tasks(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
        // Plain data: a panic elsewhere while holding it leaves nothing half-done.
        self.media.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn command(&self, command: Command) -> Result<(), CommandError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| CommandError::Closed)
    }
}

/// A pump stopped. Unpublished: the room asked for it, nothing to say. Otherwise (its
/// source ended, the encoder or the stack failed) the room ends the publication and tells
/// the application: a track that silently stops sending looks live to everyone else.
async fn pump_ended(
    commands: &mpsc::Sender<Command>,
    source: TrackSource,
    track: estrade_rtc::LocalTrack,
    end: audio::PumpEnd,
) {
    let reason = match end {
        audio::PumpEnd::Unpublished => {
            tracing::debug!(?source, "media stopped: unpublished");
            return;
        }
        audio::PumpEnd::SourceEnded(why) => LocalTrackEndReason::SourceEnded(why),
        audio::PumpEnd::Failed(why) => LocalTrackEndReason::Failed(why),
    };
    tracing::warn!(?source, ?reason, "media stopped");
    // If the room is gone, so is the publication.
    let _ = commands
        .send(Command::PumpEnded {
            source,
            track,
            reason,
        })
        .await;
}

fn unix_ms_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
