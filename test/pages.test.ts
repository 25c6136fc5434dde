import jsqr from 'jsqr';
import { PNG } from 'pngjs';
import t, { type Test } from 'tap';
import { parseCookies, serializeCookie, soleCookie } from '../src/http/cookies.js';
import { html, SafeHtml } from '../src/http/html.js';
import { PAGE_CSP } from '../src/features/secure/pages/layout.js';
import { auditEvents, buildTestApp } from './helpers/app.js';
import { csrfOf, PageBrowser, parseSetCookie, setCookies } from './helpers/pages.js';
import { freshIp, freshName, freshPassword, freshPhone, secureKit, totpCode, type Person } from './helpers/secure.js';

// The certified interface's pages (src/features/secure/pages): what each answers, its headers, its cookies, its forms.
// jsqr is CommonJS: its function is the module's `default` property.
const ctx = await buildTestApp(t);
const kit = await secureKit(t, ctx);
const { app } = ctx;
const svc = await ctx.newService();
// The service's first token validator, with 2FA: the service's twoFAState is then enabled, as in the guide.
const validator = await kit.enable2FA(svc, await kit.validator(svc));
const base = `/secure/${svc}/`;
const browser = () => new PageBrowser(app, freshIp());

/** The login form's fields for a person (a code of a time step of its own when he has 2FA: the clock moves 30 s). */
async function loginFields(person: Person) {
  if (person.secret) ctx.clock.advance(30_000);
  return { login: person.name, password: person.password, token: person.secret ? await totpCode(ctx, person.secret) : '' };
}

/** Logs a person in through the login page; returns the browser, which then holds the session cookie. */
async function loggedIn(person: Person, b = browser(), serviceName = svc) {
  const res = await b.submit(`/secure/${serviceName}/login`, `/secure/${serviceName}/login`, await loginFields(person));
  if (res.statusCode !== 303) throw new Error(`login page answered ${res.statusCode}: ${res.body.slice(0, 300)}`);
  return b;
}

/** What a page must hold to pass the CSP and be usable: no inline script or style, a label for every visible field. */
function checkMarkup(t: Test, body: string) {
  t.notMatch(body, /<script(?![^>]*\bsrc=)[^>]*>/i, 'no inline script');
  t.notMatch(body, /\sstyle=|<style|\son[a-z]+=/i, 'no inline style or event handler');
  const ids = [...body.matchAll(/<input(?![^>]*type="hidden")[^>]*\bid="([^"]+)"/g)].map((m) => m[1]);
  for (const id of ids) t.match(body, new RegExp(`<label for="${id}"`), `a label for #${id}`);
}

t.test('the html tag escapes every interpolation and only its own fragments pass as markup', async (t) => {
  const hostile = `"><script>alert('x')</script>&\``;
  t.equal(
    html`<p title="${hostile}">${hostile}</p>`.text,
    '<p title="&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&#96;">&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&#96;</p>',
  );
  // prettier-ignore
  t.equal(html`<ul>${['<a>', html`<li>${'<b>'}</li>`]}</ul>`.text, '<ul>&lt;a&gt;<li>&lt;b&gt;</li></ul>');
  t.equal(html`${null}${undefined}${false}${0}`.text, '0');
  t.equal(
    html`${{ text: '<i>' } as unknown as string}`.text,
    '[object Object]',
    'an object that only looks like a fragment is text',
  );
  t.ok(html`x` instanceof SafeHtml);
});

t.test('cookies: parsed leniently, written strictly', async (t) => {
  t.strictSame(
    [...parseCookies('a=1; b="2"; junk; =x; a=3')],
    [
      ['a', '1'],
      ['b', '2'],
    ],
    'the first of two wins',
  );
  t.equal(
    serializeCookie('pcc_session', 'abc', { path: '/secure/x/', secure: true }),
    'pcc_session=abc; Path=/secure/x/; HttpOnly; SameSite=Strict; Secure',
  );
  t.throws(() => serializeCookie('pcc_session', 'a;b', { path: '/', secure: false }), 'a value that would add an attribute');
  t.throws(() => serializeCookie('pcc_session', 'a', { path: '/x; Domain=evil', secure: false }));
});

