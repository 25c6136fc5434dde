import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { VALIDITIES, type Validity } from './features/ovh-auth/service.js';
import { buildServices, type AppServices } from './composition.js';
import { systemClock } from './clock.js';
import { loadConfig, type Config } from './config.js';
import type { DatabaseHandle } from './db/database.js';
import { ApiError } from './http/errors.js';
import { createLogger } from './logger.js';
import { openMigratedDatabase, secretBoxFor } from './runtime.js';
import { newMasterKeyText } from './security/secret-box.js';
import { randomAlphanumeric } from './security/tokens.js';
import { writeDevCert } from './dev-cert.js';
import { rotateKeys } from './features/keys/repository.js';

const USAGE = `Usage: npm run cli -- <command>

Commands:
  migrate                                         apply pending database migrations
  service create <serviceName> --account <login> [--description <text>]
                                                  create a service (and its account if new)
  account create <login> [--password-stdin]       create an account; without a password on stdin, a random one is
                                                  made and printed once
  account password <login>                        set an account's password, read from stdin
  app create --account <login> [--name <name>]    create an OVH application: {applicationKey, applicationSecret}
  credential validate <consumerKey> [--validity 1h|1d|30d|unlimited] [--account <login>]
                                                  validate a pending consumer key as an operator
  oauth-client create --account <login> [--name <name>]
                                                  create an OAuth2 client: {clientId, clientSecret}
  oauth-client revoke <clientId>                  revoke an OAuth2 client and its live tokens
  app revoke <applicationKey>                     revoke an application: its signed calls are refused from now on
  user unlock <serviceName> <userName>            clear a user's failed-login count (lockout)
  operation approve <serviceName> <operationId>   approve a pending operation without its token: the way out when no
                                                  token validator can be reached (advancedSecurity fails closed)
  ip unlock <address>                             clear the failed-login count of a client address (its /64 for IPv6)
  audit purge --older-than-days <N>               delete audit events older than N days (at least 30); the purge is
                                                  itself recorded (audit.purged). The only way events are ever deleted
  keys new                                        print a new SECRET_KEYS entry (no database needed)
  keys rotate                                     re-seal stored secrets with the first key of SECRET_KEYS
  dev-cert [--out <dir>]                          write a self-signed cert.pem and key.pem (default ./certs)

Every command prints JSON on stdout. The embedded database is one process's at a time: stop the server first, or
use DATABASE_URL.
`;

interface Ctx {
  handle: DatabaseHandle;
  config: Config;
  args: string[];
  app: AppServices;
}
type Command =
  { needsDb: false; run: (args: string[]) => Promise<unknown> } | { needsDb?: true; run: (ctx: Ctx) => Promise<unknown> };

class UsageError extends Error {}

/** An audit purge keeps at least this many days of events. */
const MIN_AUDIT_DAYS = 30;

/** Who the audit log names for a CLI command. */
const OPERATOR = { login: 'operator', ip: null };

const parse = <T extends Record<string, { type: 'string' | 'boolean' }>>(args: string[], options: T) =>
  parseArgs({ args, allowPositionals: true, options, strict: true });

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) throw new UsageError('the password is read from standard input: pipe it in');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

