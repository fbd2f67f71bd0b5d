//! The room's task: moves bytes between the signalling socket, the WebRTC stack and the
//! session state machine, and turns application commands into session calls. All protocol
//! decisions are the session's; this only does I/O.

use std::time::{Duration, Instant};

use std::collections::VecDeque;
use std::sync::Arc;

use estrade_rtc::{
    ConnectionState, LocalTrack, PeerConnections, RemoteTrack, RtcEvent, Target, VideoCodec,
};
use estrade_session::{
    ChatError, ChatMessage, DisconnectReason, ParticipantSid, RtcCommand, Session, SessionEvent,
    SessionState, SignalTarget, TrackRequest, TrackSettings, TrackSid, TrackSource, VideoLayer,
};
use futures_util::SinkExt as _;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::{self, Message};

use crate::audio::AudioOutput;
use crate::events::RoomEvent;
use crate::room::CommandError;
use crate::signal::{ConnectError, Ws};
use crate::sound_guard::{DownlinkArrivals, SoundGuard};
use crate::video::{self, VideoOutput};

/// Closing the socket politely must not hold the room open.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Events the application has not taken yet, beyond the channel's own capacity. Past
/// this the room stops reading the network (the server's socket backs up, not our
/// memory) but still serves commands: `leave` never waits on the application.
const OUTBOX_CAP: usize = 1024;
/// How long the rest of a broken socket is read for the server's last words.
const LAST_WORDS: Duration = Duration::from_millis(500);
/// Reports from the WebRTC stack (candidates, states, data) waiting for the engine.
pub(crate) const RTC_EVENT_CAPACITY: usize = 256;
/// Rejected messages told per window; the others are counted.
const REJECTIONS_TOLD: u32 = 5;
const REJECTION_WINDOW: Duration = Duration::from_secs(1);

/// How many rejected messages were told in the current window, and not told since the
/// last report.
struct Rejections {
    window: Instant,
    told: u32,
    untold: u64,
    /// The last one not told: told, with the count, once the flood is over.
    last_untold: Option<String>,
}

pub(crate) enum Command {
    Publish {
        what: Publishing,
        reply: oneshot::Sender<Result<(LocalTrack, PumpControl), CommandError>>,
    },
    Unpublish {
        source: TrackSource,
        reply: oneshot::Sender<Result<(), CommandError>>,
    },
    SetEnabled {
        source: TrackSource,
        enabled: bool,
        reply: oneshot::Sender<Result<(), CommandError>>,
    },
    SendChat {
        text: String,
        reply: oneshot::Sender<Result<ChatMessage, ChatError>>,
    },
    TrackSettings {
        track: TrackSid,
        settings: TrackSettings,
    },
    Leave {
        done: oneshot::Sender<()>,
    },
    /// A media task has something to tell the application (in order with the rest). Boxed:
    /// rare, and an event is much larger than the other commands.
    Notice(Box<RoomEvent>),
    /// Tests only: the room task panics, as a bug would.
    #[cfg(feature = "test-hooks")]
    Panic,
    /// A pump stopped on its own (its source ended, it failed): end that publication.
    PumpEnded {
        source: TrackSource,
        track: LocalTrack,
        reason: crate::events::LocalTrackEndReason,
    },
}

/// What `join` set up before the room task takes over.
pub(crate) struct Joined {
    pub started: Instant,
    /// The `/rtc` URL and the original token, for reconnects.
    pub url: url::Url,
    pub token: String,
    pub on_loopback: bool,
    pub ws: Ws,
    pub session: Session,
    pub pcs: PeerConnections,
    pub rtc_events: mpsc::Receiver<RtcEvent>,
}