t.test('the login page: status, strict CSP, labels, the form cookie and no session', async (t) => {
  const b = browser();
  const res = await b.get(`${base}login`);
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /^text\/html; charset=utf-8/);
  t.equal(res.headers['content-security-policy'], PAGE_CSP);
  t.notMatch(PAGE_CSP, /unsafe-inline|unsafe-eval|\*/);
  t.match(PAGE_CSP, /script-src 'self'/);
  t.match(PAGE_CSP, /frame-ancestors 'none'/);
  t.equal(res.headers['cache-control'], 'no-store');
  t.equal(res.headers['x-frame-options'], 'DENY');
  checkMarkup(t, res.body);
  t.match(res.body, /<label for="token">2FA code/);
  t.match(res.body, /credentials renewal/);
  const [cookie] = setCookies(res).map(parseSetCookie);
  t.equal(cookie?.name, 'pcc_form');
  t.equal(cookie?.attributes.get('path'), base);
  t.ok(cookie?.attributes.has('httponly'), 'HttpOnly');
  t.equal(cookie?.attributes.get('samesite'), 'Strict');
  t.notOk(cookie?.attributes.has('secure'), 'not Secure over plain HTTP');
  for (const asset of ['/assets/secure-pages.css', '/assets/secure-pages.js']) {
    t.match(res.body, asset);
    const file = await app.inject({ url: asset });
    t.equal(file.statusCode, 200, asset);
  }
});

t.test('a login form without its CSRF token, or with another browser’s, is refused and checks nothing', async (t) => {
  const logins = (await auditEvents(ctx, svc, 'login.succeeded')).length;
  const b = browser();
  await b.get(`${base}login`);
  const other = browser();
  const otherToken = csrfOf((await other.get(`${base}login`)).body);
  const form = { login: validator.name, password: validator.password };
  for (const res of [await b.post(`${base}login`, form), await b.post(`${base}login`, { ...form, csrf: otherToken })]) {
    t.equal(res.statusCode, 403);
    t.match(res.body, /Nothing was done/);
    t.equal(setCookies(res).filter((c) => c.startsWith('pcc_session=')).length, 0, 'no session');
  }
  const fresh = browser();
  t.equal((await fresh.post(`${base}login`, { ...form, csrf: otherToken })).statusCode, 403, 'no form cookie at all');
  t.equal((await auditEvents(ctx, svc, 'login.succeeded')).length, logins, 'no login was tried');
  t.equal((await auditEvents(ctx, svc, 'login.failed')).length, 0);
});

t.test('a login opens a session cookie: HttpOnly, SameSite=Strict, scoped to the service; the JSON API ignores it', async (t) => {
  const b = await loggedIn(validator);
  const session = setCookies(b.last!)
    .map(parseSetCookie)
    .find((c) => c.name === 'pcc_session')!;
  t.equal(b.last!.headers.location, base);
  t.match(session.value, /^[A-Za-z0-9]{48}$/);
  t.ok(session.attributes.has('httponly'));
  t.equal(session.attributes.get('samesite'), 'Strict');
  t.equal(session.attributes.get('path'), base);
  t.notOk(session.attributes.has('max-age'), 'gone with the browser; the server ends it anyway');
  const home = await b.get(base);
  t.equal(home.statusCode, 200);
  t.match(home.body, new RegExp(`logged in as <strong>${validator.name}</strong>, a token validator`));
  checkMarkup(t, home.body);
  const json = await app.inject({ url: `${base}operation/1`, headers: { cookie: `pcc_session=${session.value}` } });
  t.equal(json.statusCode, 401, 'the cookie is no bearer token: no CSRF way into the JSON API');
});

