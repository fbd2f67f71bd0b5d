//! Live sessions: `scheduled → live → ended`, `scheduled → cancelled`; join, leave, attendance.

use axum::extract::{Path, State};
use estrade_backend_api::{
    AttendanceRecord, CancelRequest, CourseId, CourseSummary, ErrorCode, JoinResponse,
    LeaveResponse, LiveSession, PersonSummary, SessionId, SessionRole, SessionStatus, UserId,
};
use rusqlite::{Connection, OptionalExtension as _, params};

use super::parse_id;
use crate::AppState;
use crate::auth::AuthUser;
use crate::db::{self, SessionRow};
use crate::error::{ApiError, ApiResult};
use crate::json::Json;

const MAX_REASON: usize = 500;

fn session_json(s: &SessionRow, my_role: SessionRole) -> LiveSession {
    LiveSession {
        id: SessionId(s.id.to_string()),
        title: s.title.clone(),
        course: CourseSummary {
            id: CourseId(s.course_id.to_string()),
            title: s.course_title.clone(),
        },
        description: s.description.clone(),
        lead_trainer: PersonSummary {
            id: UserId(s.lead_trainer_id.to_string()),
            name: s.lead_trainer_name.clone(),
        },
        scheduled_start: db::rfc3339(s.scheduled_start),
        scheduled_end: db::rfc3339(s.scheduled_end),
        actual_start: s.actual_start.map(db::rfc3339),
        actual_end: s.actual_end.map(db::rfc3339),
        status: s.status,
        cancel_reason: s.cancel_reason.clone(),
        my_role,
        participant_count: s.participant_count.max(0) as u32,
        max_participants: s.max_participants.max(0) as u32,
    }
}

/// The session and the caller's role in it: 404 for unknown ids, 403 when the caller
/// has no role (not enrolled in the course, not a trainer of the session).
fn load(conn: &Connection, raw_id: &str, user_id: i64) -> ApiResult<(SessionRow, SessionRole)> {
    let id = parse_id(raw_id, "live session")?;
    let s = db::session_by_id(conn, id)?.ok_or_else(|| ApiError::not_found("live session"))?;
    let role = db::role_in(conn, &s, user_id)?.ok_or_else(|| {
        ApiError::forbidden(
            ErrorCode::NotEnrolled,
            "you are not enrolled in this session's course",
        )
    })?;
    Ok((s, role))
}

/// A state change only the lead trainer may make, from `expected`: the session, or 404,
/// 403 `not_enrolled` / `not_lead_trainer`, 409 for the wrong state.
fn load_for_lead(
    conn: &Connection,
    raw_id: &str,
    user_id: i64,
    expected: SessionStatus,
    action: &str,
) -> ApiResult<SessionRow> {
    let (s, role) = load(conn, raw_id, user_id)?;
    if role != SessionRole::Trainer {
        return Err(ApiError::forbidden(
            ErrorCode::NotLeadTrainer,
            "only the lead trainer of this session may do this",
        ));
    }
    require_status(&s, expected, action)?;
    Ok(s)
}

/// The session must be in `expected` for `action`; 409 with the matching code otherwise.
pub(crate) fn require_status(
    s: &SessionRow,
    expected: SessionStatus,
    action: &str,
) -> ApiResult<()> {
    if s.status == expected {
        return Ok(());
    }
    let code = match expected {
        SessionStatus::Scheduled => ErrorCode::SessionNotScheduled,
        _ => ErrorCode::SessionNotLive,
    };
    Err(ApiError::conflict(
        code,
        format!(
            "the session is {}; {action} needs it {}",
            db::status_str(s.status),
            db::status_str(expected)
        ),
    ))
}

pub async fn list(
    State(state): State<AppState>,
    auth: AuthUser,
) -> ApiResult<axum::Json<Vec<LiveSession>>> {
    let conn = state.conn()?;
    let rows = db::sessions_visible_to(&conn, auth.user.id)?;
    let mut out = Vec::with_capacity(rows.len());
    for s in rows {
        if let Some(role) = db::role_in(&conn, &s, auth.user.id)? {
            out.push(session_json(&s, role));
        }
    }
    Ok(axum::Json(out))
}

