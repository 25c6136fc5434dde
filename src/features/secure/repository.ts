import { sql, type CompiledQuery, type Kysely, type Transaction } from 'kysely';
import { prepared } from '../../db/prepared.js';
import type { Database, ServiceRow, UserRow } from '../../db/types.js';
import {
  admitArguments,
  admitParameters,
  admittedRows,
  type AdmittedRow,
  type LockPolicy,
} from '../../security/lockout-repository.js';

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
  /**
   * The lockout's rows for the attempt (`lockout_admit`), when keys were given and the access policy let the client
   * in (`userAccessPolicy` not `filtered`, or the client in an allowed network); otherwise nothing was counted.
   */
  attempt?: AdmittedRow[];
}

let loginContextQuery: CompiledQuery | undefined;

/**
 * What a login reads and counts before its password is checked, in one prepared statement instead of five round
 * trips: the service, the user, whether the client's address is in the service's allowed networks and in its 2FA
 * whitelist, and the attempt's admission by the lockout on `admit.keys` (`admissionKeys`: sorted, once each), which
 * runs only when the access policy lets the client in. The two address tests are the same predicates as
 * `allowed-network` and `whitelist` use (test/login-context.test.ts compares them on the same data). `undefined` when
 * the service does not exist (and nothing was counted).
 */
export async function loginContext(
  db: Executor,
  serviceName: string,
  name: string,
  ip: string,
  admit: { keys: ReadonlyArray<{ key: string; policy: LockPolicy }>; now: Date } = { keys: [], now: new Date(0) },
): Promise<LoginContext | undefined> {
  loginContextQuery ??= prepared(
    'login_context',
    sql`SELECT c.*, a.keys AS a_keys, a.failures AS a_failures, a.locked_until AS a_locked_until, a.admitted AS a_admitted
      FROM (SELECT ${sql.raw(SERVICE_COLUMNS.map((col) => `s.${col} AS s_${col}`).join(', '))},
          ${sql.raw(USER_COLUMNS.map((col) => `u.${col} AS u_${col}`).join(', '))},
          EXISTS (SELECT 1 FROM allowed_network AS an
                   WHERE an.service_name = s.service_name AND an.deleted_at IS NULL AND an.state <> 'toDelete'
                     AND an.network >>= $1::inet) AS allowed_network,
          EXISTS (SELECT 1 FROM two_fa_whitelist AS w
                   WHERE w.service_name = s.service_name AND w.state = 'enabled' AND $2::inet <<= w.network) AS whitelisted
        FROM service AS s
        LEFT JOIN pcc_user AS u ON u.service_name = s.service_name AND lower(u.name) = $3 AND u.deleted_at IS NULL
       WHERE s.service_name = $4) AS c
      LEFT JOIN LATERAL (
        -- One row, the admission's rows as arrays (in key order): the context is read and parsed once.
        SELECT array_agg(r.key ORDER BY r.key) AS keys, array_agg(r.failures ORDER BY r.key) AS failures,
               array_agg(r.locked_until ORDER BY r.key) AS locked_until, array_agg(r.admitted ORDER BY r.key) AS admitted
          FROM login_admit(c.s_user_access_policy <> 'filtered' OR c.allowed_network, ${sql.raw(admitArguments(5))}) AS r) AS a
        ON true`.compile(db),
  );
  const { rows } = await db.executeQuery<Record<string, unknown>>({
    ...loginContextQuery,
    parameters: [ip, ip, name.toLowerCase(), serviceName, ...admitParameters(admit.keys, admit.now)],
  });
  const row = rows[0];
  if (row === undefined) return undefined;
  const pick = (prefix: string, columns: readonly string[]) => Object.fromEntries(columns.map((c) => [c, row[`${prefix}${c}`]]));
  const context: LoginContext = {
    service: pick('s_', SERVICE_COLUMNS) as ServiceRow,
    user: row.u_user_id === null ? undefined : (pick('u_', USER_COLUMNS) as UserRow),
    allowedNetwork: row.allowed_network === true,
    whitelisted: row.whitelisted === true,
  };
  const keys = row.a_keys as string[] | null;
  if (keys === null) return context;
  const failures = row.a_failures as number[];
  const lockedUntil = row.a_locked_until as Array<Date | string | null>;
  const admitted = row.a_admitted as boolean[];
  return {
    ...context,
    attempt: admittedRows(
      keys.map((key, i) => ({ key, failures: failures[i]!, locked_until: lockedUntil[i]!, admitted: admitted[i]! })),
    ),
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

/**
 * Locks the user's row for the making of a reset code, until the transaction ends (`FOR NO KEY UPDATE`: the rows that
 * reference the user, sessions or used TOTP steps, are still written meanwhile).
 */
export async function lockUserForResets(trx: Transaction<Database>, userId: number): Promise<void> {
  await trx.selectFrom('pcc_user').select('user_id').where('user_id', '=', userId).forNoKeyUpdate().execute();
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

/**
 * The user's live reset code, locked until the transaction ends. Live means unused, unexpired and with fewer than
 * `maxFailures` wrong tries: a try that waited for the row lock is judged on the row as the one before it left it, and
 * the fifth failure voids the code as of its own time, which may be later than the time the waiting try read.
 */
export async function lockLiveReset(trx: Transaction<Database>, userId: number, now: Date, maxFailures: number) {
  return trx
    .selectFrom('password_reset')
    .select(['token_hash', 'failed_attempts', 'expires_at'])
    .where('user_id', '=', userId)
    .where('used_at', 'is', null)
    .where('expires_at', '>', now)
    .where('failed_attempts', '<', maxFailures)
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