t.test('failures never say which factor was wrong: the same page for each, the login echoed escaped', async (t) => {
  const person = await kit.enable2FA(svc, await kit.validator(svc, { approver: validator }));
  const b = browser();
  const attempt = async (fields: Record<string, string>) => {
    const res = await b.submit(`${base}login`, `${base}login`, fields);
    t.equal(res.statusCode, 401);
    return res.body.replaceAll(fields.login!, 'LOGIN');
  };
  const wrongCode = (await totpCode(ctx, person.secret!)) === '123456' ? '654321' : '123456';
  const bodies = [
    await attempt({ login: person.name, password: 'wrong-password', token: await totpCode(ctx, person.secret!) }),
    await attempt({ login: person.name, password: person.password, token: '' }),
    await attempt({ login: person.name, password: person.password, token: wrongCode }),
    await attempt({ login: 'nobody-here', password: person.password, token: '123456' }),
  ];
  t.match(bodies[0], /role="alert">Invalid login, password or 2FA code</);
  for (const body of bodies.slice(1)) t.equal(body, bodies[0]);
  const hostile = `"><script>alert(1)</script>`;
  const res = await b.submit(`${base}login`, `${base}login`, { login: hostile, password: 'x' });
  t.notMatch(res.body, /<script>alert/);
  t.match(res.body, 'value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"');
  t.equal((await auditEvents(ctx, svc, 'login.failed')).length, 5, 'each attempt went through the login and its audit');
});

t.test('the lockout holds for the page: past the free failures, 429 with Retry-After', async (t) => {
  const person = await kit.validator(svc, { approver: validator });
  const b = browser();
  let res = await b.get(`${base}login`);
  for (let i = 0; i < 6; i++) res = await b.submit(`${base}login`, `${base}login`, { login: person.name, password: 'nope' });
  t.equal(res.statusCode, 429);
  t.match(res.body, /Too many failed attempts: retry in \d+ s/);
  t.match(res.headers['retry-after'], /^\d+$/);
});

t.test('pages that need a session send to the login page, which leads back after the login', async (t) => {
  const b = browser();
  for (const page of ['', 'password-2fa', 'validation', 'validation/7', 'sessions']) {
    const res = await b.get(`${base}${page}`);
    t.equal(res.statusCode, 303, page);
    t.match(res.headers.location, new RegExp(`^${base}login`));
  }
  const res = await b.get(`${base}validation/7`);
  t.equal(res.headers.location, `${base}login?then=validation%2F7`);
  const login = await b.get(res.headers.location as string);
  t.match(login.body, /<input type="hidden" name="then" value="validation\/7"/);
  await b.post(`${base}login`, { csrf: csrfOf(login.body), ...(await loginFields(validator)), then: 'validation/7' });
  t.equal(b.last!.headers.location, `${base}validation/7`);
  await b.submit(`${base}login`, `${base}login`, { ...(await loginFields(validator)), then: 'https://evil.example/' });
  t.equal(b.last!.headers.location, base, 'never elsewhere');
  t.equal((await app.inject({ url: `/secure/${svc}` })).headers.location, base, 'the final "/" is added');
});

