import type { Backend } from "./backend";
import type { AppInfo, IpcError, LiveSession, SignInOutcome, SignInRequest, User } from "./types";

/** An in-memory Backend for UI tests: scripted answers, recorded calls. */
export class MockBackend implements Backend {
  calls: string[] = [];
  info: AppInfo = { version: "0.0.0-test", backend_url: "http://127.0.0.1:8787", email: null };
  restored: SignInOutcome | null = null;
  users = new Map<string, { password: string; user: User }>();
  sessions: LiveSession[] = [];
  /** When set, the named command rejects with this error. */
  failures = new Map<string, IpcError>();

  private fail(command: string): void {
    this.calls.push(command);
    const f = this.failures.get(command);
    if (f) throw f;
  }

  async appInfo(): Promise<AppInfo> {
    this.fail("app_info");
    return this.info;
  }

  async restoreSession(): Promise<SignInOutcome | null> {
    this.fail("restore_session");
    return this.restored;
  }

  async signIn(r: SignInRequest): Promise<SignInOutcome> {
    this.fail("sign_in");
    const entry = this.users.get(r.email);
    if (!entry || entry.password !== r.password) {
      throw { code: "invalid_credentials", message: "wrong email or password" } satisfies IpcError;
    }
    return { user: entry.user, remembered: r.remember, remember_error: null };
  }

  async signOut(): Promise<void> {
    this.fail("sign_out");
  }

  async listSessions(): Promise<LiveSession[]> {
    this.fail("list_sessions");
    return this.sessions;
  }
}

export function sampleSession(overrides: Partial<LiveSession> = {}): LiveSession {
  return {
    id: "1",
    title: "Séance 1",
    course: { id: "1", title: "Gouvernance des données" },
    description: "",
    lead_trainer: { id: "1", name: "Claire Martin" },
    scheduled_start: "2026-11-21T10:00:00Z",
    scheduled_end: "2026-11-21T11:30:00Z",
    actual_start: null,
    actual_end: null,
    status: "scheduled",
    cancel_reason: null,
    my_role: "student",
    participant_count: 0,
    max_participants: 30,
    ...overrides,
  };
}
