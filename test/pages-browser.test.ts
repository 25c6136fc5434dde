import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import jsqr from 'jsqr';
import { chromium, type Browser, type Page } from 'playwright-core';
import { PNG } from 'pngjs';
import t from 'tap';
import { buildTestApp } from './helpers/app.js';
import { freshPassword, secureKit, totpCode } from './helpers/secure.js';

// The guide end to end in headless Chromium (Debian's), on the server listening on a loopback port: a user logs in,
// sets up 2FA from the QR code shown on the page, a token validator receives the SMS through the webhook, opens the
// operation from its link and types the token, and the user logs in with his new password and a fresh code.
// Screenshots of the page at fault are kept on failure (the path is in the failure). With PAGES_SCREENSHOTS_DIR set,
// the screens shown in the README are written there too.

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const shots = fs.mkdtempSync(path.join(os.tmpdir(), 'pcc-pages-e2e-'));
const docsDir = process.env.PAGES_SCREENSHOTS_DIR;

/** A free loopback port, so that PUBLIC_URL (the SMS links) names the server the browser reaches. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const port = await freePort();
const origin = `http://127.0.0.1:${port}`;
const ctx = await buildTestApp(t, { env: { PUBLIC_URL: origin } });
const kit = await secureKit(t, ctx);
await ctx.app.listen({ port, host: '127.0.0.1' });
const browser: Browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
});
t.teardown(() => browser.close());

/** Runs one step; on failure, a screenshot of the page, named in the error. */
async function step<T>(name: string, page: Page, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const file = path.join(shots, `${name.replace(/\W+/g, '-')}.png`);
    await page.screenshot({ path: file, fullPage: true }).catch(() => undefined);
    throw new Error(`${name}: ${(err as Error).message}\nscreenshot: ${file}\nURL: ${page.url()}`, { cause: err });
  }
}

async function docShot(page: Page, name: string) {
  if (docsDir) await page.screenshot({ path: path.join(docsDir, name), fullPage: true });
}

