//! The SQLite schema and the queries the routes share.
//!
//! Times are stored as Unix seconds (UTC) and rendered as RFC 3339 at the edge.

use std::path::Path;

use chrono::{DateTime, TimeZone as _, Utc};
use estrade_backend_api::{SessionRole, SessionStatus};
use rusqlite::{Connection, OptionalExtension as _, params};

const SCHEMA: &str = r#"
PRAGMA foreign_keys = ON;
CREATE TABLE IF NOT EXISTS users (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    email         TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('trainer', 'student', 'admin'))
);
CREATE TABLE IF NOT EXISTS courses (
    id          INTEGER PRIMARY KEY,
    title       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS enrollments (
    course_id INTEGER NOT NULL REFERENCES courses(id) ON DELETE CASCADE,
    user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (course_id, user_id)
);
CREATE TABLE IF NOT EXISTS live_sessions (
    id               INTEGER PRIMARY KEY,
    course_id        INTEGER NOT NULL REFERENCES courses(id) ON DELETE CASCADE,
    lead_trainer_id  INTEGER NOT NULL REFERENCES users(id),
    title            TEXT NOT NULL,
    description      TEXT NOT NULL DEFAULT '',
    scheduled_start  INTEGER NOT NULL,
    scheduled_end    INTEGER NOT NULL,
    actual_start     INTEGER,
    actual_end       INTEGER,
    status           TEXT NOT NULL DEFAULT 'scheduled'
                     CHECK (status IN ('scheduled', 'live', 'ended', 'cancelled')),
    cancel_reason    TEXT,
    room_name        TEXT NOT NULL UNIQUE,
    max_participants INTEGER NOT NULL DEFAULT 100
);
CREATE TABLE IF NOT EXISTS session_co_trainers (
    session_id INTEGER NOT NULL REFERENCES live_sessions(id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (session_id, user_id)
);
CREATE TABLE IF NOT EXISTS attendance (
    session_id      INTEGER NOT NULL REFERENCES live_sessions(id) ON DELETE CASCADE,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role            TEXT NOT NULL,
    first_joined_at INTEGER NOT NULL,
    last_joined_at  INTEGER NOT NULL,
    left_at         INTEGER,
    present         INTEGER NOT NULL,
    total_seconds   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (session_id, user_id)
);
CREATE TABLE IF NOT EXISTS access_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL,
    revoked    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL,
    revoked    INTEGER NOT NULL DEFAULT 0
);
"#;

pub fn open(path: Option<&Path>) -> rusqlite::Result<Connection> {
    let conn = match path {
        Some(p) => Connection::open(p)?,
        None => Connection::open_in_memory()?,
    };
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

pub fn ts(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

pub fn rfc3339(secs: i64) -> String {
    Utc.timestamp_opt(secs, 0)
        .single()
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub fn status_str(s: SessionStatus) -> &'static str {
    match s {
        SessionStatus::Scheduled => "scheduled",
        SessionStatus::Live => "live",
        SessionStatus::Ended => "ended",
        SessionStatus::Cancelled => "cancelled",
    }
}

pub fn parse_status(s: &str) -> SessionStatus {
    match s {
        "live" => SessionStatus::Live,
        "ended" => SessionStatus::Ended,
        "cancelled" => SessionStatus::Cancelled,
        _ => SessionStatus::Scheduled,
    }
}

pub fn role_str(r: SessionRole) -> &'static str {
    match r {
        SessionRole::Trainer => "trainer",
        SessionRole::CoTrainer => "co_trainer",
        SessionRole::Student => "student",
    }
}

pub fn parse_role(s: &str) -> SessionRole {
    match s {
        "trainer" => SessionRole::Trainer,
        "co_trainer" => SessionRole::CoTrainer,
        _ => SessionRole::Student,
    }
}

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub role: String,
}

pub fn user_by_id(conn: &Connection, id: i64) -> rusqlite::Result<Option<UserRow>> {
    conn.query_row(
        "SELECT id, name, email, role FROM users WHERE id = ?1",
        [id],
        |r| {
            Ok(UserRow {
                id: r.get(0)?,
                name: r.get(1)?,
                email: r.get(2)?,
                role: r.get(3)?,
            })
        },
    )
    .optional()
}

/// Returns the user and their password hash.
pub fn user_by_email(
    conn: &Connection,
    email: &str,
) -> rusqlite::Result<Option<(UserRow, String)>> {
    conn.query_row(
        "SELECT id, name, email, role, password_hash FROM users WHERE email = ?1",
        [email],
        |r| {
            Ok((
                UserRow {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    email: r.get(2)?,
                    role: r.get(3)?,
                },
                r.get(4)?,
            ))
        },
    )
    .optional()
}

#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: i64,
    pub course_id: i64,
    pub course_title: String,
    pub lead_trainer_id: i64,
    pub lead_trainer_name: String,
    pub title: String,
    pub description: String,
    pub scheduled_start: i64,
    pub scheduled_end: i64,
    pub actual_start: Option<i64>,
    pub actual_end: Option<i64>,
    pub status: SessionStatus,
    pub cancel_reason: Option<String>,
    pub room_name: String,
    pub max_participants: i64,
    pub participant_count: i64,
}

