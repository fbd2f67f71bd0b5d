//! Estrade's session engine: joins a LiveKit room and runs it.
//!
//! [`join`] opens the signalling socket with the backend's token, waits for the
//! JoinResponse, starts both PeerConnections and returns a cheap-to-clone [`Room`] handle
//! (commands) and a bounded stream of [`RoomEvent`]s (what happened, in order).
//!
//! Needs a multi-thread tokio runtime: the codecs run under `block_in_place` so a 12 ms
//! 720p encode never stalls the other tasks of its worker.
//!
//! Layers: `estrade-session` decides (a sans-IO state machine), `estrade-rtc` is the
//! WebRTC stack behind our own interface, and this crate only moves bytes between them
//! and the socket, on one task per room.

mod audio;
mod driver;
mod events;
mod ice;
mod recorder;
mod room;
mod signal;
mod sound_guard;
mod video;

pub use audio::AudioOutput;
pub use estrade_media::{
    AudioFrame, AudioSource, FRAME_SAMPLES, I420Frame, PlayoutStats, Pulled, RemoteAudio,
    SourceEnded, VideoCodec, VideoSink, VideoSource, synthetic, synthetic_video,
};
pub use events::{LocalTrackEndReason, RoomEvent};
pub use recorder::{FrameRecorder, Heard, PulseRecorder, Seen};
pub use room::{CommandError, JoinError, JoinOptions, Room, RoomEvents, join};
pub use signal::ConnectError;
pub use video::{CameraSettings, VideoOutput};

pub use estrade_session::{
    ChatError, ChatMessage, ConnectionQuality, DisconnectReason, Participant, ParticipantIdentity,
    ParticipantSid, PublishError, RECONNECT_GIVE_UP, ReconnectKind, Room as RoomInfo, SessionEvent,
    TrackKind, TrackPublication, TrackSettings, TrackSid, TrackSource, VideoQuality,
};
