//! The server is the authority over our own tracks: a moderator's mute (RoomService
//! `MutePublishedTrack`, called with the lead trainer's own token as the app will) stops
//! our microphone at once and says so; taking the microphone permission away ends the
//! publication and frees the source; giving it back lets the student publish again.
//! Checked by ear: the trainer's client counts the student's tone bursts.

mod common;

use std::time::Duration;

use common::{devserver, join_grant, wait_for};
use estrade_devserver::{Config, seed};
use estrade_engine::synthetic::ToneBursts;
use estrade_engine::{
    CommandError, LocalTrackEndReason, ParticipantIdentity, PulseRecorder, RoomEvent, SessionEvent,
    TrackSource,
};

/// A RoomService call (Twirp, JSON) with `token`.
async fn room_service(grant_url: &str, token: &str, method: &str, body: serde_json::Value) {
    let base = grant_url
        .replacen("ws://", "http://", 1)
        .replacen("wss://", "https://", 1);
    let response = reqwest::Client::new()
        .post(format!("{base}/twirp/livekit.RoomService/{method}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("the RoomService answers");
    let status = response.status();
    assert!(
        status.is_success(),
        "{method}: {status} {}",
        response.text().await.unwrap_or_default()
    );
}

/// The moderator sets which sources `who` may publish (the permission is replaced whole:
/// the rest of it is restated).
async fn allow_sources(
    moderator: &estrade_backend::api::JoinResponse,
    who: &ParticipantIdentity,
    sources: &[&str],
) {
    let permission = serde_json::json!({
        "can_subscribe": true, "can_publish": true, "can_publish_data": true,
        "can_publish_sources": sources,
    });
    room_service(
        &moderator.url,
        &moderator.token,
        "UpdateParticipant",
        serde_json::json!({"room": moderator.room_name, "identity": who.0, "permission": permission}),
    )
    .await;
}

fn onsets(heard: &PulseRecorder, from: &ParticipantIdentity) -> usize {
    heard.heard_from(from).pulses.latencies_ms.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs livekit-server: scripts/test.sh starts it"]
async fn the_server_mutes_and_unpublishes_us_and_we_obey() {
    let _turn = common::one_at_a_time().await;
    let (devserver, backend) = devserver(Config::default()).await;
    let trainer_grant = join_grant(&backend, seed::DEMO_TRAINER_EMAIL).await;
    let heard = PulseRecorder::default();
    let (trainer, _trainer_events) = estrade_engine::join(estrade_engine::JoinOptions {
        url: trainer_grant.url.clone(),
        token: trainer_grant.token.clone(),
        audio_output: Some(std::sync::Arc::new(heard.clone())),
        video_output: None,
    })
    .await
    .expect("the trainer joins");
    let (student, mut events, lea) =
        common::join_room(&backend, "lea.dubois@estrade.example", None, None).await;
    student
        .publish_microphone(ToneBursts::new(880.0))
        .await
        .unwrap();
    let track = common::own_track_published(&mut events, "the student's microphone").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(onsets(&heard, &lea) >= 3, "the trainer hears her first");

    // The trainer mutes her: the pump stops now, and her client says who did it.
    let room = &trainer_grant.room_name;
    room_service(
        &trainer_grant.url,
        &trainer_grant.token,
        "MutePublishedTrack",
        serde_json::json!({"room": room, "identity": lea.0, "track_sid": track.0, "muted": true}),
    )
    .await;
    wait_for(&mut events, "the server's mute", |e| match e {
        RoomEvent::LocalTrackMuted {
            source: TrackSource::Microphone,
            by_server: true,
        } => Some(()),
        _ => None,
    })
    .await;
    // Nothing leaves her machine (the server would not forward it anyway: what is
    // checked is that her client stops sending). A burst on its way may still arrive.
    let sent_at_mute = student.frames_sent(TrackSource::Microphone);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let at_mute = onsets(&heard, &lea);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = onsets(&heard, &lea);
    let sent_after = student.frames_sent(TrackSource::Microphone);
    eprintln!(
        "frames sent: {sent_at_mute} when muted, {sent_after} 3.6 s later; bursts heard: {at_mute}, {after}"
    );
    assert!(sent_at_mute > 100, "she was sending: {sent_at_mute}");
    assert_eq!(
        sent_after, sent_at_mute,
        "nothing is sent after the server's mute"
    );
    assert_eq!(after, at_mute, "nothing is heard after the server's mute");

    // Unmuting is hers to do: she does, and is heard again.
    student.set_microphone_enabled(true).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let unmuted = onsets(&heard, &lea);
    assert!(unmuted >= after + 3, "heard again after her unmute");

    // The trainer takes her microphone away: the server ends the track, the engine
    // drops the publication (a new publish is not "already published").
    allow_sources(&trainer_grant, &lea, &["SCREEN_SHARE"]).await;
    wait_for(&mut events, "the publication's end", |e| match e {
        RoomEvent::LocalTrackEnded {
            source: TrackSource::Microphone,
            reason: LocalTrackEndReason::Unpublished,
        } => Some(()),
        _ => None,
    })
    .await;
    let sent_at_end = student.frames_sent(TrackSource::Microphone);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let at_end = onsets(&heard, &lea);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(onsets(&heard, &lea), at_end, "nothing after the unpublish");
    assert_eq!(
        student.frames_sent(TrackSource::Microphone),
        sent_at_end,
        "the pump stopped with the publication"
    );
    let again = student.publish_microphone(ToneBursts::new(880.0)).await;
    assert!(
        !matches!(again, Err(CommandError::AlreadyPublished)),
        "the source was freed: {again:?}"
    );
    if again.is_ok() {
        // Sent before our copy of the permission changed: the server refuses it.
        wait_for(&mut events, "the refusal", |e| match e {
            RoomEvent::LocalTrackEnded {
                reason: LocalTrackEndReason::Refused(_),
                ..
            } => Some(()),
            _ => None,
        })
        .await;
    }

    // She gets it back and speaks again.
    allow_sources(&trainer_grant, &lea, &["MICROPHONE"]).await;
    wait_for(&mut events, "her permission back", |e| match e {
        RoomEvent::Session(SessionEvent::ParticipantUpdated(p)) if p.identity == lea => p
            .permissions
            .may_publish(TrackSource::Microphone)
            .then_some(()),
        _ => None,
    })
    .await;
    student
        .publish_microphone(ToneBursts::new(880.0))
        .await
        .unwrap();
    common::own_track_published(&mut events, "her microphone again").await;
    let before = onsets(&heard, &lea);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(onsets(&heard, &lea) >= before + 3, "heard again");

    student.leave().await;
    trainer.leave().await;
    devserver.shutdown().await;
}

/// A microphone that plays `frames` of the tone bursts, then ends (a device unplugged
/// with no other to take over, a file played out).
struct EndsAfter {
    frames: u32,
    tone: ToneBursts,
}

impl estrade_engine::AudioSource for EndsAfter {
    async fn next_frame(
        &mut self,
        out: &mut estrade_engine::AudioFrame,
    ) -> Result<(), estrade_engine::SourceEnded> {
        if self.frames == 0 {
            return Err(estrade_engine::SourceEnded(
                "the test's source ran out".into(),
            ));
        }
        self.frames -= 1;
        estrade_engine::AudioSource::next_frame(&mut self.tone, out).await
    }
}

/// A microphone whose source ends is not left looking live: the publication ends, the
/// application is told why, and the source can be published again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs livekit-server: scripts/test.sh starts it"]
async fn a_source_that_ends_ends_its_publication_and_says_so() {
    let _turn = common::one_at_a_time().await;
    let (devserver, backend) = devserver(Config::default()).await;
    let (student, mut events, _) =
        common::join_room(&backend, "lea.dubois@estrade.example", None, None).await;
    let ends = EndsAfter {
        frames: 50,
        tone: ToneBursts::new(880.0),
    };
    student.publish_microphone(ends).await.unwrap();
    let first = common::own_track_published(&mut events, "the microphone").await;
    let why = wait_for(&mut events, "the publication's end", |e| match e {
        RoomEvent::LocalTrackEnded {
            source: TrackSource::Microphone,
            reason: LocalTrackEndReason::SourceEnded(why),
        } => Some(why.clone()),
        _ => None,
    })
    .await;
    assert!(why.contains("ran out"), "{why}");
    assert_eq!(student.frames_sent(TrackSource::Microphone), 50);
    // Published again: a new track, sending.
    student
        .publish_microphone(ToneBursts::new(880.0))
        .await
        .unwrap();
    let second = common::own_track_published(&mut events, "the microphone again").await;
    assert_ne!(first, second);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(student.frames_sent(TrackSource::Microphone) > 20);
    student.leave().await;
    devserver.shutdown().await;
}
