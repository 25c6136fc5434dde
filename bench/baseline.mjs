/**
 * The bench's baseline: a bare Fastify + pg server (or PGlite, for the embedded run) doing the same one-row indexed
 * SELECT as `GET …/twoFAWhitelist/{id}`, with the same pool size, and nothing else: no authentication, no hooks, no
 * query builder. `POST /verify` is the bare stack of a login: an argon2id verification of the hash it is sent, nothing
 * else. `POST /floor` is the least a login with this service's guarantees can do (see `floor` below); `POST /bound`
 * the least any login that keeps its sessions in PostgreSQL does, whatever it guarantees (see `bound`). Started by
 * bench/run.mjs as a child process; prints `listening <port>` when ready.
 *
 *   BASELINE_DATABASE_URL=postgres://… BASELINE_POOL_SIZE=10 node bench/baseline.mjs
 */
import Fastify from 'fastify';
import pg from 'pg';
import { randomBytes, createHash } from 'node:crypto';
import { verify } from '@node-rs/argon2';

const SQL =
  'SELECT id, host(ip) AS ip, cidr_netmask, description, state FROM two_fa_whitelist WHERE service_name = $1 AND id = $2';

async function database() {
  const url = process.env.BASELINE_DATABASE_URL;
  if (url) {
    const pool = new pg.Pool({ connectionString: url, max: Number(process.env.BASELINE_POOL_SIZE ?? 10) });
    // The floor's own tables, apart from the service's, for this run only.
    await pool.query(FLOOR_TABLES);
    return {
      query: async (sql, params) => (await pool.query(sql, params)).rows,
      // A named statement is parsed and planned once per connection.
      prepared: async (name, text, values) => (await pool.query({ name, text, values })).rows,
      close: async () => {
        await pool.query(`DROP SCHEMA ${FLOOR} CASCADE`);
        await pool.end();
      },
    };
  }
  // Embedded: PGlite in memory with the same table, index and rows (the service's own data folder is its server's).
  const { PGlite } = await import('@electric-sql/pglite');
  const db = new PGlite();
  await db.exec(`CREATE TABLE two_fa_whitelist (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, service_name text NOT NULL,
    ip inet NOT NULL, cidr_netmask smallint NOT NULL, description text NOT NULL, state text NOT NULL);
    CREATE INDEX ON two_fa_whitelist (service_name, id);`);
  for (let i = 1; i <= 10; i++) {
    await db.query(
      'INSERT INTO two_fa_whitelist (service_name, ip, cidr_netmask, description, state) VALUES ($1, $2, 32, $3, $4)',
      [process.env.BASELINE_SERVICE ?? 'pcc-bench', `198.51.100.${i}`, `bench entry ${i}`, 'enabled'],
    );
  }
  return { query: async (sql, params) => (await db.query(sql, params)).rows, close: () => db.close() };
}

/**
 * `POST /floor`: what any login giving this service's guarantees has to do, written as directly as it can be, two
 * round trips and two commits: the attempt counted on its lockout keys (durably, before the password is checked:
 * parallel guesses must not all reach the check) with the user's hash read in the same statement; the argon2id
 * verification; then, in one statement, the code's step used once (durably, on every instance), the lockout's keys
 * cleared, the session opened and the login audited. Left out, so that it stays a floor: the service's session quota
 * (and the lock on its row), the allowed networks, the 2FA whitelist, the TOTP check itself, lock delays.
 */
const FLOOR = `bench_floor_${process.pid}`;
const FLOOR_TABLES = `CREATE SCHEMA ${FLOOR};
  CREATE TABLE ${FLOOR}.failure (key text PRIMARY KEY, failures integer NOT NULL);
  CREATE TABLE ${FLOOR}.totp_used (user_id bigint NOT NULL, step bigint NOT NULL, PRIMARY KEY (user_id, step));
  CREATE TABLE ${FLOOR}.session (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, token_hash bytea NOT NULL UNIQUE,
    user_id bigint NOT NULL, created_at timestamptz NOT NULL);
  CREATE TABLE ${FLOOR}.audit (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, user_id bigint NOT NULL,
    type text NOT NULL, data jsonb NOT NULL, at timestamptz NOT NULL DEFAULT now());`;
