//! The LiveKit session of one participant, as a deterministic state machine.
//!
//! No sockets, no threads, no clock: the I/O layer feeds it and drains it, and tests drive
//! it on simulated time.
//!
//! 1. Open the signalling WebSocket; create a [`Session`] with the current [`Instant`].
//! 2. For every binary frame received, call [`Session::handle_frame`]. A malformed frame is a
//!    typed [`FrameError`]; the session is unchanged by it.
//! 3. After every input, drain [`Session::poll_transmit`] (frames to send, in order) and
//!    [`Session::poll_event`] (what happened, past tense).
//! 4. Sleep until [`Session::poll_timeout`], then call [`Session::handle_timeout`]: it sends
//!    pings and notices a dead signal connection.
//! 5. Data channel messages go through [`Session::handle_data`] (in) and
//!    [`Session::poll_data_transmit`] (out, for `_reliable`); chat is sent with
//!    [`Session::send_chat`] and arrives as [`SessionEvent::ChatReceived`].
//! 6. When the connection is lost the session reconnects by itself
//!    ([`SessionEvent::Reconnecting`]): after every `handle_timeout`, take
//!    [`Session::poll_reconnect`] and open the socket it asks for, and report the
//!    PeerConnections ready with [`Session::handle_transport_ready`].
//! 7. To leave, call [`Session::leave`] and send what it queues before closing the socket.
//!
//! [`Instant`]: std::time::Instant

mod chat;
mod events;
mod ids;
mod missed;
mod model;
mod negotiation;
mod reconnect;
mod session;
mod wire;

#[cfg(test)]
mod reconnect_tests;
#[cfg(test)]
mod testing;

pub use chat::{
    CHAT_STREAM_TIMEOUT, CHAT_TOPIC, ChatError, ChatMessage, ChatReceiveError, LEGACY_CHAT_TOPIC,
    MAX_BUFFERED_PER_SENDER, MAX_BUFFERED_TOTAL, MAX_CHAT_BYTES,
};
pub use events::{DisconnectReason, SessionEvent};
pub use ids::{ParticipantIdentity, ParticipantSid, TrackSid};
pub use missed::{MISSED_TOPIC, MissedRequestError};
pub use model::{
    ConnectionQuality, IceServer, Participant, ParticipantKind, ParticipantState, Permissions,
    Room, TrackKind, TrackPublication, TrackRequest, TrackSettings, TrackSource, VideoLayer,
    VideoQuality,
};
pub use negotiation::{
    CandidateRefused, MAX_CANDIDATE_BYTES, MAX_QUEUED_CANDIDATES, NegotiationError, OFFER_ATTEMPTS,
    OFFER_TIMEOUT, RtcCommand, SignalTarget,
};
pub use reconnect::{
    DataChannelInfo, RECONNECT_GIVE_UP, ReconnectKind, ReconnectRequest, RtcSnapshot, SignalFailure,
};
pub use session::DataReceiveError;
pub use session::{
    MAX_CHAT_PER_SECOND, MAX_QUEUED_CHAT_BYTES, PublishError, RemoteVideoLimit, Session,
    SessionState,
};
pub use wire::{DataError, FrameError};
