import type { Kysely } from 'kysely';
import { toOvhDate, type Clock } from '../../clock.js';
import type { AccessRule, CredentialState, Database } from '../../db/types.js';
import { badRequest, invalidField, notFound } from '../../http/errors.js';
import { authErrors } from '../../http/ovh-auth-error.js';
import { attemptKeys, lockEvents, lockKeys, type Lockout } from '../../security/lockout.js';
import { randomAlphanumeric, sha256 } from '../../security/tokens.js';
import ipaddr from 'ipaddr.js';
import type { AuditLog } from '../audit/api.js';
import { MAX_RULE_STARS } from './access-rules.js';
import type { AccountService } from './accounts.js';
import * as repo from './repository.js';

export const VALIDITIES = { '1h': 3600, '1d': 86_400, '30d': 2_592_000, unlimited: null } as const;
export type Validity = keyof typeof VALIDITIES;
/**
 * Most consumer keys one application may have waiting for validation: a request needs only the public key. Beyond it,
 * the oldest waiting ones are deleted.
 */
export const MAX_PENDING_CREDENTIALS = 1000;

/** OVH's consumer keys: asked for by an application, validated by the account holder (or an operator), expired. */
export class ConsumerKeyService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly clock: Clock,
    private readonly settings: { credentialValidationSeconds: number },
    private readonly accounts: AccountService,
    private readonly lockout: Lockout,
    private readonly audit: AuditLog,
  ) {}

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
    const consumerKey = randomAlphanumeric(32);
    const validationToken = randomAlphanumeric(32);
    const now = this.clock.now();
    // At the cap, the application's oldest waiting keys are deleted to make room, instead of the request being refused:
    // the application key is public (every client holds it), and a refusal let anyone who had it stop the application
    // from asking for keys for a day (found by an attack round). Deleted, not expired: the rows stay bounded. Counted
    // and deleted under the application's row lock, through the index of waiting keys (migrations/0022): parallel
    // requests never take it past the cap.
    await this.db.transaction().execute(async (trx) => {
      await repo.lockApplication(trx, app.application_id);
      const pending = await repo.countPendingCredentials(trx, app.application_id, now);
      if (pending >= MAX_PENDING_CREDENTIALS) {
        await repo.deleteOldestPending(trx, app.application_id, now, pending - MAX_PENDING_CREDENTIALS + 1);
      }
      await repo.insertCredential(trx, {
        applicationId: app.application_id,
        consumerKeyHash: sha256(consumerKey),
        validationTokenHash: sha256(validationToken),
        rules: input.accessRules,
        allowedIps,
        redirection,
        validationExpiresAt: new Date(now.getTime() + this.settings.credentialValidationSeconds * 1000),
      });
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
      this.audit.write({ serviceName: null, type, actor: accountLogin?.slice(0, 128) ?? null, ip: input.ip, data });
    // The link first: for an unknown, used or expired one no password is checked and nothing is counted (checked
    // before, a made-up link let anyone without an application key test an account's password: a right one cleared
    // the lockout's failures, which its next answers showed).
    const cred = await this.pendingValidation(input.validationToken);
    if (!cred) {
      await audit('credential.validation.failed', null, { reason: 'expired' });
      return { ok: false, reason: 'expired' };
    }
    const keys = attemptKeys(lockKeys.account(input.login), input.ip);
    const admission = await this.lockout.admit(keys);
    if (!admission.admitted) {
      await audit('credential.validation.locked', input.login, { waitMs: admission.waitMs });
      return { ok: false, reason: 'locked', waitMs: admission.waitMs };
    }
    const account = await this.accounts.checkAccountPassword(input.login, input.password);
    if (!account) {
      await audit('credential.validation.failed', input.login, { reason: 'password', credentialId: cred.credential_id });
      for (const { type, data } of lockEvents(admission)) await audit(type, input.login, data);
      return { ok: false, reason: 'credentials' };
    }
    await this.lockout.succeed(keys, admission);
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
  /**
   * Operator command: validates a pending consumer key for the account that owns its application (or another), and
   * audits it (`credential.validated`, by the operator) in the same transaction.
   */
  async validateByOperator(
    consumerKey: string,
    validity: Validity,
    login?: string,
    actor: { login: string; ip: string | null } = { login: 'operator', ip: null },
  ) {
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
    const now = this.clock.now();
    const expiresAt = this.expiryOf(validity);
    const ok = await this.db.transaction().execute(async (trx) => {
      const decided = await repo.decideCredential(trx, cred.credential_id, { state: 'validated', accountId, now, expiresAt });
      if (decided) {
        await this.audit.record(trx, {
          serviceName: null,
          type: 'credential.validated',
          actor: actor.login,
          ip: actor.ip,
          data: { credentialId: cred.credential_id, applicationId: cred.application_id, accountId, validity, rules: cred.rules },
        });
      }
      return decided;
    });
    if (!ok) throw await this.undecided(cred.credential_id);
    return this.describeCredential(cred.credential_id);
  }

  /** Why a credential pending a moment ago could not be decided: what happened to it meanwhile. */
  private async undecided(credentialId: number) {
    const row = await repo.findCredentialById(this.db, credentialId);
    if (!row) {
      return badRequest(
        `This credential was deleted before it was validated: at ${MAX_PENDING_CREDENTIALS} keys waiting, ` +
          "an application's new request deletes its oldest",
      );
    }
    if (row.state !== 'pendingValidation') return badRequest(`This credential is ${row.state}, not pendingValidation`);
    return badRequest('This credential expired before it was validated');
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