const commands: Record<string, Command> = {
  migrate: { run: async () => ({ migrated: true }) },
  'service create': {
    run: async ({ args, app: { services } }) => {
      const { values, positionals } = parse(args, { account: { type: 'string' }, description: { type: 'string' } });
      const [serviceName] = positionals;
      if (!serviceName || !values.account) throw new UsageError('service create needs <serviceName> and --account <login>');
      const { created, service } = await services.create(serviceName, values.account, values.description ?? '');
      return { created, account: values.account, ...services.toDto(service) };
    },
  },
  'account create': {
    run: async ({ args, app: { services, auth } }) => {
      const { values, positionals } = parse(args, { 'password-stdin': { type: 'boolean' } });
      const [login] = positionals;
      if (!login) throw new UsageError('account create needs <login>');
      const generated = !values['password-stdin'];
      const password = generated ? randomAlphanumeric(20) : await readStdin();
      await services.ensureAccount(login);
      await auth.setPassword(login, password);
      return generated ? { login, password } : { login };
    },
  },
  'account password': {
    run: async ({ args, app: { auth } }) => {
      const [login] = parse(args, {}).positionals;
      if (!login) throw new UsageError('account password needs <login>');
      await auth.setPassword(login, await readStdin());
      return { login, passwordChanged: true };
    },
  },
  'app create': {
    run: async ({ args, app: { auth } }) => {
      const { values } = parse(args, { account: { type: 'string' }, name: { type: 'string' } });
      if (!values.account) throw new UsageError('app create needs --account <login>');
      return auth.createApplication(values.account, values.name ?? '');
    },
  },
  'credential validate': {
    run: async ({ args, app: { auth } }) => {
      const { values, positionals } = parse(args, { validity: { type: 'string' }, account: { type: 'string' } });
      const [consumerKey] = positionals;
      if (!consumerKey) throw new UsageError('credential validate needs <consumerKey>');
      const validity = (values.validity ?? 'unlimited') as Validity;
      if (!(validity in VALIDITIES)) throw new UsageError(`--validity is one of ${Object.keys(VALIDITIES).join(', ')}`);
      return auth.validateByOperator(consumerKey, validity, values.account);
    },
  },
  'oauth-client create': {
    run: async ({ args, app: { auth } }) => {
      const { values } = parse(args, { account: { type: 'string' }, name: { type: 'string' } });
      if (!values.account) throw new UsageError('oauth-client create needs --account <login>');
      return auth.createOauthClient(values.account, values.name ?? '');
    },
  },
  'oauth-client revoke': {
    run: async ({ args, app: { auth } }) => {
      const [clientId] = parse(args, {}).positionals;
      if (!clientId) throw new UsageError('oauth-client revoke needs <clientId>');
      return auth.revokeOauthClient(clientId);
    },
  },
  'app revoke': {
    run: async ({ args, app: { auth } }) => {
      const [applicationKey] = parse(args, {}).positionals;
      if (!applicationKey) throw new UsageError('app revoke needs <applicationKey>');
      return auth.revokeApplication(applicationKey);
    },
  },
  'user unlock': {
    run: async ({ args, app }) => {
      const [serviceName, userName] = parse(args, {}).positionals;
      if (!serviceName || !userName) throw new UsageError('user unlock needs <serviceName> <userName>');
      return app.secure.unlockUser(serviceName, userName, OPERATOR);
    },
  },
  'ip unlock': {
    run: async ({ args, app }) => {
      const [text] = parse(args, {}).positionals;
      if (!text) throw new UsageError('ip unlock needs an IPv4 or IPv6 <address>');
      return app.secure.unlockAddress(text, OPERATOR);
    },
  },
  'audit purge': {
    run: async ({ args, app }) => {
      const { values } = parse(args, { 'older-than-days': { type: 'string' } });
      const days = Number(values['older-than-days']);
      if (!Number.isInteger(days) || days < MIN_AUDIT_DAYS) {
        throw new UsageError(`audit purge needs --older-than-days <N>, a whole number of at least ${MIN_AUDIT_DAYS}`);
      }
      const before = new Date(Date.now() - days * 86_400_000);
      return { before: before.toISOString(), deleted: await app.audit.purge(before, OPERATOR.login) };
    },
  },
  'operation approve': {
    run: async ({ args, app }) => {
      const [serviceName, idText] = parse(args, {}).positionals;
      const operationId = Number(idText);
      if (!serviceName || !Number.isSafeInteger(operationId) || operationId < 1) {
        throw new UsageError('operation approve needs <serviceName> <operationId>');
      }
      const op = await app.operations.approveByOperator(serviceName, operationId);
      return { serviceName, operationId, state: op.state, taskId: op.task_id };
    },
  },
  'keys new': { needsDb: false, run: async () => ({ SECRET_KEYS: newMasterKeyText() }) },
  'keys rotate': { run: async ({ handle, config }) => rotateKeys(handle.db, secretBoxFor(config, createLogger('warn', true))) },
  'dev-cert': {
    needsDb: false,
    run: async (args) => {
      const { values } = parse(args, { out: { type: 'string' } });
      const dir = path.resolve(values.out ?? 'certs');
      fs.mkdirSync(dir, { recursive: true });
      return writeDevCert(dir);
    },
  },
};

async function main(argv: string[]): Promise<number> {
  const name = [argv.slice(0, 2).join(' '), argv[0] ?? ''].find((n) => n in commands);
  if (!name) {
    process.stderr.write(USAGE);
    return argv.length === 0 || argv[0] === 'help' || argv[0] === '--help' ? 0 : 64;
  }
  const command = commands[name]!;
  const args = argv.slice(name.split(' ').length);
  let handle: DatabaseHandle | undefined;
  try {
    let result: unknown;
    if (command.needsDb === false) {
      result = await command.run(args);
    } else {
      const config = loadConfig();
      // Logs go to stderr so that stdout stays pure JSON for scripts.
      const log = createLogger(config.LOG_LEVEL === 'info' ? 'warn' : config.LOG_LEVEL, true);
      handle = await openMigratedDatabase(config, log);
      const app = buildServices({ db: handle.db, box: secretBoxFor(config, log), clock: systemClock, config });
      result = await command.run({ handle, config, args, app });
    }
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n\n${USAGE}`);
      return 64;
    }
    const code = (err as { code?: string }).code ?? '';
    if (err instanceof ApiError || code.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`${(err as Error).message}\n`);
      return 65;
    }
    throw err;
  } finally {
    await handle?.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
