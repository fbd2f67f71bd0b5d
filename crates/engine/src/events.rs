//! What the engine reports, in order, past tense.

use estrade_session::SessionEvent;

// A few events per second move through a channel: their size does not matter, and boxing
// `SessionEvent` would make every `match` on them clumsier.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RoomEvent {
    /// Signalling: joined, the roster, tracks, speakers, connection quality, chat received,
    /// and finally `Disconnected` (the last event of a room).
    Session(SessionEvent),
    /// Both PeerConnections are connected and our `_reliable` data channel is open: chat and
    /// media flow from now on. `after` is measured from the start of `join`.
    MediaConnected { after: std::time::Duration },
    /// A remote track's media started arriving (audio is then played to the
    /// [`AudioOutput`](crate::AudioOutput)).
    TrackSubscribed {
        participant: estrade_session::ParticipantSid,
        track: estrade_session::TrackSid,
        kind: estrade_session::TrackKind,
    },
    /// About a second of voice reached the published microphone while it was muted: tell
    /// the user they are muted. Said once per muted stretch (again after 15 s of talking).
    SpokeWhileMuted,
    /// A message from the server could not be used (malformed, unexpected, a broken chat
    /// stream). The room goes on; this is reported rather than dropped silently.
    MessageRejected(String),
}
