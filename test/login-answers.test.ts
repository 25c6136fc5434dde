import t from 'tap';
import { lockKeys } from '../src/security/lockout.js';
import { configurePasswordHashing, PRODUCTION_COST } from '../src/security/passwords.js';
import { auditEvents, buildTestApp } from './helpers/app.js';
import { recordQueries } from './helpers/query-log.js';
import { freshIp, freshName, secureKit, totpCode } from './helpers/secure.js';

/**
 * A failed login gives nothing away: whichever factor failed, the answer is the same, after the same work. Only the
 * audit trail records the real reason.
 */
const ctx = await buildTestApp(t);
const kit = await secureKit(t, ctx);
const svc = await ctx.newService();

t.test('every failed login gets the same answer; only the audit event names the factor', async (t) => {
  const person = await kit.enable2FA(svc, await kit.validator(svc));
  ctx.clock.advance(30_000);
  const code = await totpCode(ctx, person.secret!);
  const ip = freshIp();
  const ok = await kit.login(svc, { login: person.name, password: person.password, token: code }, ip);
  t.equal(ok.statusCode, 200, 'the right password and code log in (and use the code)');

  const attempts: Record<string, { login: string; password?: string; token?: string; resetToken?: string }> = {
    unknownLogin: { login: freshName('nobody'), password: person.password, token: code },
    wrongPassword: { login: person.name, password: `${person.password}x`, token: code },
    missingCode: { login: person.name, password: person.password },
    wrongCode: { login: person.name, password: person.password, token: code === '000000' ? '111111' : '000000' },
    replayedCode: { login: person.name, password: person.password, token: code },
    wrongResetCode: { login: person.name, resetToken: '12345678' },
  };
  const answers = new Map<string, unknown>();
  for (const [what, body] of Object.entries(attempts)) {
    const res = await kit.login(svc, body, ip);
    // What differs by request, not by outcome: its id, date, and the rate limit's countdown.
    const headers = Object.fromEntries(
      Object.entries(res.headers).filter(
        ([h]) => !['x-ovh-queryid', 'date', 'content-length'].includes(h) && !h.startsWith('x-ratelimit'),
      ),
    );
    answers.set(what, { status: res.statusCode, body: res.json(), headers });
  }
  const reference = answers.get('unknownLogin') as { status: number; body: unknown };
  t.equal(reference.status, 401);
  t.strictSame(reference.body, { class: 'Client::Unauthorized', message: 'Invalid login, password or 2FA code' });
  for (const [what, answer] of answers) t.strictSame(answer, reference, `${what}: the same status, headers and body`);

  const reasons = await auditEvents(ctx, svc, 'login.failed');
  t.strictSame(
    reasons.map((r) => [r.actor === person.name ? 'user' : 'other', r.data.reason]),
    [
      ['other', 'password'],
      ['user', 'password'],
      ['user', 'totpMissing'],
      ['user', 'totp'],
      ['user', 'totp'],
      ['user', 'resetToken'],
    ],
    'each failure is audited with its real reason',
  );
});

t.test('a reset code sent for an unknown login runs the same statements as one sent for a known user', async (t) => {
  const fresh = await ctx.newService();
  const person = await kit.plainUser(fresh, { confirm: true });
  const ip = freshIp();
  const statementsOf = (login: string) =>
    recordQueries(ctx.handle.db, async () => {
      const res = await kit.login(fresh, { login, resetToken: '12345678' }, ip);
      t.equal(res.statusCode, 401);
    });
  const known = await statementsOf(person.name);
  t.ok(
    known.some((sql) => /password_reset/.test(sql)),
    'a known user: the live reset code is looked up',
  );
  t.strictSame(await statementsOf(freshName('nobody')), known, 'an unknown login: the same lookup, the same statements');
});

t.test('the audit trail keeps no text typed as an unknown login: a keyed fingerprint instead', async (t) => {
  const fresh = await ctx.newService();
  const person = await kit.plainUser(fresh);
  const typedPassword = 'Hunter2-typed-in-the-login-field';
  for (const login of [typedPassword, typedPassword, 'someone-else', person.name]) {
    t.equal((await kit.login(fresh, { login, password: 'wrong-password' })).statusCode, 401);
  }
  const actors = (await auditEvents(ctx, fresh, 'login.failed')).map((e) => e.actor as string);
  t.equal(actors.length, 4);
  t.notOk(
    actors.some((a) => a.includes('Hunter2') || a.includes('someone')),
    'no typed text is stored',
  );
  t.match(actors[0], /^unknown:[0-9a-f]{16}$/);
  t.equal(actors[1], actors[0], 'the same typed login: the same fingerprint (attempts can be told apart and grouped)');
  t.not(actors[2], actors[0], 'another typed login: another fingerprint');
  t.equal(actors[3], person.name, 'a login that is a user is named');
});

t.test('an unknown login costs the same argon2id work as a wrong password (production cost)', async (t) => {
  // The suite hashes at the cheapest cost, where any difference drowns in noise: this test measures at the production
  // cost, set here and given back when it ends. The cost is process-wide: this file has a suite of its own.
  configurePasswordHashing(PRODUCTION_COST);
  t.teardown(() =>
    configurePasswordHashing({
      memoryKib: ctx.config.ARGON2_MEMORY_KIB,
      iterations: ctx.config.ARGON2_ITERATIONS,
      parallelism: ctx.config.ARGON2_PARALLELISM,
    }),
  );
  const svc = await ctx.newService(); // no token validator: the user is created at once
  const person = await kit.plainUser(svc, { phone: false });
  // CPU time of this process (argon2 runs on libuv's threads, counted too): the other test process of the run, which
  // shares the machine, does not blur it as it blurs wall-clock time.
  const timed = async (body: { login: string; password: string }) => {
    const before = process.cpuUsage();
    const res = await kit.login(svc, body, freshIp());
    const used = process.cpuUsage(before);
    if (res.statusCode !== 401) throw new Error(`expected 401, got ${res.statusCode}: ${res.body}`);
    return (used.user + used.system) / 1000;
  };
  const unknown: number[] = [];
  const wrong: number[] = [];
  for (let i = 0; i < 21; i++) {
    unknown.push(await timed({ login: freshName('ghost'), password: 'Wrong-password-1!' }));
    // A fresh address each time, and the user's own key cleared: the lockout must not answer before argon2 does.
    await ctx.app.services.lockout.clear(lockKeys.user(svc, person.name));
    wrong.push(await timed({ login: person.name, password: 'Wrong-password-1!' }));
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const ratio = median(unknown) / median(wrong);
  t.comment(`median CPU: unknown login ${median(unknown).toFixed(1)} ms, wrong password ${median(wrong).toFixed(1)} ms`);
  t.ok(ratio > 0.6 && ratio < 1.6, `the same work (ratio of the medians ${ratio.toFixed(2)})`);
});

t.test('an unknown login is throttled exactly like a known one', async (t) => {
  const svc = await ctx.newService();
  const person = await kit.plainUser(svc, { phone: false });
  const answers = [];
  for (const login of [person.name, freshName('ghost')]) {
    const seen = [];
    for (let i = 0; i < 6; i++) {
      const res = await kit.login(svc, { login, password: 'Wrong-password-1!' }, freshIp());
      seen.push({ status: res.statusCode, body: res.json() });
    }
    answers.push(seen);
  }
  t.strictSame(
    answers[0]!.map((a) => a.status),
    [401, 401, 401, 401, 401, 429],
  );
  t.strictSame(answers[1], answers[0], 'the same statuses and bodies, lock included');
});
