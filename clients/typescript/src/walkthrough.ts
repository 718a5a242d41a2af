/**
 * A walk-through of the IM API with a typed client: register, login, me, a group, the live
 * socket (ws_url) receiving a message posted over REST, logout (which ends the socket).
 *
 *   npm run walkthrough -- http://127.0.0.1:8000/api
 *
 * The types come from the spec (`npm run generate` writes src/schema.d.ts with
 * openapi-typescript); openapi-fetch checks every path, body and response against them at
 * compile time. Prints one JSON line per step; exits 1 when the server answers anything
 * the walk-through does not expect.
 */
import createClient, { type Middleware } from "openapi-fetch";
// Node 20's global WebSocket needs --experimental-websocket, and a browser's cannot send an
// Authorization header; the `ws` package does both, so the token goes on the upgrade.
import WebSocket from "ws";

import type { components, paths } from "./schema.js";

type ErrorBody = components["schemas"]["ApiError"];
type Message = components["schemas"]["Message"];

/** The server's frames this walk-through reads (openapi/asyncapi.yaml has them all). */
type ServerFrame =
  | { type: "ready"; groups: Record<string, number> }
  | { type: "message.created"; message: Message }
  | { type: "session.ended"; reason: string }
  | { type: "error"; code: number; info: string }
  | { type: string };

/** The socket's frames, one at a time, and how it closed. */
class LiveChannel {
  private frames: ServerFrame[] = [];
  private waiting: (() => void) | undefined;
  closed: { code: number; reason: string } | undefined;

  constructor(private readonly socket: WebSocket) {
    socket.on("message", (data, isBinary) => {
      if (!isBinary) this.frames.push(JSON.parse(String(data)) as ServerFrame);
      this.waiting?.();
    });
    socket.on("close", (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.waiting?.();
    });
  }

  static open(url: string, token: string): Promise<LiveChannel> {
    const socket = new WebSocket(url, { headers: { Authorization: `Bearer ${token}` } });
    const channel = new LiveChannel(socket);
    return new Promise((resolve, reject) => {
      socket.once("open", () => resolve(channel));
      socket.once("error", reject);
    });
  }

  send(frame: object): void {
    this.socket.send(JSON.stringify(frame));
  }

  /** The next frame; null once the socket closed; an error after `seconds`. */
  async next(seconds = 10): Promise<ServerFrame | null> {
    const deadline = Date.now() + seconds * 1000;
    while (this.frames.length === 0 && this.closed === undefined) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no frame within ${seconds} s`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiting = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiting = undefined;
    }
    return this.frames.shift() ?? null;
  }

  /** Waits until the socket has closed (after its last frame). */
  async closedWithin(seconds: number): Promise<{ code: number; reason: string }> {
    while (this.closed === undefined) {
      const frame = await this.next(seconds);
      if (frame !== null) throw new Error(`unexpected frame ${JSON.stringify(frame)}`);
    }
    return this.closed;
  }
}

const baseUrl = process.argv[2] ?? process.env.IM_API_URL ?? "http://127.0.0.1:8000/api";

function step(name: string, status: number, detail: Record<string, unknown>): void {
  console.log(JSON.stringify({ step: name, status, ...detail }));
}

/** The data of a success, or an exit with the error the server gave. */
function expectOk<T>(name: string, result: { data?: T; error?: unknown; response: Response }): T {
  if (result.data === undefined) {
    step(name, result.response.status, { error: result.error as ErrorBody });
    throw new Error(`${name} failed with HTTP ${result.response.status}`);
  }
  return result.data;
}

async function main(): Promise<void> {
  const client = createClient<paths>({ baseUrl });
  let token: string | undefined;
  const bearer: Middleware = {
    onRequest({ request }) {
      if (token !== undefined) {
        request.headers.set("Authorization", `Bearer ${token}`);
      }
      return request;
    },
  };
  client.use(bearer);

  // A fresh name each run, so the walk-through works against any server.
  const name = `ts_${Date.now().toString(36)}`.slice(0, 16);
  const password = "correct horse";

  const registered = expectOk(
    "register",
    await client.POST("/user/register", { body: { name, password } }),
  );
  step("register", 200, { code: registered.code, user: registered.user.name, id: registered.user.id });

  const signedIn = expectOk("login", await client.POST("/user/login", { body: { name, password } }));
  token = signedIn.token;
  step("login", 200, { code: signedIn.code, ws_url: signedIn.ws_url, expires_at: signedIn.expires_at });

  const profile = expectOk("me", await client.GET("/user/me"));
  step("me", 200, { code: profile.code, user: profile.user.name, email: profile.user.email });
  if (profile.user.name !== name || profile.user.id !== registered.user.id) {
    throw new Error(`me answered ${profile.user.name}, expected ${name}`);
  }

  const madeGroup = await client.POST("/groups", { body: { name: "ts walk" } });
  const made = expectOk("group", madeGroup);
  const groupId = made.group.id;
  step("group", madeGroup.response.status, { code: made.code, id: groupId });

  // ws_url is relative to the API's base URL: ws/user/{id}/ -> ws://host/api/ws/user/{id}/.
  const socketUrl = new URL(signedIn.ws_url, `${baseUrl.replace(/\/?$/, "/")}`);
  socketUrl.protocol = socketUrl.protocol === "https:" ? "wss:" : "ws:";
  const channel = await LiveChannel.open(socketUrl.href, signedIn.token);
  // No positions: nothing to replay; then `ready` with the last seq of each of my groups.
  channel.send({ type: "sync", since: {} });
  const ready = await channel.next();
  if (ready?.type !== "ready" || !("groups" in ready)) {
    throw new Error(`expected ready, got ${JSON.stringify(ready)}`);
  }
  step("socket ready", 101, { url: socketUrl.pathname, groups: ready.groups });

  const clientMsgId = `ts-${Date.now().toString(36)}`;
  const posted = await client.POST("/groups/{group_id}/messages", {
    params: { path: { group_id: groupId } },
    body: { text: "hello from TypeScript", client_msg_id: clientMsgId },
  });
  const sent = expectOk("post message", posted);
  step("post message", posted.response.status, {
    code: sent.code,
    id: sent.message.id,
    seq: sent.message.seq,
  });

  // The same message, live on the socket: skip any frame that is not it (member.added...).
  let live: Message | undefined;
  while (live === undefined) {
    const frame = await channel.next();
    if (frame === null) throw new Error(`socket closed: ${JSON.stringify(channel.closed)}`);
    if (frame.type === "message.created" && "message" in frame) live = frame.message;
  }
  if (live.id !== sent.message.id || live.text !== "hello from TypeScript" || live.seq !== 1) {
    throw new Error(`message.created carried ${JSON.stringify(live)}`);
  }
  step("message.created", 200, {
    id: live.id,
    seq: live.seq,
    text: live.text,
    client_msg_id: live.client_msg_id,
    sender: live.sender.id,
  });

  const loggedOut = expectOk("logout", await client.POST("/user/logout"));
  step("logout", 200, { code: loggedOut.code });

  // Logging out ends this session's socket: a session.ended frame, then close 4410.
  const ended = await channel.next();
  const closed = await channel.closedWithin(10);
  step("session.ended", closed.code, { frame: ended });

  // The token is dead now: the server answers 401 with an ErrorCode.
  const after = await client.GET("/user/me");
  if (after.response.status !== 401 || after.error === undefined) {
    throw new Error(`me after logout answered HTTP ${after.response.status}, expected 401`);
  }
  const code: components["schemas"]["ErrorCode"] = after.error.code;
  step("me after logout", 401, { code, info: after.error.info });
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
