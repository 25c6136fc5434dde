// Swagger UI driven in a real browser (Chromium): its own process, the browser being the heaviest part of a run.
// One test process for these files (see scripts/test.mjs); each file still runs alone: npm test -- test/<file>.test.ts
import '../swagger-ui-browser.test.js';
