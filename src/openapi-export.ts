import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildApp } from './app.js';
import { loadConfig } from './config.js';
import { openDatabase } from './db/database.js';
import { SecretBox } from './security/secret-box.js';
import { randomBytes } from 'node:crypto';

/**
 * Writes the OpenAPI document the code generates to openapi/openapi.json, or with `--check` fails when the committed
 * file differs from it. The document does not depend on the environment: it is built with the default settings.
 */
export const OPENAPI_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../openapi/openapi.json');

export async function generateOpenApi(): Promise<string> {
  // Building the routes runs no query: a pg pool that is never asked for a connection never opens one.
  const handle = await openDatabase({ databaseUrl: 'postgres://openapi.invalid/none' });
  try {
    const secretBox = new SecretBox([{ id: 'openapi', key: randomBytes(32) }]);
    const app = await buildApp({ handle, config: loadConfig({}), secretBox });
    await app.ready();
    const text = `${JSON.stringify(app.swagger(), null, 2)}\n`;
    await app.close();
    return text;
  } finally {
    await handle.close();
  }
}

async function main(): Promise<number> {
  const generated = await generateOpenApi();
  if (process.argv.includes('--check')) {
    const committed = fs.existsSync(OPENAPI_FILE) ? fs.readFileSync(OPENAPI_FILE, 'utf8') : '';
    if (committed !== generated) {
      process.stderr.write('openapi/openapi.json is out of date: run `npm run openapi` and commit the result.\n');
      return 1;
    }
    process.stdout.write('openapi/openapi.json is up to date\n');
    return 0;
  }
  fs.mkdirSync(path.dirname(OPENAPI_FILE), { recursive: true });
  fs.writeFileSync(OPENAPI_FILE, generated);
  process.stdout.write(`wrote ${path.relative(process.cwd(), OPENAPI_FILE)}\n`);
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`${String(err)}\n`);
      process.exit(1);
    },
  );
}
