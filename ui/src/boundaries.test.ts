import { describe, expect, it } from "vitest";

// Every source file of the UI, as text (Vite's glob import; tests included).
const sources = import.meta.glob<string>("./**/*.{ts,svelte}", {
  query: "?raw",
  import: "default",
  eager: true,
});

describe("UI boundaries", () => {
  it("has sources to check", () => {
    expect(Object.keys(sources).length).toBeGreaterThan(10);
  });

  it("imports @tauri-apps only in lib/ipc", () => {
    const offenders = Object.entries(sources)
      .filter(([path, text]) => !path.startsWith("./lib/ipc/") && /from\s+["']@tauri-apps\//.test(text))
      .map(([path]) => path);
    expect(offenders).toEqual([]);
  });

  it("never renders raw HTML", () => {
    const offenders = Object.entries(sources)
      .filter(([path, text]) => path.endsWith(".svelte") && (text.includes("{@html") || text.includes("innerHTML")))
      .map(([path]) => path);
    expect(offenders).toEqual([]);
  });
});
