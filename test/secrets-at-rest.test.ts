import { sql } from 'kysely';
import pino from 'pino';
import t from 'tap';
import { loggerOptions } from '../src/logger.js';
import { buildTestApp } from './helpers/app.js';
import { freshPassword, secureKit, totpCode } from './helpers/secure.js';

// After the guide's whole flow (2FA set up, a gated API creation, a password lost and renewed, a generated password, an
// API password change), neither the database nor the logs hold any secret in clear.
const logLines: string[] = [];
const stream = { write: (line: string) => void logLines.push(line) };
const ctx = await buildTestApp(t, { deps: { logger: { ...loggerOptions('trace'), stream } } });
const workerLog = pino(loggerOptions('trace'), stream);

const secrets = { passwords: new Set<string>(), totp: new Set<string>(), sessions: new Set<string>() };
// Every session token and TOTP secret the app hands out, straight from its answers.
ctx.app.addHook('onSend', async (_request, _reply, payload) => {
  if (typeof payload !== 'string' || !payload.startsWith('{')) return payload;
  const body = JSON.parse(payload) as { sessionToken?: string; secret?: string };
  if (body.sessionToken) secrets.sessions.add(body.sessionToken);
  if (body.secret) secrets.totp.add(body.secret);
  return payload;
});

const kit = await secureKit(t, ctx, { log: workerLog });
const { inbox } = kit;
const svc = await ctx.newService();
const remember = (...passwords: string[]) => passwords.forEach((p) => secrets.passwords.add(p));

// The flow.
const bob = await kit.plainUser(svc, { confirm: true });
let admin = await kit.validator(svc);
remember(bob.password, admin.password);
admin = await kit.enable2FA(svc, admin);
remember(admin.password);
const carol = await kit.plainUser(svc, { confirm: true, approver: admin });
remember(carol.password);
// "Password lost", then the renewal of Bob's credentials, validated by the admin.
await kit.secure('POST', svc, '/passwordLost', { payload: { login: bob.name } });
await kit.settle();
const reset = (await kit.login(svc, { login: bob.name, resetToken: inbox.latestResetCode(bob.phone!) })).json();
const enrollment = (await kit.secure('POST', svc, '/credentials/enrollment', { session: reset.sessionToken })).json();
const bobPassword = freshPassword();
remember(bobPassword);
const renewal = await kit.secure('POST', svc, '/credentials', {
  session: reset.sessionToken,
  payload: { enrollmentId: enrollment.enrollmentId, newPassword: bobPassword, code: await totpCode(ctx, enrollment.secret) },
});
await kit.approve(svc, admin, renewal.json().taskId);
await kit.session(svc, { ...bob, password: bobPassword, secret: enrollment.secret });
// A user created without a password: the generated one leaves by e-mail.
const email = 'dave@example.com';
await kit.createUser(svc, { name: 'dave', email }, admin);
const generated = /is (\S+)$/.exec(inbox.latest(email).body.message)?.[1];
if (!generated) throw new Error('no generated password was sent');
remember(generated);
// An API password change, gated.
const carolPassword = freshPassword();
remember(carolPassword);
const change = await kit.api('POST', `/1.0/dedicatedCloud/${svc}/user/${carol.userId}/changePassword`, {
  password: carolPassword,
});
await kit.approve(svc, admin, change.json().taskId);
// A password change asked but never validated: its sealed change waits, then expires.
const pending = freshPassword();
remember(pending);
await kit.api('POST', `/1.0/dedicatedCloud/${svc}/user/${carol.userId}/changePassword`, { password: pending });
ctx.clock.advance(16 * 60_000);
await kit.settle();

const smsTokens = new Set(inbox.messages.flatMap((m) => [...m.body.message.matchAll(/Token: (\d{8})/g)].map((x) => x[1]!)));
const resetCodes = new Set(
  inbox.messages.flatMap((m) => [...m.body.message.matchAll(/reset code for \S+: (\d{8})/g)].map((x) => x[1]!)),
);