pub async fn get_one(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<LiveSession>> {
    let conn = state.conn()?;
    let (s, role) = load(&conn, &id, auth.user.id)?;
    Ok(axum::Json(session_json(&s, role)))
}

pub async fn start(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<LiveSession>> {
    let conn = state.conn()?;
    let s = load_for_lead(
        &conn,
        &id,
        auth.user.id,
        SessionStatus::Scheduled,
        "starting",
    )?;
    let now = db::ts(state.config.clock.now());
    conn.execute(
        "UPDATE live_sessions SET status = 'live', actual_start = ?2 WHERE id = ?1 AND status = 'scheduled'",
        params![s.id, now],
    )?;
    reload(&conn, s.id, SessionRole::Trainer)
}

pub async fn end(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<LiveSession>> {
    let mut conn = state.conn()?;
    let s = load_for_lead(&conn, &id, auth.user.id, SessionStatus::Live, "ending")?;
    let now = db::ts(state.config.clock.now());
    let tx = conn.transaction()?;
    tx.execute(
        "UPDATE live_sessions SET status = 'ended', actual_end = ?2 WHERE id = ?1",
        params![s.id, now],
    )?;
    // Everyone still inside leaves with the session.
    tx.execute(
        "UPDATE attendance SET present = 0, left_at = ?2,
             total_seconds = total_seconds + MAX(0, ?2 - last_joined_at)
         WHERE session_id = ?1 AND present = 1",
        params![s.id, now],
    )?;
    tx.commit()?;
    reload(&conn, s.id, SessionRole::Trainer)
}

pub async fn cancel(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    Json(req): Json<CancelRequest>,
) -> ApiResult<axum::Json<LiveSession>> {
    let reason = req
        .reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    if reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > MAX_REASON)
    {
        return Err(ApiError::bad_request(
            "the reason is longer than 500 characters",
        ));
    }
    let conn = state.conn()?;
    let s = load_for_lead(
        &conn,
        &id,
        auth.user.id,
        SessionStatus::Scheduled,
        "cancelling",
    )?;
    conn.execute(
        "UPDATE live_sessions SET status = 'cancelled', cancel_reason = ?2 WHERE id = ?1",
        params![s.id, reason],
    )?;
    reload(&conn, s.id, SessionRole::Trainer)
}

fn reload(conn: &Connection, id: i64, role: SessionRole) -> ApiResult<axum::Json<LiveSession>> {
    let s = db::session_by_id(conn, id)?.ok_or_else(ApiError::internal)?;
    Ok(axum::Json(session_json(&s, role)))
}

pub async fn join(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<JoinResponse>> {
    let mut conn = state.conn()?;
    let (s, role) = load(&conn, &id, auth.user.id)?;
    require_status(&s, SessionStatus::Live, "joining")?;
    // The limit counts students; trainers are always let in.
    if role == SessionRole::Student
        && db::present_students_except(&conn, s.id, auth.user.id)? >= s.max_participants
    {
        return Err(ApiError::conflict(
            ErrorCode::SessionFull,
            format!("the session is full ({} participants)", s.max_participants),
        ));
    }
    let now_dt = state.config.clock.now();
    let now = db::ts(now_dt);
    let token = super::livekit_token(&state, &auth.user, &s, role)?;
    let tx = conn.transaction()?;
    // A second join while present (another device, a reconnect) keeps the running stay.
    tx.execute(
        "INSERT INTO attendance (session_id, user_id, role, first_joined_at, last_joined_at, present)
         VALUES (?1, ?2, ?3, ?4, ?4, 1)
         ON CONFLICT (session_id, user_id) DO UPDATE SET
             role = excluded.role,
             last_joined_at = CASE WHEN present = 1 THEN last_joined_at ELSE excluded.last_joined_at END,
             left_at = CASE WHEN present = 1 THEN left_at ELSE NULL END,
             present = 1",
        params![s.id, auth.user.id, db::role_str(role), now],
    )?;
    tx.commit()?;
    let expires =
        now_dt + chrono::Duration::from_std(state.config.livekit_token_ttl).unwrap_or_default();
    Ok(axum::Json(JoinResponse {
        token,
        url: state.config.livekit_url.clone(),
        room_name: s.room_name,
        identity: UserId(auth.user.id.to_string()),
        role,
        expires_at: db::rfc3339(db::ts(expires)),
    }))
}

pub async fn leave(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<LeaveResponse>> {
    let conn = state.conn()?;
    let (s, _role) = load(&conn, &id, auth.user.id)?;
    let row: Option<(i64, i64)> = conn
        .query_row(
            "SELECT last_joined_at, total_seconds FROM attendance
             WHERE session_id = ?1 AND user_id = ?2 AND present = 1",
            params![s.id, auth.user.id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (joined_at, total) = row.ok_or_else(|| {
        ApiError::conflict(ErrorCode::NotJoined, "you have not joined this session")
    })?;
    let now = db::ts(state.config.clock.now());
    let stay = (now - joined_at).max(0);
    conn.execute(
        "UPDATE attendance SET present = 0, left_at = ?3, total_seconds = ?4
         WHERE session_id = ?1 AND user_id = ?2",
        params![s.id, auth.user.id, now, total + stay],
    )?;
    Ok(axum::Json(LeaveResponse {
        joined_at: db::rfc3339(joined_at),
        left_at: db::rfc3339(now),
        duration_seconds: stay as u64,
        total_seconds: (total + stay) as u64,
    }))
}

pub async fn attendance(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<AttendanceRecord>>> {
    let conn = state.conn()?;
    let (s, role) = load(&conn, &id, auth.user.id)?;
    if role == SessionRole::Student {
        return Err(ApiError::forbidden(
            ErrorCode::Forbidden,
            "only the trainers of this session may see its attendance",
        ));
    }
    let mut stmt = conn.prepare(
        "SELECT a.user_id, u.name, a.role, a.first_joined_at, a.last_joined_at, a.left_at,
                a.present, a.total_seconds
         FROM attendance a JOIN users u ON u.id = a.user_id
         WHERE a.session_id = ?1 ORDER BY a.first_joined_at, a.user_id",
    )?;
    let rows = stmt.query_map([s.id], |r| {
        let role: String = r.get(2)?;
        Ok(AttendanceRecord {
            user: PersonSummary {
                id: UserId(r.get::<_, i64>(0)?.to_string()),
                name: r.get(1)?,
            },
            role: db::parse_role(&role),
            first_joined_at: db::rfc3339(r.get(3)?),
            last_joined_at: db::rfc3339(r.get(4)?),
            left_at: r.get::<_, Option<i64>>(5)?.map(db::rfc3339),
            present: r.get(6)?,
            total_seconds: r.get::<_, i64>(7)?.max(0) as u64,
        })
    })?;
    Ok(axum::Json(rows.collect::<Result<_, _>>()?))
}
