import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/svelte";
import { afterEach, describe, expect, it } from "vitest";

import App from "./App.svelte";
import { I18n } from "./lib/i18n/i18n.svelte";
import { MockBackend, sampleSession } from "./lib/ipc/mock";

const claire = { id: "1", name: "Claire Martin", email: "claire@example.org", role: "trainer" as const };

afterEach(cleanup);

describe("App", () => {
  it("signs in through the form and shows the sessions, in French", async () => {
    const backend = new MockBackend();
    backend.users.set(claire.email, { password: "pw", user: claire });
    backend.sessions = [sampleSession({ title: "Séance en direct", status: "live", my_role: "trainer" })];
    render(App, { backend, i18n: new I18n(null) });

    await screen.findByTestId("sign-in-form");
    await fireEvent.input(screen.getByLabelText("Adresse e-mail"), { target: { value: claire.email } });
    await fireEvent.input(screen.getByLabelText("Mot de passe"), { target: { value: "wrong" } });
    await fireEvent.submit(screen.getByTestId("sign-in-form"));
    expect((await screen.findByTestId("error")).textContent).toBe("Adresse e-mail ou mot de passe incorrect.");
    expect((screen.getByLabelText("Mot de passe") as HTMLInputElement).value).toBe("");

    await fireEvent.input(screen.getByLabelText("Mot de passe"), { target: { value: "pw" } });
    await fireEvent.submit(screen.getByTestId("sign-in-form"));
    expect((await screen.findByTestId("session-title")).textContent).toBe("Séance en direct");
    expect(screen.getByText("En direct", { selector: ".badge" })).toBeTruthy();
    expect(screen.getByTestId("signed-in-as").textContent).toBe("Connecté en tant que Claire Martin");
  });

  it("renders hostile names and titles as text, never as markup", async () => {
    const backend = new MockBackend();
    const hostile = '<img src=x onerror="window.__pwned=1">';
    backend.restored = { user: { ...claire, name: hostile }, remembered: true, remember_error: null };
    backend.sessions = [sampleSession({ title: hostile, description: hostile, lead_trainer: { id: "2", name: hostile } })];
    const { container } = render(App, { backend, i18n: new I18n(null) });
    expect((await screen.findByTestId("session-title")).textContent).toBe(hostile);
    expect(container.querySelector("img[src=x]")).toBeNull();
    expect((window as unknown as { __pwned?: number }).__pwned).toBeUndefined();
  });

  it("switches to English", async () => {
    const backend = new MockBackend();
    render(App, { backend, i18n: new I18n(null) });
    const select = (await screen.findByTestId("locale-switch")) as HTMLSelectElement;
    await fireEvent.change(select, { target: { value: "en" } });
    await waitFor(() => expect(screen.getByRole("heading", { level: 1 }).textContent).toBe("Sign in"));
  });

  it("returns to the sign-in form when the session list says the sign-in is gone", async () => {
    const backend = new MockBackend();
    backend.restored = { user: claire, remembered: true, remember_error: null };
    backend.failures.set("list_sessions", { code: "invalid_refresh_token", message: "gone" });
    render(App, { backend, i18n: new I18n(null) });
    await screen.findByTestId("sign-in-form");
    expect(screen.getByTestId("error").getAttribute("data-code")).toBe("invalid_refresh_token");
  });
});
