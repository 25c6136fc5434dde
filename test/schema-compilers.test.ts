import Fastify from 'fastify';
import t from 'tap';
import { cachedSchemaCompilers } from '../src/http/schema-compilers.js';

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
