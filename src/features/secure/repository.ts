import { sql, type CompiledQuery, type Kysely, type Transaction } from 'kysely';
import { prepared } from '../../db/prepared.js';
import type { Database, ServiceRow, UserRow } from '../../db/types.js';

type Executor = Kysely<Database> | Transaction<Database>;

const SERVICE_COLUMNS = [
  'service_name',
  'account_id',
  'description',
  'state',
  'advanced_security',
  'user_access_policy',
  'user_limit_concurrent_session',
  'user_logout_policy',
  'user_session_timeout',
  'two_fa_state',
  'created_at',
  'approval_armed_at',
  'datacenter_id',
  'ssl_v3',
] as const satisfies ReadonlyArray<keyof ServiceRow>;
const USER_COLUMNS = [
  'user_id',
  'service_name',
  'name',
  'email',
  'first_name',
  'last_name',
  'phone_number',
  'phone_confirmed',
  'is_token_validator',
  'state',
  'activation_state',
  'can_manage_ip_fail_overs',
  'can_manage_network',
  'can_manage_rights',
  'encryption_right',
  'full_admin_ro',
  'nsx_right',
  'receive_alerts',
  'password_hash',
  'password_changed_at',
  'totp_secret_ciphertext',
  'totp_enabled_at',
  'created_at',
  'deleted_at',
  'expiration_date',
] as const satisfies ReadonlyArray<keyof UserRow>;
// Every column of both rows is read: a column added by a migration fails to compile here until it is named.
type Unnamed<Row, Named extends ReadonlyArray<keyof Row>> = Exclude<keyof Row, Named[number]>;
const everyColumnNamed: [Unnamed<ServiceRow, typeof SERVICE_COLUMNS>, Unnamed<UserRow, typeof USER_COLUMNS>] extends [
  never,
  never,
]
  ? true
  : never = true;
void everyColumnNamed;

export interface LoginContext {
  service: ServiceRow;
  /** The live user of that login name (case-insensitive), if any. */
  user: UserRow | undefined;
  /** The client is in one of the service's allowed networks (what `AllowedNetworksApi.isAllowed` answers). */
  allowedNetwork: boolean;
  /** The client is in an enabled twoFAWhitelist entry of the service (what `WhitelistService.bypasses` answers). */
  whitelisted: boolean;
}

let loginContextQuery: CompiledQuery | undefined;

/**
 * What a login reads before its admission, in one prepared statement instead of four round trips: the service, the
 * user, and whether the client's address is in the service's allowed networks and in its 2FA whitelist. The two
 * address tests are the same predicates as `allowed-network` and `whitelist` use (test/login-context.test.ts compares
 * them on the same data). `undefined` when the service does not exist.
 */
export async function loginContext(
  db: Executor,
  serviceName: string,
  name: string,
  ip: string,
): Promise<LoginContext | undefined> {
  loginContextQuery ??= prepared(
    'login_context',
    sql`SELECT ${sql.raw(SERVICE_COLUMNS.map((c) => `s.${c} AS s_${c}`).join(', '))},
        ${sql.raw(USER_COLUMNS.map((c) => `u.${c} AS u_${c}`).join(', '))},
        EXISTS (SELECT 1 FROM allowed_network AS a
                 WHERE a.service_name = s.service_name AND a.deleted_at IS NULL AND a.state <> 'toDelete'
                   AND a.network >>= ${''}::inet) AS allowed_network,
        EXISTS (SELECT 1 FROM two_fa_whitelist AS w
                 WHERE w.service_name = s.service_name AND w.state = 'enabled' AND ${''}::inet <<= w.network) AS whitelisted
      FROM service AS s
      LEFT JOIN pcc_user AS u ON u.service_name = s.service_name AND lower(u.name) = ${''} AND u.deleted_at IS NULL
     WHERE s.service_name = ${''}`.compile(db),
  );
  const { rows } = await db.executeQuery<Record<string, unknown>>({
    ...loginContextQuery,
    parameters: [ip, ip, name.toLowerCase(), serviceName],
  });
  const row = rows[0];
  if (row === undefined) return undefined;
  const pick = (prefix: string, columns: readonly string[]) => Object.fromEntries(columns.map((c) => [c, row[`${prefix}${c}`]]));
  return {
    service: pick('s_', SERVICE_COLUMNS) as ServiceRow,
    user: row.u_user_id === null ? undefined : (pick('u_', USER_COLUMNS) as UserRow),
    allowedNetwork: row.allowed_network === true,
    whitelisted: row.whitelisted === true,
  };
}

