/**
 * A walk-through of the IM API with a typed client: register, login, me, a group, the live
 * socket (ws_url) receiving a message posted over REST, a contact added and a direct message
 * exchanged over the socket with a second user, whose unread badge clears on their second
 * device when they read it, an edit and a recall of that message seen on the second user's
 * socket, logout (which ends the socket).
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
type Conversation = components["schemas"]["GroupSummary"];
type ContactRequest = components["schemas"]["ContactRequest"];
type Announcement = components["schemas"]["Announcement"];
/** The `group` of a `group.updated` frame: the state fields of a group's view. */
type GroupState = Pick<
  components["schemas"]["GroupDetail"],
  "id" | "name" | "owner_id" | "admin_ids" | "announcement" | "join_approval" | "state_version"
>;

/** The server's frames this walk-through reads (openapi/asyncapi.yaml has them all). */
type ReadState = Omit<components["schemas"]["ReadState"], "group_id">;
type ServerFrame =
  | { type: "ready"; groups: Record<string, number>; reads: Record<string, ReadState>; notices?: number }
  | { type: "read"; group_id: number; user_id: number; seq: number; unread_count?: number }
  | { type: "message.created"; message: Message }
  | { type: "message.updated"; message: Message }
  | { type: "group.updated"; group: GroupState }
  | { type: "contact.requested"; notice: number; request: ContactRequest }
  | { type: "conversation.created"; notice: number; group: Conversation }
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

  close(): void {
    this.socket.close();
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

  /** The next frame of type `type`, skipping the others. */
  async nextOf(type: string, seconds = 10): Promise<ServerFrame> {
    for (;;) {
      const frame = await this.next(seconds);
      if (frame === null) throw new Error(`socket closed: ${JSON.stringify(this.closed)}`);
      if (frame.type === type) return frame;
    }
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

/** A typed client that sends `auth.token`, once set, as its bearer token. */
function clientWith(auth: { token?: string }) {
  const client = createClient<paths>({ baseUrl });
  const bearer: Middleware = {
    onRequest({ request }) {
      if (auth.token !== undefined) {
        request.headers.set("Authorization", `Bearer ${auth.token}`);
      }
      return request;
    },
  };
  client.use(bearer);
  return client;
}

/** ws_url is relative to the API's base URL: ws/user/{id}/ -> ws://host/api/ws/user/{id}/. */
function socketUrl(wsUrl: string): URL {
  const url = new URL(wsUrl, `${baseUrl.replace(/\/?$/, "/")}`);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url;
}

async function main(): Promise<void> {
  const auth: { token?: string } = {};
  const client = clientWith(auth);

  // A fresh name each run, so the walk-through works against any server.
  const name = `ts_${Date.now().toString(36)}`.slice(0, 16);
  const password = "correct horse";

  const registered = expectOk(
    "register",
    await client.POST("/user/register", { body: { name, password } }),
  );
  step("register", 200, { code: registered.code, user: registered.user.name, id: registered.user.id });

  const signedIn = expectOk("login", await client.POST("/user/login", { body: { name, password } }));
  auth.token = signedIn.token;
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

  const url = socketUrl(signedIn.ws_url);
  const channel = await LiveChannel.open(url.href, signedIn.token);
  // No positions: nothing to replay; then `ready` with the last seq of each of my groups.
  channel.send({ type: "sync", since: {} });
  const ready = await channel.next();
  if (ready?.type !== "ready" || !("groups" in ready)) {
    throw new Error(`expected ready, got ${JSON.stringify(ready)}`);
  }
  step("socket ready", 101, { url: url.pathname, groups: ready.groups });

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

  // A second user, bob, with a client of his own and a socket that asks for notices
  // (`notices: 0`): changes to his contacts and new conversations arrive on it.
  const bobAuth: { token?: string } = {};
  const bobClient = clientWith(bobAuth);
  const bobName = `tb_${Date.now().toString(36)}`.slice(0, 16);
  const bob = expectOk(
    "register bob",
    await bobClient.POST("/user/register", { body: { name: bobName, password } }),
  );
  bobAuth.token = bob.token;
  const bobChannel = await LiveChannel.open(socketUrl(bob.ws_url).href, bob.token);
  // `revs: {}`: this socket follows changes (edits, recalls) too.
  bobChannel.send({ type: "sync", since: {}, notices: 0, revs: {} });
  await bobChannel.nextOf("ready");

  // Alice asks bob to be a contact; his socket hears of it; he accepts.
  const asked = await client.POST("/contacts/requests", {
    body: { name: bobName, note: "Alice, from the walk-through" },
  });
  // 201 with the request; 200 with a contact had bob asked alice first.
  const answer = expectOk("contact request", asked);
  if (!("request" in answer)) throw new Error(`already contacts: ${JSON.stringify(answer)}`);
  const request = answer.request;
  const heard = await bobChannel.nextOf("contact.requested");
  if (!("request" in heard) || heard.request.id !== request.id) {
    throw new Error(`contact.requested carried ${JSON.stringify(heard)}`);
  }
  const accepted = await bobClient.POST("/contacts/requests/{request_id}/accept", {
    params: { path: { request_id: request.id } },
  });
  const contact = expectOk("contact", accepted).contact;
  step("contact", accepted.response.status, {
    request: request.id,
    heard_live: heard.request.id,
    contact: contact.user.name,
  });

  // Alice opens their direct chat and writes in it; bob's socket hears of the new chat,
  // then gets the message.
  const opened = await client.PUT("/direct/{user_id}", {
    params: { path: { user_id: bob.user.id } },
  });
  const chat = expectOk("direct chat", opened).group;
  const created = await bobChannel.nextOf("conversation.created");
  const dm = await client.POST("/groups/{group_id}/messages", {
    params: { path: { group_id: chat.id } },
    body: { text: "hello, Bob" },
  });
  const dmSent = expectOk("direct message", dm).message;
  const dmLive = await bobChannel.nextOf("message.created");
  if (!("message" in dmLive) || dmLive.message.id !== dmSent.id) {
    throw new Error(`bob's socket got ${JSON.stringify(dmLive)}`);
  }
  step("direct message", opened.response.status, {
    kind: chat.kind,
    peer: chat.peer?.name,
    heard_live: "group" in created ? created.group.id : null,
    chat: chat.id,
    text: dmLive.message.text,
  });

  // Bob's second device: its `ready` shows the chat's unread badge; reading the message on
  // the first (markRead over REST) sends the second a `read` frame that clears it.
  const secondDevice = await LiveChannel.open(socketUrl(bob.ws_url).href, bob.token);
  secondDevice.send({ type: "sync", since: {} });
  const bobReady = await secondDevice.nextOf("ready");
  const badge = "reads" in bobReady ? bobReady.reads[String(chat.id)]?.unread_count : undefined;
  const read = await bobClient.PUT("/groups/{group_id}/read", {
    params: { path: { group_id: chat.id } },
    body: { seq: dmSent.seq },
  });
  const marked = expectOk("mark read", read).read;
  const cleared = await secondDevice.nextOf("read");
  step("unread badge", read.response.status, {
    before: badge,
    answered: marked.unread_count,
    other_device: "unread_count" in cleared ? cleared.unread_count : null,
  });
  // Alice fixes a typo, then takes the message back: bob's socket sees both changes.
  const path = { params: { path: { group_id: chat.id, seq: dmSent.seq } } };
  const edited = expectOk(
    "edit",
    await client.PATCH("/groups/{group_id}/messages/{seq}", { ...path, body: { text: "hello, Bob!" } }),
  ).message;
  const seenEdit = await bobChannel.nextOf("message.updated");
  const recalled = expectOk("recall", await client.DELETE("/groups/{group_id}/messages/{seq}", path)).message;
  const seenRecall = await bobChannel.nextOf("message.updated");
  step("edit and recall", 200, {
    edited: "message" in seenEdit ? seenEdit.message.text : null,
    edited_rev: edited.rev,
    recalled_by: "message" in seenRecall ? seenRecall.message.recalled?.by.name : null,
    recalled_rev: recalled.rev,
    text_after: "message" in seenRecall ? seenRecall.message.text : "?",
  });

  // Roles: alice adds bob and carol to her group and makes bob an admin; bob sets the
  // group's announcement. Carol's socket follows group states (`states` in her sync) and
  // sees both changes live, each with the group's state then.
  const carolAuth: { token?: string } = {};
  const carolClient = clientWith(carolAuth);
  const carolName = `tc_${Date.now().toString(36)}`.slice(0, 16);
  const carol = expectOk(
    "register carol",
    await carolClient.POST("/user/register", { body: { name: carolName, password } }),
  );
  carolAuth.token = carol.token;
  for (const member of [bobName, carolName]) {
    expectOk(
      "add member",
      await client.POST("/groups/{group_id}/members", {
        params: { path: { group_id: groupId } },
        body: { name: member },
      }),
    );
  }
  const carolChannel = await LiveChannel.open(socketUrl(carol.ws_url).href, carol.token);
  carolChannel.send({ type: "sync", since: {}, states: {} });
  await carolChannel.nextOf("ready");
  const appointed = await client.PUT("/groups/{group_id}/admins/{user_id}", {
    params: { path: { group_id: groupId, user_id: bob.user.id } },
  });
  const asAdmin = expectOk("appoint admin", appointed).group;
  const seenAdmin = await carolChannel.nextOf("group.updated");
  const text = "Walk-through notice: be nice.";
  const announced = await bobClient.PUT("/groups/{group_id}/announcement", {
    params: { path: { group_id: groupId } },
    body: { text },
  });
  const announcement: Announcement = expectOk("announcement", announced).group.announcement;
  const seenAnnouncement = await carolChannel.nextOf("group.updated");
  const stateOf = (frame: ServerFrame): GroupState | null => ("group" in frame ? (frame.group as GroupState) : null);
  step("admin announcement", announced.response.status, {
    admins: asAdmin.admin_ids,
    heard_admins: stateOf(seenAdmin)?.admin_ids,
    announcement: announcement?.text,
    set_by: announcement?.set_by.name,
    heard_announcement: stateOf(seenAnnouncement)?.announcement?.text,
    heard_version: stateOf(seenAnnouncement)?.state_version,
  });

  carolChannel.close();
  secondDevice.close();
  bobChannel.close();

  const loggedOut = expectOk("logout", await client.POST("/user/logout"));
  step("logout", 200, { code: loggedOut.code });

  // Logging out ends this session's socket: a session.ended frame, then close 4410.
  const ended = await channel.nextOf("session.ended");
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
