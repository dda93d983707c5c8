// Shared helpers for the browser tests: launch Debian's chromium through
// playwright-core, collect page errors, CSP violations and dialogs.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const ARTIFACTS = process.env.WF_E2E_ARTIFACTS || path.join(ROOT, 'tests/artifacts');

// One browser with a fresh --user-data-dir (playwright passes it for a
// persistent context). Every new page is a new tab: its own sessionStorage,
// so its own sign-in.
export async function launch(baseURL) {
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wf-e2e-chromium-'));
  const context = await chromium.launchPersistentContext(userDir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    baseURL,
    viewport: { width: 1440, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const close = async () => {
    await context.close().catch(() => {});
    fs.rmSync(userDir, { recursive: true, force: true });
  };
  return { context, close };
}

// A new tab that records page errors, dialogs and CSP violations.
export async function newPage(context) {
  const page = await context.newPage();
  const problems = { pageErrors: [], dialogs: [], csp: [], consoleErrors: [] };
  page.on('pageerror', (e) => problems.pageErrors.push(String(e)));
  page.on('dialog', async (d) => { problems.dialogs.push(`${d.type()}: ${d.message()}`); await d.dismiss().catch(() => {}); });
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const t = m.text();
    if (/Content Security Policy/i.test(t)) problems.csp.push(t);
    else problems.consoleErrors.push(t);
  });
  return { context, page, problems };
}

export async function signIn(page, token) {
  await page.goto('/#/signin');
  await page.fill('#token', token);
  await page.click('#signin-form button[type=submit]');
  await page.waitForSelector('#who .role');
}

export async function shot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}
