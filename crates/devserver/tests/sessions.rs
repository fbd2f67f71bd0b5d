//! Session visibility, roles, the state machine, join/leave, capacity, attendance, grants.

mod common;

use std::time::Duration;

use common::*;
use estrade_devserver::seed::sessions as ids;
use livekit_api::access_token::TokenVerifier;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn ids_and_roles(list: &Value) -> Vec<(String, String)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_owned(),
                s["my_role"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[tokio::test]
async fn each_user_sees_their_sessions_with_their_role() {
    let h = Harness::start().await;
    let mut claire = ids_and_roles(
        h.get("/api/live-sessions", &h.login(CLAIRE).await)
            .await
            .ok(),
    );
    claire.sort();
    assert_eq!(
        claire,
        pairs(&[
            ("1", "trainer"),
            ("2", "trainer"),
            ("3", "co_trainer"),
            ("4", "trainer"),
            ("6", "trainer")
        ])
    );
    let mut nadia = ids_and_roles(
        h.get("/api/live-sessions", &h.login(NADIA).await)
            .await
            .ok(),
    );
    nadia.sort();
    assert_eq!(nadia, pairs(&[("3", "student"), ("5", "student")]));

    let list = h.get("/api/live-sessions", &h.login(LEA).await).await;
    let first = &list.ok()[0];
    for field in [
        "title",
        "description",
        "scheduled_start",
        "scheduled_end",
        "status",
        "course",
        "lead_trainer",
    ] {
        assert!(!first[field].is_null(), "{field} missing");
    }
    let cancelled = list
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "5")
        .unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    assert!(
        cancelled["cancel_reason"]
            .as_str()
            .unwrap()
            .contains("indisponible")
    );
}

#[tokio::test]
async fn unknown_ids_are_404_and_foreign_sessions_403() {
    let h = Harness::start().await;
    let nadia = h.login(NADIA).await;
    for id in [
        "999",
        "abc",
        "1%20OR%201=1",
        "-1",
        "99999999999999999999999",
    ] {
        let r = h.get(&format!("/api/live-sessions/{id}"), &nadia).await;
        assert_eq!(r.error_code(StatusCode::NOT_FOUND), "not_found", "id {id}");
    }
    let r = h
        .get(&format!("/api/live-sessions/{}", ids::LIVE), &nadia)
        .await;
    assert_eq!(r.error_code(StatusCode::FORBIDDEN), "not_enrolled");
    let r = h
        .post(&format!("/api/live-sessions/{}/join", ids::LIVE), &nadia)
        .await;
    assert_eq!(r.error_code(StatusCode::FORBIDDEN), "not_enrolled");
}

#[tokio::test]
async fn only_the_lead_trainer_starts_ends_and_cancels() {
    let h = Harness::start().await;
    let (claire, karim, lea) = (
        h.login(CLAIRE).await,
        h.login(KARIM).await,
        h.login(LEA).await,
    );
    let workshop = format!("/api/live-sessions/{}", ids::WORKSHOP);
    // Claire co-trains the workshop; Léa attends it.
    for (who, token) in [("co-trainer", &claire), ("student", &lea)] {
        for action in ["start", "cancel"] {
            let r = h
                .request(
                    Method::POST,
                    &format!("{workshop}/{action}"),
                    Some(token),
                    Some(json!({})),
                )
                .await;
            assert_eq!(
                r.error_code(StatusCode::FORBIDDEN),
                "not_lead_trainer",
                "{who} {action}"
            );
        }
    }
    let started = h.post(&format!("{workshop}/start"), &karim).await;
    assert_eq!(started.ok()["status"], "live");
    assert!(started.ok()["actual_start"].is_string());
    let again = h.post(&format!("{workshop}/start"), &karim).await;
    assert_eq!(
        again.error_code(StatusCode::CONFLICT),
        "session_not_scheduled"
    );
    let r = h.post(&format!("{workshop}/end"), &lea).await;
    assert_eq!(r.error_code(StatusCode::FORBIDDEN), "not_lead_trainer");
    let ended = h.post(&format!("{workshop}/end"), &karim).await;
    assert_eq!(ended.ok()["status"], "ended");
    let r = h.post(&format!("{workshop}/end"), &karim).await;
    assert_eq!(r.error_code(StatusCode::CONFLICT), "session_not_live");
    let r = h
        .request(
            Method::POST,
            &format!("{workshop}/cancel"),
            Some(&karim),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.error_code(StatusCode::CONFLICT), "session_not_scheduled");
}

