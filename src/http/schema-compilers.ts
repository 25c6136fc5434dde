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
 * Fastify lowercases the names of a route's header schema only for its default compilers; no route here validates
 * headers, and one that did would be refused when the app is built rather than matched case-sensitively.
 */
export function cachedSchemaCompilers(): CompilersFactory {
  return { buildValidator, buildSerializer };
}

type ValidatorBuilder = NonNullable<CompilersFactory['buildValidator']>;
type SerializerBuilder = NonNullable<CompilersFactory['buildSerializer']>;

const ajvFromPool = AjvCompiler();
const fastJsonStringify = SerializerSelector();
const validators = new Map<string, ReturnType<ReturnType<ValidatorBuilder>>>();
const serializers = new Map<string, ReturnType<ReturnType<SerializerBuilder>>>();

const buildValidator: ValidatorBuilder = (externalSchemas, options) => {
  const compile = ajvFromPool(externalSchemas, options as Parameters<typeof ajvFromPool>[1]);
  const context = `${JSON.stringify(externalSchemas)}\n${JSON.stringify(options)}\n`;
  return (route) => {
    if (route.httpPart === 'headers') {
      throw new Error(`${route.method} ${route.url}: header schemas are not supported by src/http/schema-compilers.ts`);
    }
    const key = `${context}${route.httpPart}\n${JSON.stringify(route.schema)}`;
    let validate = validators.get(key);
    if (validate === undefined) {
      validate = compile(route as Parameters<typeof compile>[0]);
      validators.set(key, validate);
    }
    return validate;
  };
};

const buildSerializer: SerializerBuilder = (externalSchemas, options) => {
  const compile = fastJsonStringify(externalSchemas, options as Parameters<typeof fastJsonStringify>[1]);
  const context = `${JSON.stringify(externalSchemas)}\n${JSON.stringify(options)}\n`;
  return (route) => {
    const key = `${context}${JSON.stringify(route.schema)}`;
    let serialize = serializers.get(key);
    if (serialize === undefined) {
      serialize = compile(route as Parameters<typeof compile>[0]);
      serializers.set(key, serialize);
    }
    return serialize;
  };
};
