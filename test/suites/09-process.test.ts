// The process and its edges: configuration, message senders, the OpenAPI document, the smoke test, the graceful stop.
// One test process for these files (see scripts/test.mjs); each file still runs alone: npm test -- test/<file>.test.ts
import '../config.test.js';
import '../senders.test.js';
import '../openapi.test.js';
import '../smoke.test.js';
import '../server-shutdown.test.js';
import '../schema-compilers.test.js';
