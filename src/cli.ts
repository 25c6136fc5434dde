import { parseArgs } from 'node:util';
import { publicUrlOf } from './app.js';
import { loadConfig, type Config } from './config.js';
import type { DatabaseHandle } from './db/database.js';
import { ApiError } from './http/errors.js';
import { createLogger } from './logger.js';
import { ServicesService } from './modules/services/service.js';
import { openMigratedDatabase } from './runtime.js';

const USAGE = `Usage: npm run cli -- <command>

Commands:
  migrate                                   apply pending database migrations
  service create <serviceName> --account <login> [--description <text>]
                                            create a service (and its account if new); prints JSON
`;

type Command = (handle: DatabaseHandle, config: Config, args: string[]) => Promise<unknown>;

const commands: Record<string, Command> = {
  migrate: async () => ({ migrated: true }),
  'service create': async (handle, config, args) => {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { account: { type: 'string' }, description: { type: 'string' } },
    });
    const [serviceName] = positionals;
    if (!serviceName || !values.account) throw new UsageError('service create needs <serviceName> and --account <login>');
    const services = new ServicesService(handle.db, publicUrlOf(config));
    const { created, service } = await services.create(serviceName, values.account, values.description ?? '');
    return { created, account: values.account, ...services.toDto(service) };
  },
};

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const name = [argv.slice(0, 2).join(' '), argv[0] ?? ''].find((n) => n in commands);
  if (!name) {
    process.stderr.write(USAGE);
    return argv.length === 0 || argv[0] === 'help' || argv[0] === '--help' ? 0 : 64;
  }
  const config = loadConfig();
  // Logs go to stderr so that stdout stays pure JSON for scripts.
  const log = createLogger(config.LOG_LEVEL === 'info' ? 'warn' : config.LOG_LEVEL, true);
  const handle = await openMigratedDatabase(config, log);
  try {
    const result = await commands[name]!(handle, config, argv.slice(name.split(' ').length));
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n\n${USAGE}`);
      return 64;
    }
    if (err instanceof ApiError || (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      process.stderr.write(`${(err as Error).message}\n`);
      return 65;
    }
    throw err;
  } finally {
    await handle.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
