//! The room as the session knows it: participants and their track publications.

use std::collections::{BTreeMap, HashMap};

use crate::ids::{ParticipantIdentity, ParticipantSid, TrackSid};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Room {
    /// `RM_…`; may be empty in the JoinResponse and arrive with a later RoomUpdate.
    pub sid: String,
    pub name: String,
    pub metadata: String,
    pub num_participants: u32,
}

/// A STUN/TURN server from the JoinResponse (or a later ReconnectResponse).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct IceServer {
    pub urls: Vec<String>,
    pub username: String,
    /// A TURN credential: never printed.
    pub credential: String,
}

impl std::fmt::Debug for IceServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceServer")
            .field("urls", &self.urls)
            .field("username", &self.username)
            .field("credential", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackSource {
    Unknown,
    Camera,
    Microphone,
    ScreenShare,
    ScreenShareAudio,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackKind {
    Audio,
    Video,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParticipantState {
    Joining,
    Joined,
    Active,
    Disconnected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParticipantKind {
    Standard,
    /// Ingress, egress, SIP, agents…: not a person.
    Service,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionQuality {
    Poor,
    Good,
    Excellent,
    Lost,
}

/// What the participant's token (or a later server change) allows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Permissions {
    pub can_subscribe: bool,
    pub can_publish: bool,
    pub can_publish_data: bool,
    /// Empty means every source.
    pub can_publish_sources: Vec<TrackSource>,
    pub can_update_metadata: bool,
}

impl Permissions {
    pub fn may_publish(&self, source: TrackSource) -> bool {
        self.can_publish
            && (self.can_publish_sources.is_empty() || self.can_publish_sources.contains(&source))
    }
}

/// A track we want to publish. `cid` must equal the track id in the SDP `a=msid` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackRequest {
    pub cid: String,
    pub name: String,
    pub kind: TrackKind,
    pub source: TrackSource,
    pub width: u32,
    pub height: u32,
    pub muted: bool,
    /// Video layers (one RTP stream each), lowest first; empty for audio.
    pub layers: Vec<VideoLayer>,
}

/// One simulcast layer of a video track we publish, sent as its own RTP stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoLayer {
    pub quality: VideoQuality,
    /// The RTP stream id announced in the SDP (`q`, `h`, `f`).
    pub rid: String,
    pub width: u32,
    pub height: u32,
    pub bitrate_kbps: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VideoQuality {
    Low,
    Medium,
    High,
}

/// How we want a remote video track forwarded to us: the tile it is shown in decides the
/// simulcast layer the server picks; a hidden tile pauses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackSettings {
    pub enabled: bool,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackPublication {
    pub sid: TrackSid,
    pub name: String,
    pub kind: TrackKind,
    pub source: TrackSource,
    pub muted: bool,
    pub width: u32,
    pub height: u32,
    pub mime_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    pub sid: ParticipantSid,
    pub identity: ParticipantIdentity,
    pub name: String,
    pub metadata: String,
    pub attributes: BTreeMap<String, String>,
    pub state: ParticipantState,
    pub kind: ParticipantKind,
    pub permissions: Permissions,
    pub tracks: Vec<TrackPublication>,
    /// Server-side version: an update with a lower one is stale and ignored.
    pub version: u32,
}

impl Participant {
    pub fn track(&self, sid: &TrackSid) -> Option<&TrackPublication> {
        self.tracks.iter().find(|t| &t.sid == sid)
    }
}

/// What applying one ParticipantInfo changed, for the session to turn into events.
#[derive(Debug, PartialEq)]
pub(crate) enum Change {
    Joined(Participant),
    Updated(Participant),
    Left(ParticipantSid, ParticipantIdentity),
    TrackPublished(ParticipantSid, TrackPublication),
    TrackUnpublished(ParticipantSid, TrackSid),
    TrackMuted(ParticipantSid, TrackSid, bool),
}

/// The remote participants, keyed by sid, with identity lookups.
#[derive(Debug, Default)]
pub(crate) struct Roster {
    by_sid: HashMap<ParticipantSid, Participant>,
}

impl Roster {
    pub fn get(&self, sid: &ParticipantSid) -> Option<&Participant> {
        self.by_sid.get(sid)
    }

    pub fn len(&self) -> usize {
        self.by_sid.len()
    }

    /// Every remote participant's published tracks.
    pub fn tracks(&self) -> impl Iterator<Item = &TrackPublication> {
        self.by_sid.values().flat_map(|p| p.tracks.iter())
    }

    /// Whether some remote participant publishes `track`.
    pub fn has_track(&self, track: &TrackSid) -> bool {
        self.by_sid.values().any(|p| p.track(track).is_some())
    }

    /// Keeps only the participants `keep` says; the others are reported as gone.
    pub fn retain(&mut self, keep: impl Fn(&ParticipantSid) -> bool) -> Vec<Change> {
        let gone: Vec<ParticipantSid> = self
            .by_sid
            .keys()
            .filter(|sid| !keep(sid))
            .cloned()
            .collect();
        gone.into_iter()
            .filter_map(|sid| self.by_sid.remove(&sid))
            .map(|p| Change::Left(p.sid, p.identity))
            .collect()
    }

    /// Applies a server snapshot of one participant; returns what changed. A stale version
    /// changes nothing. A new sid for a known identity (a rejoin) replaces the old entry.
    pub fn apply(&mut self, info: Participant, changes: &mut Vec<Change>) {
        if info.state == ParticipantState::Disconnected {
            if let Some(old) = self.by_sid.remove(&info.sid) {
                changes.push(Change::Left(old.sid, old.identity));
            }
            return;
        }
        let Some(old) = self.by_sid.get(&info.sid) else {
            // The same person under a new sid: the old connection is gone.
            let stale: Vec<ParticipantSid> = self
                .by_sid
                .values()
                .filter(|p| p.identity == info.identity)
                .map(|p| p.sid.clone())
                .collect();
            for sid in stale {
                if let Some(old) = self.by_sid.remove(&sid) {
                    changes.push(Change::Left(old.sid, old.identity));
                }
            }
            changes.push(Change::Joined(info.clone()));
            for t in &info.tracks {
                changes.push(Change::TrackPublished(info.sid.clone(), t.clone()));
            }
            self.by_sid.insert(info.sid.clone(), info);
            return;
        };
        if info.version != 0 && info.version < old.version {
            return;
        }
        let sid = info.sid.clone();
        for t in &old.tracks {
            match info.track(&t.sid) {
                None => changes.push(Change::TrackUnpublished(sid.clone(), t.sid.clone())),
                Some(new) if new.muted != t.muted => {
                    changes.push(Change::TrackMuted(sid.clone(), t.sid.clone(), new.muted))
                }
                Some(_) => {}
            }
        }
        for t in &info.tracks {
            if old.track(&t.sid).is_none() {
                changes.push(Change::TrackPublished(sid.clone(), t.clone()));
            }
        }
        let visible = |p: &Participant| {
            (
                p.name.clone(),
                p.metadata.clone(),
                p.attributes.clone(),
                p.permissions.clone(),
            )
        };
        if visible(old) != visible(&info) {
            changes.push(Change::Updated(info.clone()));
        }
        self.by_sid.insert(sid, info);
    }
}
