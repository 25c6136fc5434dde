import Fastify from 'fastify';
import t from 'tap';
import { cachedSchemaCompilers, compiledSchemaCount } from '../src/http/schema-compilers.js';

const ajv = { customOptions: { removeAdditional: false, coerceTypes: 'array' as const, useDefaults: true } };
const body = () => ({
  type: 'object',
  properties: { ip: { type: 'string', maxLength: 5 } },
  required: ['ip'],
  additionalProperties: false,
});

function appWith(schema: Record<string, unknown>) {
  const app = Fastify({ ajv, schemaController: { compilersFactory: cachedSchemaCompilers() } });
  app.post(
    '/x',
    { schema: { body: schema, response: { 200: { type: 'object', properties: { ok: { type: 'boolean' } } } } } },
    async () => ({
      ok: true,
      secret: 'not in the schema',
    }),
  );
  return app;
}

t.test('a schema is compiled once per process, by content; another schema gets its own function', async (t) => {
  const { buildValidator, buildSerializer } = cachedSchemaCompilers();
  const validate = buildValidator!({}, ajv);
  const route = { method: 'POST', url: '/x', httpPart: 'body' };
  const first = validate({ ...route, schema: body() });
  t.equal(validate({ ...route, schema: body() }), first, 'the same content, a new object: the same function');
  t.equal(buildValidator!({}, ajv)({ ...route, schema: body() }), first, 'and from another app of the process');
  t.not(validate({ ...route, schema: { ...body(), required: [] } }), first, 'other content: another function');
  t.not(
    buildValidator!({ s: { $id: 's', type: 'string' } }, ajv)({ ...route, schema: body() }),
    first,
    'other shared schemas: another',
  );
  t.not(validate({ ...route, httpPart: 'querystring', schema: body() }), first, 'another part of the request: another');
  const serialize = buildSerializer!({}, {});
  const response = {
    method: 'POST',
    url: '/x',
    httpStatus: '200',
    schema: { type: 'object', properties: { a: { type: 'integer' } } },
  };
  t.equal(serialize({ ...response, schema: { ...response.schema } }), serialize(response));
  t.throws(() => validate({ ...route, httpPart: 'headers', schema: body() }), /header schemas are not supported/);
});

t.test('two apps sharing compiled functions still validate and serialize each its own requests', async (t) => {
  const a = appWith(body());
  const b = appWith(body());
  t.teardown(() => Promise.all([a.close(), b.close()]));
  const bad = await a.inject({ method: 'POST', url: '/x', payload: { ip: 'too long' } });
  t.equal(bad.statusCode, 400);
  t.match(bad.json().message, /must NOT have more than 5 characters/);
  const good = await b.inject({ method: 'POST', url: '/x', payload: { ip: '1.2' } });
  t.equal(good.statusCode, 200);
  t.same(good.json(), { ok: true }, 'the response schema drops what it does not name');
  t.equal((await b.inject({ method: 'POST', url: '/x', payload: {} })).statusCode, 400);
});

t.test('options JSON cannot tell apart (a RegExp format, a plugin) are never shared: each app compiles its own', async (t) => {
  const withFormat = (re: RegExp) => {
    const app = Fastify({
      ajv: { customOptions: { formats: { code: re } } },
      schemaController: { compilersFactory: cachedSchemaCompilers() },
    });
    app.post(
      '/x',
      { schema: { body: { type: 'object', properties: { c: { type: 'string', format: 'code' } } } } },
      async () => 'ok',
    );
    return app;
  };
  const a = withFormat(/^a$/);
  const b = withFormat(/^b$/);
  t.teardown(() => Promise.all([a.close(), b.close()]));
  t.equal((await a.inject({ method: 'POST', url: '/x', payload: { c: 'b' } })).statusCode, 400);
  t.equal((await b.inject({ method: 'POST', url: '/x', payload: { c: 'b' } })).statusCode, 200, "b's own format");
});

t.test("a second app of the service's own adds nothing to the process's compiled schemas", async (t) => {
  const { buildTestApp } = await import('./helpers/app.js');
  await (await buildTestApp(t)).app.ready();
  const first = compiledSchemaCount();
  t.ok(first.validators > 20 && first.serializers > 20, `the app's schemas went through the cache: ${JSON.stringify(first)}`);
  await (await buildTestApp(t)).app.ready();
  t.same(compiledSchemaCount(), first);
});

t.test('sharedBuffers applies to in-memory databases only: a data folder keeps its own configuration', async (t) => {
  const { openDatabase } = await import('../src/db/database.js');
  await t.rejects(openDatabase({ dataDir: '/nonexistent/never-created', sharedBuffers: '16MB' }), /in-memory databases only/);
});
