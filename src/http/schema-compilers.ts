import { createHash } from 'node:crypto';
import { AjvCompiler } from '@fastify/ajv-compiler';
import { SerializerSelector } from '@fastify/fast-json-stringify-compiler';
import type { FastifyServerOptions } from 'fastify';

type CompilersFactory = NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>;

/**
 * Fastify's own schema compilers (Ajv for validation, fast-json-stringify for responses), with their functions kept
 * for the process by what they were compiled from: the schema's JSON, the shared schemas' and the options'. A route
 * whose schema was compiled before, by this app or another one in the process, takes the same function instead of
 * compiling it again.
 *
 * Why: the API is registered twice (`/1.0` and `/v1`), and a server compiled every one of its schemas twice at each
 * start (about half a second); a process that builds many apps (the test suites, one per test file) spent more time
 * compiling schemas than running its tests. Route schemas are built anew by each registration, so the key is their
 * content, not their identity. A compiled function holds no state between calls but Ajv's `errors`, which Fastify
 * reads synchronously after each call.
 *
 * Each app compiles what it misses with its own Ajv, as Fastify's defaults do. Options that JSON cannot tell apart
 * (a RegExp format, a plugin, a keyword's function) make a key that could match another app's: with those, the app
 * compiles everything itself, as without this module. Fastify lowercases the names of a route's header schema only for
 * its default compilers; no route here validates headers, and one that did would be refused when the app is built
 * rather than matched case-sensitively.
 */
export function cachedSchemaCompilers(): CompilersFactory {
  const ajvFromPool = AjvCompiler();
  const fastJsonStringify = SerializerSelector();
  const buildValidator: ValidatorBuilder = (externalSchemas, options) => {
    // This app's Ajv, made on its first miss only (a new Ajv and its formats cost about 0.1 s).
    let compile: ReturnType<typeof ajvFromPool> | undefined;
    const context = contextOf(externalSchemas, options);
    return (route) => {
      if (route.httpPart === 'headers') {
        throw new Error(`${route.method} ${route.url}: header schemas are not supported by src/http/schema-compilers.ts`);
      }
      const compileRoute = () => {
        compile ??= ajvFromPool(externalSchemas, options as Parameters<typeof ajvFromPool>[1]);
        return compile(route as Parameters<typeof compile>[0]);
      };
      return context === undefined
        ? compileRoute()
        : cached(validators, `${context}\n${route.httpPart}`, route.schema, compileRoute);
    };
  };
  const buildSerializer: SerializerBuilder = (externalSchemas, options) => {
    const compile = fastJsonStringify(externalSchemas, options as Parameters<typeof fastJsonStringify>[1]);
    const context = contextOf(externalSchemas, options);
    return (route) => {
      const compileRoute = () => compile(route as Parameters<typeof compile>[0]);
      return context === undefined ? compileRoute() : cached(serializers, context, route.schema, compileRoute);
    };
  };
  return { buildValidator, buildSerializer };
}

type ValidatorBuilder = NonNullable<CompilersFactory['buildValidator']>;
type SerializerBuilder = NonNullable<CompilersFactory['buildSerializer']>;

const validators = new Map<string, ReturnType<ReturnType<ValidatorBuilder>>>();
const serializers = new Map<string, ReturnType<ReturnType<SerializerBuilder>>>();

function cached<F>(cache: Map<string, F>, context: string, schema: unknown, compile: () => F): F {
  const key = createHash('sha256').update(context).update('\n').update(JSON.stringify(schema)).digest('base64');
  let fn = cache.get(key);
  if (fn === undefined) {
    fn = compile();
    cache.set(key, fn);
  }
  return fn;
}

/** The shared schemas and the options as a key; `undefined` when the options hold what JSON would lose. */
function contextOf(externalSchemas: unknown, options: unknown): string | undefined {
  // Fastify passes no serializer options unless the server sets some.
  const plain = options === undefined || plainJson(options);
  return plain ? `${JSON.stringify(externalSchemas)}\n${JSON.stringify(options ?? null)}` : undefined;
}

function plainJson(value: unknown): boolean {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isFinite(value);
  if (Array.isArray(value)) return value.every(plainJson);
  if (typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return (proto === Object.prototype || proto === null) && Object.values(value).every(plainJson);
}

/** How many distinct schemas the process has compiled through the cache (tests check that a second app adds none). */
export const compiledSchemaCount = () => ({ validators: validators.size, serializers: serializers.size });
