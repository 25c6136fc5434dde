// Conformance with OVH's published dedicatedCloud and auth schema, and the routes and parameters it brought.
// One test process for these files (see scripts/test.mjs); each file still runs alone: npm test -- test/<file>.test.ts
import '../ovh-schema.test.js';
import '../phone-number.test.js';
import '../ovh-users.test.js';
import '../ovh-routes.test.js';
import '../ovh-generated-client.test.js';
