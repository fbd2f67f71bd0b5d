import { type Backend, type IpcError, type LiveSession, toIpcError } from "../ipc";

/** Codes that mean the sign-in is gone and only the form can help. */
export const SIGN_IN_CODES = new Set([
  "not_signed_in",
  "unauthenticated",
  "invalid_token",
  "token_expired",
  "invalid_refresh_token",
]);

export interface SessionGroups {
  live: LiveSession[];
  upcoming: LiveSession[];
  past: LiveSession[];
}

/** Live first, then upcoming soonest first, then past most recent first. */
export function groupSessions(sessions: readonly LiveSession[]): SessionGroups {
  const by = (a: LiveSession, b: LiveSession) => a.scheduled_start.localeCompare(b.scheduled_start);
  return {
    live: sessions.filter((s) => s.status === "live").sort(by),
    upcoming: sessions.filter((s) => s.status === "scheduled").sort(by),
    past: sessions
      .filter((s) => s.status === "ended" || s.status === "cancelled")
      .sort((a, b) => by(b, a)),
  };
}

export class SessionList {
  sessions = $state<LiveSession[]>([]);
  loading = $state(false);
  loaded = $state(false);
  error = $state<IpcError | null>(null);
  groups = $derived(groupSessions(this.sessions));

  constructor(
    private readonly backend: Backend,
    private readonly onSignInLost: (e: IpcError) => void,
  ) {}

  async load(): Promise<void> {
    this.loading = true;
    this.error = null;
    try {
      this.sessions = await this.backend.listSessions();
      this.loaded = true;
    } catch (e) {
      const err = toIpcError(e);
      if (SIGN_IN_CODES.has(err.code)) this.onSignInLost(err);
      else this.error = err;
    } finally {
      this.loading = false;
    }
  }
}
