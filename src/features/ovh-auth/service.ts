import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.js';
import type { Database } from '../../db/types.js';
import type { Lockout } from '../../security/lockout.js';
import type { SecretBox } from '../../security/secret-box.js';
import type { AuditLog } from '../audit/api.js';
import { AccountService } from './accounts.js';
import { BearerTokenService } from './bearer-tokens.js';
import { ConsumerKeyService } from './consumer-keys.js';
import { SignedCallVerifier } from './signed-calls.js';

export { VALIDITIES, MAX_PENDING_CREDENTIALS, type Validity } from './consumer-keys.js';
export type { SignedCall } from './signed-calls.js';

export interface AuthSettings {
  timeWindowSeconds: number;
  oauthTokenTtlSeconds: number;
  /** How long a consumer key may wait for validation. */
  credentialValidationSeconds: number;
  publicUrl?: string | undefined;
}

/** OVH's authentication: accounts, applications and consumer keys, signed calls, OAuth2 bearer tokens. */
export class AuthService {
  readonly #accounts: AccountService;
  readonly #keys: ConsumerKeyService;
  readonly #signed: SignedCallVerifier;
  readonly #bearer: BearerTokenService;

  constructor(db: Kysely<Database>, box: SecretBox, clock: Clock, settings: AuthSettings, lockout: Lockout, audit: AuditLog) {
    this.#accounts = new AccountService(db, box, clock);
    this.#keys = new ConsumerKeyService(db, clock, settings, this.#accounts, lockout, audit);
    this.#signed = new SignedCallVerifier(db, box, clock, settings);
    this.#bearer = new BearerTokenService(db, clock, settings);
  }

  setPassword: AccountService['setPassword'] = (...a) => this.#accounts.setPassword(...a);
  checkAccountPassword: AccountService['checkAccountPassword'] = (...a) => this.#accounts.checkAccountPassword(...a);
  createApplication: AccountService['createApplication'] = (...a) => this.#accounts.createApplication(...a);
  revokeApplication: AccountService['revokeApplication'] = (...a) => this.#accounts.revokeApplication(...a);
  createOauthClient: AccountService['createOauthClient'] = (...a) => this.#accounts.createOauthClient(...a);
  revokeOauthClient: AccountService['revokeOauthClient'] = (...a) => this.#accounts.revokeOauthClient(...a);
  requestCredential: ConsumerKeyService['requestCredential'] = (...a) => this.#keys.requestCredential(...a);
  pendingValidation: ConsumerKeyService['pendingValidation'] = (...a) => this.#keys.pendingValidation(...a);
  decideValidation: ConsumerKeyService['decideValidation'] = (...a) => this.#keys.decideValidation(...a);
  validateByOperator: ConsumerKeyService['validateByOperator'] = (...a) => this.#keys.validateByOperator(...a);
  describeCredential: ConsumerKeyService['describeCredential'] = (...a) => this.#keys.describeCredential(...a);
  logout: ConsumerKeyService['logout'] = (...a) => this.#keys.logout(...a);
  verifySignedCall: SignedCallVerifier['verifySignedCall'] = (...a) => this.#signed.verifySignedCall(...a);
  issueToken: BearerTokenService['issueToken'] = (...a) => this.#bearer.issueToken(...a);
  verifyBearer: BearerTokenService['verifyBearer'] = (...a) => this.#bearer.verifyBearer(...a);
  revokeBearer: BearerTokenService['revokeBearer'] = (...a) => this.#bearer.revokeBearer(...a);
}
