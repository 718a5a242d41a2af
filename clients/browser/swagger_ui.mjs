// Drives the served Swagger UI in a real headless chromium, as a person would:
// POST /user/register through "Try it out", the token read from the response shown,
// "Authorize" (bearerAuth) with it, then GET /user/me through "Try it out". It also follows
// the description's links to the AsyncAPI document of the socket.
//
//   node swagger_ui.mjs http://127.0.0.1:8000/api [SCREENSHOT_DIR] [NAME]
//
// Prints one JSON object: the status and body each response panel shows, the curl command
// shown for /user/me, and the screenshots taken. Exits 1 on failure (with a screenshot).
// The browser is Debian's chromium (CHROMIUM overrides /usr/bin/chromium), with a fresh
// profile; playwright-core downloads nothing.

import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { chromium } from "playwright-core";

const baseUrl = (process.argv[2] ?? "http://127.0.0.1:8000/api").replace(/\/$/, "");
const shotDir = process.argv[3] ?? mkdtempSync(join(tmpdir(), "swagger-ui-shots-"));
const name = process.argv[4] ?? `ui_${Date.now().toString(36)}`.slice(0, 16);
const password = "correct horse";
const timeout = 20_000;

mkdirSync(shotDir, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), "swagger-ui-profile-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
  viewport: { width: 1280, height: 900 },
});
context.setDefaultTimeout(timeout);
const page = context.pages()[0] ?? (await context.newPage());
const consoleErrors = [];
page.on("console", (message) => {
  if (message.type() === "error") consoleErrors.push(message.text());
});
const screenshots = [];

/** The operation block of METHOD PATH, e.g. ("post", "/user/register"). */
function operation(method, path) {
  return page
    .locator(`.opblock.opblock-${method}`)
    .filter({ has: page.locator(`.opblock-summary-path[data-path="${path}"]`) });
}

/** Expand the operation, "Try it out", fill the JSON body if any, "Execute". */
async function tryItOut(block, body) {
  await block.locator(".opblock-summary").first().click();
  await block.locator("button.try-out__btn").click();
  if (body !== undefined) {
    await block.locator("textarea.body-param__text").fill(JSON.stringify(body, null, 2));
  }
  await block.locator("button.execute").click();
  // The "Server response" table: its row (not the header row) shows the code and the body.
  const shown = block.locator(".live-responses-table tr.response");
  await shown.waitFor();
  const status = Number((await shown.locator(".response-col_status").innerText()).trim());
  const text = await shown.locator(".response-col_description pre").first().innerText();
  return { status, body: JSON.parse(text), text };
}

async function shoot(label, locator) {
  const path = join(shotDir, `${label}.png`);
  await (locator ?? page).screenshot({ path });
  screenshots.push(path);
}

let result;
try {
  await page.goto(`${baseUrl}/ui/`);
  await page.locator(".information-container .title").waitFor();
  const title = (await page.locator(".information-container .title").innerText()).trim();
  // The "Schemas" section lists the spec's components by name (a resolved copy has none).
  await page.locator("section.models .model-container").first().waitFor();
  const schemas = await page
    .locator("section.models .model-container")
    .evaluateAll((nodes) => nodes.map((node) => node.getAttribute("data-name")));
  await shoot("0-top");

  // The description's link to the socket's contract (AsyncAPI), resolved as the browser
  // resolves it against this page (/api/ui/), and what following it answers.
  const asyncapiLinks = await page
    .locator(".information-container .info .description a")
    .evaluateAll((nodes) =>
      nodes.map((node) => node.href).filter((href) => href.includes("asyncapi")),
    );
  const asyncapi = [];
  for (const href of asyncapiLinks) {
    const answer = await page.request.get(href);
    const body = await answer.text();
    asyncapi.push({ href, status: answer.status(), start: body.slice(0, 4000) });
  }

  const register = operation("post", "/user/register");
  const registered = await tryItOut(register, { name, password });
  await register.scrollIntoViewIfNeeded();
  await shoot("1-register", register);

  // Authorize with the token the register response shows.
  await page.locator(".auth-wrapper button.authorize").click();
  const modal = page.locator(".modal-ux");
  await modal.locator("input[type=text]").first().fill(registered.body.token);
  await modal.locator(".auth-btn-wrapper button.authorize").click();
  // Once authorized, the dialog offers "Logout" instead of "Authorize".
  await modal.locator(".auth-btn-wrapper button", { hasText: "Logout" }).waitFor();
  const authorized = (await modal.locator(".auth-container").first().innerText()).trim();
  await shoot("2-authorized", modal);
  await modal.locator(".auth-btn-wrapper button.btn-done").click();

  const me = operation("get", "/user/me");
  const profileShown = await tryItOut(me);
  const curl = await me.locator(".curl-command").innerText();
  await me.scrollIntoViewIfNeeded();
  await shoot("3-me", me);

  result = {
    title,
    schemas,
    asyncapi,
    name,
    register: { status: registered.status, body: registered.body },
    authorized,
    me: { status: profileShown.status, body: profileShown.body },
    curl,
    console_errors: consoleErrors,
    screenshots,
  };
} catch (error) {
  await shoot("failure").catch(() => {});
  console.error(String(error?.stack ?? error));
  console.error(JSON.stringify({ console_errors: consoleErrors, screenshots }));
  process.exitCode = 1;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
if (result) console.log(JSON.stringify(result, null, 2));
