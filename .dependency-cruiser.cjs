/**
 * The layers of src/ and the one direction their imports may take (docs/architecture.md draws them):
 *   root (composition, app, server, cli, worker)  →  features  →  infrastructure
 * `npm run lint` fails on any circle or any arrow against that direction.
 */
const ROOT =
  '^src/(app|api-routes|composition|server|cli|commands|control-socket|openapi-export|runtime|seed|dev-cert)\\.ts$|^src/worker/';
const INFRA = '^src/(http|security|db|notify|core|metrics)/|^src/(config|logger|clock)\\.ts$';
const FEATURES = '^src/features/';
/** A repository (SQL), the database module, or a script that is one (the keys rotation reads every sealed column). */
const SQL_ALLOWED = '(^|/)repository\\.ts$|-repository\\.ts$|^src/db/';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'No import circle, however long.', from: {}, to: { circular: true } },
    {
      name: 'infrastructure-imports-no-feature',
      severity: 'error',
      comment: 'http, security, db, notify, core, metrics, config, logger and clock know nothing of the features or the root.',
      from: { path: INFRA },
      to: { path: `${FEATURES}|${ROOT}` },
    },
    {
      name: 'features-import-no-root',
      severity: 'error',
      comment: 'A feature never reaches up to the composition root, the app or the worker: they are handed in.',
      from: { path: FEATURES },
      to: { path: ROOT },
    },
    {
      name: 'feature-reaches-another-through-its-api-only',
      severity: 'error',
      comment:
        "A feature reaches another only through a service interface handed in, typed by that feature's api.ts (a leaf of types and names).",
      from: { path: '^src/features/([^/]+)/' },
      to: { path: FEATURES, pathNot: ['^src/features/$1/', '^src/features/[^/]+/api\\.ts$'] },
    },
    {
      name: 'feature-api-is-a-leaf',
      severity: 'error',
      comment: "A feature's api.ts holds types and names: it imports only infrastructure and other api.ts files.",
      from: { path: '^src/features/[^/]+/api\\.ts$' },
      to: { path: `${FEATURES}|${ROOT}`, pathNot: '^src/features/[^/]+/api\\.ts$' },
    },
    {
      name: 'sql-only-in-repositories',
      severity: 'error',
      comment: 'Only repositories (and the database module) build queries: anything else imports Kysely types only.',
      from: { path: '^src/', pathNot: SQL_ALLOWED },
      to: { path: 'node_modules/kysely/', dependencyTypesNot: ['type-only'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    includeOnly: '^src/|node_modules/kysely/',
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
