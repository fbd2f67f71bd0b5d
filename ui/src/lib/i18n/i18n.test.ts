import { describe, expect, it } from "vitest";

import { en } from "./en";
import { fr } from "./fr";
import { I18n } from "./i18n.svelte";

function keys(o: object, prefix = ""): string[] {
  return Object.entries(o).flatMap(([k, v]) =>
    typeof v === "string" ? [prefix + k] : keys(v as object, `${prefix}${k}.`),
  );
}

function memoryStorage(): Pick<Storage, "getItem" | "setItem"> & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return { data, getItem: (k) => data.get(k) ?? null, setItem: (k, v) => void data.set(k, v) };
}

describe("i18n", () => {
  it("has the same keys in every locale", () => {
    expect(keys(en).sort()).toEqual(keys(fr).sort());
  });

  it("is French by default and remembers the choice", () => {
    const storage = memoryStorage();
    const i18n = new I18n(storage);
    expect(i18n.locale).toBe("fr");
    expect(i18n.t("signIn.submit")).toBe("Se connecter");
    i18n.setLocale("en");
    expect(i18n.t("signIn.submit")).toBe("Sign in");
    expect(new I18n(storage).locale).toBe("en");
  });

  it("interpolates parameters and keeps unknown ones visible", () => {
    const i18n = new I18n(null);
    expect(i18n.t("sessions.participants", { count: 3, max: 30 })).toBe("3 / 30 participants");
    expect(i18n.t("sessions.ledBy")).toBe("Animée par {name}");
  });

  it("translates known error codes and falls back to the server's message", () => {
    const i18n = new I18n(null);
    expect(i18n.error({ code: "invalid_credentials", message: "x" })).toBe(
      "Adresse e-mail ou mot de passe incorrect.",
    );
    expect(i18n.error({ code: "rate_limited", message: "slow down" })).toBe(
      "Une erreur est survenue : slow down",
    );
  });

  it("formats dates in the chosen language and leaves garbage as is", () => {
    const i18n = new I18n(null);
    expect(i18n.dateTime("2026-11-23T09:00:00Z")).toMatch(/lundi/);
    i18n.setLocale("en");
    expect(i18n.dateTime("2026-11-23T09:00:00Z")).toMatch(/Monday/);
    expect(i18n.dateTime("not a date")).toBe("not a date");
  });
});
