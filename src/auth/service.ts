import { contexts } from '../security/contexts.js';
import ipaddr from 'ipaddr.js';
import type { Kysely } from 'kysely';
import { toOvhDate, type Clock } from '../clock.js';
import type { AccessRule, CredentialState, Database } from '../db/types.js';
import { ApiError, badRequest, invalidField, notFound } from '../http/errors.js';
import type { Principal } from '../http/types.js';
import { hashPassword, verifyPassword } from '../security/passwords.js';
import { SecretBox } from '../security/secret-box.js';
import { constantTimeEqual, randomAlphanumeric, sha256 } from '../security/tokens.js';
import { MAX_RULE_STARS, isGranted } from './access-rules.js';
import { authErrors } from './errors.js';
import { attemptKeys, lockKeys, Lockout } from '../security/lockout.js';
import { recordAudit } from '../modules/audit/repository.js';
import * as repo from './repository.js';
import { candidateUrls, ovhSignature, signatureMatches } from './signature.js';

export const VALIDITIES = { '1h': 3600, '1d': 86_400, '30d': 2_592_000, unlimited: null } as const;
export type Validity = keyof typeof VALIDITIES;
/** Most consumer keys one application may have waiting for validation: a request needs only the public key. */
export const MAX_PENDING_CREDENTIALS = 1000;

export interface AuthSettings {
  timeWindowSeconds: number;
  oauthTokenTtlSeconds: number;
  /** How long a consumer key may wait for validation. */
  credentialValidationSeconds: number;
  publicUrl?: string | undefined;
}

export interface SignedCall {
  applicationKey: string | undefined;
  consumerKey: string | undefined;
  timestamp: string | undefined;
  signature: string | undefined;
  method: string;
  protocol: string;
  host: string | undefined;
  rawUrl: string;
  /** The path below `/1.0` or `/v1`, without query string: what access rules are matched against. */
  apiPath: string;
  body: string;
  ip: string;
}

/** `last_use` is written at most this often per credential, so a signed call costs no write. */
const LAST_USE_RESOLUTION_MS = 60_000;

