import { type Backend, type IpcError, type SignInRequest, type User, toIpcError } from "../ipc";

export type AuthStatus = "restoring" | "signed_out" | "signing_in" | "signed_in";

/** Who is signed in, and the transitions between signed out and in. */
export class Auth {
  status = $state<AuthStatus>("restoring");
  user = $state<User | null>(null);
  error = $state<IpcError | null>(null);
  /** Set when "remember me" was asked and the keychain refused. */
  rememberError = $state<IpcError | null>(null);
  backendUrl = $state("");
  email = $state("");

  constructor(private readonly backend: Backend) {}

  /** At start: prefill the form, then try to sign back in without a password. */
  async restore(): Promise<void> {
    this.status = "restoring";
    try {
      const info = await this.backend.appInfo();
      this.backendUrl = info.backend_url ?? "";
      this.email = info.email ?? "";
      const outcome = await this.backend.restoreSession();
      if (outcome) {
        this.user = outcome.user;
        this.rememberError = outcome.remember_error;
        this.status = "signed_in";
        return;
      }
    } catch (e) {
      this.error = toIpcError(e);
    }
    this.status = "signed_out";
  }

  async signIn(request: SignInRequest): Promise<boolean> {
    this.status = "signing_in";
    this.error = null;
    try {
      const outcome = await this.backend.signIn(request);
      this.user = outcome.user;
      this.rememberError = outcome.remember_error;
      this.backendUrl = request.backendUrl;
      this.email = request.email;
      this.status = "signed_in";
      return true;
    } catch (e) {
      this.error = toIpcError(e);
      this.status = "signed_out";
      return false;
    }
  }

  async signOut(): Promise<void> {
    try {
      await this.backend.signOut();
      this.error = null;
    } catch (e) {
      // Local state is cleared regardless; the reason is shown on the sign-in page.
      this.error = toIpcError(e);
    }
    this.user = null;
    this.rememberError = null;
    this.status = "signed_out";
  }

  /** A command found the sign-in gone (expired, revoked): back to the form, saying why. */
  expired(error: IpcError): void {
    this.user = null;
    this.error = error;
    this.status = "signed_out";
  }
}
