import fs from 'node:fs';
import t from 'tap';
import { loadConfig, startupWarnings } from '../src/config.js';
import { HUGE_PAGES_SETTING, PRODUCTION_COST, hashPassword, hashingWarnings } from '../src/security/passwords.js';

const rejection = (env: Record<string, string>): string => {
  try {
    loadConfig(env);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
};

t.test('an empty environment gives the documented defaults', async (t) => {
  const config = loadConfig({});
  t.match(config, {
    PORT: 3000,
    HOST: '127.0.0.1',
    DATA_DIR: './data',
    LOG_LEVEL: 'info',
    BODY_LIMIT: 65_536,
    TASK_LEASE_SECONDS: 60,
    TASK_POLL_MS: 2000,
    WORKER_ENABLED: true,
    TRUSTED_PROXIES: '',
    RATE_LIMIT_PER_MINUTE: 1200,
    USER_SESSIONS_MAX: 10,
    API_PASSWORD_CHANGES_PER_MINUTE: 30,
    WHITELIST_MAX_ENTRIES: 256,
    WHITELIST_MIN_PREFIX_V4: 24,
    WHITELIST_MIN_PREFIX_V6: 48,
    SHUTDOWN_TIMEOUT_MS: 25_000,
  });
  t.equal(config.DATABASE_URL, undefined, 'the embedded database unless a URL is set');
  t.equal(config.PUBLIC_URL, undefined);
});

t.test("passwords are hashed at OWASP's argon2id cost unless the configuration says otherwise", async (t) => {
  const config = loadConfig({});
  t.strictSame(
    { memoryKib: config.ARGON2_MEMORY_KIB, iterations: config.ARGON2_ITERATIONS, parallelism: config.ARGON2_PARALLELISM },
    PRODUCTION_COST,
  );
  t.strictSame(PRODUCTION_COST, { memoryKib: 19_456, iterations: 2, parallelism: 1 }, '19 MiB, 2 passes, 1 lane');
  const hashed = await hashPassword('correct horse battery staple');
  t.match(hashed, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/, 'a hash made with the defaults carries that cost');
  t.match(rejection({ ARGON2_MEMORY_KIB: '8', ARGON2_PARALLELISM: '2' }), /at least 8 KiB per lane/);
});

t.test('a host without transparent huge pages is warned about: argon2id costs 4 times more there', async (t) => {
  const host = (setting: string | Error) => (path: string) => {
    t.equal(path, HUGE_PAGES_SETTING);
    if (setting instanceof Error) throw setting;
    return `${setting}\n`;
  };
  t.match(hashingWarnings(host('always madvise [never]')), [/transparent huge pages are off.*set it to madvise/]);
  t.strictSame(hashingWarnings(host('always [madvise] never')), []);
  t.strictSame(hashingWarnings(host('[always] madvise never')), []);
  t.strictSame(hashingWarnings(host(Object.assign(new Error('ENOENT'), { code: 'ENOENT' }))), [], 'not Linux: nothing to say');
  // The default reader reads this host's setting (none where there is no such file).
  let here: string | undefined;
  try {
    here = fs.readFileSync(HUGE_PAGES_SETTING, 'utf8');
  } catch {
    here = undefined;
  }
  t.equal(hashingWarnings().length, here?.includes('[never]') ? 1 : 0, `this host: ${here?.trim() ?? 'no such setting'}`);
});

t.test('DATABASE_POOL_SIZE: 10 by default, and a warning when the worker could take every connection', async (t) => {
  const pg = {
    DATABASE_URL: 'postgres://db.example/pcc',
    SECRET_KEYS: `k1:${Buffer.alloc(32, 1).toString('base64')}`,
    SMS_PROVIDER: 'log',
  };
  t.equal(loadConfig({}).DATABASE_POOL_SIZE, 10);
  t.equal(loadConfig({ ...pg, DATABASE_POOL_SIZE: '2', TASK_CONCURRENCY: '1' }).DATABASE_POOL_SIZE, 2);
  t.strictSame(startupWarnings(loadConfig({ ...pg, DATABASE_POOL_SIZE: '2', TASK_CONCURRENCY: '1' })), []);
  t.match(startupWarnings(loadConfig({ ...pg, DATABASE_POOL_SIZE: '4' })), [
    /DATABASE_POOL_SIZE \(4\) is not above TASK_CONCURRENCY \(4\)/,
  ]);
  t.strictSame(startupWarnings(loadConfig({ ...pg, DATABASE_POOL_SIZE: '4', WORKER_ENABLED: 'false' })), [], 'no worker');
  t.strictSame(startupWarnings(loadConfig({ DATABASE_POOL_SIZE: '1' })), [], 'the embedded database has no pool');
  t.match(rejection({ DATABASE_POOL_SIZE: '0' }), /DATABASE_POOL_SIZE/);
});

t.test('numbers are read from their text', async (t) => {
  const config = loadConfig({ PORT: '8080', WHITELIST_MAX_ENTRIES: '10', TASK_LEASE_SECONDS: '5' });
  t.strictSame([config.PORT, config.WHITELIST_MAX_ENTRIES, config.TASK_LEASE_SECONDS], [8080, 10, 5]);
});

t.test('an empty variable counts as unset', async (t) => {
  t.equal(loadConfig({ PORT: '', LOG_LEVEL: '' }).PORT, 3000);
});

t.test('variables the service does not know are ignored', async (t) => {
  t.notOk('HOME' in loadConfig({ HOME: '/root', PATH: '/bin' }));
});

for (const port of ['http', '70000', '-1']) {
  t.test(`PORT=${port} is rejected with a message naming PORT`, async (t) => {
    t.match(rejection({ PORT: port }), /^Invalid configuration:\n {2}PORT: /);
  });
}

// TypeBox's Value.Convert alone would truncate: PORT=80.5 would become 80 and PORT=1e3 would become 1.
for (const port of ['80.5', '1e3', '0x50']) {
  t.test(`PORT=${port} is rejected instead of being truncated`, async (t) => {
    t.match(rejection({ PORT: port }), /PORT: /);
  });
}

for (const level of ['verbose', 'INFO', 'warning']) {
  t.test(`LOG_LEVEL=${level} is rejected with a message naming LOG_LEVEL`, async (t) => {
    t.match(rejection({ LOG_LEVEL: level }), /LOG_LEVEL: /);
  });
}

t.test('each log level pino knows is accepted', async (t) => {
  for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) {
    t.equal(loadConfig({ LOG_LEVEL: level }).LOG_LEVEL, level);
  }
});