#[tokio::test]
async fn cancelling_keeps_the_reason_and_closes_the_session() {
    let h = Harness::start().await;
    let claire = h.login(CLAIRE).await;
    let path = format!("/api/live-sessions/{}", ids::TOMORROW);
    let long = "x".repeat(501);
    let r = h
        .request(
            Method::POST,
            &format!("{path}/cancel"),
            Some(&claire),
            Some(json!({ "reason": long })),
        )
        .await;
    assert_eq!(r.error_code(StatusCode::BAD_REQUEST), "invalid_request");
    let r = h
        .request(
            Method::POST,
            &format!("{path}/cancel"),
            Some(&claire),
            Some(json!({ "reason": "Grève des transports" })),
        )
        .await;
    assert_eq!(r.ok()["status"], "cancelled");
    assert_eq!(r.ok()["cancel_reason"], "Grève des transports");
    let r = h.post(&format!("{path}/start"), &claire).await;
    assert_eq!(r.error_code(StatusCode::CONFLICT), "session_not_scheduled");
    let r = h.post(&format!("{path}/join"), &h.login(LEA).await).await;
    assert_eq!(r.error_code(StatusCode::CONFLICT), "session_not_live");
}

#[tokio::test]
async fn join_refuses_sessions_that_are_not_live() {
    let h = Harness::start().await;
    let lea = h.login(LEA).await;
    for id in [ids::TOMORROW, ids::ENDED, ids::CANCELLED] {
        let r = h.post(&format!("/api/live-sessions/{id}/join"), &lea).await;
        assert_eq!(
            r.error_code(StatusCode::CONFLICT),
            "session_not_live",
            "session {id}"
        );
    }
}

#[tokio::test]
async fn join_mints_a_livekit_token_with_the_role_grants() {
    let h = Harness::start().await;
    let verifier = TokenVerifier::with_api_key("devkey", "secret");
    let cases = [
        (
            CLAIRE,
            "trainer",
            vec!["microphone", "camera", "screen_share"],
            true,
        ),
        (KARIM, "co_trainer", vec!["microphone", "camera"], false),
        (LEA, "student", vec!["microphone"], false),
    ];
    for (email, role, sources, admin) in cases {
        let token = h.login(email).await;
        let uid = h.user_id(&token).await;
        let r = h
            .post(&format!("/api/live-sessions/{}/join", ids::LIVE), &token)
            .await;
        let body = r.ok();
        assert_eq!(body["role"], role);
        assert_eq!(body["identity"], uid.as_str());
        assert_eq!(body["url"], "ws://127.0.0.1:7880");
        assert_eq!(body["room_name"], "estrade-course-1-session-1");
        let claims = verifier
            .verify(body["token"].as_str().unwrap())
            .expect("token verifies");
        assert_eq!(claims.sub, uid);
        assert_eq!(claims.video.room, "estrade-course-1-session-1");
        assert!(claims.video.room_join);
        assert_eq!(claims.video.can_publish_sources, sources);
        assert_eq!(claims.video.can_publish_data, Some(true));
        assert_eq!(claims.video.can_subscribe, Some(true));
        assert_eq!(
            claims.video.can_update_own_metadata,
            Some(admin),
            "only the lead"
        );
        assert_eq!(claims.video.room_admin, admin);
        let ttl = claims.exp as i64 - claims.nbf as i64;
        assert!((7190..=7210).contains(&ttl), "2 h lifetime, got {ttl} s");
        assert_eq!(claims.attributes["estrade.role"], role);
    }
    let list = h.get("/api/live-sessions", &h.login(LEA).await).await;
    let live = list
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "1")
        .unwrap()
        .clone();
    assert_eq!(live["participant_count"], 3);
}

#[tokio::test]
async fn capacity_counts_students_and_lets_trainers_in() {
    let h = Harness::start().await;
    let (lea, thomas, claire) = (
        h.login(LEA).await,
        h.login(THOMAS).await,
        h.login(CLAIRE).await,
    );
    let path = format!("/api/live-sessions/{}", ids::TUTORING);
    h.post(&format!("{path}/join"), &lea).await.ok();
    let full = h.post(&format!("{path}/join"), &thomas).await;
    assert_eq!(full.error_code(StatusCode::CONFLICT), "session_full");
    h.post(&format!("{path}/join"), &lea).await.ok(); // a rejoin is not a second seat
    h.post(&format!("{path}/join"), &claire).await.ok();
    h.post(&format!("{path}/leave"), &lea).await.ok();
    h.post(&format!("{path}/join"), &thomas).await.ok();
}