t.test('Password and 2FA Shared Secret, then operation validation, page by page', async (t) => {
  const user = await kit.plainUser(svc, { phone: false, approver: validator });
  const b = await loggedIn(user);
  const intro = await b.get(`${base}password-2fa`);
  t.equal(intro.statusCode, 200);
  t.equal((await b.post(`${base}password-2fa/start`, {})).statusCode, 403, 'starting needs the CSRF token');
  const started = await b.post(`${base}password-2fa/start`, { csrf: csrfOf(intro.body) });
  t.equal(started.statusCode, 303);
  const page = await b.get(started.headers.location as string);
  t.equal(page.statusCode, 200);
  t.equal(page.headers['content-security-policy'], PAGE_CSP);
  checkMarkup(t, page.body);
  const secret = /<code class="secret" id="secret">([A-Z2-7 ]+)<\/code>/.exec(page.body)![1]!.replaceAll(' ', '');
  const src = /id="qr"\s+src="([^"]+)"/.exec(page.body)![1]!.replaceAll('&amp;', '&');
  const png = await b.get(src);
  t.equal(png.headers['content-type'], 'image/png');
  const image = PNG.sync.read(png.rawPayload);
  const qr = jsqr.default(new Uint8ClampedArray(image.data), image.width, image.height);
  t.equal(new URL(qr!.data).searchParams.get('secret'), secret, 'the QR image carries the secret shown as text');
  t.equal((await browser().get(src)).statusCode, 303, 'the QR code is only for its user’s session');
  const enrollmentId = /name="enrollmentId" value="([^"]+)"/.exec(page.body)![1]!;
  const newPassword = freshPassword();
  const post = (fields: Record<string, string>) =>
    b.post(`${base}password-2fa`, {
      csrf: csrfOf(page.body),
      enrollmentId,
      newPassword,
      newPasswordAgain: newPassword,
      ...fields,
    });
  let res = await post({ newPasswordAgain: `${newPassword}x`, code: await totpCode(ctx, secret) });
  t.equal(res.statusCode, 400);
  t.match(res.body, /The two new passwords differ/);
  t.match(res.body, secret.slice(0, 4), 'the same secret is shown again');
  const good = await totpCode(ctx, secret);
  res = await post({ code: good === '000000' ? '000001' : '000000' });
  t.equal(res.statusCode, 400);
  t.match(res.body, /2FA code: does not match the new secret/);
  res = await post({ code: good });
  t.equal(res.statusCode, 303);
  const opUrl = res.headers.location as string;
  t.match(opUrl, new RegExp(`^${base}validation/\\d+\\?requested=1$`));
  const operationId = Number(/validation\/(\d+)/.exec(opUrl)![1]);
  const own = await b.get(opUrl);
  t.equal(own.statusCode, 200);
  t.match(own.body, `Your change is operation ${operationId}`);
  t.notMatch(own.body, /Send the token again/, 'the requester is offered no new token: it would void the validators’ one');
  ctx.clock.advance(61_000);
  res = await b.post(`${base}validation/${operationId}/resend`, { csrf: csrfOf(own.body) });
  t.equal(res.statusCode, 403, 'nor may he ask for one');
  t.match(res.body, /Renew your credentials first/);

  await kit.settle();
  const sms = kit.inbox.latest(validator.phone!);
  t.equal(sms.body.operationId, operationId);
  t.match(sms.body.message, `Validate at http://127.0.0.1:3000${base}validation/${operationId}`);
  const v = await loggedIn(validator);
  const view = await v.get(`${base}validation/${operationId}`);
  t.equal(view.statusCode, 200);
  checkMarkup(t, view.body);
  t.match(view.body, `Change the password and 2FA secret of ${user.name}`);
  t.match(view.body, new RegExp(`Asked by</th>\\s*<td>\\s*${user.name},`));
  t.match(view.body, /<td id="tries">5<\/td>/);
  const left = Number(/data-seconds-left="(\d+)"\s*>\d+ min \d+ s left/.exec(view.body)?.[1]);
  t.ok(left > 800 && left <= 900, `the expiry is shown as time left (${left} s of 15 min)`);
  const token = kit.inbox.tokenFor(validator.phone!, operationId);
  res = await v.post(`${base}validation/${operationId}`, {
    csrf: csrfOf(view.body),
    token: token === '00000000' ? '00000001' : '00000000',
  });
  t.equal(res.statusCode, 400);
  t.match(res.body, /<td id="tries">4<\/td>/);
  t.equal((await v.post(`${base}validation/${operationId}`, { token })).statusCode, 403, 'no CSRF token, no validation');
  ctx.clock.advance(61_000);
  res = await v.post(`${base}validation/${operationId}/resend`, { csrf: csrfOf(view.body) });
  t.equal(res.statusCode, 303);
  t.match((await v.get(res.headers.location as string)).body, /A new token was sent/);
  res = await v.post(`${base}validation/${operationId}/resend`, { csrf: csrfOf(view.body) });
  t.equal(res.statusCode, 429);
  t.match(res.body, /less than a minute ago/);
  await kit.settle();
  res = await v.post(`${base}validation/${operationId}`, {
    csrf: csrfOf(view.body),
    token: kit.inbox.tokenFor(validator.phone!, operationId),
  });
  t.equal(res.statusCode, 200);
  t.match(res.body, `Operation ${operationId} is validated`);
  await kit.settle();
  const row = await kit.userRow(user.userId);
  t.ok(row.totp_secret_ciphertext, 'the new secret applies');
});

