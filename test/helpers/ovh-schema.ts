import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Compares OVH's published API schema (OVH's own format: `apis` of operations with typed parameters, and `models`)
 * with the OpenAPI document the app generates, route by route. Each difference is one sentence that names its route,
 * so that test/fixtures/ovh-schema/deviations.json can explain it by its exact text.
 */

export interface OvhParameter {
  name?: string;
  dataType: string;
  paramType: 'path' | 'query' | 'body';
  required: boolean;
}
export interface OvhOperation {
  httpMethod: string;
  responseType: string;
  noAuthentication: boolean;
  parameters: OvhParameter[];
}
export interface OvhProperty {
  type: string;
  canBeNull: boolean;
  readOnly: boolean;
  required?: boolean;
}
export interface OvhModel {
  properties?: Record<string, OvhProperty>;
  enum?: string[];
}
export interface OvhSchema {
  apis: { path: string; operations: OvhOperation[] }[];
  models: Record<string, OvhModel>;
}

export interface Deviations {
  /** App routes that are not OVH's at all (a glob on the path; any method). */
  extensionRoutes: { routes: string; reason: string }[];
  /** Differences of an OVH route that are deliberate, by their exact text. */
  extensions: { difference: string; reason: string }[];
  /** OVH routes this service does not serve (a glob on the path). */
  outOfScope: { routes: string; reason: string }[];
  /** Known differences still to remove from the product. */
  todo: string[];
}

interface JsonSchema {
  $ref?: string;
  type?: string;
  format?: string;
  enum?: unknown[];
  nullable?: boolean;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
}
interface OpenApiParameter {
  in: string;
  name: string;
  required?: boolean;
  schema: JsonSchema;
}
interface OpenApiOperation {
  security?: unknown[];
  parameters?: OpenApiParameter[];
  requestBody?: { required?: boolean; content: Record<string, { schema: JsonSchema }> };
  responses: Record<string, { content?: Record<string, { schema: JsonSchema }> }>;
}
export interface OpenApiDocument {
  paths: Record<string, Record<string, OpenApiOperation>>;
  components?: { schemas?: Record<string, JsonSchema> };
}

const ROOT = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return dir;
})();
const FIXTURES = path.join(ROOT, 'test/fixtures/ovh-schema');
export const readFixture = <T>(name: string): T => JSON.parse(fs.readFileSync(path.join(FIXTURES, name), 'utf8')) as T;

