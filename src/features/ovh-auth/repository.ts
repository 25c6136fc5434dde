import type { Kysely, Transaction } from 'kysely';
import type { AccessRule, Database } from '../../db/types.js';

type Executor = Kysely<Database> | Transaction<Database>;

export async function findAccountByLogin(db: Executor, login: string) {
  return db.selectFrom('account').selectAll().where('login', '=', login).executeTakeFirst();
}

export async function setAccountPassword(db: Executor, accountId: number, passwordHash: string) {
  await db.updateTable('account').set({ password_hash: passwordHash }).where('account_id', '=', accountId).execute();
}

export async function countAccounts(db: Executor): Promise<number> {
  const row = await db
    .selectFrom('account')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

export async function insertApplication(
  db: Executor,
  app: { accountId: number; applicationKey: string; secretCiphertext: string; name: string },
) {
  return db
    .insertInto('application')
    .values({
      account_id: app.accountId,
      application_key: app.applicationKey,
      secret_ciphertext: app.secretCiphertext,
      name: app.name,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/**
 * Locks an application's row until the transaction ends (`FOR NO KEY UPDATE`: the credentials that reference it are
 * still inserted meanwhile), so that its cap of keys waiting for validation is checked by one request at a time.
 */
export async function lockApplication(trx: Executor, applicationId: number): Promise<void> {
  await trx
    .selectFrom('application')
    .select('application_id')
    .where('application_id', '=', applicationId)
    .forNoKeyUpdate()
    .execute();
}

export async function findApplicationByKey(db: Executor, applicationKey: string) {
  return db.selectFrom('application').selectAll().where('application_key', '=', applicationKey).executeTakeFirst();
}

/**
 * The one indexed lookup a signed call costs: the application by its key and, joined by the consumer key's hash, the
 * credential and its account. A CK of another application is not found.
 */
export async function findSigningContext(db: Executor, applicationKey: string, consumerKeyHash: Buffer) {
  return db
    .selectFrom('application as app')
    .leftJoin('credential as cred', (join) =>
      join.onRef('cred.application_id', '=', 'app.application_id').on('cred.consumer_key_hash', '=', consumerKeyHash),
    )
    .leftJoin('account as acc', 'acc.account_id', 'cred.account_id')
    .select([
      'app.application_id',
      'app.application_key',
      'app.secret_ciphertext',
      'app.revoked_at as app_revoked_at',
      'cred.credential_id',
      'cred.state',
      'cred.rules',
      'cred.allowed_ips',
      'cred.expires_at',
      'cred.revoked_at',
      'cred.last_use',
      'cred.account_id',
      'acc.login',
    ])
    .where('app.application_key', '=', applicationKey)
    .executeTakeFirst();
}

export async function insertCredential(
  db: Executor,
  cred: {
    applicationId: number;
    consumerKeyHash: Buffer;
    validationTokenHash: Buffer;
    rules: AccessRule[];
    allowedIps: string[] | null;
    redirection: string | null;
    validationExpiresAt: Date;
  },
) {
  return db
    .insertInto('credential')
    .values({
      application_id: cred.applicationId,
      account_id: null,
      consumer_key_hash: cred.consumerKeyHash,
      validation_token_hash: cred.validationTokenHash,
      state: 'pendingValidation',
      rules: JSON.stringify(cred.rules),
      allowed_ips: cred.allowedIps === null ? null : JSON.stringify(cred.allowedIps),
      redirection: cred.redirection,
      validation_expires_at: cred.validationExpiresAt,
    })
    .returning(['credential_id'])
    .executeTakeFirstOrThrow();
}

const credentialColumns = [
  'cred.credential_id',
  'cred.application_id',
  'cred.account_id',
  'cred.state',
  'cred.rules',
  'cred.allowed_ips',
  'cred.redirection',
  'cred.created_at',
  'cred.validation_expires_at',
  'cred.validated_at',
  'cred.expires_at',
  'cred.last_use',
  'cred.revoked_at',
  'app.name as application_name',
  'app.application_key',
] as const;

const credentialQuery = (db: Executor) =>
  db
    .selectFrom('credential as cred')
    .innerJoin('application as app', 'app.application_id', 'cred.application_id')
    .select(credentialColumns);

export async function findCredentialByValidationToken(db: Executor, tokenHash: Buffer) {
  return credentialQuery(db).where('cred.validation_token_hash', '=', tokenHash).executeTakeFirst();
}

export async function findCredentialByConsumerKey(db: Executor, consumerKeyHash: Buffer) {
  return credentialQuery(db).where('cred.consumer_key_hash', '=', consumerKeyHash).executeTakeFirst();
}

export async function findCredentialById(db: Executor, credentialId: number) {
  return credentialQuery(db).where('cred.credential_id', '=', credentialId).executeTakeFirst();
}

/** Decides a pending credential once: the validation token is erased with the decision. */
export async function decideCredential(
  db: Executor,
  credentialId: number,
  decision: { state: 'validated' | 'refused'; accountId: number; now: Date; expiresAt: Date | null },
): Promise<boolean> {
  const result = await db
    .updateTable('credential')
    .set({
      state: decision.state,
      account_id: decision.accountId,
      validated_at: decision.state === 'validated' ? decision.now : null,
      expires_at: decision.expiresAt,
      validation_token_hash: null,
    })
    .where('credential_id', '=', credentialId)
    .where('state', '=', 'pendingValidation')
    .where('validation_expires_at', '>', decision.now)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export async function revokeCredential(db: Executor, credentialId: number, now: Date) {
  await db
    .updateTable('credential')
    .set({ state: 'expired', revoked_at: now, validation_token_hash: null })
    .where('credential_id', '=', credentialId)
    .execute();
}

export async function touchCredential(db: Executor, credentialId: number, now: Date) {
  await db.updateTable('credential').set({ last_use: now }).where('credential_id', '=', credentialId).execute();
}

export async function insertOauthClient(
  db: Executor,
  client: { clientId: string; accountId: number; secretHash: Buffer; name: string },
) {
  await db
    .insertInto('oauth_client')
    .values({ client_id: client.clientId, account_id: client.accountId, secret_hash: client.secretHash, name: client.name })
    .execute();
}

export async function findOauthClient(db: Executor, clientId: string) {
  return db.selectFrom('oauth_client').selectAll().where('client_id', '=', clientId).executeTakeFirst();
}

export async function insertOauthToken(
  db: Executor,
  token: { tokenHash: Buffer; clientId: string; accountId: number; expiresAt: Date },
) {
  await db
    .insertInto('oauth_token')
    .values({ token_hash: token.tokenHash, client_id: token.clientId, account_id: token.accountId, expires_at: token.expiresAt })
    .execute();
}

/** The bearer token, its client (still not revoked) and its account, in one indexed lookup. */
export async function findOauthToken(db: Executor, tokenHash: Buffer) {
  return db
    .selectFrom('oauth_token as tok')
    .innerJoin('oauth_client as cli', 'cli.client_id', 'tok.client_id')
    .innerJoin('account as acc', 'acc.account_id', 'tok.account_id')
    .select(['tok.expires_at', 'tok.account_id', 'acc.login', 'cli.revoked_at', 'tok.client_id'])
    .where('tok.token_hash', '=', tokenHash)
    .executeTakeFirst();
}

export async function deleteExpiredOauthTokens(db: Executor, now: Date) {
  await db.deleteFrom('oauth_token').where('expires_at', '<', now).execute();
}

export async function deleteOauthToken(db: Executor, tokenHash: Buffer) {
  await db.deleteFrom('oauth_token').where('token_hash', '=', tokenHash).execute();
}

/** Revokes a client once; its tokens go with it. Returns whether this call revoked it. */
export async function revokeOauthClient(db: Kysely<Database>, clientId: string, now: Date): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const result = await trx
      .updateTable('oauth_client')
      .set({ revoked_at: now })
      .where('client_id', '=', clientId)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    await trx.deleteFrom('oauth_token').where('client_id', '=', clientId).execute();
    return Number(result.numUpdatedRows) === 1;
  });
}

export async function revokeApplication(db: Executor, applicationId: number, now: Date): Promise<boolean> {
  const result = await db
    .updateTable('application')
    .set({ revoked_at: now })
    .where('application_id', '=', applicationId)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/**
 * Deletes the application's `n` oldest consumer keys still waiting for validation (their link live): never validated,
 * nothing refers to them, and a row kept would be a row anyone with the public application key adds for good. The
 * live ones are read through the index by expiry (migrations/0022: at most the cap's 1,000) and the oldest taken by
 * their creation, not their expiry: a lifetime shortened since (`CREDENTIAL_VALIDATION_SECONDS`) makes the newest keys
 * expire first, and each request would then delete the one before it. A key validated meanwhile (the validation
 * commits while this waits for its row) is left: the state is checked again on the row as it was left.
 */
export async function deleteOldestPending(trx: Executor, applicationId: number, now: Date, n: number): Promise<void> {
  await trx
    .deleteFrom('credential')
    .where('state', '=', 'pendingValidation')
    .where('credential_id', 'in', (eb) =>
      eb
        .selectFrom('credential')
        .select('credential_id')
        .where('application_id', '=', applicationId)
        .where('state', '=', 'pendingValidation')
        .where('validation_expires_at', '>', now)
        .orderBy('created_at')
        .orderBy('credential_id')
        .limit(n),
    )
    .execute();
}

/**
 * Consumer keys of one application still waiting for validation (their link live): one range of the index of waiting
 * keys by expiry (migrations/0022), whatever the expired ones waiting for the retention's purge.
 */
export async function countPendingCredentials(db: Executor, applicationId: number, now: Date): Promise<number> {
  const row = await db
    .selectFrom('credential')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('application_id', '=', applicationId)
    .where('state', '=', 'pendingValidation')
    .where('validation_expires_at', '>', now)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
