import { describe, expect, it } from "vitest";

import { MockBackend } from "../ipc/mock";
import { Auth } from "./auth.svelte";

const claire = { id: "1", name: "Claire Martin", email: "claire@example.org", role: "trainer" as const };

describe("Auth", () => {
  it("prefills the form and stays signed out when nothing is remembered", async () => {
    const backend = new MockBackend();
    backend.info = { version: "t", backend_url: "http://127.0.0.1:8787", email: "claire@example.org" };
    const auth = new Auth(backend);
    await auth.restore();
    expect(auth.status).toBe("signed_out");
    expect(auth.backendUrl).toBe("http://127.0.0.1:8787");
    expect(auth.email).toBe("claire@example.org");
    expect(auth.error).toBeNull();
  });

  it("signs back in from a remembered session", async () => {
    const backend = new MockBackend();
    backend.restored = { user: claire, remembered: true, remember_error: null };
    const auth = new Auth(backend);
    await auth.restore();
    expect(auth.status).toBe("signed_in");
    expect(auth.user?.name).toBe("Claire Martin");
  });

  it("shows why a restore failed and falls back to the form", async () => {
    const backend = new MockBackend();
    backend.failures.set("restore_session", { code: "unreachable", message: "refused" });
    const auth = new Auth(backend);
    await auth.restore();
    expect(auth.status).toBe("signed_out");
    expect(auth.error?.code).toBe("unreachable");
  });

  it("keeps the error code of a failed sign-in", async () => {
    const backend = new MockBackend();
    backend.users.set(claire.email, { password: "right", user: claire });
    const auth = new Auth(backend);
    const ok = await auth.signIn({ backendUrl: "http://127.0.0.1:8787", email: claire.email, password: "wrong", remember: true });
    expect(ok).toBe(false);
    expect(auth.status).toBe("signed_out");
    expect(auth.error?.code).toBe("invalid_credentials");
    expect(await auth.signIn({ backendUrl: "http://127.0.0.1:8787", email: claire.email, password: "right", remember: true })).toBe(true);
    expect(auth.status).toBe("signed_in");
    expect(auth.error).toBeNull();
  });

  it("reports a keychain refusal without failing the sign-in", async () => {
    const backend = new MockBackend();
    backend.restored = {
      user: claire,
      remembered: false,
      remember_error: { code: "keychain_unavailable", message: "no secret service" },
    };
    const auth = new Auth(backend);
    await auth.restore();
    expect(auth.status).toBe("signed_in");
    expect(auth.rememberError?.code).toBe("keychain_unavailable");
  });

  it("signs out locally even when the backend cannot be told", async () => {
    const backend = new MockBackend();
    backend.restored = { user: claire, remembered: true, remember_error: null };
    backend.failures.set("sign_out", { code: "unreachable", message: "down" });
    const auth = new Auth(backend);
    await auth.restore();
    await auth.signOut();
    expect(auth.status).toBe("signed_out");
    expect(auth.user).toBeNull();
    expect(auth.error?.code).toBe("unreachable");
  });
});