t.test('a hostile operation number or query is answered, never reflected as markup', async (t) => {
  const v = await loggedIn(validator);
  let res = await v.get(`${base}validation?operation=%22%3E%3Cscript%3E`);
  t.equal(res.statusCode, 400);
  t.notMatch(res.body, /<script>/);
  res = await v.get(`${base}validation/999999`);
  t.equal(res.statusCode, 404);
  t.match(res.body, /Operation 999999 does not exist/);
  res = await v.get(`${base}validation/abc`);
  t.equal(res.statusCode, 400);
  res = await v.get(`/secure/${encodeURIComponent('<b>x</b>')}/login`);
  t.equal(res.statusCode, 404, 'an unknown service');
  t.notMatch(res.body, 'b&gt;x');
  t.notMatch(res.body, '<b>x</b>');
});

t.test('an unknown service is a generic "not found" page on every page: its name from the URL is never shown', async (t) => {
  const spoof = 'Account suspended: call +33 1 23 45 67 89 now';
  const name = encodeURIComponent(spoof);
  const b = browser();
  const generic = await b.get(`/secure/${encodeURIComponent('pcc-nothing-here')}/login`);
  t.equal(generic.statusCode, 404);
  for (const res of [
    await b.get(`/secure/${name}/login`),
    await b.get(`/secure/${name}/password-lost`),
    await b.get(`/secure/${name}/`),
    await b.get(`/secure/${name}/validation/1`),
    await b.post(`/secure/${name}/login`, { csrf: 'x', login: 'a', password: 'b' }),
    await b.post(`/secure/${name}/password-lost`, { csrf: 'x', login: 'a' }),
  ]) {
    t.equal(res.statusCode, 404);
    t.equal(res.headers['cache-control'], 'no-store');
    t.notMatch(res.body, /suspended|23 45/, 'the name of the URL is not on the page');
    t.match(res.body, /<title>Not found · pcc-2fa · Certified interface<\/title>/);
    t.equal(res.body, generic.body, 'the same page for any unknown service');
  }
  const known = await b.get(`${base}login`);
  t.equal(known.statusCode, 200, 'a service that exists still has its pages');
  t.match(known.body, svc);
});

t.test('a phone number confirmation is not found on the validation pages, like an operation that does not exist', async (t) => {
  const person = await kit.plainUser(svc, { approver: validator });
  const op = await ctx.handle.db
    .selectFrom('operation')
    .selectAll()
    .where('user_id', '=', person.userId)
    .where('kind', '=', 'confirmPhoneNumber')
    .executeTakeFirstOrThrow();
  const token = kit.inbox.latestToken(person.phone!);
  const v = await loggedIn(validator);
  const csrf = csrfOf((await v.get(`${base}validation`)).body);
  const missing = 999_999_998;
  const same = async (label: string, answer: (id: number) => Promise<{ statusCode: number; body: string }>) => {
    const real = await answer(op.operation_id);
    const none = await answer(missing);
    t.equal(real.statusCode, 404, label);
    t.equal(real.body, none.body.replaceAll(String(missing), String(op.operation_id)), `${label}: the same page as none`);
  };
  await same('view', (id) => v.get(`${base}validation/${id}`));
  await same('wrong token', (id) =>
    v.post(`${base}validation/${id}`, { csrf, token: token === '00000000' ? '00000001' : '00000000' }),
  );
  await same('token', (id) => v.post(`${base}validation/${id}`, { csrf, token }));
  ctx.clock.advance(61_000);
  await same('resend', (id) => v.post(`${base}validation/${id}/resend`, { csrf }));
  t.match(
    await ctx.handle.db.selectFrom('operation').selectAll().where('operation_id', '=', op.operation_id).executeTakeFirstOrThrow(),
    { state: 'pending', failed_attempts: 0, sends: 1 },
  );
  const confirm = await kit.api('POST', `/1.0/dedicatedCloud/${svc}/user/${person.userId}/confirmPhoneNumber`, { token });
  t.equal(confirm.statusCode, 200, 'its owner still confirms the number');
});

