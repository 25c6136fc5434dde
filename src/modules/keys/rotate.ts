import type { Kysely } from 'kysely';
import type { Database } from '../../db/types.js';
import { SecretBox } from '../../security/secret-box.js';
import { totpAad } from '../users/tasks.js';
import { secretAad } from '../../auth/service.js';
import { enrollmentAad } from '../../secure/service.js';
import { changeAad } from '../users/pending-change.js';
import { bodyAad } from '../../notify/outbox.js';

export interface RotationReport {
  applicationSecrets: number;
  totpSecrets: number;
  enrollments: number;
  pendingChanges: number;
  outboxMessages: number;
}

/**
 * Re-seals every stored secret with the active key (the first of SECRET_KEYS). Rows already under it are left alone,
 * so the command can be run again after an interruption. Keep the old key in SECRET_KEYS until this has run on every
 * database that uses it; then it can be dropped.
 */
export async function rotateKeys(db: Kysely<Database>, box: SecretBox): Promise<RotationReport> {
  const stale = (sealed: string | null): sealed is string => sealed !== null && SecretBox.keyIdOf(sealed) !== box.activeKeyId;
  const report: RotationReport = { applicationSecrets: 0, totpSecrets: 0, enrollments: 0, pendingChanges: 0, outboxMessages: 0 };

  for (const app of await db
    .selectFrom('application')
    .select(['application_id', 'application_key', 'secret_ciphertext'])
    .execute()) {
    if (!stale(app.secret_ciphertext)) continue;
    const aad = secretAad(app.application_key);
    const sealed = box.seal(box.open(app.secret_ciphertext, aad), aad);
    await db
      .updateTable('application')
      .set({ secret_ciphertext: sealed })
      .where('application_id', '=', app.application_id)
      .execute();
    report.applicationSecrets++;
  }

  for (const user of await db
    .selectFrom('pcc_user')
    .select(['user_id', 'totp_secret_ciphertext'])
    .where('totp_secret_ciphertext', 'is not', null)
    .execute()) {
    if (!stale(user.totp_secret_ciphertext)) continue;
    const aad = totpAad(user.user_id);
    const sealed = box.seal(box.open(user.totp_secret_ciphertext, aad), aad);
    await db.updateTable('pcc_user').set({ totp_secret_ciphertext: sealed }).where('user_id', '=', user.user_id).execute();
    report.totpSecrets++;
  }

  for (const e of await db
    .selectFrom('enrollment')
    .select(['enrollment_id', 'secret_ciphertext'])
    .where('used_at', 'is', null)
    .execute()) {
    if (!stale(e.secret_ciphertext)) continue;
    const aad = enrollmentAad(e.enrollment_id);
    await db
      .updateTable('enrollment')
      .set({ secret_ciphertext: box.seal(box.open(e.secret_ciphertext, aad), aad) })
      .where('enrollment_id', '=', e.enrollment_id)
      .execute();
    report.enrollments++;
  }

  for (const task of await db
    .selectFrom('task')
    .select(['task_id', 'name', 'payload'])
    .where('state', 'in', ['waitingTodo', 'todo', 'doing', 'error'])
    .execute()) {
    const sealed = task.payload.change;
    const userId = task.payload.userId;
    if (typeof sealed !== 'string' || typeof userId !== 'number' || !stale(sealed)) continue;
    const aad = changeAad(userId, task.name);
    const payload = { ...task.payload, change: box.seal(box.open(sealed, aad), aad) };
    await db
      .updateTable('task')
      .set({ payload: JSON.stringify(payload) })
      .where('task_id', '=', task.task_id)
      .execute();
    report.pendingChanges++;
  }

  for (const m of await db
    .selectFrom('outbox')
    .select(['id', 'recipient', 'operation_id', 'body_ciphertext'])
    .where('state', 'in', ['pending', 'sending'])
    .execute()) {
    if (!stale(m.body_ciphertext)) continue;
    const aad = bodyAad(m.recipient, m.operation_id);
    await db
      .updateTable('outbox')
      .set({ body_ciphertext: box.seal(box.open(m.body_ciphertext, aad), aad) })
      .where('id', '=', m.id)
      .execute();
    report.outboxMessages++;
  }
  return report;
}
