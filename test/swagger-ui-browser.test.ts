import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import t from 'tap';
import { buildTestApp } from './helpers/app.js';

/**
 * Swagger UI in a real browser (Debian's Chromium, driven by playwright-core, headless): open /docs, Authorize with an
 * OAuth2 client (client credentials), then Try it out on the twoFAWhitelist list and on its POST; both answer 2xx.
 *
 * Chromium is required, never skipped: CHROMIUM_PATH or /usr/bin/chromium (`.ci/run` installs Debian's package when
 * it runs as root and it is missing). On a failure the page is saved as a screenshot in the folder the failure names.
 */
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

t.test('Swagger UI: Authorize with an OAuth2 client, then Try it out on the whitelist list and a POST', async (t) => {
  if (!fs.existsSync(CHROMIUM)) {
    t.fail(
      `Chromium is not installed at ${CHROMIUM}: install it (apt-get install -y chromium, which .ci/run does as root) ` +
        'or set CHROMIUM_PATH to a Chromium or Chrome binary',
    );
    return;
  }
  const ctx = await buildTestApp(t, { auth: true });
  const serviceName = await ctx.newService('pcc-browser', 'browser');
  const client = await ctx.app.services.auth.createOauthClient('browser', 'swagger-ui');
  await ctx.app.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(ctx.app.server.address() as AddressInfo).port}`;

  // As root, Chromium's sandbox cannot start (Debian's package needs --no-sandbox then); a user keeps the sandbox.
  const asRoot = process.getuid?.() === 0;
  const browser: Browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: asRoot ? ['--no-sandbox'] : [],
    timeout: 60_000,
  });
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  page.setDefaultTimeout(20_000);
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    // Swagger UI sets a few inline styles, which the docs' CSP (style-src 'self') refuses on purpose: cosmetic.
    if (msg.type() === 'error' && !/Applying inline style violates/.test(msg.text())) problems.push(`console: ${msg.text()}`);
  });

  const shots = path.join(os.tmpdir(), `pcc-2fa-browser-${Date.now()}`);
  const onFailure = async (step: string, err: unknown) => {
    fs.mkdirSync(shots, { recursive: true });
    const file = path.join(shots, `${step}.png`);
    await page.screenshot({ path: file, fullPage: true }).catch(() => undefined);
    t.fail(`${step}: ${err instanceof Error ? err.message : String(err)} (screenshot in ${shots}; ${problems.join('; ')})`);
  };
  const step = async (name: string, fn: () => Promise<void>) => {
    try {
      await fn();
      return true;
    } catch (err) {
      await onFailure(name, err);
      return false;
    }
  };

  const ok =
    (await step('open', async () => {
      await page.goto(`${base}/docs`);
      await page.locator('.swagger-ui .information-container').waitFor();
    })) &&
    (await step('authorize', async () => {
      await page.locator('button.authorize').first().click();
      const dialog = page.locator('.modal-ux');
      // The oauth2 scheme's client credentials form.
      const form = dialog.locator('.auth-container').filter({ hasText: 'clientCredentials' });
      await form.locator('input#client_id_clientCredentials').fill(client.clientId);
      await form.locator('input#client_secret_clientCredentials').fill(client.clientSecret);
      const tokenAnswer = page.waitForResponse((r) => r.url().endsWith('/1.0/auth/oauth2/token'));
      await form.locator('button.authorize').click();
      const tokenStatus = (await tokenAnswer).status();
      if (tokenStatus !== 200) throw new Error(`the token endpoint answered ${tokenStatus} to the browser`);
      // Once the token came, the form says "Authorized" and its button turns into Logout.
      await form.locator('h6', { hasText: 'Authorized' }).waitFor();
      await form.locator('button[aria-label="Remove authorization"]').waitFor();
      t.pass('Swagger UI holds a token from the client credentials');
      await form.locator('button.btn-done').click();
    })) &&
    (await step('list', async () => {
      const status = await tryItOut(page, 'get', '/1.0/dedicatedCloud/{serviceName}/twoFAWhitelist', serviceName);
      if (status !== 200) throw new Error(`Try it out: GET …/twoFAWhitelist answered ${status}`);
      t.pass('Try it out: GET …/twoFAWhitelist answered 200');
    })) &&
    (await step('post', async () => {
      const body = JSON.stringify({ ip: '198.51.100.0/24', description: 'from Swagger UI' });
      const status = await tryItOut(page, 'post', '/1.0/dedicatedCloud/{serviceName}/twoFAWhitelist', serviceName, body);
      if (status !== 200) throw new Error(`Try it out: POST …/twoFAWhitelist answered ${status}`);
      t.pass('Try it out: POST …/twoFAWhitelist answered 200');
    }));
  if (ok) {
    const list = await ctx.app.inject({ method: 'GET', url: `/1.0/dedicatedCloud/${serviceName}/twoFAWhitelist`, headers: {} });
    t.equal(list.statusCode, 403, 'the server still wants credentials without the browser');
    const rows = await ctx.handle.db.selectFrom('two_fa_whitelist').select(['ip', 'description']).execute();
    t.match(rows, [{ ip: '198.51.100.0', description: 'from Swagger UI' }], 'the POST made its entry');
    t.strictSame(problems, [], 'no error on the page');
    if (!t.passing()) await onFailure('end', new Error('a check above failed'));
  }
});

/** Expands an operation, presses Try it out, fills serviceName (and the body), executes; returns the answer's status. */
async function tryItOut(page: Page, method: string, apiPath: string, serviceName: string, body?: string): Promise<number> {
  const op = page.locator(`.opblock-${method}`).filter({
    has: page.locator(`.opblock-summary-path[data-path="${apiPath}"]`),
  });
  await op.locator('.opblock-summary').first().click();
  await op.locator('button.try-out__btn').click();
  await op.locator('tr[data-param-name="serviceName"] input').fill(serviceName);
  if (body !== undefined) await op.locator('.body-param textarea').fill(body);
  await op.locator('button.execute').click();
  const status = op.locator('.live-responses-table .response .response-col_status').first();
  await status.waitFor();
  return Number((await status.innerText()).trim());
}