export class AuthService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly box: SecretBox,
    private readonly clock: Clock,
    private readonly settings: AuthSettings,
    private readonly lockout: Lockout = new Lockout(db, clock),
  ) {}

  // ---- accounts ------------------------------------------------------------------------------------------------

  async setPassword(login: string, password: string): Promise<void> {
    if (password.length < 12 || password.length > 256) throw invalidField('password', 'must be 12 to 256 characters long');
    const account = await repo.findAccountByLogin(this.db, login);
    if (!account) throw notFound(`Account ${login} does not exist`);
    await repo.setAccountPassword(this.db, account.account_id, await hashPassword(password));
  }

  /** The account id when the login and password match; `undefined` otherwise, in the same time either way. */
  async checkAccountPassword(login: string, password: string): Promise<{ accountId: number; login: string } | undefined> {
    const account = await repo.findAccountByLogin(this.db, login);
    const ok = await verifyPassword(account?.password_hash, password);
    return ok && account ? { accountId: account.account_id, login: account.login } : undefined;
  }

  // ---- applications and consumer keys --------------------------------------------------------------------------

  async createApplication(login: string, name = ''): Promise<{ applicationKey: string; applicationSecret: string }> {
    const account = await repo.findAccountByLogin(this.db, login);
    if (!account) throw notFound(`Account ${login} does not exist`);
    const applicationKey = randomAlphanumeric(16);
    const applicationSecret = randomAlphanumeric(32);
    await repo.insertApplication(this.db, {
      accountId: account.account_id,
      applicationKey,
      secretCiphertext: this.box.seal(applicationSecret, contexts.applicationSecret(applicationKey)),
      name,
    });
    return { applicationKey, applicationSecret };
  }

  async requestCredential(
    applicationKey: string | undefined,
    input: { accessRules: AccessRule[]; redirection?: string | null | undefined; allowedIPs?: string[] | null | undefined },
    baseUrl: string,
  ) {
    const app = applicationKey ? await repo.findApplicationByKey(this.db, applicationKey) : undefined;
    if (!app || app.revoked_at) throw authErrors.invalidKey();
    if (input.accessRules.length === 0) throw invalidField('accessRules', 'must hold at least one rule');
    const starry = input.accessRules.find((rule) => rule.path.split('*').length - 1 > MAX_RULE_STARS);
    if (starry) throw invalidField('accessRules', `${starry.path} holds more than ${MAX_RULE_STARS} *`);
    const redirection = input.redirection == null ? null : redirectionUrl(input.redirection);
    const allowedIps = input.allowedIPs ?? null;
    for (const block of allowedIps ?? []) {
      if (!isIpBlock(block)) throw invalidField('allowedIPs', `${block} is not an IP address or network`);
    }
    if ((await repo.countPendingCredentials(this.db, app.application_id, this.clock.now())) >= MAX_PENDING_CREDENTIALS) {
      throw new ApiError(
        429,
        'Client::TooManyRequests',
        `This application already has ${MAX_PENDING_CREDENTIALS} consumer keys waiting for validation`,
      );
    }
    const consumerKey = randomAlphanumeric(32);
    const validationToken = randomAlphanumeric(32);
    const now = this.clock.now();
    await repo.insertCredential(this.db, {
      applicationId: app.application_id,
      consumerKeyHash: sha256(consumerKey),
      validationTokenHash: sha256(validationToken),
      rules: input.accessRules,
      allowedIps,
      redirection,
      validationExpiresAt: new Date(now.getTime() + this.settings.credentialValidationSeconds * 1000),
    });
    return {
      consumerKey,
      state: 'pendingValidation' as const,
      validationUrl: `${baseUrl}/auth/?credentialToken=${validationToken}`,
    };
  }

  /** What the validation page shows; `undefined` once decided, expired or unknown. */
  async pendingValidation(validationToken: string) {
    const cred = await repo.findCredentialByValidationToken(this.db, sha256(validationToken));
    if (!cred || cred.state !== 'pendingValidation' || cred.validation_expires_at <= this.clock.now()) return undefined;
    return cred;
  }

  /**
   * The account holder's decision on the validation page. The account password is guessed here as on any login: the
   * attempt is counted per account, per (account, client network) and per client network in the database every
   * instance shares, and every decision and failure is audited.
   */
  async decideValidation(input: {
    validationToken: string;
    login: string;
    password: string;
    validity: Validity;
    decision: 'validated' | 'refused';
    ip: string;
  }): Promise<
    | { ok: true; redirection: string | null }
    | { ok: false; reason: 'credentials' | 'expired' }
    | { ok: false; reason: 'locked'; waitMs: number }
  > {
    const audit = (type: string, accountLogin: string | null, data: Record<string, unknown>) =>
      this.db
        .transaction()
        .execute((trx) =>
          recordAudit(trx, { serviceName: null, type, actor: accountLogin?.slice(0, 128) ?? null, ip: input.ip, data }),
        );
    const keys = attemptKeys(lockKeys.account(input.login), input.ip);
    const admission = await this.lockout.admit(keys);
    if (!admission.admitted) {
      await audit('credential.validation.locked', input.login, { waitMs: admission.waitMs });
      return { ok: false, reason: 'locked', waitMs: admission.waitMs };
    }
    const cred = await this.pendingValidation(input.validationToken);
    const account = await this.checkAccountPassword(input.login, input.password);
    if (!account) {
      await audit('credential.validation.failed', input.login, { reason: 'password', credentialId: cred?.credential_id ?? null });
      for (const lock of admission.locksOnFailure) {
        await audit(lock.hardLimit ? 'lockout.hardLimit' : 'lockout.started', input.login, {
          key: lock.key,
          until: toOvhDate(lock.until),
        });
      }
      return { ok: false, reason: 'credentials' };
    }
    await this.lockout.succeed(keys, admission);
    if (!cred) {
      await audit('credential.validation.failed', account.login, { reason: 'expired' });
      return { ok: false, reason: 'expired' };
    }
    const decided = await repo.decideCredential(this.db, cred.credential_id, {
      state: input.decision,
      accountId: account.accountId,
      now: this.clock.now(),
      expiresAt: this.expiryOf(input.validity),
    });
    await audit(decided ? `credential.${input.decision}` : 'credential.validation.failed', account.login, {
      credentialId: cred.credential_id,
      applicationId: cred.application_id,
      ...(decided ? { validity: input.validity, rules: cred.rules } : { reason: 'expired' }),
    });
    return decided ? { ok: true, redirection: cred.redirection } : { ok: false, reason: 'expired' };
  }

  /** Operator command: validates a pending consumer key for the account that owns its application (or another). */
  async validateByOperator(consumerKey: string, validity: Validity, login?: string) {
    const cred = await repo.findCredentialByConsumerKey(this.db, sha256(consumerKey));
    if (!cred) throw notFound('This credential does not exist');
    if (cred.state !== 'pendingValidation') throw badRequest(`This credential is ${cred.state}, not pendingValidation`);
    let accountId: number;
    if (login) {
      const account = await repo.findAccountByLogin(this.db, login);
      if (!account) throw notFound(`Account ${login} does not exist`);
      accountId = account.account_id;
    } else {
      const app = await repo.findApplicationByKey(this.db, cred.application_key);
      accountId = app!.account_id;
    }
    const ok = await repo.decideCredential(this.db, cred.credential_id, {
      state: 'validated',
      accountId,
      now: this.clock.now(),
      expiresAt: this.expiryOf(validity),
    });
    if (!ok) throw badRequest('This credential expired before it was validated');
    return this.describeCredential(cred.credential_id);
  }

  private expiryOf(validity: Validity): Date | null {
    // The CLI checks its --validity with `in`, which lets `toString` through: refuse it here for every caller.
    if (!Object.hasOwn(VALIDITIES, validity)) {
      throw invalidField('validity', `must be one of ${Object.keys(VALIDITIES).join(', ')}`);
    }
    const seconds = VALIDITIES[validity];
    return seconds === null ? null : new Date(this.clock.now().getTime() + seconds * 1000);
  }

  /** OVH's `auth.ApiCredential`. */
  async describeCredential(credentialId: number) {
    const cred = await repo.findCredentialById(this.db, credentialId);
    if (!cred) throw notFound('This credential does not exist');
    return {
      allowedIPs: cred.allowed_ips,
      applicationId: cred.application_id,
      creation: toOvhDate(cred.created_at),
      credentialId: cred.credential_id,
      expiration: toOvhDate(cred.expires_at),
      lastUse: toOvhDate(cred.last_use),
      ovhSupport: false,
      rules: cred.rules,
      status: this.effectiveState(cred),
    };
  }

  private effectiveState(cred: { state: CredentialState; expires_at: Date | null; validation_expires_at: Date }) {
    const now = this.clock.now();
    if (cred.state === 'validated' && cred.expires_at && cred.expires_at <= now) return 'expired' as const;
    if (cred.state === 'pendingValidation' && cred.validation_expires_at <= now) return 'expired' as const;
    return cred.state;
  }

  async logout(credentialId: number): Promise<void> {
    await repo.revokeCredential(this.db, credentialId, this.clock.now());
  }

  // ---- signed calls --------------------------------------------------------------------------------------------

  /** Checks an OVH-signed call; returns who made it or throws OVH's error. One indexed lookup, no write. */
  async verifySignedCall(call: SignedCall): Promise<Principal> {
    if (!call.applicationKey) throw authErrors.missing();
    if (!call.consumerKey) {
      if (!(await repo.findApplicationByKey(this.db, call.applicationKey))) throw authErrors.invalidKey();
      throw authErrors.notCredential();
    }
    const ctx = await repo.findSigningContext(this.db, call.applicationKey, sha256(call.consumerKey));
    if (!ctx || ctx.app_revoked_at) throw authErrors.invalidKey();
    if (ctx.credential_id === null) throw authErrors.notCredential();
    const now = this.clock.now();
    if (
      ctx.state !== 'validated' ||
      ctx.revoked_at !== null ||
      ctx.account_id === null ||
      (ctx.expires_at !== null && ctx.expires_at <= now)
    ) {
      throw authErrors.invalidCredential();
    }
    if (!call.signature || !call.timestamp || !/^\d{1,12}$/.test(call.timestamp)) throw authErrors.invalidSignature();
    const secret = this.box.open(ctx.secret_ciphertext, contexts.applicationSecret(ctx.application_key));
    const expected = candidateUrls({ ...call, publicUrl: this.settings.publicUrl }).map((url) =>
      ovhSignature({
        applicationSecret: secret,
        consumerKey: call.consumerKey!,
        method: call.method,
        url,
        body: call.body,
        timestamp: call.timestamp!,
      }),
    );
    if (!signatureMatches(expected, call.signature)) throw authErrors.invalidSignature();
    if (Math.abs(Number(call.timestamp) - Math.floor(now.getTime() / 1000)) > this.settings.timeWindowSeconds) {
      throw authErrors.queryTimeOut();
    }
    if (!isGranted(ctx.rules ?? [], call.method, call.apiPath)) throw authErrors.notGranted();
    if (ctx.allowed_ips && !ctx.allowed_ips.some((block) => ipInBlock(call.ip, block))) throw authErrors.notGranted();
    if (!ctx.last_use || now.getTime() - ctx.last_use.getTime() > LAST_USE_RESOLUTION_MS) {
      // Best effort and off the request's path: last use is informative only.
      void repo.touchCredential(this.db, ctx.credential_id, now).catch(() => undefined);
    }
    return { accountId: ctx.account_id, login: ctx.login, credentialId: ctx.credential_id };
  }

  // ---- OAuth2 client credentials -------------------------------------------------------------------------------

  async createOauthClient(login: string, name = ''): Promise<{ clientId: string; clientSecret: string }> {
    const account = await repo.findAccountByLogin(this.db, login);
    if (!account) throw notFound(`Account ${login} does not exist`);
    const clientId = `pcc-${randomAlphanumeric(16)}`;
    const clientSecret = randomAlphanumeric(40);
    await repo.insertOauthClient(this.db, { clientId, accountId: account.account_id, secretHash: sha256(clientSecret), name });
    return { clientId, clientSecret };
  }

  async issueToken(clientId: string, clientSecret: string) {
    const client = await repo.findOauthClient(this.db, clientId);
    const valid = Boolean(client) && constantTimeEqual(client?.secret_hash ?? Buffer.alloc(32), sha256(clientSecret));
    if (!client || !valid || client.revoked_at) return undefined;
    const accessToken = randomAlphanumeric(48);
    const now = this.clock.now();
    await repo.deleteExpiredOauthTokens(this.db, now);
    await repo.insertOauthToken(this.db, {
      tokenHash: sha256(accessToken),
      clientId,
      accountId: client.account_id,
      expiresAt: new Date(now.getTime() + this.settings.oauthTokenTtlSeconds * 1000),
    });
    return { access_token: accessToken, token_type: 'Bearer' as const, expires_in: this.settings.oauthTokenTtlSeconds };
  }

  async verifyBearer(token: string): Promise<Principal> {
    const tokenHash = sha256(token);
    const row = await repo.findOauthToken(this.db, tokenHash);
    if (!row || row.revoked_at || row.expires_at <= this.clock.now()) throw authErrors.invalidToken();
    return { accountId: row.account_id, login: row.login, credentialId: null, bearerTokenHash: tokenHash };
  }

  /** `POST /auth/logout` with a bearer token: the token stops working at once. */
  async revokeBearer(tokenHash: Buffer): Promise<void> {
    await repo.deleteOauthToken(this.db, tokenHash);
  }

  /** Operator command: the client gets no new token, and its live tokens stop working. */
  async revokeOauthClient(clientId: string): Promise<{ clientId: string; revoked: boolean }> {
    const client = await repo.findOauthClient(this.db, clientId);
    if (!client) throw notFound(`OAuth2 client ${clientId} does not exist`);
    const revoked = await repo.revokeOauthClient(this.db, clientId, this.clock.now());
    return { clientId, revoked };
  }

  /** Operator command: the application's signed calls and consumer-key requests are refused from now on. */
  async revokeApplication(applicationKey: string): Promise<{ applicationKey: string; revoked: boolean }> {
    const app = await repo.findApplicationByKey(this.db, applicationKey);
    if (!app) throw notFound(`Application ${applicationKey} does not exist`);
    const revoked = await repo.revokeApplication(this.db, app.application_id, this.clock.now());
    return { applicationKey, revoked };
  }
}

/**
 * A redirection is sent back in a `Location` header, which takes printable ASCII only: anything else made the reply
 * fail outside the app's error handler once the key was already validated. Refused here, when it is asked for.
 */
function redirectionUrl(text: string): string {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:') || !/^[\x21-\x7e]+$/.test(text)) {
    throw invalidField('redirection', 'must be an http or https URL written in ASCII (percent-encode anything else)');
  }
  return text;
}

function isIpBlock(text: string): boolean {
  try {
    if (text.includes('/')) ipaddr.parseCIDR(text);
    else ipaddr.parse(text);
    return true;
  } catch {
    return false;
  }
}

function ipInBlock(ip: string, block: string): boolean {
  try {
    let addr = ipaddr.parse(ip);
    if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) addr = (addr as ipaddr.IPv6).toIPv4Address();
    const range = block.includes('/')
      ? ipaddr.parseCIDR(block)
      : ([ipaddr.parse(block), addr.kind() === 'ipv4' ? 32 : 128] as const);
    return addr.kind() === range[0].kind() && addr.match(range as [ipaddr.IPv4 | ipaddr.IPv6, number]);
  } catch {
    return false;
  }
}