pub(crate) struct Driver {
    started: Instant,
    url: url::Url,
    /// Used for reconnects until the server hands out a fresher one. Never logged.
    token: String,
    on_loopback: bool,
    /// `None` between a lost socket and the next attempt's.
    ws: Option<Ws>,
    /// A reconnect attempt's socket being opened (off the loop: commands go on).
    connecting: Option<tokio::task::JoinHandle<Result<Ws, ConnectError>>>,
    session: Session,
    pcs: PeerConnections,
    rtc_events: mpsc::Receiver<RtcEvent>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<RoomEvent>,
    publisher_up: bool,
    subscriber_up: bool,
    /// Data waits in the session until `_reliable` finished its handshake.
    reliable_open: bool,
    media_connected: bool,
    /// Who waits for the leave to finish.
    leaving: Vec<oneshot::Sender<()>>,
    audio_output: Option<Arc<dyn AudioOutput>>,
    video_output: Option<Arc<dyn VideoOutput>>,
    /// Our microphone and camera, when published.
    published: Vec<Publication>,
    /// The engine's own events, emitted (in order) on the next flush.
    pending: VecDeque<RoomEvent>,
    /// Events emitted while the channel was full, oldest first: delivered as the
    /// application makes room, never dropped, never waited for.
    outbox: VecDeque<RoomEvent>,
    rejections: Rejections,
    /// One task per played remote track; each returns whose it was. Aborted when the
    /// room ends.
    remote_media: tokio::task::JoinSet<ParticipantSid>,
    /// Tracks being played, per participant.
    tracks_of: std::collections::HashMap<ParticipantSid, usize>,
    /// Tracks that arrived before their participant was in the roster.
    unclaimed: Vec<(ParticipantSid, RemoteTrack)>,
    /// How fast our cameras may send (`uplink.rs`).
    uplink: estrade_media::UplinkRate,
    /// Its target, for `Room::uplink_estimate_kbps`.
    uplink_kbps: Arc<std::sync::atomic::AtomicU32>,
    /// Remote media counted at arrival, and what pauses the video when the sound is
    /// being lost.
    sound: Arc<DownlinkArrivals>,
    guard: SoundGuard,
    guard_tick: tokio::time::Interval,
    /// `RemoteVideoPausedForSound` told, `RemoteVideoResumed` not yet.
    video_paused_for_sound: bool,
}

/// What to publish.
pub(crate) enum Publishing {
    Microphone,
    Camera {
        codec: VideoCodec,
        /// Lowest first, the full size last; one entry without simulcast.
        layers: Vec<VideoLayer>,
    },
}

/// What the room's task tells a media pump while it runs.
pub(crate) struct PumpControl {
    /// Off: muted (by us or the server). Dropped: unpublished, the pump ends.
    pub enabled: watch::Receiver<bool>,
    /// Cameras only (a microphone's is never changed): rate and layers.
    pub policy: watch::Receiver<video::VideoPolicy>,
}

pub(crate) struct Publication {
    pub source: TrackSource,
    pub cid: String,
    /// What the server was asked: asked again after a full reconnect.
    pub request: TrackRequest,
    pub track: LocalTrack,
    /// Known once the server accepted the AddTrackRequest.
    pub sid: Option<TrackSid>,
    pub enabled: watch::Sender<bool>,
    /// Cameras: what the uplink allows them.
    pub policy: Option<watch::Sender<video::VideoPolicy>>,
}
impl Driver {
    pub(crate) fn new(
        joined: Joined,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<RoomEvent>,
        audio_output: Option<Arc<dyn AudioOutput>>,
        video_output: Option<Arc<dyn VideoOutput>>,
        uplink_kbps: Arc<std::sync::atomic::AtomicU32>,
    ) -> Self {
        Self {
            started: joined.started,
            url: joined.url,
            token: joined.token,
            on_loopback: joined.on_loopback,
            ws: Some(joined.ws),
            connecting: None,
            session: joined.session,
            pcs: joined.pcs,
            rtc_events: joined.rtc_events,
            commands,
            events,
            publisher_up: false,
            subscriber_up: false,
            reliable_open: false,
            media_connected: false,
            leaving: Vec::new(),
            audio_output,
            video_output,
            published: Vec::new(),
            pending: VecDeque::new(),
            outbox: VecDeque::new(),
            rejections: Rejections {
                window: Instant::now(),
                told: 0,
                untold: 0,
                last_untold: None,
            },
            remote_media: tokio::task::JoinSet::new(),
            tracks_of: std::collections::HashMap::new(),
            unclaimed: Vec::new(),
            uplink: estrade_media::UplinkRate::new(uplink::MIN_VIDEO_KBPS, uplink::MIN_VIDEO_KBPS),
            uplink_kbps,
            sound: Arc::new(DownlinkArrivals::default()),
            guard: SoundGuard::new(),
            guard_tick: {
                let mut tick = tokio::time::interval(crate::sound_guard::TICK);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tick
            },
            video_paused_for_sound: false,
        }
    }

    /// Runs the room until it ends. A panic in here (a bug) still ends it properly: the
    /// application gets `Disconnected { Internal }` and the connections are closed.
    pub(crate) async fn run(mut self) {
        use futures_util::FutureExt as _;
        let served = std::panic::AssertUnwindSafe(self.serve())
            .catch_unwind()
            .await;
        if let Err(panic) = served {
            let why = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            tracing::error!(%why, "the room's task panicked");
            // The session may be half-updated: it is not asked anything more.
            self.emit(RoomEvent::Session(SessionEvent::Disconnected {
                reason: DisconnectReason::Internal(why),
            }));
        }
        self.finish().await;
    }