/** A fresh browser profile; every console error (a CSP violation among them) is kept. */
async function newPage() {
  const context = await browser.newContext({ viewport: { width: 820, height: 760 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  return { page, errors };
}

t.test('the guide in a browser: 2FA set up from the QR code, validated by SMS token, then a login with a code', async (t) => {
  const svc = await ctx.newService();
  const validator = await kit.validator(svc);
  const user = await kit.plainUser(svc, { phone: false, approver: validator });
  const base = `${origin}/secure/${svc}/`;
  const { page, errors } = await newPage();

  await step('user logs in', page, async () => {
    await page.goto(base);
    t.equal(new URL(page.url()).pathname, `/secure/${svc}/login`, 'no session: the login page');
    await page.getByLabel('Login', { exact: true }).fill(user.name);
    await page.getByLabel('Password', { exact: true }).fill(user.password);
    await docShot(page, 'secure-login.png');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(base);
    t.match(await page.locator('main').innerText(), `You are logged in as ${user.name}`);
  });

  let secret = '';
  await step('user opens Password and 2FA Shared Secret, and the QR code carries the secret shown', page, async () => {
    await page.getByRole('link', { name: 'Password and 2FA Shared Secret' }).first().click();
    await page.getByRole('button', { name: 'Get a new 2FA secret' }).click();
    await page.waitForSelector('#qr');
    secret = (await page.locator('#secret').innerText()).replace(/\s+/g, '');
    t.match(secret, /^[A-Z2-7]{32}$/);
    const image = PNG.sync.read(await page.locator('#qr').screenshot());
    const qr = jsqr.default(new Uint8ClampedArray(image.data), image.width, image.height);
    t.ok(qr, 'the QR image on the page decodes');
    const uri = new URL(qr!.data);
    t.equal(uri.protocol, 'otpauth:');
    t.equal(uri.searchParams.get('secret'), secret, 'the QR code and the text carry the same secret');
    t.equal(uri.searchParams.get('issuer'), `PCC ${svc}`);
    t.match(await page.locator('[data-seconds-left]').innerText(), /^\d+ min \d+ s left$/, 'the script counts down');
  });

  const newPassword = freshPassword();
  let operationId = 0;
  await step('user types the new password twice and the code of the app', page, async () => {
    await page.getByLabel('New password', { exact: true }).fill(newPassword);
    // The page's own script and style sheet run under the CSP: a second password that differs is flagged before sending.
    await page.getByLabel('New password, again').fill(`${newPassword}-typo`);
    t.equal(
      await page
        .locator('#newPasswordAgain')
        .evaluate((el) => (el as unknown as { validationMessage: string }).validationMessage),
      'The two passwords differ',
    );
    t.equal(
      // Runs in the page: the DOM's getComputedStyle (the test's TypeScript has no DOM types).
      await page
        .getByRole('button', { name: 'Confirm' })
        .evaluate(
          (el) =>
            (globalThis as unknown as { getComputedStyle(e: unknown): { backgroundColor: string } }).getComputedStyle(el)
              .backgroundColor,
        ),
      'rgb(0, 80, 215)',
      'the style sheet applies',
    );
    await page.getByLabel('New password, again').fill(newPassword);
    await page.getByLabel('Code shown by the app').fill(await totpCode(ctx, secret));
    await docShot(page, 'secure-password-2fa.png');
    await page.getByRole('button', { name: 'Confirm' }).click();
    await page.waitForURL(/\/validation\/\d+\?requested=1$/);
    operationId = Number(/validation\/(\d+)/.exec(page.url())![1]);
    t.match(await page.locator('main').innerText(), `Your change is operation ${operationId}`);
  });

  await kit.settle(); // the worker sends the SMS through the webhook
  const sms = kit.inbox.latest(validator.phone!);
  t.equal(sms.signatureValid, true);
  t.equal(sms.body.operationId, operationId);
  const link = /Validate at (\S+)/.exec(sms.body.message)?.[1];
  t.equal(link, `${base}validation/${operationId}`, 'the SMS links to the operation');
  const token = kit.inbox.tokenFor(validator.phone!, operationId);

  const v = await newPage();
  await step('the token validator opens the link of the SMS and logs in', v.page, async () => {
    await v.page.goto(link!);
    t.match(new URL(v.page.url()).pathname, /\/login$/);
    await v.page.getByLabel('Login', { exact: true }).fill(validator.name);
    await v.page.getByLabel('Password', { exact: true }).fill(validator.password);
    await v.page.getByRole('button', { name: 'Log in' }).click();
    await v.page.waitForURL(link!);
  });

  await step('the validator sees what changes and who asked, and types the token', v.page, async () => {
    const text = await v.page.locator('main').innerText();
    t.match(text, `Change the password and 2FA secret of ${user.name}`);
    t.match(text, new RegExp(`Asked by\\s+${user.name}`));
    t.equal(await v.page.locator('#tries').innerText(), '5');
    await v.page.getByLabel('Token received by SMS').fill(token);
    await docShot(v.page, 'secure-operation-validation.png');
    await v.page.getByRole('button', { name: 'Validate' }).click();
    await v.page.waitForSelector('text=is validated');
    t.match(await v.page.locator('[role=status]').innerText(), `Operation ${operationId} is validated`);
  });

  await kit.settle(); // the worker applies the change
  const op = await ctx.handle.db
    .selectFrom('operation')
    .select(['task_id', 'state'])
    .where('operation_id', '=', operationId)
    .executeTakeFirstOrThrow();
  t.equal(op.state, 'validated');
  t.equal((await kit.task(svc, op.task_id!)).state, 'done', 'the task ran');

  const again = await newPage();
  await step('the old password no longer opens a session', again.page, async () => {
    await again.page.goto(`${base}login`);
    await again.page.getByLabel('Login', { exact: true }).fill(user.name);
    await again.page.getByLabel('Password', { exact: true }).fill(user.password);
    await again.page.getByRole('button', { name: 'Log in' }).click();
    await again.page.waitForSelector('[role=alert]');
    t.equal(await again.page.locator('[role=alert]').innerText(), 'Invalid login, password or 2FA code');
  });

  ctx.clock.advance(30_000); // a fresh code: the enrollment's was used
  await step('the user logs in with his new password and a fresh code, with the keyboard alone', again.page, async () => {
    await again.page.goto(`${base}login`);
    // The login field has the focus (typing before the page gives it would lose the first keys: wait for it); Tab leads
    // to the password, then the code; Enter submits.
    await again.page.getByLabel('Login', { exact: true }).and(again.page.locator(':focus')).waitFor({ timeout: 5_000 });
    await again.page.keyboard.type(user.name);
    await again.page.keyboard.press('Tab');
    await again.page.keyboard.type(newPassword);
    await again.page.keyboard.press('Tab');
    await again.page.keyboard.type(await totpCode(ctx, secret));
    await again.page.keyboard.press('Enter');
    await again.page.waitForURL(base);
    const text = await again.page.locator('main').innerText();
    t.match(text, `You are logged in as ${user.name}`);
    t.match(text, '2FA: set up.');
  });

  // The one error expected: the refused login's page is a 401, which Chromium reports.
  const refused = (e: string) => /status of 401/.test(e);
  t.equal(again.errors.filter(refused).length, 1, 'the refused login answered 401');
  t.strictSame(
    [...errors, ...v.errors, ...again.errors.filter((e) => !refused(e))],
    [],
    'no other console error: nothing the CSP blocked, no script error, no missing file',
  );
  fs.rmSync(shots, { recursive: true, force: true });
});
