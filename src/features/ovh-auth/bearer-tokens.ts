import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.js';
import type { Database } from '../../db/types.js';
import { authErrors } from '../../http/ovh-auth-error.js';
import type { Principal } from '../../http/types.js';
import { constantTimeEqual, randomAlphanumeric, sha256 } from '../../security/tokens.js';
import * as repo from './repository.js';

/** OAuth2 client credentials (RFC 6749 §4.4): bearer tokens for Swagger UI and curl, stored as hashes only. */
export class BearerTokenService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly clock: Clock,
    private readonly settings: { oauthTokenTtlSeconds: number },
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
}
