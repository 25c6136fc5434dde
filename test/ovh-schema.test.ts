import fs from 'node:fs';
import t from 'tap';
import { OPENAPI_FILE } from '../src/openapi-export.js';
import {
  compareSchemas,
  explain,
  globMatch,
  readFixture,
  type Deviations,
  type OpenApiDocument,
  type OvhSchema,
} from './helpers/ovh-schema.js';

// OVH's published schema (test/fixtures/ovh-schema/README.md names its source) against the OpenAPI document the app
// generates. test/openapi.test.ts holds the committed document equal to the generated one, so it is read here.
const doc = JSON.parse(fs.readFileSync(OPENAPI_FILE, 'utf8')) as OpenApiDocument;
const ovh = [readFixture<OvhSchema>('dedicatedCloud.json'), readFixture<OvhSchema>('auth.json')];
const deviations = readFixture<Deviations>('deviations.json');
const diffs = compareSchemas(ovh, doc);
const result = explain(diffs, deviations);

t.test('every difference from OVH is a documented extension (the list of unexplained ones is empty)', async (t) => {
  if (result.todo.length) t.comment(`known differences still to do (${result.todo.length}):\n  ${result.todo.join('\n  ')}`);
  if (result.unexplained.length) t.comment(`unexplained differences:\n  ${result.unexplained.join('\n  ')}`);
  t.strictSame(result.unexplained, []);
});

t.test('no deviation is stale: each still matches a difference', async (t) => {
  t.strictSame(result.stale, [], 'extensions and todo entries that match nothing');
  t.strictSame(result.unusedRoutes, [], 'extension routes the app no longer serves');
});

t.test('every deviation gives its reason, and no in-scope route is also listed out of scope', async (t) => {
  for (const e of [...deviations.extensionRoutes, ...deviations.extensions, ...deviations.outOfScope])
    t.ok(e.reason.length > 20, `reason of ${'routes' in e ? e.routes : e.difference}`);
  // An entry is a glob on the path (any method) or `METHOD path`.
  const inScope = ovh.flatMap((s) => s.apis.flatMap((a) => a.operations.map((op) => `${op.httpMethod} ${a.path}`)));
  for (const o of deviations.outOfScope)
    t.strictSame(
      inScope.filter((r) => globMatch(o.routes.includes(' ') ? o.routes : `* ${o.routes}`, r)),
      [],
      `${o.routes} overlaps no route of the fixture`,
    );
});

t.test('the comparison itself finds what it must (a broken copy of the document)', async (t) => {
  const broken = structuredClone(doc);
  const user = broken.paths['/1.0/dedicatedCloud/{serviceName}/user']?.post;
  const body = user?.requestBody?.content['application/json']?.schema;
  t.ok(body?.properties?.name, 'the app documents POST user');
  if (body?.properties) {
    delete body.properties.name;
    body.properties.nickname = { type: 'string' };
  }
  delete broken.paths['/1.0/dedicatedCloud/{serviceName}/twoFAWhitelist/{id}'];
  const list = broken.paths['/1.0/dedicatedCloud/{serviceName}/user']?.get;
  if (list) delete list.security;
  const found = compareSchemas(ovh, broken);
  for (const expected of [
    'POST /dedicatedCloud/{serviceName}/user: body parameter name missing',
    "POST /dedicatedCloud/{serviceName}/user: body parameter nickname is not OVH's",
    'GET /dedicatedCloud/{serviceName}/twoFAWhitelist/{id}: route missing',
    'DELETE /dedicatedCloud/{serviceName}/twoFAWhitelist/{id}: route missing',
    'GET /dedicatedCloud/{serviceName}/user: open to anyone, OVH needs authentication',
  ])
    t.ok(found.includes(expected), expected);
  const taskSchema = broken.components?.schemas?.['dedicatedCloud.Task'];
  if (taskSchema?.properties) taskSchema.properties.state = { type: 'string', enum: ['todo', 'done', 'bogus'] };
  const enumDiffs = compareSchemas(ovh, broken).filter((d) =>
    d.startsWith('GET /dedicatedCloud/{serviceName}/task/{taskId}: response.state'),
  );
  t.ok(
    enumDiffs.some((d) => d.includes('enum lacks canceled')),
    'a missing enum value',
  );
  t.ok(
    enumDiffs.some((d) => d.includes('enum has bogus')),
    'an extra enum value',
  );
});
