import { describe, expect, it } from "vitest";

import type { IpcError } from "../ipc";
import { MockBackend, sampleSession } from "../ipc/mock";
import { SessionList, groupSessions } from "./sessions.svelte";

describe("groupSessions", () => {
  it("puts live first, upcoming soonest first, past most recent first", () => {
    const g = groupSessions([
      sampleSession({ id: "a", status: "ended", scheduled_start: "2026-11-01T10:00:00Z" }),
      sampleSession({ id: "b", status: "scheduled", scheduled_start: "2026-11-30T10:00:00Z" }),
      sampleSession({ id: "c", status: "live", scheduled_start: "2026-11-21T10:00:00Z" }),
      sampleSession({ id: "d", status: "scheduled", scheduled_start: "2026-11-25T10:00:00Z" }),
      sampleSession({ id: "e", status: "cancelled", scheduled_start: "2026-11-10T10:00:00Z" }),
    ]);
    expect(g.live.map((s) => s.id)).toEqual(["c"]);
    expect(g.upcoming.map((s) => s.id)).toEqual(["d", "b"]);
    expect(g.past.map((s) => s.id)).toEqual(["e", "a"]);
  });
});

describe("SessionList", () => {
  it("loads sessions", async () => {
    const backend = new MockBackend();
    backend.sessions = [sampleSession({ status: "live" })];
    const list = new SessionList(backend, () => {});
    await list.load();
    expect(list.loaded).toBe(true);
    expect(list.groups.live).toHaveLength(1);
    expect(list.error).toBeNull();
  });

  it("hands a lost sign-in to the caller instead of showing it as a list error", async () => {
    const backend = new MockBackend();
    backend.failures.set("list_sessions", { code: "invalid_refresh_token", message: "gone" });
    const lost: IpcError[] = [];
    const list = new SessionList(backend, (e) => lost.push(e));
    await list.load();
    expect(lost.map((e) => e.code)).toEqual(["invalid_refresh_token"]);
    expect(list.error).toBeNull();
  });

  it("keeps other errors for display and the old list", async () => {
    const backend = new MockBackend();
    backend.sessions = [sampleSession()];
    const list = new SessionList(backend, () => {});
    await list.load();
    backend.failures.set("list_sessions", { code: "server_error", message: "HTTP 500" });
    await list.load();
    expect(list.error?.code).toBe("server_error");
    expect(list.sessions).toHaveLength(1);
  });
});
