/**
 * A walk-through of the IM API with a typed client: register, login, me, logout.
 *
 *   npm run walkthrough -- http://127.0.0.1:8000/api
 *
 * The types come from the spec (`npm run generate` writes src/schema.d.ts with
 * openapi-typescript); openapi-fetch checks every path, body and response against them at
 * compile time. Prints one JSON line per step; exits 1 when the server answers anything
 * the walk-through does not expect.
 */
import createClient, { type Middleware } from "openapi-fetch";

import type { components, paths } from "./schema.js";

type ErrorBody = components["schemas"]["ApiError"];

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

  const loggedOut = expectOk("logout", await client.POST("/user/logout"));
  step("logout", 200, { code: loggedOut.code });

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
