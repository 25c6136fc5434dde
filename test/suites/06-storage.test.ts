// What is stored: key rotation, secrets at rest and in logs, retention, migrations.
// One test process for these files (see scripts/test.mjs); each file still runs alone: npm test -- test/<file>.test.ts
import '../keys-rotate.test.js';
import '../secrets-at-rest.test.js';
import '../retention.test.js';
import '../migrations.test.js';
import '../audit.test.js';
import '../audit-retention.test.js';
