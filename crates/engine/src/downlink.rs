//! The downlink, the room task's side: remote tracks handed to their players (within
//! caps a peer cannot grow), and the sound guard's decisions carried out on the session
//! (`sound_guard.rs` decides; nothing here waits on a track task).

use std::sync::Arc;
use std::time::Instant;

use estrade_rtc::{MediaKind, RemoteTrack};
use estrade_session::{ParticipantSid, RemoteVideoLimit, TrackKind, TrackSettings, TrackSid};

use super::Driver;
use crate::audio;
use crate::events::RoomEvent;
use crate::sound_guard::{ArrivalCounter, GuardChange};
use crate::video;

/// Remote tracks played per participant (a microphone, a camera, a screen and its
/// sound, with room to spare); beyond, the server is asked not to send them.
const MAX_TRACKS_PER_PARTICIPANT: usize = 8;
/// Tracks held while their participant is not in the roster yet.
const MAX_UNCLAIMED_TRACKS: usize = 16;

impl Driver {
    /// Every guard tick: pauses the remote video while our downlink loses most packets,
    /// tries its lowest layer after a hold, gives it back when that holds
    /// (`sound_guard.rs`).
    pub(super) fn check_sound(&mut self) {
        let (all, video) = self.sound.counts();
        let wanted = self.session.remote_video_wanted();
        match self.guard.handle_tick(Instant::now(), all, video, wanted) {
            Some(GuardChange::Paused) => {
                self.session.limit_remote_video(RemoteVideoLimit::Off);
                // Said once per stretch: a failed trial is no news.
                if !self.video_paused_for_sound {
                    tracing::info!(
                        "downlink losing most packets: remote video paused to keep the sound"
                    );
                    self.video_paused_for_sound = true;
                    self.emit(RoomEvent::RemoteVideoPausedForSound);
                }
            }
            Some(GuardChange::Trial) => {
                self.session.limit_remote_video(RemoteVideoLimit::Lowest);
            }
            Some(GuardChange::Resumed) => {
                self.session.limit_remote_video(RemoteVideoLimit::None);
                self.video_paused_for_sound = false;
                self.emit(RoomEvent::RemoteVideoResumed);
            }
            None => {}
        }
    }
}

impl Driver {
    /// A remote track started: tell the application whose it is, and play it (once its
    /// participant is known: the track may arrive before the roster says who sent it).
    pub(super) fn track_received(&mut self, track: RemoteTrack) {
        // msid: stream id `PA_…|…` (the publisher first), track id `TR_…`.
        let stream_id = track.stream_id();
        let participant = ParticipantSid(
            stream_id
                .split_once('|')
                .map_or(stream_id.as_str(), |(p, _)| p)
                .to_owned(),
        );
        let sid = TrackSid(track.track_id());
        let kind = match track.kind() {
            MediaKind::Audio => TrackKind::Audio,
            MediaKind::Video => TrackKind::Video,
        };
        self.pending.push_back(RoomEvent::TrackSubscribed {
            participant: participant.clone(),
            track: sid.clone(),
            kind,
        });
        if self.session.participant(&participant).is_some() {
            self.play(participant, track);
        } else if self.unclaimed.len() < MAX_UNCLAIMED_TRACKS {
            self.unclaimed.push((participant, track));
        } else {
            self.refuse_track(&sid, format!("track {sid} from an unknown participant"));
        }
    }

    /// A participant is now in the roster: its tracks that came first are played.
    pub(super) fn claim_tracks(&mut self, participant: &ParticipantSid) {
        let (theirs, others) = std::mem::take(&mut self.unclaimed)
            .into_iter()
            .partition(|(p, _)| p == participant);
        self.unclaimed = others;
        for (participant, track) in theirs {
            self.play(participant, track);
        }
    }

    /// Plays (or drains) one remote track on a task of the room's, within the
    /// per-participant cap.
    fn play(&mut self, participant: ParticipantSid, track: RemoteTrack) {
        // Tracks that ended give their place back.
        while let Some(ended) = self.remote_media.try_join_next() {
            if let Ok(owner) = ended
                && let Some(n) = self.tracks_of.get_mut(&owner)
            {
                *n = n.saturating_sub(1);
            }
        }
        let sid = TrackSid(track.track_id());
        let count = self.tracks_of.entry(participant.clone()).or_default();
        if *count >= MAX_TRACKS_PER_PARTICIPANT {
            self.refuse_track(
                &sid,
                format!("more than {MAX_TRACKS_PER_PARTICIPANT} tracks from {participant}"),
            );
            return;
        }
        *count += 1;
        let found = self.session.participant(&participant);
        let identity = found.map(|p| p.identity.clone());
        let published = found
            .and_then(|p| p.tracks.iter().find(|t| t.sid == sid))
            .map_or((0, 0), |t| (t.width, t.height));
        let owner = participant;
        match (
            &self.audio_output,
            &self.video_output,
            track.kind(),
            identity,
        ) {
            (Some(output), _, MediaKind::Audio, Some(identity)) => {
                match estrade_media::remote_audio() {
                    Ok((feed, remote)) => {
                        output.open(&identity, &sid, remote);
                        let counter = ArrivalCounter::new(Arc::clone(&self.sound), false);
                        self.remote_media.spawn(async move {
                            audio::feed_remote_audio(track, feed, counter).await;
                            owner
                        });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, track = %sid, "remote audio not played");
                        self.remote_media.spawn(drain(track, owner));
                    }
                }
            }
            (_, Some(output), MediaKind::Video, Some(identity)) => {
                let sink = output.open(&identity, &sid);
                let counter = ArrivalCounter::new(Arc::clone(&self.sound), true);
                self.remote_media.spawn(async move {
                    video::play_remote_video(track, sink, published, counter).await;
                    owner
                });
            }
            // Nobody to play it to: read and discard so the stack's buffers do not fill up.
            _ => {
                self.remote_media.spawn(drain(track, owner));
            }
        }
    }

    /// A track we will not play: the server is asked to stop sending it, and it is said.
    pub(super) fn refuse_track(&mut self, sid: &TrackSid, why: String) {
        let off = TrackSettings {
            enabled: false,
            width: 0,
            height: 0,
        };
        self.session.set_track_settings(sid, off);
        self.reject(why);
    }
}

/// Reads a track we do not play, so the stack's buffers do not fill up.
async fn drain(track: RemoteTrack, owner: ParticipantSid) -> ParticipantSid {
    while track.read().await.is_ok() {}
    owner
}