#[tokio::test]
async fn leave_records_attendance() {
    let h = Harness::start().await;
    let (lea, claire) = (h.login(LEA).await, h.login(CLAIRE).await);
    let path = format!("/api/live-sessions/{}", ids::LIVE);
    let r = h.post(&format!("{path}/leave"), &lea).await;
    assert_eq!(r.error_code(StatusCode::CONFLICT), "not_joined");

    h.post(&format!("{path}/join"), &lea).await.ok();
    h.clock.advance(Duration::from_secs(600));
    let first = h.post(&format!("{path}/leave"), &lea).await;
    assert_eq!(first.ok()["duration_seconds"], 600);
    assert_eq!(first.ok()["total_seconds"], 600);
    h.clock.advance(Duration::from_secs(60));
    h.post(&format!("{path}/join"), &lea).await.ok();
    h.clock.advance(Duration::from_secs(120));
    let second = h.post(&format!("{path}/leave"), &lea).await;
    assert_eq!(second.ok()["duration_seconds"], 120);
    assert_eq!(second.ok()["total_seconds"], 720);

    let r = h.get(&format!("{path}/attendance"), &lea).await;
    assert_eq!(r.error_code(StatusCode::FORBIDDEN), "forbidden");
    let karim = h.login(KARIM).await; // co-trainers may see it
    let list = h.get(&format!("{path}/attendance"), &karim).await;
    let rows = list.ok().as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["user"]["name"], "Léa Dubois");
    assert_eq!(rows[0]["present"], false);
    assert_eq!(rows[0]["total_seconds"], 720);
    h.get(&format!("{path}/attendance"), &claire).await.ok();
}

#[tokio::test]
async fn ending_a_session_closes_everyones_attendance() {
    let h = Harness::start().await;
    let (lea, claire) = (h.login(LEA).await, h.login(CLAIRE).await);
    let path = format!("/api/live-sessions/{}", ids::LIVE);
    h.post(&format!("{path}/join"), &lea).await.ok();
    h.clock.advance(Duration::from_secs(300));
    let ended = h.post(&format!("{path}/end"), &claire).await;
    assert_eq!(ended.ok()["status"], "ended");
    assert_eq!(ended.ok()["participant_count"], 0);
    let rows = h.get(&format!("{path}/attendance"), &claire).await;
    assert_eq!(rows.ok()[0]["present"], false);
    assert_eq!(rows.ok()[0]["total_seconds"], 300);
    let r = h.post(&format!("{path}/join"), &lea).await;
    assert_eq!(r.error_code(StatusCode::CONFLICT), "session_not_live");
}

#[tokio::test]
async fn livekit_token_endpoint_follows_the_join_rules() {
    let h = Harness::start().await;
    let lea = h.login(LEA).await;
    let token = |room: &str| json!({ "room_name": room });
    let r = h
        .request(
            Method::POST,
            "/api/livekit/token",
            Some(&lea),
            Some(token("estrade-course-1-session-1")),
        )
        .await;
    assert_eq!(r.ok()["room_name"], "estrade-course-1-session-1");
    let claims = TokenVerifier::with_api_key("devkey", "secret")
        .verify(r.ok()["token"].as_str().unwrap())
        .unwrap();
    assert_eq!(claims.video.can_publish_sources, vec!["microphone"]);

    let r = h
        .request(
            Method::POST,
            "/api/livekit/token",
            Some(&lea),
            Some(token("nope")),
        )
        .await;
    assert_eq!(r.error_code(StatusCode::NOT_FOUND), "not_found");
    let r = h
        .request(
            Method::POST,
            "/api/livekit/token",
            Some(&lea),
            Some(token("")),
        )
        .await;
    assert_eq!(r.error_code(StatusCode::BAD_REQUEST), "invalid_request");
    let r = h
        .request(
            Method::POST,
            "/api/livekit/token",
            Some(&lea),
            Some(token("estrade-course-1-session-2")),
        )
        .await;
    assert_eq!(r.error_code(StatusCode::CONFLICT), "session_not_live");
    let nadia = h.login(NADIA).await;
    let r = h
        .request(
            Method::POST,
            "/api/livekit/token",
            Some(&nadia),
            Some(token("estrade-course-1-session-1")),
        )
        .await;
    assert_eq!(r.error_code(StatusCode::FORBIDDEN), "not_enrolled");
    let r = h
        .request(
            Method::POST,
            "/api/livekit/token",
            None,
            Some(token("estrade-course-1-session-1")),
        )
        .await;
    assert_eq!(r.error_code(StatusCode::UNAUTHORIZED), "unauthenticated");
}
