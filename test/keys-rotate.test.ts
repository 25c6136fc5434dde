import { randomBytes } from 'node:crypto';
import t from 'tap';
import { sql } from 'kysely';
import { buildApp } from '../src/app.js';
import { openDatabase } from '../src/db/database.js';
import { engine } from './helpers/db.js';
import { freshIp, freshPassword, secureKit } from './helpers/secure.js';
import { SecretBox } from '../src/security/secret-box.js';
import { rotateKeys } from '../src/features/keys/repository.js';
import { contexts } from '../src/security/contexts.js';
import { buildTestApp } from './helpers/app.js';

t.test('keys rotate re-seals every stored secret with the new key, and the old key is no longer needed', async (t) => {
  const ctx = await buildTestApp(t);
  const oldKey = { id: 'old', key: randomBytes(32) };
  const newKey = { id: 'new', key: randomBytes(32) };
  const oldBox = new SecretBox([oldKey]);
  const service = await ctx.newService('pcc-rotate', 'acme');
  const db = ctx.handle.db;

  const account = await db.selectFrom('account').select('account_id').where('login', '=', 'acme').executeTakeFirstOrThrow();
  await db
    .insertInto('application')
    .values({
      account_id: account.account_id,
      application_key: 'AK123',
      secret_ciphertext: oldBox.seal('the-app-secret', 'application:AK123'),
      name: '',
    })
    .execute();
  const user = await db
    .insertInto('pcc_user')
    .values({
      service_name: service,
      name: 'alice',
      email: null,
      first_name: null,
      last_name: null,
      phone_number: null,
      password_hash: null,
      password_changed_at: null,
      totp_secret_ciphertext: null,
      totp_enabled_at: null,
      deleted_at: null,
    })
    .returning('user_id')
    .executeTakeFirstOrThrow();
  await db
    .updateTable('pcc_user')
    .set({ totp_secret_ciphertext: oldBox.seal('JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', contexts.totpSecret(user.user_id)) })
    .where('user_id', '=', user.user_id)
    .execute();

  const report = await rotateKeys(db, new SecretBox([newKey, oldKey]));
  t.equal(report.applicationSecrets, 1);
  t.equal(report.totpSecrets, 1);

  const newOnly = new SecretBox([newKey]);
  const app = await db.selectFrom('application').select('secret_ciphertext').executeTakeFirstOrThrow();
  t.equal(SecretBox.keyIdOf(app.secret_ciphertext), 'new');
  t.equal(newOnly.open(app.secret_ciphertext, 'application:AK123'), 'the-app-secret');
  const row = await db
    .selectFrom('pcc_user')
    .select('totp_secret_ciphertext')
    .where('user_id', '=', user.user_id)
    .executeTakeFirstOrThrow();
  t.equal(newOnly.open(row.totp_secret_ciphertext!, contexts.totpSecret(user.user_id)), 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP');

  const again = await rotateKeys(db, new SecretBox([newKey, oldKey]));
  t.same(
    again,
    { applicationSecrets: 0, totpSecrets: 0, enrollments: 0, pendingChanges: 0, outboxMessages: 0 },
    'a second run has nothing left to do',
  );
});

t.test('keys rotate never reverts a change committed while it runs (each row is locked while re-sealed)', async (t) => {
  const ctx = await buildTestApp(t);
  const db = ctx.handle.db;
  const oldKey = { id: 'old', key: randomBytes(32) };
  const newKey = { id: 'new', key: randomBytes(32) };
  const oldBox = new SecretBox([oldKey]);
  const service = await ctx.newService('pcc-rotate-race', 'acme');
  const user = await db
    .insertInto('pcc_user')
    .values({ service_name: service, name: 'bob', totp_secret_ciphertext: null })
    .returning('user_id')
    .executeTakeFirstOrThrow();
  const aad = contexts.totpSecret(user.user_id);
  await db
    .updateTable('pcc_user')
    .set({ totp_secret_ciphertext: oldBox.seal('FIRSTSECRET', aad) })
    .where('user_id', '=', user.user_id)
    .execute();

  // A new TOTP secret is being written (its transaction holds the row) when the rotation starts.
  let commit!: () => void;
  const held = new Promise<void>((resolve) => (commit = resolve));
  let written!: () => void;
  const rowWritten = new Promise<void>((resolve) => (written = resolve));
  const change = db.transaction().execute(async (trx) => {
    await trx
      .updateTable('pcc_user')
      .set({ totp_secret_ciphertext: oldBox.seal('NEWSECRET', aad) })
      .where('user_id', '=', user.user_id)
      .execute();
    written();
    await held;
  });
  await rowWritten;
  const rotation = rotateKeys(db, new SecretBox([newKey, oldKey]));
  if (engine === 'pg') {
    // The rotation now waits for the row lock (PostgreSQL shows it waiting); on the embedded database it waits for
    // the one connection. Either way it must read the row only once the change committed.
    const admin = await openDatabase({ databaseUrl: ctx.databaseUrl!, poolSize: 1 });
    t.teardown(() => admin.close());
    for (let i = 0; i < 200; i++) {
      const waiting = await sql<{
        n: number;
      }>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`.execute(
        admin.db,
      );
      if (waiting.rows[0]!.n > 0) break;
      await new Promise((r) => setImmediate(r));
    }
  }
  commit();
  await change;
  await rotation;
  const row = await db
    .selectFrom('pcc_user')
    .select('totp_secret_ciphertext')
    .where('user_id', '=', user.user_id)
    .executeTakeFirstOrThrow();
  t.equal(new SecretBox([newKey]).open(row.totp_secret_ciphertext!, aad), 'NEWSECRET', 'the new secret, re-sealed');
});

t.test('a reset code sent before a key rotation still works after it', async (t) => {
  const ctx = await buildTestApp(t);
  const kit = await secureKit(t, ctx);
  const svc = await ctx.newService();
  const person = await kit.plainUser(svc, { confirm: true });
  await kit.secure('POST', svc, '/passwordLost', { ip: freshIp(), payload: { login: person.name } });
  await kit.settle();
  const code = kit.inbox.latestResetCode(person.phone!);
  // The operator puts a new key first: the service restarts with it, the old one kept to open what it sealed.
  const rotated = await buildApp({
    handle: ctx.handle,
    config: ctx.config,
    clock: ctx.clock,
    secretBox: new SecretBox([{ id: 'next', key: randomBytes(32) }, ...ctx.secretBox.keys()]),
  });
  t.teardown(() => rotated.close());
  const res = await rotated.inject({
    method: 'POST',
    url: `/secure/${svc}/session`,
    remoteAddress: freshIp(),
    payload: { login: person.name, resetToken: code },
  });
  t.equal(res.statusCode, 200, res.body);
});

t.test(
  'a pending change is bound to its task: copied into another task of the same user and name, it does not open',
  async (t) => {
    const ctx = await buildTestApp(t);
    const kit = await secureKit(t, ctx);
    const svc = await ctx.newService();
    const validator = await kit.validator(svc);
    const person = await kit.plainUser(svc, { phone: false, approver: validator });
    const url = `/1.0/dedicatedCloud/${svc}/user/${person.userId}/changePassword`;
    const planted = freshPassword();
    const first = (await kit.api('POST', url, { password: planted })).json();
    const second = (await kit.api('POST', url, { password: freshPassword() })).json();
    t.equal(first.state, 'waitingTodo');
    t.equal(second.state, 'waitingTodo');
    const source = await ctx.handle.db
      .selectFrom('task')
      .select('payload')
      .where('task_id', '=', first.taskId)
      .executeTakeFirstOrThrow();
    await ctx.handle.db
      .updateTable('task')
      .set({ payload: JSON.stringify(source.payload) })
      .where('task_id', '=', second.taskId)
      .execute();
    await kit.approve(svc, validator, second.taskId);
    t.equal((await kit.task(svc, second.taskId)).state, 'error', 'the copied change does not open under the second task');
    t.equal((await kit.login(svc, { login: person.name, password: planted })).statusCode, 401, 'the planted password is not set');
  },
);