t.test('the operation page shows what its SMS said, and a new token’s SMS says it again', async (t) => {
  const phone = freshPhone();
  const name = freshName('mallory');
  const res = await kit.api('POST', `/1.0/dedicatedCloud/${svc}/user`, {
    name,
    password: freshPassword(),
    phoneNumber: phone,
    tokenValidator: true,
  });
  t.equal(res.json().state, 'waitingTodo');
  await kit.settle();
  const { operation_id: operationId } = await kit.operationOf(res.json().taskId);
  const said = `create user ${name} as a token validator with phone ${phone}`;
  const first = kit.inbox.to(validator.phone!).filter((m) => m.body.operationId === operationId);
  t.equal(first.length, 1);
  t.match(first[0]!.body.message, `(${said})`);
  const v = await loggedIn(validator);
  const view = await v.get(`${base}validation/${operationId}`);
  t.equal(view.statusCode, 200);
  t.match(view.body, `<td id="summary">${said}</td>`, 'the validator sees what he grants, and the number');
  t.match(view.body, `Create user ${name}`);
  ctx.clock.advance(61_000);
  const resend = await v.post(`${base}validation/${operationId}/resend`, { csrf: csrfOf(view.body) });
  t.equal(resend.statusCode, 303);
  await kit.settle();
  const all = kit.inbox.to(validator.phone!).filter((m) => m.body.operationId === operationId);
  t.equal(all.length, 2);
  t.equal(
    all[1]!.body.message.replace(/Token: \d{8}/, ''),
    all[0]!.body.message.replace(/Token: \d{8}/, ''),
    'the new SMS says the same, its token apart',
  );
  t.match(all[1]!.body.message, `Validate at http://127.0.0.1:3000${base}validation/${operationId}`);
});

t.test('a value stored in the database reaches the page escaped (who asked for an operation)', async (t) => {
  const res = await kit.api('POST', `/1.0/dedicatedCloud/${svc}/user`, { name: 'hostile1', password: freshPassword() });
  const task = res.json<{ taskId: number; state: string }>();
  t.equal(task.state, 'waitingTodo');
  const op = await kit.operationOf(task.taskId);
  const hostile = `<img src=x onerror="alert(1)">`;
  await ctx.handle.db
    .updateTable('operation')
    .set({ requested_by: hostile })
    .where('operation_id', '=', op.operation_id)
    .execute();
  const page = await (await loggedIn(validator)).get(`${base}validation/${op.operation_id}`);
  t.equal(page.statusCode, 200);
  t.notMatch(page.body, '<img src=x');
  t.match(page.body, '&lt;img src=x onerror=&quot;alert(1)&quot;&gt;');
});

t.test('the sessions page lists the user’s sessions; logging out ends this one and clears the cookie', async (t) => {
  const person = await kit.validator(svc, { approver: validator });
  const first = await loggedIn(person);
  const b = await loggedIn(person);
  const page = await b.get(`${base}sessions`);
  t.equal(page.statusCode, 200);
  checkMarkup(t, page.body);
  t.equal([...page.body.matchAll(/<tr(?: class="current")?>\n {2}<td>/g)].length, 2, 'two live sessions');
  t.match(page.body, /\(this one\)/);
  t.match(page.body, b.ip);
  const out = await b.post(`${base}logout`, { csrf: csrfOf(page.body) });
  t.equal(out.statusCode, 303);
  t.equal(out.headers.location, `${base}login?out=1`);
  const cleared = setCookies(out)
    .map(parseSetCookie)
    .find((c) => c.name === 'pcc_session')!;
  t.equal(cleared.attributes.get('max-age'), '0');
  t.match((await b.get(`${base}login?out=1`)).body, /You are logged out/);
  t.equal((await first.get(`${base}sessions`)).statusCode, 200, 'the other session lives on');
  const ended = await auditEvents(ctx, svc, 'session.ended');
  t.match(ended.at(-1), { user_id: person.userId, data: { reason: 'logout' } });
});

