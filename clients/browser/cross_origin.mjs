// Opens a frontend page (cross_origin.html, served by the caller from its own origin) in
// Debian's headless chromium and prints what the page saw calling the API (window.__result)
// as JSON. Exits 1 when the page does not finish.
//
//   node cross_origin.mjs 'http://127.0.0.1:PAGE_PORT/cross_origin.html?api=...&blocked=...'
//
// The browser is Debian's chromium (CHROMIUM overrides /usr/bin/chromium), with a fresh
// profile and its full web security on (CORS enforced); playwright-core downloads nothing.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { chromium } from "playwright-core";

const pageUrl = process.argv[2];
const profile = mkdtempSync(join(tmpdir(), "cross-origin-profile-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
const consoleErrors = [];
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (message) => {
    if (message.type() === "error") consoleErrors.push(message.text());
  });
  await page.goto(pageUrl);
  await page.waitForFunction(() => window.__result !== undefined, null, { timeout: 60_000 });
  const result = await page.evaluate(() => window.__result);
  console.log(JSON.stringify({ ...result, console_errors: consoleErrors }, null, 2));
} catch (error) {
  console.error(String(error?.stack ?? error));
  console.error(JSON.stringify({ console_errors: consoleErrors }));
  process.exitCode = 1;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
