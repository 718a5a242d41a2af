// A socket client written against the types the AsyncAPI CLI generates from asyncapi.yaml
// (src/generated/, by check.sh). strict tsc over it proves what a client team needs of them:
// one named type per frame, `type` a required literal that a switch narrows on, wire names
// kept (`group_id`), no `any`. tests/clients/test_socket_types.py checks that this switch
// names every server frame of the contract.

import type { AuthFrame } from "./generated/AuthFrame";
import type { PingFrame } from "./generated/PingFrame";
import type { ReadyFrame } from "./generated/ReadyFrame";
import type { SessionEndReason } from "./generated/SessionEndReason";
import type { SyncFrame } from "./generated/SyncFrame";
import type { UserSocket } from "./generated/UserSocket";

/** Every frame the server sends: the union the generator makes of the `send` operation. */
export type ServerFrame = UserSocket;
export type ClientFrame = AuthFrame | SyncFrame | PingFrame;

// Each frame type once: the union's `type`s are exactly these (a key too many or missing
// does not compile, nor would a `type` that is optional or a plain string).
const SERVER_FRAME_TYPES: Record<ServerFrame["type"], true> = {
  ready: true,
  "message.created": true,
  "message.updated": true,
  "member.added": true,
  "member.removed": true,
  "group.deleted": true,
  read: true,
  "session.ended": true,
  error: true,
  pong: true,
  "contact.requested": true,
  "contact.request.removed": true,
  "contact.added": true,
  "contact.removed": true,
  "block.added": true,
  "block.removed": true,
  "conversation.created": true,
  "message.hidden": true,
  "group.updated": true,
  "join_request.created": true,
  "join_request.removed": true,
};
export const serverFrameTypes = Object.keys(SERVER_FRAME_TYPES);

function unreachable(frame: never): never {
  throw new Error(`unknown frame ${JSON.stringify(frame)}`);
}

function endedBecause(reason: SessionEndReason): string {
  switch (reason) {
    case "logout":
      return "signed out";
    case "password_changed":
      return "password changed elsewhere";
    case "account_cancelled":
      return "account cancelled";
    case "token_exposed":
      return "token seen in a URL";
  }
}

/** What a chat screen does with each frame; every case reads the fields its type has. */
export function describe(frame: ServerFrame): string {
  switch (frame.type) {
    case "ready":
      return `caught up: group 3 at seq ${frame.groups.get("3") ?? 0}, unread ${frame.reads.get("3")?.unread_count ?? 0}`;
    case "message.created":
    case "message.updated": {
      const { group_id, seq, rev, kind, text, sender, reply_to } = frame.message;
      const quoted = reply_to ? ` (re ${reply_to.seq}: ${reply_to.excerpt ?? reply_to.kind})` : "";
      return `${group_id}#${seq} r${rev} ${kind} from ${sender.id ?? "deleted"} ${sender.name}: ${text ?? "(no text)"}${quoted}`;
    }
    case "member.added":
      return `${frame.user.name} (${frame.user.avatar_url ?? "no avatar"}) joined ${frame.group_id}`;
    case "member.removed":
      return `${frame.user_id} left ${frame.group_id}`;
    case "group.deleted":
      return `${frame.group_id} deleted`;
    case "read":
      return `${frame.user_id} read ${frame.group_id} to ${frame.seq}, ${frame.unread_count ?? "-"} unread`;
    case "session.ended":
      return `session ended: ${endedBecause(frame.reason)}`;
    case "error":
      return `error ${frame.code}: ${frame.info}`;
    case "pong":
      return "pong";
    case "contact.requested":
      return `notice ${frame.notice}: ${frame.request.requester.name} asks ${frame.request.addressee.name} (${frame.request.note ?? ""})`;
    case "contact.request.removed":
      return `notice ${frame.notice}: request ${frame.request_id} ${frame.reason}`;
    case "contact.added":
      return `notice ${frame.notice}: ${frame.contact.user.name}, chat ${frame.contact.conversation_id ?? "none yet"}`;
    case "contact.removed":
      return `notice ${frame.notice}: contact ${frame.user_id} removed`;
    case "block.added":
      return `notice ${frame.notice}: blocked ${frame.block.user.name} since ${frame.block.since}`;
    case "block.removed":
      return `notice ${frame.notice}: unblocked ${frame.user_id}`;
    case "conversation.created": {
      const { id, kind, peer, announcement, owner_id, role } = frame.group;
      return `notice ${frame.notice}: ${kind} ${id} with ${peer?.name ?? "-"}, owner ${owner_id ?? "none"}, ${role}, ${announcement?.text ?? ""}`;
    }
    case "message.hidden":
      return `notice ${frame.notice}: ${frame.group_id}#${frame.seq} hidden`;
    case "group.updated": {
      const { id, name, state_version, admin_ids, announcement, join_approval } = frame.group;
      return `${id} ${name} v${state_version}: admins ${admin_ids.join(",")}, ${announcement?.set_by.name ?? "no announcement"}, approval ${join_approval}`;
    }
    case "join_request.created":
      return `notice ${frame.notice}: ${frame.request.added_by.name} adds ${frame.request.user.name} to ${frame.request.group_name}`;
    case "join_request.removed":
      return `notice ${frame.notice}: join request ${frame.request_id} of ${frame.group_id} ${frame.reason}`;
    default:
      return unreachable(frame);
  }
}

// Modelina types a JSON object used as a dictionary (group id to seq) as a `Map`, which
// JSON.parse and JSON.stringify do not make or read: the client converts at the socket.

type Json = { [key: string]: unknown };

function asMap<V>(value: unknown): Map<string, V> {
  return new Map(Object.entries(value as { [key: string]: V }));
}

/** A frame of the socket, as the generated types describe it. The server's frames are
 * checked against the contract by the conformance suite; this only reshapes dictionaries. */
export function decode(text: string): ServerFrame {
  const frame = JSON.parse(text) as Json;
  if (frame["type"] !== "ready") {
    return frame as unknown as ServerFrame;
  }
  const ready: ReadyFrame = {
    type: "ready",
    groups: asMap(frame["groups"]),
    revs: asMap(frame["revs"]),
    reads: asMap(frame["reads"]),
  };
  if (typeof frame["notices"] === "number") ready.notices = frame["notices"];
  if (typeof frame["notices_complete"] === "boolean") ready.notices_complete = frame["notices_complete"];
  if (frame["states"] !== undefined) ready.states = asMap(frame["states"]);
  return ready;
}

export function encode(frame: ClientFrame): string {
  if (frame.type !== "sync") {
    return JSON.stringify(frame);
  }
  const { since, revs, states, notices } = frame;
  return JSON.stringify({
    type: "sync",
    since: Object.fromEntries(since),
    ...(revs && { revs: Object.fromEntries(revs) }),
    ...(states && { states: Object.fromEntries(states) }),
    ...(notices !== undefined && { notices }),
  });
}

/** Every client frame, built from its type. */
export const clientFrames: ClientFrame[] = [
  { type: "auth", token: "MQ.Z0A1bA.c2lnbmF0dXJl" },
  { type: "sync", since: new Map([["3", 17]]) },
  {
    type: "sync",
    since: new Map([["3", 17]]),
    revs: new Map([["3", 21]]),
    states: new Map([["3", 4]]),
    notices: 12,
  },
  { type: "ping" },
];
