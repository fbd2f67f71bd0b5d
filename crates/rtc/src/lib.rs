//! Estrade's thin interface over a WebRTC stack: the two PeerConnections of a LiveKit
//! participant (publisher: we offer; subscriber: the server offers), the `_reliable` and
//! `_lossy` data channels, ICE. Today on webrtc-rs 0.17 (see ARCHITECTURE.md for why); the
//! rest of Estrade sees only this module's types, so the stack can change.
//!
//! Everything the stack reports (local candidates, connection states, data) comes out of
//! one bounded channel of [`RtcEvent`]s.

mod feedback;
mod media;
mod nack;
mod peer;
mod red;
mod twcc;

pub use estrade_media::VideoCodec;
pub use media::{LocalTrack, MediaKind, RemoteTrack, RemoteVideoFrames, RtpPacket};
pub use red::{EarlierFrame, MAX_EARLIER, RedError};

pub use peer::{
    ConnectionState, IceServer, PeerConnections, RtcConfig, RtcError, RtcEvent, Snapshot, Target,
};