t.test('credentials renewal: with 2FA on and none set up, the home page says what to do', async (t) => {
  t.equal((await kit.api('GET', `/1.0/dedicatedCloud/${svc}`)).json().twoFAState, 'enabled');
  const late = await kit.plainUser(svc, { phone: false, approver: validator });
  const b = await loggedIn(late);
  const home = await b.get(base);
  t.match(home.body, /<strong>Credentials renewal\.<\/strong> 2FA is on for this service and you have not set it up yet/);
  const ops = await b.get(`${base}validation/1`);
  t.match(ops.body, /Only a token validator can validate operations/);
});

t.test('password lost: the same answer for any login; the code opens a renewal session on the 2FA page', async (t) => {
  const person = await kit.validator(svc, { approver: validator });
  const answers: string[] = [];
  for (const login of [person.name, 'nobody-at-all']) {
    const b = browser();
    const res = await b.submit(`${base}password-lost`, `${base}password-lost`, { login });
    t.equal(res.statusCode, 200);
    checkMarkup(t, res.body);
    answers.push(res.body.replaceAll(login, 'LOGIN').replace(/value="[A-Za-z0-9_-]{43}"/, ''));
  }
  t.equal(answers[0], answers[1]);
  await app.services.background.settled();
  await kit.settle();
  const b = browser();
  let res = await b.submit(`${base}password-lost`, `${base}password-lost`, { login: person.name });
  // The code is made in the background after the answer: done before the worker sends it.
  await app.services.background.settled();
  await kit.settle();
  res = await b.post(`${base}password-lost/code`, { csrf: csrfOf(res.body), login: person.name, resetToken: '00000000' });
  t.equal(res.statusCode, 401);
  t.match(res.body, /Invalid login or reset code/);
  res = await b.post(`${base}password-lost/code`, {
    csrf: csrfOf(res.body),
    login: person.name,
    resetToken: kit.inbox.latestResetCode(person.phone!),
  });
  t.equal(res.statusCode, 303);
  t.equal(res.headers.location, `${base}password-2fa`);
  t.match((await b.get(base)).body, /Credentials renewal/);
});

t.test('userAccessPolicy filtered: from outside the allowed networks the pages refuse, like the API', async (t) => {
  const filtered = await ctx.newService();
  const inside = freshIp();
  let res = await kit.api('POST', `/1.0/dedicatedCloud/${filtered}/allowedNetwork`, { network: `${inside}/32` });
  t.equal(res.statusCode, 200, res.body);
  res = await kit.api('POST', `/1.0/dedicatedCloud/${filtered}/changeProperties`, { userAccessPolicy: 'filtered' });
  t.equal(res.statusCode, 200, res.body);
  await kit.settle();
  const person = await kit.validator(filtered);
  const fb = `/secure/${filtered}/`;
  const outside = browser();
  t.equal((await outside.get(`${fb}login`)).statusCode, 403);
  t.equal((await outside.get(`${fb}password-lost`)).statusCode, 403);
  const b = await loggedIn(person, new PageBrowser(app, inside), filtered);
  t.equal((await b.get(fb)).statusCode, 200);
  const moved = new PageBrowser(app, freshIp());
  for (const [k, v] of b.cookies) moved.cookies.set(k, v);
  res = await moved.get(fb);
  t.equal(res.statusCode, 403, 'a session cookie does not carry its holder past the policy');
  t.match(res.body, /not allowed/);
  t.ok((await auditEvents(ctx, filtered, 'access.refused')).length >= 1);
});

t.test('the service’s URLs lead to these pages; the pages stay out of the OpenAPI document', async (t) => {
  const dto = (await kit.api('GET', `/1.0/dedicatedCloud/${svc}`)).json();
  for (const url of [dto.certifiedInterfaceUrl, dto.webInterfaceUrl]) {
    const res = await app.inject({ url: new URL(url).pathname });
    t.ok([200, 303].includes(res.statusCode), `${url} answers ${res.statusCode}`);
  }
  t.equal(new URL(dto.webInterfaceUrl).pathname, `${base}login`);
  for (const url of ['/', '/secure/']) t.equal((await app.inject({ url })).statusCode, 200, url);
  t.equal((await app.inject({ url: `/secure/?service=${svc}` })).headers.location, base);
  const paths = Object.keys((app.swagger() as { paths: Record<string, unknown> }).paths);
  const pageRoute =
    /^\/$|^\/assets\/|^\/secure\/$|^\/secure\/\{serviceName\}(\/|\/(login|logout|password-2fa|password-lost|validation|sessions)(\/.*)?)?$/;
  const pages = paths.filter((p) => pageRoute.test(p));
  t.ok(pageRoute.test('/secure/{serviceName}/validation/{operationId}'), 'the filter sees a page path');
  t.strictSame(pages, [], 'no page in the document');
  t.ok(paths.includes('/secure/{serviceName}/session'), 'while the JSON API is in it');
});

