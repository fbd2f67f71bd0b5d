// The only module (with its folder) that imports @tauri-apps/*.
import { invoke } from "@tauri-apps/api/core";

import type { Backend } from "./backend";
import type { AppInfo, LiveSession, SignInOutcome, SignInRequest } from "./types";
import { toIpcError } from "./types";

async function call<T>(command: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (e) {
    throw toIpcError(e);
  }
}

export class TauriBackend implements Backend {
  appInfo(): Promise<AppInfo> {
    return call("app_info");
  }

  restoreSession(): Promise<SignInOutcome | null> {
    return call("restore_session");
  }

  signIn(r: SignInRequest): Promise<SignInOutcome> {
    return call("sign_in", {
      backendUrl: r.backendUrl,
      email: r.email,
      password: r.password,
      remember: r.remember,
    });
  }

  signOut(): Promise<void> {
    return call("sign_out");
  }

  listSessions(): Promise<LiveSession[]> {
    return call("list_sessions");
  }
}