const SESSION_SELECT: &str = "
SELECT s.id, s.course_id, c.title, s.lead_trainer_id, u.name, s.title, s.description,
       s.scheduled_start, s.scheduled_end, s.actual_start, s.actual_end, s.status,
       s.cancel_reason, s.room_name, s.max_participants,
       (SELECT COUNT(*) FROM attendance a WHERE a.session_id = s.id AND a.present = 1)
FROM live_sessions s
JOIN courses c ON c.id = s.course_id
JOIN users u ON u.id = s.lead_trainer_id";

fn session_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRow> {
    let status: String = r.get(11)?;
    Ok(SessionRow {
        id: r.get(0)?,
        course_id: r.get(1)?,
        course_title: r.get(2)?,
        lead_trainer_id: r.get(3)?,
        lead_trainer_name: r.get(4)?,
        title: r.get(5)?,
        description: r.get(6)?,
        scheduled_start: r.get(7)?,
        scheduled_end: r.get(8)?,
        actual_start: r.get(9)?,
        actual_end: r.get(10)?,
        status: parse_status(&status),
        cancel_reason: r.get(12)?,
        room_name: r.get(13)?,
        max_participants: r.get(14)?,
        participant_count: r.get(15)?,
    })
}

pub fn session_by_id(conn: &Connection, id: i64) -> rusqlite::Result<Option<SessionRow>> {
    conn.query_row(
        &format!("{SESSION_SELECT} WHERE s.id = ?1"),
        [id],
        session_from_row,
    )
    .optional()
}

pub fn session_by_room(conn: &Connection, room: &str) -> rusqlite::Result<Option<SessionRow>> {
    conn.query_row(
        &format!("{SESSION_SELECT} WHERE s.room_name = ?1"),
        [room],
        session_from_row,
    )
    .optional()
}

/// Sessions where the user is lead trainer, co-trainer, or enrolled in the course,
/// soonest first.
pub fn sessions_visible_to(conn: &Connection, user_id: i64) -> rusqlite::Result<Vec<SessionRow>> {
    let mut stmt = conn.prepare(&format!(
        "{SESSION_SELECT}
         WHERE s.lead_trainer_id = ?1
            OR EXISTS (SELECT 1 FROM session_co_trainers t WHERE t.session_id = s.id AND t.user_id = ?1)
            OR EXISTS (SELECT 1 FROM enrollments e WHERE e.course_id = s.course_id AND e.user_id = ?1)
         ORDER BY s.scheduled_start, s.id"
    ))?;
    let rows = stmt.query_map([user_id], session_from_row)?;
    rows.collect()
}

/// The user's role in a session, or `None` if they have no business there.
pub fn role_in(
    conn: &Connection,
    s: &SessionRow,
    user_id: i64,
) -> rusqlite::Result<Option<SessionRole>> {
    if s.lead_trainer_id == user_id {
        return Ok(Some(SessionRole::Trainer));
    }
    let co: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM session_co_trainers WHERE session_id = ?1 AND user_id = ?2)",
        params![s.id, user_id],
        |r| r.get(0),
    )?;
    if co {
        return Ok(Some(SessionRole::CoTrainer));
    }
    let enrolled: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM enrollments WHERE course_id = ?1 AND user_id = ?2)",
        params![s.course_id, user_id],
        |r| r.get(0),
    )?;
    Ok(enrolled.then_some(SessionRole::Student))
}

pub fn present_students_except(
    conn: &Connection,
    session_id: i64,
    user_id: i64,
) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT COUNT(*) FROM attendance
         WHERE session_id = ?1 AND present = 1 AND role = 'student' AND user_id != ?2",
        params![session_id, user_id],
        |r| r.get(0),
    )
}
