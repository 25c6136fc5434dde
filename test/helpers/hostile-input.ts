import fc from 'fast-check';

/**
 * Hostile requests generated from the OpenAPI document. Each request is invalid by construction: it carries one
 * fault that the API must refuse before it writes anything (a path parameter that names nothing, a query value its
 * schema refuses, a body that does not parse or validate, an address no network has, a wrong content type, or, for
 * the unauthenticated half, no valid credentials). Around that fault the other parts may be hostile too.
 *
 * Every value below is chosen knowing how the API reads it: Ajv coerces types (`coerceTypes: 'array'`), so a "wrong
 * type" is one no coercion can fix ({} or an array of two for a scalar; `true` would become 1 and `null` 0).
 */

export interface OpenApiDocument {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema> };
}
interface Operation {
  parameters?: Array<{ in: 'path' | 'query' | 'header'; name: string; required?: boolean; schema: Schema }>;
  requestBody?: { content: Record<string, { schema: Schema }> };
  security?: Array<Record<string, string[]>>;
}
export interface Schema {
  type?: string;
  $ref?: string;
  enum?: unknown[];
  pattern?: string;
  format?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  items?: Schema;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean;
  nullable?: boolean;
}

export interface Route {
  method: string;
  /** OpenAPI path, `{name}` for parameters. */
  path: string;
  pathParams: Array<{ name: string; schema: Schema }>;
  queryParams: Array<{ name: string; schema: Schema }>;
  /** The JSON body's schema, when the route takes one. */
  body?: Schema;
  contentTypes: string[];
  /** Who may call it: the OVH API's callers, a /secure session, or anyone. */
  auth: 'api' | 'session' | 'none';
}

/** The valid values the fixture provides for path parameters, and the names of what exists (never generated). */
export interface Fixture {
  pathValues: Record<string, string>;
  /** Service names that exist, compared case-insensitively. */
  serviceNames: string[];
  /** Ids at or below this may exist; generated ids that the router would read as an integer stay above it. */
  maxExistingId: number;
  apiToken: string;
  sessionToken: string;
}

export interface HostileRequest {
  route: string;
  /** The fault that makes the request invalid; `+unauthenticated:…` when credentials are missing or bogus. */
  kind: string;
  method: string;
  url: string;
  headers: Record<string, string | string[]>;
  payload?: string;
}

/** The schema with every `$ref` inside it replaced by the component it names (items, properties, anyOf…). */
function deref(doc: OpenApiDocument, schema: Schema, seen: string[] = []): Schema {
  if (schema.$ref) {
    const name = schema.$ref.split('/').pop()!;
    if (seen.includes(name)) return {} as Schema;
    return deref(doc, doc.components.schemas[name]!, [...seen, name]);
  }
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (Array.isArray(value)) out[key] = value.map((v) => (v && typeof v === 'object' ? deref(doc, v as Schema, seen) : v));
    else if (value && typeof value === 'object' && key !== 'enum') {
      out[key] =
        key === 'properties'
          ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, deref(doc, v as Schema, seen)]))
          : deref(doc, value as Schema, seen);
    } else out[key] = value;
  }
  return out as Schema;
}

export function routesOf(doc: OpenApiDocument): Route[] {
  const routes: Route[] = [];
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const resolve = (s: Schema): Schema => deref(doc, s);
      const params = (where: 'path' | 'query') =>
        (op.parameters ?? []).filter((p) => p.in === where).map((p) => ({ name: p.name, schema: resolve(p.schema) }));
      const content = op.requestBody?.content ?? {};
      const security = (op.security ?? []).flatMap((s) => Object.keys(s));
      routes.push({
        method: method.toUpperCase(),
        path,
        pathParams: params('path'),
        queryParams: params('query'),
        ...(content['application/json'] ? { body: resolve(content['application/json'].schema) } : {}),
        contentTypes: Object.keys(content),
        auth: security.includes('sessionToken') ? 'session' : security.length > 0 ? 'api' : 'none',
      });
    }
  }
  return routes;
}