/** Every text, bytea and jsonb value of every table, each as the strings it could be read as. */
async function dumpDatabase(): Promise<Array<{ where: string; text: string }>> {
  const columns = await sql<{ table_name: string; column_name: string; data_type: string }>`
    SELECT table_name, column_name, data_type FROM information_schema.columns
    WHERE table_schema = current_schema() AND data_type IN ('text', 'bytea', 'jsonb', 'json', 'character varying')
    ORDER BY table_name, column_name`.execute(ctx.handle.db);
  const out: Array<{ where: string; text: string }> = [];
  const byTable = new Map<string, string[]>();
  for (const c of columns.rows) byTable.set(c.table_name, [...(byTable.get(c.table_name) ?? []), c.column_name]);
  for (const [table, names] of byTable) {
    const rows = await sql<
      Record<string, unknown>
    >`SELECT ${sql.join(names.map((n) => sql.ref(n)))} FROM ${sql.table(table)}`.execute(ctx.handle.db);
    for (const row of rows.rows) {
      for (const [column, value] of Object.entries(row)) {
        if (value === null || value === undefined) continue;
        const where = `${table}.${column}`;
        if (Buffer.isBuffer(value) || value instanceof Uint8Array) {
          const buf = Buffer.from(value);
          out.push({ where, text: buf.toString('latin1') }, { where, text: buf.toString('hex') });
        } else {
          out.push({ where, text: typeof value === 'string' ? value : JSON.stringify(value) });
        }
      }
    }
  }
  return out;
}

/** A base32 secret's raw bytes, in hex: a secret stored decoded is still a secret in clear. */
function base32Hex(secret: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of secret) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const bytes = bits.match(/.{8}/g)!.map((b) => parseInt(b, 2));
  return Buffer.from(bytes).toString('hex');
}

const digits = (code: string) => new RegExp(`(?<!\\d)${code}(?!\\d)`);
type Finder = (text: string) => boolean;
const finders = {
  password: [...secrets.passwords].map((p): [string, Finder] => [p, (s) => s.includes(p)]),
  'TOTP secret': [...secrets.totp].map((x): [string, Finder] => [
    x,
    (s) => s.includes(x) || s.toUpperCase().includes(x) || s.includes(base32Hex(x)),
  ]),
  'SMS token': [...smsTokens].map((x): [string, Finder] => [x, (s) => digits(x).test(s)]),
  'reset code': [...resetCodes].map((x): [string, Finder] => [x, (s) => digits(x).test(s)]),
  'session token': [...secrets.sessions].map((x): [string, Finder] => [x, (s) => s.includes(x)]),
};

// Read before any test is queued: tap ends the file once its queued tests are done.
const dump = await dumpDatabase();

t.test('the flow handed out every kind of secret the checks below look for', async (t) => {
  t.ok(secrets.passwords.size >= 8, 'passwords');
  t.ok(secrets.totp.size >= 2, 'TOTP secrets');
  t.ok(smsTokens.size >= 6, 'SMS tokens');
  t.ok(resetCodes.size >= 1, 'reset codes');
  t.ok(secrets.sessions.size >= 5, 'session tokens');
});

t.test('the dump reads every table: it holds the users’ names and numbers', async (t) => {
  t.ok(dump.some((d) => d.where === 'pcc_user.name' && d.text === bob.name));
  t.ok(dump.some((d) => d.where === 'pcc_user.phone_number' && d.text === admin.phone));
  t.ok(dump.some((d) => d.where === 'audit_event.type' && d.text === 'login.succeeded'));
});

for (const [kind, list] of Object.entries(finders)) {
  t.test(`no ${kind} is stored in clear in any column of any table`, async (t) => {
    const leaks = list.flatMap(([secret, found]) => dump.filter((d) => found(d.text)).map((d) => `${d.where} holds ${secret}`));
    t.strictSame(leaks, []);
  });
}

t.test('sent and failed outbox rows keep no body', async (t) => {
  const rows = await ctx.handle.db.selectFrom('outbox').select(['state', 'body_ciphertext']).execute();
  t.ok(rows.length >= 10);
  t.strictSame(
    rows.filter((r) => r.state !== 'pending' && r.body_ciphertext !== null),
    [],
  );
  t.ok(
    rows.every((r) => r.state === 'sent'),
    'every message left',
  );
});

t.test('done and canceled tasks keep no sealed change', async (t) => {
  const rows = await ctx.handle.db
    .selectFrom('task')
    .select(['task_id', 'state', 'payload'])
    .where('service_name', '=', svc)
    .execute();
  t.ok(
    rows.some((r) => r.state === 'canceled'),
    'one expired',
  );
  t.strictSame(
    rows.filter((r) => 'change' in r.payload),
    [],
  );
});

t.test('the logs recorded the flow: requests, tasks and messages', async (t) => {
  const all = logLines.join('');
  t.match(all, /"url":"\/secure\/[^"]+\/session"/);
  t.match(all, /"msg":"task done"/);
  t.match(all, /"msg":"message sent"/);
});

for (const [kind, list] of Object.entries(finders)) {
  t.test(`no log line holds a ${kind}`, async (t) => {
    const leaks = list.flatMap(([secret, found]) =>
      logLines.filter((line) => found(line)).map((line) => `${secret} in ${line.slice(0, 300)}`),
    );
    t.strictSame(leaks, []);
  });
}
