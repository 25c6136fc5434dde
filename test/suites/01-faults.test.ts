// Faults and hostile input: requests generated from the OpenAPI document, crashes, database outages.
// One test process for these files (see scripts/test.mjs); each file still runs alone: npm test -- test/<file>.test.ts
import '../hostile-input.test.js';
import '../crash-restart.test.js';
import '../database-outage.test.js';