const FLOOR_ADMIT = `WITH counted AS (
    INSERT INTO ${FLOOR}.failure AS f (key, failures) SELECT k, 1 FROM unnest($3::text[]) AS k ORDER BY k
    ON CONFLICT (key) DO UPDATE SET failures = f.failures + 1 RETURNING f.failures)
  SELECT u.user_id, u.password_hash, (SELECT max(failures) FROM counted) AS failures
    FROM pcc_user AS u WHERE u.service_name = $1 AND lower(u.name) = $2 AND u.deleted_at IS NULL`;
const FLOOR_COMMIT = `WITH step AS (
    INSERT INTO ${FLOOR}.totp_used (user_id, step) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING user_id
  ), cleared AS (
    DELETE FROM ${FLOOR}.failure WHERE key = ANY ($3::text[]) AND EXISTS (SELECT 1 FROM step)
  ), opened AS (
    INSERT INTO ${FLOOR}.session (token_hash, user_id, created_at) SELECT $4, user_id, now() FROM step RETURNING id, user_id
  )
  INSERT INTO ${FLOOR}.audit (user_id, type, data)
  SELECT user_id, 'login.succeeded', jsonb_build_object('sessionId', id) FROM opened RETURNING data`;

/**
 * `POST /bound` (PostgreSQL only): the least any login does that keeps its users and sessions in PostgreSQL, whatever
 * else it guarantees: the user's hash read (one round trip), argon2id, the session written (one flushed commit). No
 * lockout, no code, no quota, no audit: a bound below the floor, not a login anyone should run.
 */
const BOUND_READ = `SELECT u.user_id, u.password_hash FROM pcc_user AS u
  WHERE u.service_name = $1 AND lower(u.name) = $2 AND u.deleted_at IS NULL`;
const BOUND_COMMIT = `INSERT INTO ${FLOOR}.session (token_hash, user_id, created_at) VALUES ($1, $2, now())`;

const db = await database();
const app = Fastify({ logger: false });
app.get('/row/:serviceName/:id', async (request, reply) => {
  const rows = await db.query(SQL, [request.params.serviceName, Number(request.params.id)]);
  if (rows.length === 0) return reply.code(404).send({ message: 'not found' });
  const r = rows[0];
  return { id: Number(r.id), ip: r.ip, cidrNetmask: r.cidr_netmask, description: r.description, state: r.state };
});
// The bare stack for logins: an HTTP request that verifies an argon2id hash, and nothing else.
app.post('/verify', async (request, reply) => {
  const { hash, password } = request.body;
  const ok = await verify(hash, password);
  return reply.code(ok ? 200 : 401).send({ ok });
});
app.post('/floor', async (request, reply) => {
  const { service, login, password, step, keys } = request.body;
  const [user] = await db.prepared('floor_admit', FLOOR_ADMIT, [service, login.toLowerCase(), keys]);
  if (user === undefined || user.failures > 5) return reply.code(401).send({ message: 'refused' });
  if (!(await verify(user.password_hash, password))) return reply.code(401).send({ message: 'refused' });
  const token = randomBytes(36).toString('base64url');
  const [opened] = await db.prepared('floor_commit', FLOOR_COMMIT, [
    user.user_id,
    step,
    keys,
    createHash('sha256').update(token).digest(),
  ]);
  if (opened === undefined) return reply.code(401).send({ message: 'refused' });
  return { sessionToken: token };
});
app.post('/bound', async (request, reply) => {
  const { service, login, password } = request.body;
  const [user] = await db.prepared('bound_read', BOUND_READ, [service, login.toLowerCase()]);
  if (user === undefined || !(await verify(user.password_hash, password))) {
    return reply.code(401).send({ message: 'refused' });
  }
  const token = randomBytes(36).toString('base64url');
  await db.prepared('bound_commit', BOUND_COMMIT, [createHash('sha256').update(token).digest(), user.user_id]);
  return { sessionToken: token };
});
await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`listening ${app.server.address().port}\n`);
process.on('SIGTERM', async () => {
  await app.close();
  await db.close();
  process.exit(0);
});
