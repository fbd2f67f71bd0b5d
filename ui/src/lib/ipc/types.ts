// The shapes that cross IPC. They mirror the backend contract (docs/backend-api.md) as the
// Rust shell forwards it unchanged.

export type UserRole = "trainer" | "student" | "admin";
export type SessionRole = "trainer" | "co_trainer" | "student";
export type SessionStatus = "scheduled" | "live" | "ended" | "cancelled";

export interface User {
  id: string;
  name: string;
  email: string;
  role: UserRole;
}

export interface LiveSession {
  id: string;
  title: string;
  course: { id: string; title: string };
  description: string;
  lead_trainer: { id: string; name: string };
  scheduled_start: string;
  scheduled_end: string;
  actual_start: string | null;
  actual_end: string | null;
  status: SessionStatus;
  cancel_reason: string | null;
  my_role: SessionRole;
  participant_count: number;
  max_participants: number;
}

/** Every failed command rejects with this; `code` is what the UI branches on. */
export interface IpcError {
  code: string;
  message: string;
}

export interface SignInOutcome {
  user: User;
  remembered: boolean;
  remember_error: IpcError | null;
}

export interface AppInfo {
  version: string;
  backend_url: string | null;
  email: string | null;
}

export interface SignInRequest {
  backendUrl: string;
  email: string;
  password: string;
  remember: boolean;
}

export function isIpcError(e: unknown): e is IpcError {
  return (
    typeof e === "object" &&
    e !== null &&
    typeof (e as IpcError).code === "string" &&
    typeof (e as IpcError).message === "string"
  );
}

/** Anything thrown becomes an IpcError, so callers handle one shape. */
export function toIpcError(e: unknown): IpcError {
  if (isIpcError(e)) return e;
  return { code: "internal", message: e instanceof Error ? e.message : String(e) };
}
