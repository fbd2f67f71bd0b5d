import { getContext, setContext } from "svelte";

import type { IpcError } from "../ipc";
import { en } from "./en";
import { fr, type Messages } from "./fr";

export type Locale = "fr" | "en";
export const LOCALES: readonly Locale[] = ["fr", "en"];
const CATALOGS: Record<Locale, Messages> = { fr, en };
const STORAGE_KEY = "estrade.locale";

/** Dotted paths to the strings of a catalog: "sessions.status.live". */
type Paths<T, P extends string = ""> = {
  [K in keyof T & string]: T[K] extends string ? `${P}${K}` : Paths<T[K], `${P}${K}.`>;
}[keyof T & string];
export type MessageKey = Paths<Messages>;

function lookup(catalog: Messages, key: string): string | undefined {
  let node: unknown = catalog;
  for (const part of key.split(".")) {
    if (typeof node !== "object" || node === null) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return typeof node === "string" ? node : undefined;
}

/** The UI language: French unless the user chose otherwise (remembered locally). */
export class I18n {
  locale = $state<Locale>("fr");

  constructor(storage: Pick<Storage, "getItem" | "setItem"> | null = globalThis.localStorage ?? null) {
    this.storage = storage;
    const saved = storage?.getItem(STORAGE_KEY);
    if (saved === "fr" || saved === "en") this.locale = saved;
  }

  private storage: Pick<Storage, "getItem" | "setItem"> | null;

  setLocale(locale: Locale): void {
    this.locale = locale;
    this.storage?.setItem(STORAGE_KEY, locale);
    if (typeof document !== "undefined") document.documentElement.lang = locale;
  }

  /** Interpolation puts values in as text: the result is only ever rendered as text. */
  t(key: MessageKey, params: Record<string, string | number> = {}): string {
    const template = lookup(CATALOGS[this.locale], key) ?? lookup(fr, key) ?? key;
    return template.replace(/\{(\w+)\}/g, (m, name: string) =>
      name in params ? String(params[name]) : m,
    );
  }

  /** A translated message for an IPC error code, or the generic one with the detail. */
  error(e: IpcError): string {
    const key = `errors.${e.code}`;
    if (lookup(fr, key) !== undefined) return this.t(key as MessageKey);
    return this.t("errors.generic", { message: e.message });
  }

  dateTime(iso: string): string {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return iso;
    return new Intl.DateTimeFormat(this.locale === "fr" ? "fr-FR" : "en-GB", {
      weekday: "long",
      day: "numeric",
      month: "long",
      hour: "2-digit",
      minute: "2-digit",
    }).format(date);
  }

  time(iso: string): string {
    const date = new Date(iso);
    if (Number.isNaN(date.getTime())) return iso;
    return new Intl.DateTimeFormat(this.locale === "fr" ? "fr-FR" : "en-GB", {
      hour: "2-digit",
      minute: "2-digit",
    }).format(date);
  }
}

const KEY = Symbol("i18n");

export function provideI18n(i18n: I18n): void {
  setContext(KEY, i18n);
}

export function useI18n(): I18n {
  const i18n = getContext<I18n | undefined>(KEY);
  if (!i18n) throw new Error("no I18n in context: provideI18n() first");
  return i18n;
}
