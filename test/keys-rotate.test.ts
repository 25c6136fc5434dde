import { randomBytes } from 'node:crypto';
import t from 'tap';
import { SecretBox } from '../src/security/secret-box.js';
import { rotateKeys } from '../src/modules/keys/rotate.js';
import { totpAad } from '../src/modules/users/tasks.js';
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
    .set({ totp_secret_ciphertext: oldBox.seal('JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', totpAad(user.user_id)) })
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
  t.equal(newOnly.open(row.totp_secret_ciphertext!, totpAad(user.user_id)), 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP');

  const again = await rotateKeys(db, new SecretBox([newKey, oldKey]));
  t.same(
    again,
    { applicationSecrets: 0, totpSecrets: 0, enrollments: 0, pendingChanges: 0, outboxMessages: 0 },
    'a second run has nothing left to do',
  );
});
