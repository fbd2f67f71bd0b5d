import type { AppInfo, LiveSession, SignInOutcome, SignInRequest } from "./types";

/**
 * The one seam between the UI and the native side. Components and services receive a
 * Backend through context; the app passes the Tauri one, tests pass a mock.
 */
export interface Backend {
  appInfo(): Promise<AppInfo>;
  /** Signs back in without a password if possible; null means "show the form". */
  restoreSession(): Promise<SignInOutcome | null>;
  signIn(request: SignInRequest): Promise<SignInOutcome>;
  signOut(): Promise<void>;
  listSessions(): Promise<LiveSession[]>;
}
