//! Demo data: two courses, their trainers and students, and sessions in every state.
//! Times are relative to the seeding moment so "scheduled" stays in the future.
//!
//! Every demo account's password is [`DEMO_PASSWORD`]; the accounts are public test data.

use chrono::{DateTime, Duration, Utc};
use rusqlite::{Connection, params};

use crate::auth::hash_password;
use crate::db::ts;

pub const DEMO_PASSWORD: &str = "estrade-demo";
pub const DEMO_TRAINER_EMAIL: &str = "claire.martin@estrade.example";

/// Demo accounts: (email, name, organization role).
pub const USERS: &[(&str, &str, &str)] = &[
    (DEMO_TRAINER_EMAIL, "Claire Martin", "trainer"),
    ("karim.benali@estrade.example", "Karim Benali", "trainer"),
    ("lea.dubois@estrade.example", "Léa Dubois", "student"),
    ("thomas.petit@estrade.example", "Thomas Petit", "student"),
    ("amina.diallo@estrade.example", "Amina Diallo", "student"),
    ("hugo.moreau@estrade.example", "Hugo Moreau", "student"),
    ("nadia.roux@estrade.example", "Nadia Roux", "student"),
];

/// Ids of the seeded sessions, for tests and docs.
pub mod sessions {
    /// Live now; Claire leads, Karim co-trains, course 1.
    pub const LIVE: i64 = 1;
    /// Tomorrow; Claire leads, course 1.
    pub const TOMORROW: i64 = 2;
    /// In three days; Karim leads, Claire co-trains, course 2.
    pub const WORKSHOP: i64 = 3;
    /// Yesterday, ended.
    pub const ENDED: i64 = 4;
    /// Cancelled.
    pub const CANCELLED: i64 = 5;
    /// Live, one student seat only: for capacity checks.
    pub const TUTORING: i64 = 6;
}

pub fn seed_if_empty(conn: &Connection, now: DateTime<Utc>) -> rusqlite::Result<bool> {
    let users: i64 = conn.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?;
    if users > 0 {
        return Ok(false);
    }
    let hash = hash_password(DEMO_PASSWORD);
    for (i, (email, name, role)) in USERS.iter().enumerate() {
        conn.execute(
            "INSERT INTO users (id, name, email, password_hash, role) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![i as i64 + 1, name, email, hash, role],
        )?;
    }
    conn.execute_batch(
        "INSERT INTO courses (id, title) VALUES
             (1, 'Gouvernance des données'),
             (2, 'Sécurité des systèmes d''information');
         -- course 1: Léa, Thomas, Amina, Hugo; course 2: Léa, Amina, Nadia
         INSERT INTO enrollments (course_id, user_id) VALUES
             (1, 3), (1, 4), (1, 5), (1, 6), (2, 3), (2, 5), (2, 7);",
    )?;
    let at = |d: Duration| ts(now + d);
    let day = |days: i64, minutes: i64| {
        let today_10 = now
            .date_naive()
            .and_hms_opt(10, 0, 0)
            .expect("valid time")
            .and_utc();
        ts(today_10 + Duration::days(days) + Duration::minutes(minutes))
    };
    let rows = [
        Row {
            id: 1,
            course: 1,
            lead: 1,
            status: "live",
            max: 30,
            title: "Séance 3 : Qualité et cycle de vie des données",
            description: "Indicateurs de qualité, responsabilités et outillage. Apportez vos questions.",
            start: at(Duration::minutes(-15)),
            end: at(Duration::minutes(75)),
            actual: (Some(at(Duration::minutes(-10))), None),
            cancel_reason: None,
        },
        Row {
            id: 2,
            course: 1,
            lead: 1,
            status: "scheduled",
            max: 30,
            title: "Séance 4 : Rôles et responsabilités",
            description: "Data owners, stewards et comité de gouvernance.",
            start: day(1, 0),
            end: day(1, 90),
            actual: (None, None),
            cancel_reason: None,
        },
        Row {
            id: 3,
            course: 2,
            lead: 2,
            status: "scheduled",
            max: 20,
            title: "Atelier : analyse de risques",
            description: "Méthode EBIOS RM en pratique, par petits groupes.",
            start: day(3, 0),
            end: day(3, 120),
            actual: (None, None),
            cancel_reason: None,
        },
        Row {
            id: 4,
            course: 1,
            lead: 1,
            status: "ended",
            max: 30,
            title: "Séance 2 : Cartographie des données",
            description: "Inventaire et classification.",
            start: day(-1, 0),
            end: day(-1, 90),
            actual: (Some(day(-1, 2)), Some(day(-1, 95))),
            cancel_reason: None,
        },
        Row {
            id: 5,
            course: 2,
            lead: 2,
            status: "cancelled",
            max: 20,
            title: "Révision : contrôle d'accès",
            description: "Séance de révision avant l'examen.",
            start: day(5, 0),
            end: day(5, 60),
            actual: (None, None),
            cancel_reason: Some("Formateur indisponible, séance reportée."),
        },
        Row {
            id: 6,
            course: 1,
            lead: 1,
            status: "live",
            max: 1,
            title: "Tutorat individuel",
            description: "Une place : entretien de suivi.",
            start: at(Duration::minutes(-5)),
            end: at(Duration::minutes(25)),
            actual: (Some(at(Duration::minutes(-5))), None),
            cancel_reason: None,
        },
    ];
    for r in rows {
        conn.execute(
            "INSERT INTO live_sessions (id, course_id, lead_trainer_id, title, description,
                 scheduled_start, scheduled_end, actual_start, actual_end, status, cancel_reason,
                 room_name, max_participants)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                r.id,
                r.course,
                r.lead,
                r.title,
                r.description,
                r.start,
                r.end,
                r.actual.0,
                r.actual.1,
                r.status,
                r.cancel_reason,
                format!("estrade-course-{}-session-{}", r.course, r.id),
                r.max
            ],
        )?;
    }
    conn.execute_batch(
        "INSERT INTO session_co_trainers (session_id, user_id) VALUES (1, 2), (3, 1);",
    )?;
    Ok(true)
}

/// One seeded session.
struct Row {
    id: i64,
    course: i64,
    lead: i64,
    title: &'static str,
    description: &'static str,
    start: i64,
    end: i64,
    /// Actual start and end.
    actual: (Option<i64>, Option<i64>),
    status: &'static str,
    cancel_reason: Option<&'static str>,
    max: i64,
}
