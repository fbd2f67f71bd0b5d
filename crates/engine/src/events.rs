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
    /// One of our tracks was muted: by us (`set_*_enabled(false)`) or by the server (a
    /// trainer muted us; `by_server`). Nothing is sent from it from now on. After a server
    /// mute, unmuting is the user's decision (`set_*_enabled(true)`).
    LocalTrackMuted {
        source: estrade_session::TrackSource,
        by_server: bool,
    },
    /// One of our tracks was unmuted by us.
    LocalTrackUnmuted {
        source: estrade_session::TrackSource,
    },
    /// One of our publications ended without our asking: the server ended or refused it
    /// (its source no longer allowed, a moderator, a refused AddTrackRequest), or its
    /// source ended or its encoder failed. Its pump has stopped and the track is off the
    /// connection; publishing the source again is allowed (once the permission is back).
    LocalTrackEnded {
        source: estrade_session::TrackSource,
        reason: LocalTrackEndReason,
    },
    /// A message from the server or a participant could not be used (malformed,
    /// unexpected, a broken chat stream). The room goes on; this is reported rather than
    /// dropped silently. At most a few a second are told (a hostile peer can send
    /// thousands): `also_rejected` counts the ones since the previous report that were not.
    MessageRejected { why: String, also_rejected: u64 },
    /// Our downlink was losing half the remote sound or more (it cannot carry the video
    /// too: a student on mobile data): every remote video was paused from our side so the
    /// sound gets through. Tell the user ("video paused to keep the sound"). Said once
    /// per stretch: the engine then tries the lowest layer every 3–12 s, and says
    /// `RemoteVideoResumed` when a try holds for 2 s.
    RemoteVideoPausedForSound,
    /// The pause of `RemoteVideoPausedForSound` ended: the application's video settings
    /// are asked for again. The server may keep a video paused until the link allows it
    /// (a `TrackStreamStateChanged`), and resumes it when its probes find the room.
    RemoteVideoResumed,
}

/// Why the server ended one of our publications.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LocalTrackEndReason {
    /// The server unpublished it (a moderator, or a permission taken away).
    Unpublished,
    /// The server refused to publish it, with its reason.
    Refused(String),
    /// Its source ended (a device lost, a file played out).
    SourceEnded(String),
    /// The encoder or the connection failed under it.
    Failed(String),
}
