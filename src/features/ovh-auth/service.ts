import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.js';
import type { Database } from '../../db/types.js';
import type { Lockout } from '../../security/lockout.js';
import type { SecretBox } from '../../security/secret-box.js';
import type { AuditLog } from '../audit/api.js';
import { AccountService } from './accounts.js';
import { BearerTokenService, type BearerEntry } from './bearer-tokens.js';
import { TtlCache } from '../../core/ttl-cache.js';
import { ConsumerKeyService } from './consumer-keys.js';
import { SignedCallVerifier, type SigningEntry } from './signed-calls.js';

export { VALIDITIES, MAX_PENDING_CREDENTIALS, type Validity } from './consumer-keys.js';
export type { SignedCall } from './signed-calls.js';

export interface AuthSettings {
  timeWindowSeconds: number;
  oauthTokenTtlSeconds: number;
  /** How long a consumer key may wait for validation. */
  credentialValidationSeconds: number;
  publicUrl?: string | undefined;
  /** AUTH_CACHE_MS: how long a credential or token read is trusted by this instance. */
  cacheMs: number;
}

/** OVH's authentication: accounts, applications and consumer keys, signed calls, OAuth2 bearer tokens. */
export class AuthService {
  readonly #accounts: AccountService;
  readonly #keys: ConsumerKeyService;
  readonly #signed: SignedCallVerifier;
  readonly #bearer: BearerTokenService;

  /** What this instance read of credentials and tokens; cleared by every revocation made here (others wait AUTH_CACHE_MS). */
  readonly #signing: TtlCache<SigningEntry>;
  readonly #tokens: TtlCache<BearerEntry>;

  constructor(db: Kysely<Database>, box: SecretBox, clock: Clock, settings: AuthSettings, lockout: Lockout, audit: AuditLog) {
    this.#signing = new TtlCache(clock, settings.cacheMs);
    this.#tokens = new TtlCache(clock, settings.cacheMs);
    this.#accounts = new AccountService(db, box, clock);
    this.#keys = new ConsumerKeyService(db, clock, settings, this.#accounts, lockout, audit);
    this.#signed = new SignedCallVerifier(db, box, clock, settings, this.#signing);
    this.#bearer = new BearerTokenService(db, clock, settings, this.#tokens);
  }

  /** After a revocation here: this instance refuses at once what it had cached. */
  #revoked = <T>(result: T): T => {
    this.#signing.clear();
    this.#tokens.clear();
    return result;
  };

  setPassword: AccountService['setPassword'] = (...a) => this.#accounts.setPassword(...a);
  checkAccountPassword: AccountService['checkAccountPassword'] = (...a) => this.#accounts.checkAccountPassword(...a);
  createApplication: AccountService['createApplication'] = (...a) => this.#accounts.createApplication(...a);
  revokeApplication: AccountService['revokeApplication'] = async (...a) =>
    this.#revoked(await this.#accounts.revokeApplication(...a));
  createOauthClient: AccountService['createOauthClient'] = (...a) => this.#accounts.createOauthClient(...a);
  revokeOauthClient: AccountService['revokeOauthClient'] = async (...a) =>
    this.#revoked(await this.#accounts.revokeOauthClient(...a));
  requestCredential: ConsumerKeyService['requestCredential'] = (...a) => this.#keys.requestCredential(...a);
  pendingValidation: ConsumerKeyService['pendingValidation'] = (...a) => this.#keys.pendingValidation(...a);
  decideValidation: ConsumerKeyService['decideValidation'] = (...a) => this.#keys.decideValidation(...a);
  validateByOperator: ConsumerKeyService['validateByOperator'] = (...a) => this.#keys.validateByOperator(...a);
  describeCredential: ConsumerKeyService['describeCredential'] = (...a) => this.#keys.describeCredential(...a);
  logout: ConsumerKeyService['logout'] = async (...a) => this.#revoked(await this.#keys.logout(...a));
  verifySignedCall: SignedCallVerifier['verifySignedCall'] = (...a) => this.#signed.verifySignedCall(...a);
  issueToken: BearerTokenService['issueToken'] = (...a) => this.#bearer.issueToken(...a);
  verifyBearer: BearerTokenService['verifyBearer'] = (...a) => this.#bearer.verifyBearer(...a);
  revokeBearer: BearerTokenService['revokeBearer'] = async (...a) => this.#revoked(await this.#bearer.revokeBearer(...a));
}
