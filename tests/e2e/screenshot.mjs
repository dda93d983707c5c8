// Takes a screenshot of one dashboard page of a running engine, signed in
// with a token (the dashboard keeps it in sessionStorage, so a plain
// `chromium --screenshot URL` only shows the sign-in page).
//
//   node tests/e2e/screenshot.mjs URL TOKEN HASH OUT.png [WIDTHxHEIGHT] [TASK]
//   node tests/e2e/screenshot.mjs "$WF_URL" "$WF_TOKEN" '#/runs/2' docs/img/dashboard.png 1400x900 check
//
// With TASK (on a run page), that task's node is clicked first so that its
// attempts, output and error show beside the graph.
//
// Used for docs/img/dashboard.png (README). Needs tests/e2e/node_modules
// (cd tests/e2e && npm ci) and /usr/bin/chromium (or $CHROMIUM).
import { launch, newPage, signIn } from './lib.mjs';

const [url, token, hash, out, size = '1400x900', task] = process.argv.slice(2);
if (!url || !token || !hash || !out) {
  console.error('usage: node tests/e2e/screenshot.mjs URL TOKEN HASH OUT.png [WIDTHxHEIGHT] [TASK]');
  process.exit(2);
}
const [width, height] = size.split('x').map(Number);

const { context, close } = await launch(url);
try {
  const { page, problems } = await newPage(context);
  await page.setViewportSize({ width, height });
  await signIn(page, token);
  await page.goto(`/${hash}`);
  // run pages draw the DAG as svg.dag; other pages have none
  await page.waitForSelector('svg.dag g.nodes g', { timeout: 5000 }).catch(() => {});
  if (task) await page.click(`svg.dag g.node[data-task="${task}"]`);
  await page.waitForTimeout(1000); // layout and live data settle
  await page.screenshot({ path: out });
  const all = [...problems.pageErrors, ...problems.csp, ...problems.consoleErrors];
  if (all.length) console.error(`page problems:\n  ${all.join('\n  ')}`);
  console.log(`${out}: ${width}x${height} of ${url}/${hash}`);
} finally {
  await close();
}
