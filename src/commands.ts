import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Kysely } from 'kysely';
import { VALIDITIES, type Validity } from './features/ovh-auth/service.js';
import type { AppServices } from './composition.js';
import { MIN_AUDIT_DAYS, type Config } from './config.js';
import type { Database } from './db/types.js';
import { ApiError } from './http/errors.js';
import { newMasterKeyText, type SecretBox } from './security/secret-box.js';
import { randomAlphanumeric } from './security/tokens.js';
import { rotateKeys } from './features/keys/repository.js';
import type { ControlReply } from './control-socket.js';

/*
 * The operator's commands, in one table shared by the CLI (src/cli.ts), which runs them on its own database, and by
 * the server (src/control-socket.ts), which runs them for the CLI while it holds the embedded database.
 */

export const USAGE = `Usage: npm run cli -- <command>

Commands:
  migrate                                         apply pending database migrations
  service create <serviceName> --account <login> [--description <text>]
                                                  create a service (and its account if new)
  account create <login> [--password-stdin]       create an account; without a password on stdin, a random one is
                                                  made and printed once
  account password <login>                        set an account's password, read from stdin
  app create --account <login> [--name <name>]    create an OVH application: {applicationKey, applicationSecret}
  credential validate <consumerKey|-> [--validity 1h|1d|30d|unlimited] [--account <login>]
                                                  validate a pending consumer key as an operator (audited); with -,
                                                  the key is read from stdin, out of the process list
  oauth-client create --account <login> [--name <name>]
                                                  create an OAuth2 client: {clientId, clientSecret}
  oauth-client revoke <clientId>                  revoke an OAuth2 client and its live tokens
  app revoke <applicationKey>                     revoke an application: its signed calls are refused from now on
  user unlock <serviceName> <userName>            clear a user's failed-login count (lockout)
  operation approve <serviceName> <operationId>   approve a pending operation without its token: the way out when no
                                                  token validator can be reached (advancedSecurity fails closed)
  ip unlock <address>                             clear the failed-login count of a client address (its /64 for IPv6)
  audit purge --older-than-days <N>               delete audit events older than N days (at least 30); the purge is
                                                  itself recorded (audit.purged). With AUDIT_RETENTION_DAYS unset, the
                                                  only way events are ever deleted
  keys new                                        print a new SECRET_KEYS entry (no database needed)
  keys rotate                                     re-seal stored secrets with the first key of SECRET_KEYS
  dev-cert [--out <dir>]                          write a self-signed cert.pem and key.pem (default ./certs)

Every command prints JSON on stdout. The embedded database is one process's at a time: while the server runs on it,
the CLI hands each command to the server (DATA_DIR/control.sock), which runs it. With DATABASE_URL the CLI connects
to PostgreSQL itself.
`;

/** What a command runs with: the CLI's own database and services, or, handed over the control socket, the server's. */
export interface CommandContext {
  db: Kysely<Database>;
  config: Config;
  app: AppServices;
  /** The keys that seal stored secrets: the server's own when the server runs the command. */
  box: SecretBox;
  args: string[];
  /** The command's standard input (a password): the CLI's, read by the CLI and sent along to the server. */
  stdin: () => Promise<string>;
}
type Command =
  | { needsDb: false; run: (args: string[]) => Promise<unknown> }
  | {
      needsDb?: true;
      run: (ctx: CommandContext) => Promise<unknown>;
      /** Whether the command reads standard input with these arguments (the CLI reads it before handing it over). */
      readsStdin?: (args: string[]) => boolean;
    };

export class UsageError extends Error {}

/** Who the audit log names for a CLI command. */
const OPERATOR = { login: 'operator', ip: null };

const parse = <T extends Record<string, { type: 'string' | 'boolean' }>>(args: string[], options: T) =>
  parseArgs({ args, allowPositionals: true, options, strict: true });