/** `/dedicatedCloud/{serviceName}/user*` matches the user routes and everything under them. */
export function globMatch(glob: string, value: string): boolean {
  const re = new RegExp(`^${glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
  return re.test(value);
}

const STRING_TYPES = new Set(['string', 'password', 'ipv4', 'ipBlock', 'ipv4Block', 'ip', 'text', 'uuid', 'time', 'date']);
const METHODS = ['get', 'put', 'post', 'delete', 'patch'];

export function compareSchemas(ovh: OvhSchema[], doc: OpenApiDocument, prefix = '/1.0'): string[] {
  const models: Record<string, OvhModel> = Object.assign({}, ...ovh.map((s) => s.models));
  const diffs: string[] = [];
  const seen = new Set<string>();

  const resolve = (schema: JsonSchema | undefined): { schema: JsonSchema | undefined; nullable: boolean } => {
    let nullable = false;
    let s = schema;
    for (let i = 0; s && i < 10; i++) {
      if (s.nullable) nullable = true;
      const variants = s.anyOf ?? s.oneOf;
      if (variants) {
        const real = variants.filter((v) => v.type !== 'null' && !(v.nullable && Object.keys(v).length === 1));
        if (real.length < variants.length) nullable = true;
        if (real.length !== 1) break;
        s = real[0];
        continue;
      }
      if (s.$ref) {
        s = doc.components?.schemas?.[s.$ref.replace('#/components/schemas/', '')];
        continue;
      }
      break;
    }
    return { schema: s, nullable };
  };

  /** Compares one OVH type with the app's schema for it; `where` names the place in the difference. */
  const compareType = (
    where: string,
    ovhType: string,
    app: JsonSchema | undefined,
    mode: 'request' | 'response',
    depth = 0,
  ): void => {
    const { schema } = resolve(app);
    if (!schema) {
      diffs.push(`${where}: no schema, OVH ${ovhType}`);
      return;
    }
    if (depth > 6) return;
    if (ovhType.endsWith('[]')) {
      if (schema.type !== 'array') diffs.push(`${where}: type ${schema.type ?? 'unknown'}, OVH ${ovhType}`);
      else compareType(`${where}[]`, ovhType.slice(0, -2), schema.items, mode, depth + 1);
      return;
    }
    if (ovhType.startsWith('map[')) {
      if (schema.type !== 'object') diffs.push(`${where}: type ${schema.type ?? 'unknown'}, OVH ${ovhType}`);
      return;
    }
    const expected =
      ovhType === 'long' ? 'integer' : ovhType === 'double' ? 'number' : ovhType === 'boolean' ? 'boolean' : undefined;
    if (expected || STRING_TYPES.has(ovhType) || ovhType === 'datetime') {
      const want = expected ?? 'string';
      if (schema.type !== want) diffs.push(`${where}: type ${schema.type ?? 'unknown'}, OVH ${ovhType} (${want})`);
      else if (ovhType === 'datetime' && schema.format !== 'date-time')
        diffs.push(`${where}: format ${schema.format ?? 'none'}, OVH datetime (date-time)`);
      return;
    }
    const model = models[ovhType];
    if (!model) {
      diffs.push(`${where}: OVH type ${ovhType} is not in the fixture`);
      return;
    }
    if (model.enum) {
      if (schema.type !== 'string' || !schema.enum) {
        diffs.push(`${where}: not an enum, OVH ${ovhType}`);
        return;
      }
      const app = new Set(schema.enum.map(String));
      const missing = model.enum.filter((v) => !app.has(v));
      const extra = [...app].filter((v) => !model.enum?.includes(v));
      if (missing.length) diffs.push(`${where}: enum lacks ${missing.join(', ')} (${ovhType})`);
      if (extra.length) diffs.push(`${where}: enum has ${extra.join(', ')}, not in ${ovhType}`);
      return;
    }
    if (schema.type !== 'object' || !schema.properties) {
      diffs.push(`${where}: type ${schema.type ?? 'unknown'}, OVH model ${ovhType}`);
      return;
    }
    compareFields(where, ovhType, model.properties ?? {}, schema, mode, depth);
  };

  const compareFields = (
    where: string,
    ovhType: string,
    props: Record<string, OvhProperty>,
    schema: JsonSchema,
    mode: 'request' | 'response',
    depth: number,
  ): void => {
    const appProps = schema.properties ?? {};
    for (const [name, prop] of Object.entries(props)) {
      const field = `${where}.${name}`;
      if (!(name in appProps)) {
        diffs.push(`${field}: missing (${ovhType})`);
        continue;
      }
      compareType(field, prop.type, appProps[name], mode, depth + 1);
      if (mode === 'response') {
        const { nullable } = resolve(appProps[name]);
        if (prop.canBeNull && !nullable) diffs.push(`${field}: never null, OVH canBeNull`);
        if (!prop.canBeNull && nullable) diffs.push(`${field}: nullable, OVH never null`);
        if (!prop.canBeNull && !schema.required?.includes(name)) diffs.push(`${field}: optional, OVH always present`);
      } else if (prop.required && !schema.required?.includes(name)) diffs.push(`${field}: optional, OVH required`);
    }
    for (const name of Object.keys(appProps)) if (!(name in props)) diffs.push(`${where}.${name}: not in OVH's ${ovhType}`);
  };

  for (const api of ovh.flatMap((s) => s.apis)) {
    for (const op of api.operations) {
      const route = `${op.httpMethod} ${api.path}`;
      const appPath = `${prefix}${api.path}`;
      seen.add(`${op.httpMethod.toLowerCase()} ${appPath}`);
      const appOp = doc.paths[appPath]?.[op.httpMethod.toLowerCase()];
      if (!appOp) {
        diffs.push(`${route}: route missing`);
        continue;
      }
      const open = !appOp.security || appOp.security.length === 0;
      if (op.noAuthentication !== open)
        diffs.push(`${route}: ${open ? 'open to anyone, OVH needs authentication' : 'needs authentication, OVH open to anyone'}`);
      const appParams = appOp.parameters ?? [];
      for (const kind of ['path', 'query'] as const) {
        const ours = op.parameters.filter((p) => p.paramType === kind);
        const theirs = appParams.filter((p) => p.in === kind);
        const label = kind === 'path' ? 'path parameter' : 'query filter';
        for (const p of ours) {
          const a = theirs.find((x) => x.name === p.name);
          if (!a) {
            diffs.push(`${route}: ${label} ${p.name} missing`);
            continue;
          }
          if (kind === 'query' && Boolean(a.required) !== p.required)
            diffs.push(`${route}: ${label} ${p.name} ${p.required ? 'optional, OVH required' : 'required, OVH optional'}`);
          compareType(`${route}: ${label} ${p.name}`, p.dataType, a.schema, 'request');
        }
        for (const a of theirs) if (!ours.some((p) => p.name === a.name)) diffs.push(`${route}: ${label} ${a.name} is not OVH's`);
      }

      const body = resolve(appOp.requestBody?.content['application/json']?.schema).schema;
      const named = op.parameters.filter((p) => p.paramType === 'body' && p.name);
      const whole = op.parameters.find((p) => p.paramType === 'body' && !p.name);
      if (whole) {
        compareType(`${route}: body`, whole.dataType, body, 'request');
      } else if (named.length) {
        if (!body?.properties) diffs.push(`${route}: no body parameters`);
        else {
          for (const p of named) {
            const a = body.properties[p.name as string];
            if (!a) {
              diffs.push(`${route}: body parameter ${p.name} missing`);
              continue;
            }
            const required = body.required?.includes(p.name as string) ?? false;
            if (required !== p.required)
              diffs.push(
                `${route}: body parameter ${p.name} ${p.required ? 'optional, OVH required' : 'required, OVH optional'}`,
              );
            compareType(`${route}: body parameter ${p.name}`, p.dataType, a, 'request');
          }
          for (const name of Object.keys(body.properties))
            if (!named.some((p) => p.name === name)) diffs.push(`${route}: body parameter ${name} is not OVH's`);
        }
      } else if (body?.properties && Object.keys(body.properties).length)
        diffs.push(`${route}: body parameters ${Object.keys(body.properties).join(', ')} are not OVH's`);

      const ok = appOp.responses['200'];
      const response = ok?.content?.['application/json']?.schema;
      if (op.responseType === 'void') {
        if (response && resolve(response).schema?.type !== 'null') diffs.push(`${route}: response has a body, OVH void`);
      } else if (!ok) diffs.push(`${route}: no 200 response`);
      else compareType(`${route}: response`, op.responseType, response, 'response');
    }
  }

  // Routes of the app that OVH's schema does not have.
  for (const [appPath, ops] of Object.entries(doc.paths))
    for (const method of METHODS)
      if (ops[method] && !seen.has(`${method} ${appPath}`))
        diffs.push(
          `${method.toUpperCase()} ${appPath.startsWith(prefix) ? appPath.slice(prefix.length) : appPath}: route not in OVH's schema`,
        );
  return diffs;
}

/** The differences that no deviation explains, and the deviations that no longer match anything. */
export function explain(diffs: string[], deviations: Deviations) {
  const routeOf = (d: string) => d.slice(d.indexOf(' ') + 1, d.indexOf(':'));
  const byRoute = (d: string) => deviations.extensionRoutes.some((e) => globMatch(e.routes, routeOf(d)));
  const known = new Set([...deviations.extensions.map((e) => e.difference), ...deviations.todo]);
  return {
    unexplained: diffs.filter((d) => !known.has(d) && !byRoute(d)),
    stale: [...known].filter((k) => !diffs.includes(k)),
    unusedRoutes: deviations.extensionRoutes
      .filter((e) => !diffs.some((d) => globMatch(e.routes, routeOf(d))))
      .map((e) => e.routes),
    todo: deviations.todo.filter((k) => diffs.includes(k)),
  };
}
