// Users, operations validated by SMS token, and the attacks of the second security review.
// One test process for these files (see scripts/test.mjs); each file still runs alone: npm test -- test/<file>.test.ts
import '../users.test.js';
import '../operations.test.js';
import '../attacks.test.js';
