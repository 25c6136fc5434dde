import type { Kysely } from 'kysely';
import type { Clock } from '../../clock.js';
import type { Database } from '../../db/types.js';
import { invalidField, notFound } from '../../http/errors.js';
import { contexts } from '../../security/contexts.js';
import { hashPassword, verifyPassword } from '../../security/passwords.js';
import type { SecretBox } from '../../security/secret-box.js';
import { randomAlphanumeric, sha256 } from '../../security/tokens.js';
import * as repo from './repository.js';

/** API accounts and what an operator makes for them: passwords, OVH applications, OAuth2 clients, and their revocation. */
export class AccountService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly box: SecretBox,
    private readonly clock: Clock,
  ) {}

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
  /** Operator command: the application's signed calls and consumer-key requests are refused from now on. */
  async revokeApplication(applicationKey: string): Promise<{ applicationKey: string; revoked: boolean }> {
    const app = await repo.findApplicationByKey(this.db, applicationKey);
    if (!app) throw notFound(`Application ${applicationKey} does not exist`);
    const revoked = await repo.revokeApplication(this.db, app.application_id, this.clock.now());
    return { applicationKey, revoked };
  }
  async createOauthClient(login: string, name = ''): Promise<{ clientId: string; clientSecret: string }> {
    const account = await repo.findAccountByLogin(this.db, login);
    if (!account) throw notFound(`Account ${login} does not exist`);
    const clientId = `pcc-${randomAlphanumeric(16)}`;
    const clientSecret = randomAlphanumeric(40);
    await repo.insertOauthClient(this.db, { clientId, accountId: account.account_id, secretHash: sha256(clientSecret), name });
    return { clientId, clientSecret };
  }
  /** Operator command: the client gets no new token, and its live tokens stop working. */
  async revokeOauthClient(clientId: string): Promise<{ clientId: string; revoked: boolean }> {
    const client = await repo.findOauthClient(this.db, clientId);
    if (!client) throw notFound(`OAuth2 client ${clientId} does not exist`);
    const revoked = await repo.revokeOauthClient(this.db, clientId, this.clock.now());
    return { clientId, revoked };
  }
}