for (const url of ['mysql://db/pcc', 'localhost:5432/pcc', 'file:///var/db']) {
  t.test(`DATABASE_URL=${url} is rejected with a message naming DATABASE_URL`, async (t) => {
    t.match(rejection({ DATABASE_URL: url }), /DATABASE_URL: /);
  });
}

t.test('both postgres:// and postgresql:// URLs are accepted', async (t) => {
  t.equal(loadConfig({ DATABASE_URL: 'postgres://u@db/pcc' }).DATABASE_URL, 'postgres://u@db/pcc');
  t.equal(loadConfig({ DATABASE_URL: 'postgresql://u@db/pcc' }).DATABASE_URL, 'postgresql://u@db/pcc');
});

t.test('a rejected value is not echoed in the message (a URL may hold a password)', async (t) => {
  t.notMatch(rejection({ DATABASE_URL: 'mysql://pcc:hunter2@db/pcc' }), /hunter2/);
});

t.test('every bad variable is listed in the one error', async (t) => {
  const message = rejection({ PORT: 'http', LOG_LEVEL: 'verbose', BODY_LIMIT: '1' });
  t.match(message, /PORT: /);
  t.match(message, /LOG_LEVEL: /);
  t.match(message, /BODY_LIMIT: /);
});

for (const text of ['true', 'TRUE', '1', 'yes', 'on']) {
  t.test(`WORKER_ENABLED=${text} is true`, async (t) => {
    t.equal(loadConfig({ WORKER_ENABLED: text }).WORKER_ENABLED, true);
  });
}

for (const text of ['false', 'False', '0', 'no', 'off']) {
  t.test(`WORKER_ENABLED=${text} is false`, async (t) => {
    t.equal(loadConfig({ WORKER_ENABLED: text }).WORKER_ENABLED, false);
  });
}

t.test('a boolean that is neither true nor false is rejected with a message naming it', async (t) => {
  t.match(rejection({ WORKER_ENABLED: 'maybe' }), /WORKER_ENABLED: /);
});

t.test('the whitelist limits are bounded by the address sizes', async (t) => {
  t.match(rejection({ WHITELIST_MIN_PREFIX_V4: '33' }), /WHITELIST_MIN_PREFIX_V4: /);
  t.match(rejection({ WHITELIST_MIN_PREFIX_V6: '129' }), /WHITELIST_MIN_PREFIX_V6: /);
  t.match(rejection({ WHITELIST_MAX_ENTRIES: '0' }), /WHITELIST_MAX_ENTRIES: /);
});

t.test('a malformed TRUSTED_PROXIES stops the start, naming it', async (t) => {
  for (const value of ['not-a-network', '10.0.0.0/33', '192.0.2.1, 300.1.1.1']) {
    t.match(rejection({ TRUSTED_PROXIES: value }), /TRUSTED_PROXIES/, value);
  }
  t.equal(loadConfig({ TRUSTED_PROXIES: '192.0.2.1, 10.0.0.0/8, loopback' }).TRUSTED_PROXIES, '192.0.2.1, 10.0.0.0/8, loopback');
});
