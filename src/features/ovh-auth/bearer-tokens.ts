import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.js';
import type { Database } from '../../db/types.js';
import type { TtlCache } from '../../core/ttl-cache.js';
import { authErrors } from '../../http/ovh-auth-error.js';
import type { Principal } from '../../http/types.js';
import { constantTimeEqual, randomAlphanumeric, sha256 } from '../../security/tokens.js';
import * as repo from './repository.js';

/** A live bearer token as read: whose it is and when it expires. */
export interface BearerEntry {
  accountId: number;
  login: string;
  expiresAt: Date;
}

/** OAuth2 client credentials (RFC 6749 §4.4): bearer tokens for Swagger UI and curl, stored as hashes only. */
export class BearerTokenService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly clock: Clock,
    private readonly settings: { oauthTokenTtlSeconds: number },
    private readonly cache: TtlCache<BearerEntry>,
  ) {}

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
  /** One indexed lookup, or none while `cache` holds the token (at most AUTH_CACHE_MS); its expiry checked every call. */
  async verifyBearer(token: string): Promise<Principal> {
    const tokenHash = sha256(token);
    const key = tokenHash.toString('hex');
    const row = await this.cache.getOrLoad(key, async () => {
      const found = await repo.findOauthToken(this.db, tokenHash);
      if (!found || found.revoked_at) throw authErrors.invalidToken();
      return { accountId: found.account_id, login: found.login, expiresAt: found.expires_at };
    });
    if (row.expiresAt <= this.clock.now()) throw authErrors.invalidToken();
    return { accountId: row.accountId, login: row.login, credentialId: null, bearerTokenHash: tokenHash };
  }
  /** `POST /auth/logout` with a bearer token: the token stops working at once. */
  async revokeBearer(tokenHash: Buffer): Promise<void> {
    await repo.deleteOauthToken(this.db, tokenHash);
  }
}