t.test('a duplicated session or form cookie is no cookie: a planted one neither opens a session nor passes a form', async (t) => {
  t.equal(soleCookie('a=1; pcc_session=x; b=2', 'pcc_session'), 'x');
  t.equal(soleCookie('pcc_session=x; pcc_session=y', 'pcc_session'), undefined, 'two different values');
  t.equal(soleCookie('pcc_session=x;pcc_session=x', 'pcc_session'), undefined, 'even the same value twice');
  t.equal(soleCookie('pcc_form=x', 'pcc_session'), undefined);
  // A session planted from a sibling subdomain or plain HTTP, sent before or after the victim's own.
  const victim = await loggedIn(validator);
  const attacker = await loggedIn(await kit.plainUser(svc, { approver: validator }));
  const own = victim.cookies.get('pcc_session')!;
  const planted = attacker.cookies.get('pcc_session')!;
  for (const cookie of [`pcc_session=${planted}; pcc_session=${own}`, `pcc_session=${own}; pcc_session=${planted}`]) {
    const res = await app.inject({ url: `${base}sessions`, headers: { cookie } });
    t.equal(res.statusCode, 303, 'no session: to the login page');
    t.equal(res.headers.location, `${base}login?then=sessions`);
  }
  const home = await victim.get(base);
  t.equal(home.statusCode, 200, 'one session cookie still works');
  // Login CSRF: the attacker plants his form cookie, whose token he knows, and posts his own login from the victim's browser.
  const stranger = browser();
  const csrf = csrfOf((await stranger.get(`${base}login`)).body);
  const victimForm = browser();
  await victimForm.get(`${base}login`);
  const fields = { csrf, ...(await loginFields(validator)) };
  for (const cookie of [
    `pcc_form=${stranger.cookies.get('pcc_form')}; pcc_form=${victimForm.cookies.get('pcc_form')}`,
    `pcc_form=${victimForm.cookies.get('pcc_form')}; pcc_form=${stranger.cookies.get('pcc_form')}`,
  ]) {
    const res = await app.inject({
      method: 'POST',
      url: `${base}login`,
      remoteAddress: freshIp(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
      payload: new URLSearchParams(fields).toString(),
    });
    t.equal(res.statusCode, 403, 'the form is refused');
    t.notOk(
      setCookies(res).some((c) => c.startsWith('pcc_session=')),
      'no session is opened',
    );
  }
  t.equal((await stranger.post(`${base}login`, fields)).statusCode, 303, 'the form cookie alone passes');
});

t.test('an https PUBLIC_URL (TLS at a proxy) sends HSTS; a plain HTTP one does not', async (t) => {
  const tls = await buildTestApp(t, { env: { PUBLIC_URL: 'https://pcc.example.com', TRUSTED_PROXIES: '127.0.0.1' } });
  for (const url of ['/secure/', '/1.0/dedicatedCloud']) {
    const res = await tls.app.inject({ url });
    t.equal(res.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains', url);
  }
  t.equal((await app.inject({ url: '/secure/' })).headers['strict-transport-security'], undefined, 'plain HTTP: none');
});

t.test('under TLS (an https PUBLIC_URL) the cookies are Secure', async (t) => {
  const tls = await buildTestApp(t, { env: { PUBLIC_URL: 'https://pcc.example.com' } });
  const name = await tls.newService();
  const res = await tls.app.inject({ url: `/secure/${name}/login` });
  const cookie = setCookies(res).map(parseSetCookie)[0]!;
  t.ok(cookie.attributes.has('secure'));
  t.ok(cookie.attributes.has('httponly'));
});
