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
    let today_10 = now.date_naive().and_hms_opt(10, 0, 0).expect("valid time").and_utc();
    let rows: [(i64, i64, i64, &str, &str, i64, i64, Option<i64>, Option<i64>, &str, Option<&str>, i64); 6] = [
        (1, 1, 1, "Séance 3 : Qualité et cycle de vie des données",
         "Indicateurs de qualité, responsabilités et outillage. Apportez vos questions.",
         at(Duration::minutes(-15)), at(Duration::minutes(75)), Some(at(Duration::minutes(-10))), None,
         "live", None, 30),
        (2, 1, 1, "Séance 4 : Rôles et responsabilités", "Data owners, stewards et comité de gouvernance.",
         ts(today_10 + Duration::days(1)), ts(today_10 + Duration::days(1) + Duration::minutes(90)), None, None,
         "scheduled", None, 30),
        (3, 2, 2, "Atelier : analyse de risques", "Méthode EBIOS RM en pratique, par petits groupes.",
         ts(today_10 + Duration::days(3)), ts(today_10 + Duration::days(3) + Duration::hours(2)), None, None,
         "scheduled", None, 20),
        (4, 1, 1, "Séance 2 : Cartographie des données", "Inventaire et classification.",
         ts(today_10 - Duration::days(1)), ts(today_10 - Duration::days(1) + Duration::minutes(90)),
         Some(ts(today_10 - Duration::days(1) + Duration::minutes(2))),
         Some(ts(today_10 - Duration::days(1) + Duration::minutes(95))), "ended", None, 30),
        (5, 2, 2, "Révision : contrôle d'accès", "Séance de révision avant l'examen.",
         ts(today_10 + Duration::days(5)), ts(today_10 + Duration::days(5) + Duration::hours(1)), None, None,
         "cancelled", Some("Formateur indisponible, séance reportée."), 20),
        (6, 1, 1, "Tutorat individuel", "Une place : entretien de suivi.",
         at(Duration::minutes(-5)), at(Duration::minutes(25)), Some(at(Duration::minutes(-5))), None,
         "live", None, 1),
    ];
    for (id, course, lead, title, desc, start, end, a_start, a_end, status, reason, max) in rows {
        conn.execute(
            "INSERT INTO live_sessions (id, course_id, lead_trainer_id, title, description,
                 scheduled_start, scheduled_end, actual_start, actual_end, status, cancel_reason,
                 room_name, max_participants)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![id, course, lead, title, desc, start, end, a_start, a_end, status, reason,
                    format!("estrade-course-{course}-session-{id}"), max],
        )?;
    }
    conn.execute_batch(
        "INSERT INTO session_co_trainers (session_id, user_id) VALUES (1, 2), (3, 1);",
    )?;
    Ok(true)
}
