import fs from 'node:fs';
import t from 'tap';
import { OPENAPI_FILE, generateOpenApi } from '../src/openapi-export.js';

interface Operation {
  tags?: string[];
  summary?: string;
  responses?: Record<string, unknown>;
}
interface Document {
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, { properties?: Record<string, unknown> }> };
}

// Generating builds the whole app on an embedded database: once for the file.
const generated = await generateOpenApi();
const spec = JSON.parse(generated) as Document;
const METHODS = new Set(['get', 'put', 'post', 'delete', 'patch']);
const apiOperations = Object.entries(spec.paths)
  .filter(([path]) => path.startsWith('/1.0/'))
  .flatMap(([path, ops]) =>
    Object.entries(ops)
      .filter(([method]) => METHODS.has(method))
      .map(([method, op]) => ({ name: `${method.toUpperCase()} ${path}`, op })),
  );

t.test('the committed openapi/openapi.json is what the code generates (run `npm run openapi`)', async (t) => {
  t.ok(fs.existsSync(OPENAPI_FILE), 'the file is committed');
  t.equal(fs.readFileSync(OPENAPI_FILE, 'utf8'), generated);
});

t.test('the document lists the whitelist and task operations under /1.0 only', async (t) => {
  for (const name of [
    'GET /1.0/dedicatedCloud/{serviceName}/twoFAWhitelist',
    'POST /1.0/dedicatedCloud/{serviceName}/twoFAWhitelist',
    'GET /1.0/dedicatedCloud/{serviceName}/twoFAWhitelist/{id}',
    'DELETE /1.0/dedicatedCloud/{serviceName}/twoFAWhitelist/{id}',
    'POST /1.0/dedicatedCloud/{serviceName}/twoFAWhitelist/{id}/changeProperties',
    'GET /1.0/dedicatedCloud/{serviceName}/task',
    'GET /1.0/dedicatedCloud/{serviceName}/task/{taskId}',
    'POST /1.0/dedicatedCloud/{serviceName}/task/{taskId}/resetTaskState',
    'POST /1.0/dedicatedCloud/{serviceName}/task/{taskId}/changeMaintenanceExecutionDate',
  ]) {
    t.ok(
      apiOperations.some((o) => o.name === name),
      name,
    );
  }
  t.strictSame(
    Object.keys(spec.paths).filter((p) => p.startsWith('/v1/')),
    [],
    'the /v1 copy is served but not documented twice',
  );
});

t.test('every /1.0 operation has tags, a summary and a 200 response', async (t) => {
  t.ok(apiOperations.length > 0);
  for (const { name, op } of apiOperations) {
    t.ok(Array.isArray(op.tags) && op.tags.length > 0, `${name}: tags`);
    t.ok(typeof op.summary === 'string' && op.summary.length > 0, `${name}: summary`);
    t.ok(op.responses && '200' in op.responses, `${name}: 200 response`);
  }
});

t.test('the components hold the named OVH models', async (t) => {
  const schemas = spec.components?.schemas ?? {};
  t.ok(schemas['dedicatedCloud.Task'], 'dedicatedCloud.Task');
  t.ok(schemas['dedicatedCloud.twoFAWhitelist'], 'dedicatedCloud.twoFAWhitelist');
  t.strictSame(Object.keys(schemas['dedicatedCloud.twoFAWhitelist']?.properties ?? {}).sort(), [
    'cidrNetmask',
    'description',
    'id',
    'ip',
    'state',
  ]);
  t.strictSame(Object.keys(schemas['dedicatedCloud.Task']?.properties ?? {}).sort(), [
    'createdBy',
    'createdFrom',
    'datacenterId',
    'description',
    'endDate',
    'executionDate',
    'filerId',
    'hostId',
    'lastModificationDate',
    'maintenanceDateFrom',
    'maintenanceDateTo',
    'name',
    'network',
    'networkAccessId',
    'orderId',
    'parentTaskId',
    'progress',
    'state',
    'taskId',
    'type',
    'userId',
    'vlanId',
  ]);
});
