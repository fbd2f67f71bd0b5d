//! Room events as JSON lines: one object per event, `"event"` names it (snake case), the
//! rest are its fields. Names and chat text are data, escaped by serde_json.

use estrade_engine::{Participant, RoomEvent, SessionEvent, TrackPublication};
use serde_json::{Value, json};

fn participant(p: &Participant) -> Value {
    json!({"sid": p.sid.as_str(), "identity": p.identity.as_str(), "name": p.name,
           "tracks": p.tracks.iter().map(track).collect::<Vec<_>>()})
}

fn track(t: &TrackPublication) -> Value {
    json!({"sid": t.sid.as_str(), "kind": format!("{:?}", t.kind).to_lowercase(),
           "source": format!("{:?}", t.source).to_lowercase(), "muted": t.muted})
}

pub fn event(e: &RoomEvent) -> Value {
    match e {
        RoomEvent::MediaConnected { after } => {
            json!({"event": "media_connected", "after_ms": after.as_secs_f64() * 1000.0})
        }
        RoomEvent::TrackSubscribed {
            participant,
            track,
            kind,
        } => json!({
            "event": "track_subscribed", "participant": participant.as_str(),
            "track": track.as_str(), "kind": format!("{kind:?}").to_lowercase()}),
        RoomEvent::MessageRejected { why, also_rejected } => {
            json!({"event": "message_rejected", "why": why, "also_rejected": also_rejected})
        }
        RoomEvent::SpokeWhileMuted => json!({"event": "spoke_while_muted"}),
        RoomEvent::LocalTrackMuted { source, by_server } => json!({
            "event": "local_track_muted", "source": format!("{source:?}").to_lowercase(),
            "by_server": by_server}),
        RoomEvent::LocalTrackUnmuted { source } => json!({
            "event": "local_track_unmuted", "source": format!("{source:?}").to_lowercase()}),
        RoomEvent::LocalTrackEnded { source, reason } => json!({
            "event": "local_track_ended", "source": format!("{source:?}").to_lowercase(),
            "reason": format!("{reason:?}")}),
        RoomEvent::RemoteVideoPausedForSound => json!({"event": "remote_video_paused_for_sound"}),
        RoomEvent::RemoteVideoResumed => json!({"event": "remote_video_resumed"}),
        RoomEvent::Session(s) => session(s),
        other => json!({"event": "other", "debug": format!("{other:?}")}),
    }
}

fn session(e: &SessionEvent) -> Value {
    match e {
        SessionEvent::Joined {
            room,
            local,
            others,
        } => json!({
            "event": "joined", "room": room.name, "local": participant(local),
            "others": others.iter().map(participant).collect::<Vec<_>>()}),
        SessionEvent::ParticipantJoined(p) => {
            json!({"event": "participant_joined", "participant": participant(p)})
        }
        SessionEvent::ParticipantUpdated(p) => {
            json!({"event": "participant_updated", "participant": participant(p)})
        }
        SessionEvent::ParticipantLeft { sid, identity } => {
            json!({"event": "participant_left", "sid": sid.as_str(), "identity": identity.as_str()})
        }
        SessionEvent::TrackPublished {
            participant,
            track: t,
        } => {
            json!({"event": "track_published", "participant": participant.as_str(), "track": track(t)})
        }
        SessionEvent::TrackUnpublished { participant, track } => {
            json!({"event": "track_unpublished", "participant": participant.as_str(), "track": track.as_str()})
        }
        SessionEvent::TrackMuted { participant, track } => {
            json!({"event": "track_muted", "participant": participant.as_str(), "track": track.as_str()})
        }
        SessionEvent::TrackUnmuted { participant, track } => {
            json!({"event": "track_unmuted", "participant": participant.as_str(), "track": track.as_str()})
        }
        SessionEvent::ActiveSpeakersChanged(sids) => json!({
            "event": "active_speakers_changed",
            "speakers": sids.iter().map(|s| s.as_str()).collect::<Vec<_>>()}),
        SessionEvent::ConnectionQualityChanged {
            participant,
            quality,
        } => json!({
            "event": "connection_quality_changed", "participant": participant.as_str(),
            "quality": format!("{quality:?}").to_lowercase()}),
        SessionEvent::RoomUpdated(room) => {
            json!({"event": "room_updated", "room": room.name, "participants": room.num_participants})
        }
        SessionEvent::TrackStreamStateChanged {
            participant,
            track,
            paused,
        } => json!({
            "event": "track_stream_state_changed", "participant": participant.as_str(),
            "track": track.as_str(), "paused": paused}),
        SessionEvent::LocalTrackPublished { cid, track: t } => {
            json!({"event": "local_track_published", "cid": cid, "track": track(t)})
        }
        SessionEvent::LocalTrackPublishFailed { cid, reason } => {
            json!({"event": "local_track_publish_failed", "cid": cid, "reason": reason})
        }
        SessionEvent::ChatReceived(m) => json!({
            "event": "chat_received", "id": m.id, "from": m.from.as_str(),
            "timestamp_ms": m.timestamp_ms, "text": m.text}),
        SessionEvent::RoundTripMeasured { rtt_ms } => {
            json!({"event": "round_trip_measured", "rtt_ms": rtt_ms})
        }
        SessionEvent::Reconnecting {
            attempt,
            kind,
            reason,
        } => json!({
            "event": "reconnecting", "attempt": attempt,
            "kind": format!("{kind:?}").to_lowercase(), "reason": format!("{reason:?}")}),
        SessionEvent::Reconnected { kind, after, local } => json!({
            "event": "reconnected", "kind": format!("{kind:?}").to_lowercase(),
            "after_ms": after.as_millis() as u64, "sid": local.sid.as_str()}),
        SessionEvent::ChatUndelivered { id } => json!({"event": "chat_undelivered", "id": id}),
        SessionEvent::Disconnected { reason } => json!({
            "event": "disconnected", "reason": format!("{reason:?}"), "can_rejoin": reason.can_rejoin()}),
        other => json!({"event": "other", "debug": format!("{other:?}")}),
    }
}