// ---------------------------------------------------------------------------------------------------------- values

/** A JSON token written as is (numbers JSON.stringify cannot write: 1e400, -0, 1.0). */
class Raw {
  constructor(readonly text: string) {}
}
type Value = Raw | unknown;

const json = (v: Value): string => {
  if (v instanceof Raw) return v.text;
  if (Array.isArray(v)) return `[${v.map(json).join(',')}]`;
  if (v !== null && typeof v === 'object') return objectText(Object.entries(v as Record<string, unknown>));
  return JSON.stringify(v);
};
const objectText = (entries: Array<[string, Value]>) =>
  `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${json(v)}`).join(',')}}`;

const CONTROL = [...Array(32).keys(), 127].map((c) => String.fromCharCode(c));
const NASTY = [
  '\u0000',
  '\u202e',
  '\ufeff',
  '\u200b',
  '\ud800',
  '\udfff',
  '😀',
  '\u0301',
  'İ',
  'ß',
  '١٢٣',
  '１２３',
  '<script>alert(1)</script>',
  "' OR 1=1 --",
  '"; DROP TABLE task; --',
  '${jndi:ldap://x}',
  '../../../etc/passwd',
  '%00',
  '%2e%2e%2f',
  '\\',
  '__proto__',
  'constructor',
  'prototype',
  'null',
  'undefined',
  'NaN',
  '-1',
  '1e400',
];

/** Strings of every kind: any unicode, control characters, the well-known nasty ones, and huge repetitions. */
const hostileString: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.array(fc.constantFrom(...CONTROL), { minLength: 1, maxLength: 5 }).map((a) => a.join('')),
  fc.constantFrom(...NASTY),
  fc.tuple(fc.constantFrom('a', 'é', '😀', '\u0000', '%'), fc.integer({ min: 256, max: 70_000 })).map(([u, n]) => u.repeat(n)),
);

/** What no Ajv coercion turns into a scalar of the right type. */
const notAScalar: fc.Arbitrary<Value> = fc.oneof(
  fc.constant({}),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.oneof(fc.integer(), fc.string({ maxLength: 5 })), { minKeys: 1, maxKeys: 3 }),
  fc.constant({ $gt: '' }),
  fc.array(fc.oneof(fc.integer(), fc.string({ maxLength: 5 }), fc.constant(null)), { minLength: 2, maxLength: 4 }),
);

const numberText = (n: number) => new Raw(String(n));

/** A value `schema` refuses, whatever Ajv coerces. */
export function invalidValue(schema: Schema): fc.Arbitrary<Value> {
  const options: Array<fc.Arbitrary<Value>> = [];
  switch (schema.type) {
    case 'string': {
      options.push(notAScalar);
      if (schema.maxLength !== undefined) {
        const over = schema.maxLength + 1;
        options.push(
          fc
            .tuple(fc.constantFrom('x', 'é', '😀', ' ', '\t'), fc.integer({ min: over, max: over + 70_000 }))
            .map(([u, n]) => u.repeat(n)),
        );
      }
      if ((schema.minLength ?? 0) >= 1) options.push(fc.constant(''));
      if (schema.pattern !== undefined) {
        const re = new RegExp(schema.pattern, 'u');
        options.push(hostileString.filter((s) => !re.test(s) && s.length <= (schema.maxLength ?? Infinity)));
      }
      if (schema.enum) options.push(hostileString.filter((s) => !schema.enum!.includes(s)));
      if (schema.format === 'date-time') options.push(fc.constantFrom(...BAD_DATES));
      if (schema.format === 'date') options.push(fc.constantFrom(...BAD_DAYS));
      break;
    }
    case 'integer':
    case 'number': {
      options.push(notAScalar);
      options.push(fc.constantFrom('abc', '', '1,5', '1_000', '１２', '0x', ' ', 'Infinity', '--1'));
      options.push(fc.constantFrom(new Raw('1e400'), new Raw('-1e400')));
      if (schema.type === 'integer') options.push(fc.constantFrom(new Raw('1.5'), new Raw('0.0001'), '2.5'));
      if (schema.minimum !== undefined) {
        const min = schema.minimum;
        options.push(fc.integer({ min: Number.MIN_SAFE_INTEGER, max: min - 1 }).map(numberText));
        options.push(fc.constantFrom(numberText(min - 1), new Raw('-9223372036854775809'), String(min - 1)));
      }
      if (schema.maximum !== undefined) {
        const max = schema.maximum;
        options.push(fc.constantFrom(new Raw(`${max}1`), new Raw('99999999999999999999999'), String(max + 1)));
        if (max < 2 ** 53 - 2) options.push(fc.integer({ min: max + 1, max: 2 ** 53 - 1 }).map(numberText));
      }
      break;
    }
    case 'boolean':
      options.push(notAScalar, fc.constantFrom('yes', 'no', 'TRUE', 'False', '', 2, -1, 0.5));
      break;
    case 'array': {
      options.push(fc.constant({}), fc.dictionary(fc.string({ maxLength: 3 }), fc.integer(), { minKeys: 1, maxKeys: 2 }));
      if ((schema.minItems ?? 0) >= 1) options.push(fc.constant([]));
      if (schema.maxItems !== undefined) {
        options.push(fc.constant(Array.from({ length: schema.maxItems + 1 }, () => ({ method: 'GET', path: '/' }))));
      }
      if (schema.items) {
        options.push(fc.array(invalidValue(schema.items), { minLength: 1, maxLength: 3 }));
      }
      break;
    }
    case 'object': {
      options.push(fc.constantFrom('x', new Raw('1'), new Raw('[1,2]')));
      if (schema.required?.length) options.push(fc.constant({}));
      break;
    }
    default:
      throw new Error(`no invalid value for schema ${JSON.stringify(schema)}`);
  }
  return fc.oneof(...options);
}

const BAD_DAYS = ['yesterday', '2026-13-01', '2026-02-30', '28/11/2026', '2026-11-28T10:00:00Z', '20261128', '-1'];

const BAD_DATES = [
  'yesterday',
  '2026-13-01T00:00:00Z',
  '2026-11-31T00:00:00Z',
  '2026-11-28T25:00:00Z',
  '2026-11-28T10:00:00',
  '2026-11-28 10:00:00+00:00x',
  '28/11/2026',
  '0',
  '-1',
  '99999-01-01T00:00:00Z',
  '2026-11-28T10:00:00+99:00',
  '\u0000',
];

/**
 * Addresses and networks that no whitelist or allowedNetwork may hold: malformed, out of range, mixed families, host
 * bits set. (Surrounding spaces are trimmed by design, so a padded address is a valid one.)
 */
export const INVALID_ADDRESSES = [
  '',
  ' ',
  '256.0.0.1',
  '1.2.3',
  '1.2.3.4.5',
  '1.2.3.4/33',
  '1.2.3.4/-1',
  '1.2.3.4/',
  '/24',
  '1.2.3.4/24/8',
  '1.2.3.4/abc',
  '1.2.3.4/64',
  '203.0.113.7/24',
  '::/129',
  '2001:db8::1/64',
  '2001:db8::/200',
  'gggg::1',
  ':::1',
  '1:2:3:4:5:6:7:8:9',
  '2001:db8::1.2.3.4/200',
  '::ffff:1.2.3.4/129',
  'fe80::1%eth0',
  'fe80::1%25eth0',
  '1.2.3.4 /24',
  '１.２.３.４',
  '١.٢.٣.٤',
  'localhost',
  'example.com',
  '1.2.3.4, 5.6.7.8',
  '1.2.3.4\u0000',
  '-1.2.3.4',
  '999999999999999999999',
  '4294967296',
];

/** Valid networks, but wider than the whitelist's minimum prefix (an allowedNetwork may be that wide). */
const TOO_WIDE_FOR_WHITELIST = ['0.0.0.0/0', '::/0', '10.0.0.0/4', '2000::/3'];

// --------------------------------------------------------------------------------------------------------- faults

const isIdParam = (schema: Schema) => schema.type === 'integer';

/** A path value that names nothing: for an id, anything the router would not read as an existing id. */
function absentPathValue(schema: Schema, fixture: Fixture): fc.Arbitrary<string> {
  const nonEmpty = hostileString.filter((s) => s !== '' && s !== '.' && s !== '..');
  if (isIdParam(schema)) {
    const couldExist = (s: string) => {
      const n = Number(s);
      return s.trim() !== '' && Number.isInteger(n) && n >= 1 && n <= fixture.maxExistingId;
    };
    return fc
      .oneof(
        nonEmpty,
        fc.integer({ min: fixture.maxExistingId + 1, max: 2 ** 53 - 1 }).map(String),
        fc.integer({ min: -(2 ** 53), max: 0 }).map(String),
        fc.constantFrom(
          '9007199254740991',
          '9007199254740992',
          '2147483647',
          '2147483648',
          '4294967296',
          '9223372036854775807',
          '9223372036854775808',
          '-9223372036854775809',
          '99999999999999999999999',
          '1e400',
          '1.5',
          '0x10',
          '-0',
          'Infinity',
        ),
      )
      .filter((s) => !couldExist(s));
  }
  const taken = new Set(fixture.serviceNames.map((n) => n.toLowerCase()));
  return nonEmpty.filter((s) => !taken.has(s.toLowerCase()));
}

interface Parts {
  kind: string;
  path: Record<string, string>;
  query: Array<[string, string]>;
  body?: string;
  contentType?: string;
}

/** The body the route would accept, for the faults that need a valid one around them. */
const VALID_BODIES: Record<string, Record<string, unknown>> = {
  'POST /1.0/dedicatedCloud/{serviceName}/twoFAWhitelist': { ip: '198.51.100.0/24', description: 'office' },
  'POST /1.0/dedicatedCloud/{serviceName}/allowedNetwork': { network: '198.51.100.0/24', description: 'office' },
  'PUT /1.0/dedicatedCloud/{serviceName}/allowedNetwork/{networkAccessId}': { network: '198.51.100.0/24' },
  'POST /1.0/dedicatedCloud/{serviceName}/user': { name: 'mallory' },
  'POST /1.0/auth/credential': { accessRules: [{ method: 'GET', path: '/*' }] },
  'POST /secure/{serviceName}/session': { login: 'mallory', password: 'x' },
  'POST /secure/{serviceName}/passwordLost': { login: 'mallory' },
  'POST /secure/{serviceName}/credentials': { newPassword: 'New-Passw0rd-2fa!' },
  'POST /secure/{serviceName}/operation/{operationId}/validate': { token: '12345678' },
  'POST /1.0/dedicatedCloud/{serviceName}/task/{taskId}/resetTaskState': { reason: 'again' },
  'POST /1.0/dedicatedCloud/{serviceName}/task/{taskId}/changeMaintenanceExecutionDate': {
    executionDate: '2026-11-28T12:00:00+00:00',
  },
  'POST /1.0/dedicatedCloud/{serviceName}/user/{userId}/confirmPhoneNumber': { token: '12345678' },
  'POST /1.0/auth/oauth2/token': { grant_type: 'client_credentials', client_id: 'nobody', client_secret: 'nothing' },
};
const validBody = (route: Route) => VALID_BODIES[`${route.method} ${route.path}`] ?? {};

/** Methods whose body Fastify parses: a body fault on a GET would be ignored, not refused. */
const BODY_METHODS = new Set(['POST', 'PUT', 'DELETE']);

const BROKEN_JSON = [
  '{',
  '{"a":1,}',
  "{'a':1}",
  '{"a":NaN}',
  '{"a":undefined}',
  '[1,2',
  '{"a":"\\x41"}',
  '{"a":"\\ud800"',
  '\u0000',
  '{"a":1}}',
  '{"a":1} trailing',
  'nul',
  '{"a":01}',
  '\ufeff{"a":',
  '{"a":"\u0000"}',
  '{"a":"\\u0000"}',
];
const WRONG_TYPES = [
  'text/plain',
  'text/html',
  'application/xml',
  'application/octet-stream',
  'multipart/form-data; boundary=xyz',
  'image/png',
  'application/javascript',
  'application/x-www-form-urlencoded',
  'application/jsonx',
  'json',
  'application/ json',
  '*/*',
];

/** The faults a route can carry when its caller is authenticated: each one alone makes the request invalid. */
function faultsOf(route: Route, fixture: Fixture): Array<fc.Arbitrary<Parts>> {
  const basePath = () => Object.fromEntries(route.pathParams.map((p) => [p.name, fixture.pathValues[p.name] ?? '1']));
  const faults: Array<fc.Arbitrary<Parts>> = [];
  for (const p of route.pathParams) {
    faults.push(
      absentPathValue(p.schema, fixture).map((v) => ({
        kind: `path:${p.name}`,
        path: { ...basePath(), [p.name]: v },
        query: [],
      })),
    );
  }
  for (const q of route.queryParams) {
    // A query parameter without a constraint (a free-text filter) has no invalid value under its maximum length.
    // A repeatable filter (an array in the document) is sent as repeated parameters: one invalid item is enough.
    const scalar = q.schema.type === 'array' && q.schema.items ? q.schema.items : q.schema;
    // A free-text filter (a string with no constraint) has no invalid value: nothing to send.
    const constrained = ['maxLength', 'minLength', 'pattern', 'enum', 'format'].some((k) => k in scalar);
    if (scalar.type === 'string' && !constrained) continue;
    const value = invalidValue(scalar).filter((v) => typeof v === 'string' || typeof v === 'number' || v instanceof Raw);
    faults.push(
      fc.tuple(value, fc.boolean()).map(([v, duplicated]) => {
        const text = v instanceof Raw ? v.text : String(v);
        // Duplicated, the parameter is an array of two: refused for a scalar whatever its values.
        return {
          kind: `query:${q.name}${duplicated ? ':duplicated' : ''}`,
          path: basePath(),
          query: duplicated
            ? ([
                [q.name, '1'],
                [q.name, text],
              ] as Array<[string, string]>)
            : [[q.name, text] as [string, string]],
        };
      }),
    );
  }
  if (!BODY_METHODS.has(route.method)) return faults;

  faults.push(fc.constantFrom(...BROKEN_JSON).map((body) => ({ kind: 'body:brokenJson', path: basePath(), query: [], body })));
  // The token endpoint takes forms too (OAuth2's own encoding), though the document lists JSON only.
  const takesForms = route.path.endsWith('/oauth2/token');
  const wrongTypes = WRONG_TYPES.filter(
    (ct) => !route.contentTypes.includes(ct) && !(takesForms && ct === 'application/x-www-form-urlencoded'),
  );
  faults.push(
    fc.tuple(fc.constantFrom(...wrongTypes), fc.oneof(fc.constant(json(validBody(route))), hostileString)).map(([ct, body]) => ({
      kind: `contentType:${ct.split(/[;/ ]/)[0] || ct}`,
      path: basePath(),
      query: [],
      body,
      contentType: ct,
    })),
  );
  // Keys that must never reach an object's prototype: refused by the parser wherever they are.
  faults.push(
    fc
      .tuple(
        fc.constantFrom('{"__proto__":{"admin":true}}', '{"constructor":{"prototype":{"admin":true}}}', 'nested'),
        fc.constant(validBody(route)),
      )
      .map(([text, valid]) => ({
        kind: 'body:prototypeKey',
        path: basePath(),
        query: [],
        body:
          text === 'nested'
            ? objectText([...Object.entries(valid), ['x', new Raw('{"a":{"__proto__":{"polluted":1}}}')]])
            : text.replace(/^\{/, `{${Object.keys(valid).length ? `${objectText(Object.entries(valid)).slice(1, -1)},` : ''}`),
      })),
  );
  const body = route.body;
  if (!body?.properties) return faults;
  const valid = validBody(route);
  for (const [name, schema] of Object.entries(body.properties)) {
    faults.push(
      invalidValue(schema).map((v) => ({
        kind: `body:${name}`,
        path: basePath(),
        query: [],
        body: objectText([...Object.entries(valid).filter(([k]) => k !== name), [name, v]]),
      })),
    );
  }
  for (const name of body.required ?? []) {
    faults.push(
      fc.constant({
        kind: `body:missing:${name}`,
        path: basePath(),
        query: [],
        body: objectText(Object.entries(valid).filter(([k]) => k !== name)),
      }),
    );
  }
  if (body.additionalProperties === false) {
    faults.push(
      fc
        .tuple(fc.constantFrom('constructor', 'prototype', 'toString', 'hasOwnProperty', '$where', 'isAdmin', ''), fc.jsonValue())
        .map(([key, v]) => ({
          kind: `body:extraKey`,
          path: basePath(),
          query: [],
          body: objectText([...Object.entries(valid).filter(([k]) => k !== key), [key, v]]),
        })),
    );
  }
  // Addresses: schema-valid strings that name no network (the service refuses them).
  for (const field of ['ip', 'network']) {
    if (!body.properties[field]) continue;
    faults.push(
      fc.constantFrom(...INVALID_ADDRESSES, ...(field === 'ip' ? TOO_WIDE_FOR_WHITELIST : [])).map((address) => ({
        kind: `body:${field}:invalidAddress`,
        path: basePath(),
        query: [],
        body: objectText([...Object.entries(valid).filter(([k]) => k !== field), [field, address]]),
      })),
    );
  }
  return faults;
}

// ---------------------------------------------------------------------------------------------------- credentials

/** Header values as HTTP carries them: visible ASCII, spaces, tabs and Latin-1 bytes. */
const headerText = (maxLength: number) =>
  fc.string({
    unit: fc.oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0x80, max: 0xff })).map((c) => String.fromCharCode(c)),
    minLength: 1,
    maxLength,
  });

const huge = fc.integer({ min: 4096, max: 60_000 }).map((n) => 'A'.repeat(n));

/** Credentials that are missing, malformed, unknown, oversized or duplicated: none lets the caller in. */
function badCredentials(
  route: Route,
  fixture: Fixture,
): fc.Arbitrary<{ kind: string; headers: Record<string, string | string[]> }> {
  const token = route.auth === 'session' ? fixture.sessionToken : fixture.apiToken;
  const unknownToken = fc.stringMatching(/^[A-Za-z0-9_-]{20,64}$/);
  return fc.oneof(
    fc.constant({ kind: 'none', headers: {} }),
    fc
      .oneof(
        unknownToken.map((t) => `Bearer ${t}`),
        headerText(60).map((t) => `Bearer ${t}`),
        huge.map((t) => `Bearer ${t}`),
        fc.constantFrom(
          'Bearer',
          'Bearer ',
          'Basic Zm9vOmJhcg==',
          'Digest x',
          'Token abc',
          `bearer  ${token}x`,
          `Bearer ${token} x`,
        ),
        headerText(80),
      )
      .map((v) => ({ kind: 'authorization', headers: { authorization: v } })),
    // The real token sent twice, or after a bogus one: ambiguous, refused.
    fc
      .constantFrom([`Bearer ${token}`, `Bearer ${token}`], ['Bearer nope', `Bearer ${token}`], [`Bearer ${token}`, 'Basic eA=='])
      .map((v) => ({ kind: 'authorization:duplicated', headers: { authorization: [...v] } })),
    fc
      .record(
        {
          'x-ovh-application': fc.oneof(fc.stringMatching(/^[0-9a-f]{16}$/), headerText(40), huge),
          'x-ovh-consumer': fc.oneof(fc.stringMatching(/^[0-9a-f]{32}$/), headerText(40), huge),
          'x-ovh-timestamp': fc.oneof(
            fc.constantFrom('-1', '0', '1e400', '99999999999999999999', 'abc', ' ', '1.5', '1764324000'),
            headerText(20),
          ),
          'x-ovh-signature': fc.oneof(fc.stringMatching(/^\$1\$[0-9a-f]{40}$/), headerText(50), huge),
        },
        { requiredKeys: [] },
      )
      .map((h) => ({ kind: 'ovh', headers: h })),
    fc
      .tuple(fc.constantFrom('x-ovh-application', 'x-ovh-consumer', 'x-ovh-signature', 'x-ovh-timestamp'), headerText(20))
      .map(([name, v]) => ({ kind: `${name}:duplicated`, headers: { [name]: [v, `${v}2`] } })),
  );
}

// ------------------------------------------------------------------------------------------------------ requests

/** Percent-encodes the UTF-8 bytes of `s` (a lone surrogate becomes U+FFFD, as on the wire). */
const encode = (s: string) =>
  [...Buffer.from(s, 'utf8')]
    .map((b) =>
      /[A-Za-z0-9_.~-]/.test(String.fromCharCode(b))
        ? String.fromCharCode(b)
        : `%${b.toString(16).padStart(2, '0').toUpperCase()}`,
    )
    .join('');

const encodePath = (route: Route, values: Record<string, string>) =>
  route.path.replace(/\{([^}]+)\}/g, (_, name: string) => encode(values[name] ?? ''));

function toRequest(route: Route, parts: Parts, headers: Record<string, string | string[]>, kind: string): HostileRequest {
  const query = parts.query.map(([k, v]) => `${encode(k)}=${encode(v)}`).join('&');
  const all: Record<string, string | string[]> = { ...headers };
  if (parts.body !== undefined) all['content-type'] = parts.contentType ?? 'application/json';
  return {
    route: `${route.method} ${route.path}`,
    kind,
    method: route.method,
    url: `${encodePath(route, parts.path)}${query ? `?${query}` : ''}`,
    headers: all,
    ...(parts.body !== undefined ? { payload: parts.body } : {}),
  };
}

/**
 * Requests with valid credentials (a bearer token, or a /secure session token): every route with something to
 * break, one fault each.
 */
export function authenticatedRequests(routes: Route[], fixture: Fixture): fc.Arbitrary<HostileRequest> {
  const perRoute = routes.flatMap((route) => {
    const faults = faultsOf(route, fixture);
    if (faults.length === 0) return [];
    const headers: Record<string, string> =
      route.auth === 'api'
        ? { authorization: `Bearer ${fixture.apiToken}` }
        : route.auth === 'session'
          ? { authorization: `Bearer ${fixture.sessionToken}` }
          : {};
    return [fc.oneof(...faults).map((parts) => toRequest(route, parts, headers, parts.kind))];
  });
  return fc.oneof(...perRoute);
}

/**
 * Requests without valid credentials. A route that needs a caller may come well formed (the credentials are the
 * fault); a public one always carries a fault of its own too.
 */
export function unauthenticatedRequests(routes: Route[], fixture: Fixture): fc.Arbitrary<HostileRequest> {
  const perRoute = routes.flatMap((route) => {
    const faults = faultsOf(route, fixture);
    const wellFormed = fc.constant<Parts>({
      kind: 'wellFormed',
      path: Object.fromEntries(route.pathParams.map((p) => [p.name, fixture.pathValues[p.name] ?? '1'])),
      query: [],
      ...(BODY_METHODS.has(route.method) && route.method !== 'DELETE' ? { body: json(validBody(route)) } : {}),
    });
    const candidates = route.auth === 'none' ? faults : [wellFormed, ...faults];
    if (candidates.length === 0) return [];
    return [
      fc
        .tuple(fc.oneof(...candidates), badCredentials(route, fixture))
        .map(([parts, cred]) => toRequest(route, parts, cred.headers, `${parts.kind}+unauthenticated:${cred.kind}`)),
    ];
  });
  return fc.oneof(...perRoute);
}