/** Records a TOTP time step as used; false when it was used already (the insert decides, atomically). */
export async function useTotpStep(db: Executor, userId: number, step: number, now: Date): Promise<boolean> {
  const inserted = await db
    .insertInto('totp_used')
    .values({ user_id: userId, step, used_at: now })
    .onConflict((oc) => oc.doNothing())
    .returning('step')
    .executeTakeFirst();
  return inserted !== undefined;
}

export async function purgeTotpSteps(db: Executor, before: Date): Promise<void> {
  await db.deleteFrom('totp_used').where('used_at', '<', before).execute();
}

/** One enrollment offer at a time per user: the earlier unused ones go. */
export async function replaceEnrollment(
  trx: Transaction<Database>,
  offer: { enrollmentId: string; serviceName: string; userId: number; secretCiphertext: string; now: Date; expiresAt: Date },
): Promise<void> {
  await trx.deleteFrom('enrollment').where('user_id', '=', offer.userId).where('used_at', 'is', null).execute();
  await trx
    .insertInto('enrollment')
    .values({
      enrollment_id: offer.enrollmentId,
      service_name: offer.serviceName,
      user_id: offer.userId,
      secret_ciphertext: offer.secretCiphertext,
      created_at: offer.now,
      expires_at: offer.expiresAt,
      used_at: null,
    })
    .execute();
}

export async function findEnrollment(db: Executor, enrollmentId: string) {
  return db.selectFrom('enrollment').selectAll().where('enrollment_id', '=', enrollmentId).executeTakeFirst();
}

/** Uses an enrollment once; false when it was used already. */
export async function useEnrollment(trx: Transaction<Database>, enrollmentId: string, now: Date): Promise<boolean> {
  const used = await trx
    .updateTable('enrollment')
    .set({ used_at: now })
    .where('enrollment_id', '=', enrollmentId)
    .where('used_at', 'is', null)
    .executeTakeFirst();
  return Number(used.numUpdatedRows) === 1;
}

export async function countResetsSince(trx: Transaction<Database>, userId: number, since: Date): Promise<number> {
  const row = await trx
    .selectFrom('password_reset')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('user_id', '=', userId)
    .where('created_at', '>', since)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Voids the user's live reset code, if any: voided, not deleted, so that it still counts towards the daily cap. */
export async function voidResets(trx: Transaction<Database>, userId: number, now: Date): Promise<void> {
  await trx
    .updateTable('password_reset')
    .set({ expires_at: now })
    .where('user_id', '=', userId)
    .where('used_at', 'is', null)
    .where('expires_at', '>', now)
    .execute();
}

export async function insertReset(
  trx: Transaction<Database>,
  reset: { tokenHash: Buffer; serviceName: string; userId: number; now: Date; expiresAt: Date },
): Promise<void> {
  await trx
    .insertInto('password_reset')
    .values({
      token_hash: reset.tokenHash,
      service_name: reset.serviceName,
      user_id: reset.userId,
      created_at: reset.now,
      expires_at: reset.expiresAt,
      used_at: null,
    })
    .execute();
}

/** The user's live reset code, locked until the transaction ends. */
export async function lockLiveReset(trx: Transaction<Database>, userId: number, now: Date) {
  return trx
    .selectFrom('password_reset')
    .select(['token_hash', 'failed_attempts', 'expires_at'])
    .where('user_id', '=', userId)
    .where('used_at', 'is', null)
    .where('expires_at', '>', now)
    .orderBy('created_at', 'desc')
    .forUpdate()
    .executeTakeFirst();
}

export async function updateReset(
  trx: Transaction<Database>,
  tokenHash: Buffer,
  changes: { used_at?: Date; failed_attempts?: number; expires_at?: Date },
): Promise<void> {
  await trx.updateTable('password_reset').set(changes).where('token_hash', '=', tokenHash).execute();
}
