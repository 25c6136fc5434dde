import type { Kysely } from 'kysely';
import type { AuthService } from './features/ovh-auth/service.js';
import type { Database } from './db/types.js';
import { countAccounts } from './features/ovh-auth/repository.js';
import type { ServicesService } from './features/services/service.js';
import { randomAlphanumeric } from './security/tokens.js';

export interface DemoSeed {
  login: string;
  password: string;
  serviceName: string;
  clientId: string;
  clientSecret: string;
}

/** On a database with no account yet: a demo account with a password, service `pcc-demo` and an OAuth2 client. */
export async function seedDemo(
  db: Kysely<Database>,
  services: ServicesService,
  auth: AuthService,
): Promise<DemoSeed | undefined> {
  if ((await countAccounts(db)) > 0) return undefined;
  const login = 'demo';
  const password = randomAlphanumeric(20);
  const serviceName = 'pcc-demo';
  await services.create(serviceName, login, 'Demo service made at first start');
  await auth.setPassword(login, password);
  const { clientId, clientSecret } = await auth.createOauthClient(login, 'demo');
  return { login, password, serviceName, clientId, clientSecret };
}

export function demoBanner(seed: DemoSeed, baseUrl: string): string {
  const token = `curl -s -X POST ${baseUrl}/1.0/auth/oauth2/token -d grant_type=client_credentials -d client_id=${seed.clientId} -d client_secret=${seed.clientSecret}`;
  return `
================================ pcc-2fa: first start ================================
Made on this empty embedded database (shown this once, not logged; keep it):
  account   ${seed.login}  password ${seed.password}   (validates consumer keys at their validationUrl)
  service   ${seed.serviceName}
  OAuth2    client_id ${seed.clientId}  client_secret ${seed.clientSecret}
Swagger UI: ${baseUrl}/docs  (Authorize with the OAuth2 client above)
With curl:
  TOKEN=$(${token} | node -pe 'JSON.parse(require("fs").readFileSync(0)).access_token')
  curl -s -H "Authorization: Bearer $TOKEN" ${baseUrl}/1.0/dedicatedCloud/${seed.serviceName}/twoFAWhitelist
=======================================================================================
`;
}
