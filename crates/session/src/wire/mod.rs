//! The only module that knows the LiveKit protobuf types: frames in, domain values out, and
//! the few requests the session sends, encoded. A frame that does not decode is a typed
//! error; a message this version does not use is `Inbound::Ignored`, never a failure.

use std::collections::BTreeMap;

use livekit_protocol as lk;
use lk::{signal_request, signal_response};
use prost::Message as _;

pub(crate) mod data;
pub use data::DataError;

use crate::events::LeaveAction;
use crate::ids::{ParticipantIdentity, ParticipantSid, TrackSid};
use crate::model::{
    ConnectionQuality, IceServer, Participant, ParticipantKind, ParticipantState, Permissions,
    Room, TrackKind, TrackPublication, TrackRequest, TrackSettings, TrackSource, VideoQuality,
};
use crate::negotiation::SignalTarget;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("the signal frame is not a valid SignalResponse: {0}")]
    Malformed(String),
    #[error("the signal frame holds no message")]
    Empty,
    #[error("a {message} arrived without its required {field}")]
    MissingField {
        message: &'static str,
        field: &'static str,
    },
    /// Valid, but out of place (a second JoinResponse, anything before the first).
    #[error("unexpected {0}")]
    Unexpected(&'static str),
    #[error("a remote ICE candidate was refused")]
    Candidate(#[from] crate::negotiation::CandidateRefused),
}

/// A server message, in domain terms.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Inbound {
    Join(Box<JoinInfo>),
    /// The server took our resume: the first frame on the new socket.
    Reconnect {
        ice_servers: Vec<IceServer>,
        /// The last of our reliable packets it received.
        last_message_seq: u32,
    },
    ParticipantUpdate(Vec<Participant>),
    SpeakersChanged(Vec<SpeakerDelta>),
    RoomUpdate(Room),
    ConnectionQuality(Vec<(ParticipantSid, ConnectionQuality)>),
    Leave {
        reason: i32,
        reason_name: String,
        action: LeaveAction,
    },
    RefreshToken(String),
    /// `pong_resp`: the timestamp of our ping, echoed.
    Pong {
        last_ping_ms: i64,
    },
    /// Legacy `pong`.
    LegacyPong,
    Mute {
        track: TrackSid,
        muted: bool,
    },
    Offer(Description),
    Answer(Description),
    Trickle {
        target: SignalTarget,
        candidate_init: String,
    },
    /// Our AddTrackRequest `cid` became this publication.
    TrackPublished {
        cid: String,
        track: TrackPublication,
    },
    /// The server unpublished one of our tracks (permission revoked).
    TrackUnpublished(TrackSid),
    /// A request of ours was refused; `cid` when it was an AddTrackRequest.
    RequestRefused {
        cid: Option<String>,
        reason: String,
        message: String,
    },
    /// The server pauses or resumes forwarding these tracks to us: (participant, track,
    /// paused).
    StreamStates(Vec<(ParticipantSid, TrackSid, bool)>),
    /// Dynacast: the layers of one of our video tracks someone receives (enabled ones).
    SubscribedQualities {
        track: TrackSid,
        wanted: Vec<VideoQuality>,
    },
    /// Known, valid, not used by this version.
    Ignored(&'static str),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Description {
    pub id: u32,
    pub sdp: String,
    pub mid_to_track: BTreeMap<String, TrackSid>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JoinInfo {
    pub room: Room,
    pub local: Participant,
    pub others: Vec<Participant>,
    pub ping_interval_s: u32,
    pub ping_timeout_s: u32,
    pub server_version: String,
    pub protocol: i32,
    pub ice_servers: Vec<IceServer>,
    /// The server asks clients not to resume (reconnects are full).
    pub resume_disabled: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SpeakerDelta {
    pub sid: ParticipantSid,
    pub level: f32,
    pub active: bool,
}

pub(crate) fn decode(frame: &[u8]) -> Result<Inbound, FrameError> {
    let response =
        lk::SignalResponse::decode(frame).map_err(|e| FrameError::Malformed(e.to_string()))?;
    use signal_response::Message as M;
    Ok(match response.message.ok_or(FrameError::Empty)? {
        M::Join(j) => Inbound::Join(Box::new(join_info(j)?)),
        M::Reconnect(r) => Inbound::Reconnect {
            ice_servers: r.ice_servers.into_iter().map(ice_server).collect(),
            last_message_seq: r.last_message_seq,
        },
        M::Update(u) => {
            Inbound::ParticipantUpdate(u.participants.into_iter().map(participant).collect())
        }
        M::SpeakersChanged(s) => Inbound::SpeakersChanged(
            s.speakers
                .into_iter()
                .map(|s| SpeakerDelta {
                    sid: ParticipantSid(s.sid),
                    level: if s.level.is_finite() {
                        s.level.clamp(0.0, 1.0)
                    } else {
                        0.0
                    },
                    active: s.active,
                })
                .collect(),
        ),
        M::RoomUpdate(r) => Inbound::RoomUpdate(room(r.room.ok_or(FrameError::MissingField {
            message: "RoomUpdate",
            field: "room",
        })?)),
        M::ConnectionQuality(q) => Inbound::ConnectionQuality(
            q.updates
                .into_iter()
                .map(|u| (ParticipantSid(u.participant_sid), quality(u.quality)))
                .collect(),
        ),
        M::Leave(l) => Inbound::Leave {
            reason: l.reason,
            reason_name: lk::DisconnectReason::try_from(l.reason)
                .map(|r| r.as_str_name().to_owned())
                .unwrap_or_else(|_| format!("UNKNOWN({})", l.reason)),
            action: match lk::leave_request::Action::try_from(l.action) {
                Ok(lk::leave_request::Action::Resume) => LeaveAction::Resume,
                Ok(lk::leave_request::Action::Reconnect) => LeaveAction::Reconnect,
                // Unknown actions end the session: the safe reading.
                _ => LeaveAction::Disconnect,
            },
        },
        M::RefreshToken(t) => Inbound::RefreshToken(t),
        M::PongResp(p) => Inbound::Pong {
            last_ping_ms: p.last_ping_timestamp,
        },
        M::Pong(_) => Inbound::LegacyPong,
        M::Mute(m) => Inbound::Mute {
            track: TrackSid(m.sid),
            muted: m.muted,
        },
        M::Answer(d) => Inbound::Answer(description(d)),
        M::Offer(d) => Inbound::Offer(description(d)),
        M::Trickle(t) => Inbound::Trickle {
            target: if t.target == lk::SignalTarget::Subscriber as i32 {
                SignalTarget::Subscriber
            } else {
                SignalTarget::Publisher
            },
            candidate_init: t.candidate_init,
        },
        M::TrackPublished(p) => Inbound::TrackPublished {
            track: p.track.and_then(track).ok_or(FrameError::MissingField {
                message: "TrackPublishedResponse",
                field: "track",
            })?,
            cid: p.cid,
        },
        M::TrackUnpublished(u) => Inbound::TrackUnpublished(TrackSid(u.track_sid)),
        M::RequestResponse(r) if r.reason != lk::request_response::Reason::Ok as i32 => {
            Inbound::RequestRefused {
                cid: match r.request {
                    Some(lk::request_response::Request::AddTrack(a)) => Some(a.cid),
                    _ => None,
                },
                reason: lk::request_response::Reason::try_from(r.reason)
                    .map(|r| r.as_str_name().to_owned())
                    .unwrap_or_else(|_| format!("UNKNOWN({})", r.reason)),
                message: r.message,
            }
        }
        M::StreamStateUpdate(u) => Inbound::StreamStates(
            u.stream_states
                .into_iter()
                .map(|s| {
                    // An unknown state is not a pause: only PAUSED stops what we show.
                    let paused = s.state == lk::StreamState::Paused as i32;
                    (
                        ParticipantSid(s.participant_sid),
                        TrackSid(s.track_sid),
                        paused,
                    )
                })
                .collect(),
        ),
        M::SubscribedQualityUpdate(u) => {
            // Per codec; we publish one. Old servers fill only the deprecated list.
            #[allow(deprecated)]
            let listed = match u.subscribed_codecs.into_iter().next() {
                Some(codec) => codec.qualities,
                None => u.subscribed_qualities,
            };
            let mut wanted = Vec::new();
            for q in listed.iter().filter(|q| q.enabled) {
                let quality = match lk::VideoQuality::try_from(q.quality) {
                    Ok(lk::VideoQuality::Low) => VideoQuality::Low,
                    Ok(lk::VideoQuality::Medium) => VideoQuality::Medium,
                    Ok(lk::VideoQuality::High) => VideoQuality::High,
                    // OFF or unknown: nothing to send for it.
                    _ => continue,
                };
                if !wanted.contains(&quality) {
                    wanted.push(quality);
                }
            }
            wanted.sort();
            Inbound::SubscribedQualities {
                track: TrackSid(u.track_sid),
                wanted,
            }
        }
        M::SubscriptionPermissionUpdate(_) => Inbound::Ignored("subscription_permission_update"),
        M::SubscriptionResponse(_) => Inbound::Ignored("subscription_response"),
        M::RequestResponse(_) => Inbound::Ignored("request_response"),
        M::TrackSubscribed(_) => Inbound::Ignored("track_subscribed"),
        _ => Inbound::Ignored("other"),
    })
}

fn join_info(j: lk::JoinResponse) -> Result<JoinInfo, FrameError> {
    let missing = |field| FrameError::MissingField {
        message: "JoinResponse",
        field,
    };
    let local = participant(j.participant.ok_or_else(|| missing("participant"))?);
    if local.sid.0.is_empty() || local.identity.0.is_empty() {
        return Err(missing("participant sid and identity"));
    }
    Ok(JoinInfo {
        room: room(j.room.ok_or_else(|| missing("room"))?),
        local,
        others: j.other_participants.into_iter().map(participant).collect(),
        ping_interval_s: j.ping_interval.max(0) as u32,
        ping_timeout_s: j.ping_timeout.max(0) as u32,
        server_version: j
            .server_info
            .as_ref()
            .map(|s| s.version.clone())
            .unwrap_or_default(),
        protocol: j.server_info.map(|s| s.protocol).unwrap_or_default(),
        resume_disabled: j
            .client_configuration
            .is_some_and(|c| c.resume_connection == lk::ClientConfigSetting::Disabled as i32),
        ice_servers: j.ice_servers.into_iter().map(ice_server).collect(),
    })
}

fn ice_server(s: lk::IceServer) -> IceServer {
    IceServer {
        urls: s.urls,
        username: s.username,
        credential: s.credential,
    }
}

fn description(d: lk::SessionDescription) -> Description {
    Description {
        id: d.id,
        sdp: d.sdp,
        mid_to_track: d
            .mid_to_track_id
            .into_iter()
            .map(|(mid, track)| (mid, TrackSid(track)))
            .collect(),
    }
}

fn room(r: lk::Room) -> Room {
    Room {
        sid: r.sid,
        name: r.name,
        metadata: r.metadata,
        num_participants: r.num_participants,
    }
}

fn source(s: i32) -> TrackSource {
    match lk::TrackSource::try_from(s) {
        Ok(lk::TrackSource::Camera) => TrackSource::Camera,
        Ok(lk::TrackSource::Microphone) => TrackSource::Microphone,
        Ok(lk::TrackSource::ScreenShare) => TrackSource::ScreenShare,
        Ok(lk::TrackSource::ScreenShareAudio) => TrackSource::ScreenShareAudio,
        _ => TrackSource::Unknown,
    }
}

fn quality(q: i32) -> ConnectionQuality {
    match lk::ConnectionQuality::try_from(q) {
        Ok(lk::ConnectionQuality::Poor) => ConnectionQuality::Poor,
        Ok(lk::ConnectionQuality::Excellent) => ConnectionQuality::Excellent,
        Ok(lk::ConnectionQuality::Lost) => ConnectionQuality::Lost,
        _ => ConnectionQuality::Good,
    }
}

fn participant(p: lk::ParticipantInfo) -> Participant {
    let permissions = p
        .permission
        .map(|perm| Permissions {
            can_subscribe: perm.can_subscribe,
            can_publish: perm.can_publish,
            can_publish_data: perm.can_publish_data,
            can_publish_sources: perm.can_publish_sources.into_iter().map(source).collect(),
            can_update_metadata: perm.can_update_metadata,
        })
        .unwrap_or_default();
    Participant {
        sid: ParticipantSid(p.sid),
        identity: ParticipantIdentity(p.identity),
        name: p.name,
        metadata: p.metadata,
        attributes: p.attributes.into_iter().collect::<BTreeMap<_, _>>(),
        state: match lk::participant_info::State::try_from(p.state) {
            Ok(lk::participant_info::State::Joining) => ParticipantState::Joining,
            Ok(lk::participant_info::State::Active) => ParticipantState::Active,
            Ok(lk::participant_info::State::Disconnected) => ParticipantState::Disconnected,
            _ => ParticipantState::Joined,
        },
        kind: if p.kind == lk::participant_info::Kind::Standard as i32 {
            ParticipantKind::Standard
        } else {
            ParticipantKind::Service
        },
        permissions,
        tracks: p.tracks.into_iter().filter_map(track).collect(),
        version: p.version,
    }
}

/// Data tracks and unknown kinds are not media publications: skipped.
fn track(t: lk::TrackInfo) -> Option<TrackPublication> {
    let kind = match lk::TrackType::try_from(t.r#type) {
        Ok(lk::TrackType::Audio) => TrackKind::Audio,
        Ok(lk::TrackType::Video) => TrackKind::Video,
        _ => return None,
    };
    if t.sid.is_empty() {
        return None;
    }
    Some(TrackPublication {
        sid: TrackSid(t.sid),
        name: t.name,
        kind,
        source: source(t.source),
        muted: t.muted,
        width: t.width,
        height: t.height,
        mime_type: t.mime_type,
    })
}

/// Requests the session sends.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outbound {
    Ping {
        now_ms: i64,
        rtt_ms: i64,
    },
    Leave,
    Mute {
        track: TrackSid,
        muted: bool,
    },
    Offer {
        id: u32,
        sdp: String,
    },
    Answer {
        id: u32,
        sdp: String,
    },
    Trickle {
        target: SignalTarget,
        candidate_init: String,
    },
    AddTrack(TrackRequest),
    TrackSettings {
        track: TrackSid,
        settings: TrackSettings,
    },
    SyncState(Box<SyncState>),
}

/// What a resuming client tells the server it has, so the server can check that it matches.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SyncState {
    pub rtc: crate::reconnect::RtcSnapshot,
    /// Our publications: the cid of the request and what the server made of it.
    pub published: Vec<(String, TrackPublication)>,
    /// Per sender sid, the last reliable sequence received.
    pub received: Vec<(String, u32)>,
}

pub(crate) fn encode(out: Outbound) -> Vec<u8> {
    use signal_request::Message as M;
    let message = match out {
        Outbound::Ping { now_ms, rtt_ms } => M::PingReq(lk::Ping {
            timestamp: now_ms,
            rtt: rtt_ms,
        }),
        Outbound::Leave => M::Leave(lk::LeaveRequest {
            reason: lk::DisconnectReason::ClientInitiated as i32,
            action: lk::leave_request::Action::Disconnect as i32,
            ..Default::default()
        }),
        Outbound::Mute { track, muted } => M::Mute(lk::MuteTrackRequest {
            sid: track.0,
            muted,
        }),
        Outbound::Offer { id, sdp } => M::Offer(lk::SessionDescription {
            r#type: "offer".into(),
            sdp,
            id,
            ..Default::default()
        }),
        Outbound::Answer { id, sdp } => M::Answer(lk::SessionDescription {
            r#type: "answer".into(),
            sdp,
            id,
            ..Default::default()
        }),
        Outbound::Trickle {
            target,
            candidate_init,
        } => M::Trickle(lk::TrickleRequest {
            candidate_init,
            target: match target {
                SignalTarget::Publisher => lk::SignalTarget::Publisher as i32,
                SignalTarget::Subscriber => lk::SignalTarget::Subscriber as i32,
            },
            r#final: false,
        }),
        Outbound::AddTrack(t) => M::AddTrack(lk::AddTrackRequest {
            r#type: match t.kind {
                TrackKind::Audio => lk::TrackType::Audio as i32,
                TrackKind::Video => lk::TrackType::Video as i32,
            },
            source: track_source(t.source),
            cid: t.cid,
            name: t.name,
            width: t.width,
            height: t.height,
            muted: t.muted,
            // webrtc-rs has no RED encoder: we publish plain Opus (we receive RED: red.rs).
            disable_red: t.kind == TrackKind::Audio,
            layers: t
                .layers
                .into_iter()
                .map(|l| lk::VideoLayer {
                    quality: match l.quality {
                        VideoQuality::Low => lk::VideoQuality::Low,
                        VideoQuality::Medium => lk::VideoQuality::Medium,
                        VideoQuality::High => lk::VideoQuality::High,
                    } as i32,
                    width: l.width,
                    height: l.height,
                    bitrate: l.bitrate_kbps * 1000,
                    rid: l.rid,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        Outbound::TrackSettings { track, settings } => M::TrackSetting(lk::UpdateTrackSettings {
            track_sids: vec![track.0],
            disabled: !settings.enabled,
            width: settings.width,
            height: settings.height,
            // No size: the best layer (the server reads 0×0 as the quality, LOW by default).
            quality: if settings.width == 0 && settings.height == 0 {
                lk::VideoQuality::High as i32
            } else {
                lk::VideoQuality::Low as i32
            },
            ..Default::default()
        }),
        Outbound::SyncState(sync) => M::SyncState(sync_state(*sync)),
    };
    lk::SignalRequest {
        message: Some(message),
    }
    .encode_to_vec()
}

fn sync_state(sync: SyncState) -> lk::SyncState {
    let description = |kind: &str, sdp: Option<String>| {
        sdp.map(|sdp| lk::SessionDescription {
            r#type: kind.into(),
            sdp,
            ..Default::default()
        })
    };
    let target = |t: SignalTarget| match t {
        SignalTarget::Publisher => lk::SignalTarget::Publisher as i32,
        SignalTarget::Subscriber => lk::SignalTarget::Subscriber as i32,
    };
    lk::SyncState {
        answer: description("answer", sync.rtc.subscriber_answer),
        offer: description("offer", sync.rtc.subscriber_offer),
        // Everything is auto-subscribed: no exceptions to tell.
        subscription: Some(lk::UpdateSubscription {
            subscribe: false,
            ..Default::default()
        }),
        publish_tracks: sync
            .published
            .into_iter()
            .map(|(cid, t)| lk::TrackPublishedResponse {
                cid,
                track: Some(lk::TrackInfo {
                    sid: t.sid.0,
                    r#type: match t.kind {
                        TrackKind::Audio => lk::TrackType::Audio,
                        TrackKind::Video => lk::TrackType::Video,
                    } as i32,
                    name: t.name,
                    muted: t.muted,
                    width: t.width,
                    height: t.height,
                    mime_type: t.mime_type,
                    source: track_source(t.source),
                    ..Default::default()
                }),
            })
            .collect(),
        data_channels: sync
            .rtc
            .data_channels
            .into_iter()
            .map(|d| lk::DataChannelInfo {
                label: d.label,
                id: d.id.into(),
                target: target(d.target),
            })
            .collect(),
        datachannel_receive_states: sync
            .received
            .into_iter()
            .map(|(publisher_sid, last_seq)| lk::DataChannelReceiveState {
                publisher_sid,
                last_seq,
            })
            .collect(),
        ..Default::default()
    }
}

fn track_source(s: TrackSource) -> i32 {
    match s {
        TrackSource::Camera => lk::TrackSource::Camera as i32,
        TrackSource::Microphone => lk::TrackSource::Microphone as i32,
        TrackSource::ScreenShare => lk::TrackSource::ScreenShare as i32,
        TrackSource::ScreenShareAudio => lk::TrackSource::ScreenShareAudio as i32,
        TrackSource::Unknown => lk::TrackSource::Unknown as i32,
    }
}

/// Test helpers: server frames and request decoding, in wire terms.
#[cfg(test)]
pub(crate) mod fake {
    pub use livekit_protocol as lk;
    use prost::Message as _;

    pub fn frame(message: lk::signal_response::Message) -> Vec<u8> {
        lk::SignalResponse {
            message: Some(message),
        }
        .encode_to_vec()
    }

    pub fn request(bytes: &[u8]) -> lk::signal_request::Message {
        lk::SignalRequest::decode(bytes).unwrap().message.unwrap()
    }

    pub fn participant(sid: &str, identity: &str, version: u32) -> lk::ParticipantInfo {
        lk::ParticipantInfo {
            sid: sid.into(),
            identity: identity.into(),
            name: format!("name of {identity}"),
            state: lk::participant_info::State::Active as i32,
            version,
            permission: Some(lk::ParticipantPermission {
                can_subscribe: true,
                can_publish: true,
                can_publish_data: true,
                can_publish_sources: vec![lk::TrackSource::Microphone as i32],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    pub fn track(sid: &str, kind: lk::TrackType, muted: bool) -> lk::TrackInfo {
        lk::TrackInfo {
            sid: sid.into(),
            r#type: kind as i32,
            muted,
            source: if kind == lk::TrackType::Audio {
                lk::TrackSource::Microphone as i32
            } else {
                lk::TrackSource::Camera as i32
            },
            ..Default::default()
        }
    }

    pub fn join(local: lk::ParticipantInfo, others: Vec<lk::ParticipantInfo>) -> Vec<u8> {
        frame(lk::signal_response::Message::Join(lk::JoinResponse {
            room: Some(lk::Room {
                sid: "RM_1".into(),
                name: "estrade-course-1-session-1".into(),
                ..Default::default()
            }),
            participant: Some(local),
            other_participants: others,
            ping_interval: 5,
            ping_timeout: 15,
            server_info: Some(lk::ServerInfo {
                version: "1.13.5".into(),
                protocol: 17,
                ..Default::default()
            }),
            ice_servers: vec![lk::IceServer {
                urls: vec!["turn:turn.example:3478".into()],
                username: "u".into(),
                credential: "turn-secret".into(),
            }],
            ..Default::default()
        }))
    }
}