    async fn serve(&mut self) {
        loop {
            self.apply_rtc_commands().await;
            self.flush().await;
            self.start_reconnect().await;
            if self.session.state() == SessionState::Disconnected {
                break;
            }
            // An attempt that failed with its socket still open: that socket is done.
            if !self.session.socket_wanted() {
                self.ws = None;
            }
            let wake = self
                .session
                .poll_timeout()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            // The application far behind: the network waits, commands do not.
            let reading = self.outbox.len() < OUTBOX_CAP;
            // A handle of its own: the permit must not borrow `self` while an arm runs.
            let events = self.events.clone();
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(command) => self.handle_command(command).await,
                    // Every handle is gone: nobody can use the room any more.
                    None => self.session.leave(),
                },
                permit = events.reserve(), if !self.outbox.is_empty() => match permit {
                    Ok(permit) => {
                        if let Some(event) = self.outbox.pop_front() {
                            permit.send(event);
                        }
                    }
                    // Nobody listens any more.
                    Err(_) => self.outbox.clear(),
                },
                message = next_message(&mut self.ws), if reading => self.handle_signal(message),
                opened = opened(&mut self.connecting) => self.handle_opened(opened).await,
                Some(event) = self.rtc_events.recv(), if reading => self.handle_rtc(event),
                _ = tokio::time::sleep_until(wake.into()) => self.session.handle_timeout(Instant::now()),
                _ = self.guard_tick.tick() => self.check_sound(),
            }
        }
    }

    /// Closes everything, answers who waits for the leave, and hands over what the
    /// application has not taken yet.
    async fn finish(mut self) {
        self.remote_media.abort_all();
        self.unclaimed.clear();
        if let Some(connecting) = self.connecting.take() {
            connecting.abort();
        }
        if let Some(ws) = &mut self.ws {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.close(None)).await;
        }
        self.close_peer_connections().await;
        // Their `enabled` senders go: the microphone and camera tasks stop on their own
        // instead of outliving the room.
        self.published.clear();
        for done in self.leaving.drain(..) {
            let _ = done.send(());
        }
        // What the application has not taken yet (`Disconnected` last) still reaches it,
        // whenever it reads; the room itself is closed already.
        if !self.outbox.is_empty() {
            let (events, outbox) = (self.events, self.outbox);
            tokio::spawn(async move {
                for event in outbox {
                    if events.send(event).await.is_err() {
                        break;
                    }
                }
            });
        }
    }

    async fn handle_command(&mut self, command: Command) {
        match command {
            Command::Publish { what, reply } => {
                let _ = reply.send(self.publish(what).await);
            }
            Command::Unpublish { source, reply } => {
                let _ = reply.send(self.unpublish(source).await);
            }
            Command::SetEnabled {
                source,
                enabled,
                reply,
            } => {
                let _ = reply.send(self.set_enabled(source, enabled));
            }
            Command::SendChat { text, reply } => {
                let id = new_stream_id();
                let _ = reply.send(self.session.send_chat(Instant::now(), &id, &text));
            }
            Command::TrackSettings { track, settings } => {
                self.session.set_track_settings(&track, settings);
            }
            Command::Leave { done } => {
                self.leaving.push(done);
                self.session.leave();
            }
            Command::Notice(event) => self.pending.push_back(*event),
            #[cfg(feature = "test-hooks")]
            Command::Panic => panic!("asked to panic by a test"),
            Command::PumpEnded {
                source,
                track,
                reason,
            } => {
                // Only if it is still that track (not one published since).
                let at = self
                    .published
                    .iter()
                    .position(|p| p.source == source && p.track.same_as(&track));
                if let Some(at) = at {
                    let ended = self.end_publication(at, reason).await;
                    self.pending.push_back(ended);
                }
            }
        }
    }

    /// Writing failed: the server may have closed the socket right after saying why (a
    /// LeaveRequest: removed by a moderator, the room closed). That reason decides what
    /// comes next (a removed participant must not reconnect), so what is left to read is
    /// read, briefly, before the signal is declared lost.
    async fn read_last_words(&mut self, write_error: tungstenite::Error) {
        let deadline = tokio::time::Instant::now() + LAST_WORDS;
        let lost = |s: &Session| !s.signalling();
        while !lost(&self.session) {
            match tokio::time::timeout_at(deadline, next_message(&mut self.ws)).await {
                Ok(Some(Ok(Message::Binary(frame)))) => {
                    if let Err(e) = self.session.handle_frame(Instant::now(), &frame) {
                        self.reject(e.to_string());
                    }
                }
                Ok(Some(Ok(_))) => {}
                _ => break,
            }
        }
        self.ws = None;
        self.session
            .handle_signal_lost(Instant::now(), write_error.to_string());
    }

    fn handle_signal(&mut self, message: Option<Result<Message, tungstenite::Error>>) {
        let lost = match message {
            Some(Ok(Message::Binary(frame))) => {
                if let Err(e) = self.session.handle_frame(Instant::now(), &frame) {
                    self.reject(e.to_string());
                }
                return;
            }
            Some(Ok(Message::Close(close))) => format!(
                "closed by the server: {}",
                close.map(|c| c.reason.to_string()).unwrap_or_default()
            ),
            // Pings are answered by tungstenite; LiveKit sends no text frames.
            Some(Ok(_)) => return,
            Some(Err(e)) => e.to_string(),
            None => "end of stream".into(),
        };
        // A closed socket reads as closed forever: it is dropped, not polled again.
        self.ws = None;
        self.session.handle_signal_lost(Instant::now(), lost);
    }

    fn handle_rtc(&mut self, event: RtcEvent) {
        match event {
            RtcEvent::LocalCandidate {
                target,
                candidate_init,
            } => self
                .session
                .local_candidate(signal_target(target), candidate_init),
            RtcEvent::ConnectionStateChanged { target, state } => {
                let up = state == ConnectionState::Connected;
                match target {
                    Target::Publisher => self.publisher_up = up,
                    Target::Subscriber => self.subscriber_up = up,
                }
                let now = Instant::now();
                match state {
                    ConnectionState::Failed => self
                        .session
                        .handle_media_failed(now, format!("the {target:?} PeerConnection failed")),
                    ConnectionState::Disconnected => self.session.handle_media_interrupted(
                        now,
                        format!("the {target:?} PeerConnection lost its path"),
                    ),
                    _ => {}
                }
            }
            RtcEvent::DataChannelOpened { label } => self.reliable_open |= label == "_reliable",
            RtcEvent::DataReceived { data, .. } => {
                if let Err(e) = self.session.handle_data(Instant::now(), &data) {
                    self.reject(e.to_string());
                }
            }
            RtcEvent::TrackReceived(track) => self.track_received(track),
            RtcEvent::UplinkReported(report) => self.uplink_reported(report),
            other => tracing::debug!(?other, "WebRTC report not used"),
        }
    }

    /// Carries out what the session asks of the WebRTC stack, in order.
    async fn apply_rtc_commands(&mut self) {
        while let Some(command) = self.session.poll_rtc() {
            let result = match command {
                RtcCommand::ApplySubscriberOffer { id, sdp, .. } => {
                    match self.pcs.answer_subscriber_offer(sdp).await {
                        Ok(answer) => {
                            self.session
                                .remote_description_applied(SignalTarget::Subscriber);
                            self.session.subscriber_answer(id, answer);
                            Ok(())
                        }
                        Err(e) => Err(e),
                    }
                }
                RtcCommand::ApplyPublisherAnswer { sdp, .. } => {
                    let applied = self.pcs.apply_publisher_answer(sdp).await;
                    if applied.is_ok() {
                        self.session
                            .remote_description_applied(SignalTarget::Publisher);
                    }
                    applied
                }
                RtcCommand::AddRemoteCandidate {
                    target,
                    candidate_init,
                } => {
                    // One bad candidate is not fatal: others may work.
                    if let Err(e) = self
                        .pcs
                        .add_remote_candidate(rtc_target(target), &candidate_init)
                        .await
                    {
                        self.reject(e.to_string());
                    }
                    Ok(())
                }
                RtcCommand::RenegotiatePublisher => match self.pcs.create_publisher_offer().await {
                    Ok(offer) => {
                        if let Err(e) = self.session.publisher_offer(Instant::now(), offer) {
                            self.reject(e.to_string());
                        }
                        Ok(())
                    }
                    Err(e) => Err(e),
                },
                RtcCommand::RestartPublisherIce => {
                    match self.pcs.create_publisher_offer_restarting_ice().await {
                        Ok(offer) => {
                            if let Err(e) = self.session.publisher_offer(Instant::now(), offer) {
                                self.reject(e.to_string());
                            }
                            Ok(())
                        }
                        Err(e) => Err(e),
                    }
                }
                RtcCommand::ReplacePeerConnections => self.replace_peer_connections().await,
                other => {
                    tracing::error!(?other, "the engine does not handle this WebRTC command");
                    Ok(())
                }
            };
            if let Err(e) = result {
                self.session
                    .handle_media_failed(Instant::now(), e.to_string());
            }
        }
    }

    /// Sends what the session queued and hands its events to the application.
    async fn flush(&mut self) {
        let transport_up = self.reliable_open && self.publisher_up && self.subscriber_up;
        if transport_up && self.session.state() == SessionState::Reconnecting {
            self.session.handle_transport_ready(Instant::now());
        }
        while let Some(frame) = self.session.poll_transmit() {
            // No socket (between attempts): the session knows; what it queued is moot.
            let Some(ws) = &mut self.ws else { break };
            if let Err(e) = ws.send(Message::Binary(frame.into())).await {
                self.read_last_words(e).await;
                break;
            }
        }
        while self.reliable_open {
            let Some(packet) = self.session.poll_data_transmit(Instant::now()) else {
                break;
            };
            if let Err(e) = self.pcs.send_reliable(packet.into()).await {
                self.session
                    .handle_media_failed(Instant::now(), e.to_string());
                break;
            }
        }
        if !self.media_connected && self.reliable_open && self.publisher_up && self.subscriber_up {
            self.media_connected = true;
            self.emit(RoomEvent::MediaConnected {
                after: self.started.elapsed(),
            });
        }
        self.tell_untold_rejections();
        while let Some(event) = self.pending.pop_front() {
            self.emit(event);
        }
        while let Some(event) = self.session.poll_event() {
            match &event {
                SessionEvent::ParticipantJoined(p) => self.claim_tracks(&p.sid.clone()),
                SessionEvent::ParticipantLeft { sid, .. } => {
                    self.unclaimed.retain(|(p, _)| p != sid);
                }
                _ => {}
            }
            let obeyed = self.obey_server(&event).await;
            self.emit(RoomEvent::Session(event));
            if let Some(obeyed) = obeyed {
                self.emit(obeyed);
            }
        }
    }

    /// Hands `event` to the application, or queues it behind the ones it has not taken.
    /// Never waits: a command (`leave`) must not depend on the application reading.
    fn emit(&mut self, event: RoomEvent) {
        if !self.outbox.is_empty() {
            self.outbox.push_back(event);
            return;
        }
        match self.events.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(event)) => self.outbox.push_back(event),
            // Nobody listens: the event has nowhere to go.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Reports a rejected message, a few a second at most; the rest are counted and the
    /// count goes with the next report.
    fn reject(&mut self, why: String) {
        let now = Instant::now();
        if now.duration_since(self.rejections.window) >= REJECTION_WINDOW {
            self.rejections.window = now;
            self.rejections.told = 0;
        }
        if self.rejections.told >= REJECTIONS_TOLD {
            self.rejections.untold += 1;
            tracing::debug!(%why, "message rejected (not reported: too many)");
            self.rejections.last_untold = Some(why);
            return;
        }
        self.rejections.told += 1;
        self.rejections.last_untold = None;
        let also_rejected = std::mem::take(&mut self.rejections.untold);
        self.pending
            .push_back(RoomEvent::MessageRejected { why, also_rejected });
    }

    /// After a flood, its count is told with the last of it.
    fn tell_untold_rejections(&mut self) {
        if self.rejections.window.elapsed() < REJECTION_WINDOW {
            return;
        }
        if let Some(why) = self.rejections.last_untold.take() {
            let also_rejected = std::mem::take(&mut self.rejections.untold).saturating_sub(1);
            self.rejections.window = Instant::now();
            self.rejections.told = 1;
            self.pending
                .push_back(RoomEvent::MessageRejected { why, also_rejected });
        }
    }
}

fn signal_target(t: Target) -> SignalTarget {
    match t {
        Target::Publisher => SignalTarget::Publisher,
        Target::Subscriber => SignalTarget::Subscriber,
    }
}

fn rtc_target(t: SignalTarget) -> Target {
    match t {
        SignalTarget::Publisher => Target::Publisher,
        SignalTarget::Subscriber => Target::Subscriber,
    }
}

/// A random (version 4) UUID: the chat message's stream id.
fn new_stream_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[path = "downlink.rs"]
mod downlink;
#[path = "publish.rs"]
mod publish;
#[path = "reconnect.rs"]
mod reconnect;
#[path = "uplink.rs"]
mod uplink;
use reconnect::{next_message, opened};