/** This process's standard input, for a password: refused from a terminal, where it would be echoed. */
export async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) throw new UsageError('the secret is read from standard input: pipe it in');
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
    readsStdin: (args) => args.includes('--password-stdin'),
    run: async ({ args, app: { services, auth }, stdin }) => {
      const { values, positionals } = parse(args, { 'password-stdin': { type: 'boolean' } });
      const [login] = positionals;
      if (!login) throw new UsageError('account create needs <login>');
      const generated = !values['password-stdin'];
      const password = generated ? randomAlphanumeric(20) : await stdin();
      await services.ensureAccount(login);
      await auth.setPassword(login, password);
      return generated ? { login, password } : { login };
    },
  },
  'account password': {
    readsStdin: () => true,
    run: async ({ args, app: { auth }, stdin }) => {
      const [login] = parse(args, {}).positionals;
      if (!login) throw new UsageError('account password needs <login>');
      await auth.setPassword(login, await stdin());
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
    // `-`: the key from standard input, not on the command line, where other local users can read it (`ps`).
    readsStdin: (args) => args.includes('-'),
    run: async ({ args, app: { auth }, stdin }) => {
      const { values, positionals } = parse(args, { validity: { type: 'string' }, account: { type: 'string' } });
      const [given] = positionals;
      if (positionals.length > 1) throw new UsageError('credential validate takes one <consumerKey>, or - for stdin');
      const consumerKey = given === '-' ? (await stdin()).trim() : given;
      if (!consumerKey) throw new UsageError('credential validate needs <consumerKey>, or - to read it from stdin');
      const validity = (values.validity ?? 'unlimited') as Validity;
      if (!(validity in VALIDITIES)) throw new UsageError(`--validity is one of ${Object.keys(VALIDITIES).join(', ')}`);
      return auth.validateByOperator(consumerKey, validity, values.account, OPERATOR);
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
  'keys rotate': { run: async ({ db, box }) => rotateKeys(db, box) },
  'dev-cert': {
    needsDb: false,
    run: async (args) => {
      const { values } = parse(args, { out: { type: 'string' } });
      const dir = path.resolve(values.out ?? 'certs');
      fs.mkdirSync(dir, { recursive: true });
      // Loaded here only: the certificate library and its ASN.1 modules weigh ~10 MB in every server otherwise.
      const { writeDevCert } = await import('./dev-cert.js');
      return writeDevCert(dir);
    },
  },
};

/** The command an argument list names (`user unlock …`, `migrate`), with its own arguments. */
export function findCommand(argv: string[]): { name: string; command: Command; args: string[] } | undefined {
  const name = [argv.slice(0, 2).join(' '), argv[0] ?? ''].find((n) => Object.hasOwn(commands, n));
  if (!name) return undefined;
  return { name, command: commands[name]!, args: argv.slice(name.split(' ').length) };
}

/** An expected failure of a command and its exit code: 64 for a usage error, 65 for refused input. */
export function commandFailure(err: unknown): { exitCode: 64 | 65; message: string; usage: boolean } | undefined {
  if (err instanceof UsageError) return { exitCode: 64, message: err.message, usage: true };
  const code = (err as { code?: string }).code ?? '';
  if (err instanceof ApiError || code.startsWith('ERR_PARSE_ARGS')) {
    return { exitCode: 65, message: (err as Error).message, usage: false };
  }
  return undefined;
}

/**
 * Runs a command the CLI handed over the control socket, in the server, on the server's database, services and keys.
 * Commands that need no database (`keys new`, `dev-cert`) run in the CLI itself and are refused here.
 */
export async function runHandedCommand(
  argv: string[],
  stdin: string | null,
  base: Omit<CommandContext, 'args' | 'stdin'>,
): Promise<ControlReply> {
  const found = findCommand(argv);
  if (!found) return { exitCode: 64, error: `unknown command: ${argv.slice(0, 2).join(' ')}`, usage: true };
  const { command, args } = found;
  if (command.needsDb === false) return { exitCode: 64, error: `${found.name} runs in the CLI, not in the server`, usage: true };
  const input = async () => {
    if (stdin === null) throw new UsageError('the secret is read from standard input: pipe it in');
    return stdin;
  };
  try {
    return { exitCode: 0, result: await command.run({ ...base, args, stdin: input }) };
  } catch (err) {
    const failure = commandFailure(err);
    if (failure) return { exitCode: failure.exitCode, error: failure.message, usage: failure.usage };
    return { exitCode: 1, error: err instanceof Error ? err.message : String(err) };
  }
}
