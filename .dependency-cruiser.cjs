/**
 * Import rules of pitstop's layout (see ../shared/STYLE.md and README "Architecture"): data flows
 * one way, http → engine → Store contract ← stores, and only runtimes assemble. `npm test` runs
 * this check first and fails on any violation.
 */
const CORE = "^src/(schedule|recurrence|errors|types|log)[.]ts$";

/** A rule that lets `from` import only types (`import type`) from `to`. */
const onlyTypes = (name, from, to, comment) => ({
  name,
  ...(comment && { comment }),
  severity: "error",
  from: { path: from },
  to: { path: to, dependencyTypesNot: ["type-only"] },
});

module.exports = {
  forbidden: [
    {
      name: "engine-imports-only-core",
      comment: "The engine knows the rules and nothing else: no store, HTTP, webhook, runtime or package import.",
      severity: "error",
      from: { path: "^src/engine/" },
      to: { pathNot: [`^src/engine/`, CORE] },
    },
    {
      name: "stores-import-types-and-errors",
      comment: "A store knows only how to persist and claim: it imports the contract types, the error class, the stores' shared helpers and its driver (a SQLite adapter's file (Node, Deno, Durable Object) imports the SQLite store it serves and its group commit).",
      severity: "error",
      from: { path: "^src/stores/" },
      to: { path: "^src/", pathNot: ["^src/types[.]ts$", "^src/errors[.]ts$", "^src/stores/shared[.]ts$", "^src/stores/sqlite(-batch)?[.]ts$"] },
    },
    {
      name: "http-uses-the-engine-interface",
      comment: "The app talks to the engine only through its public surface (src/engine/index.ts).",
      severity: "error",
      from: { path: "^src/http/" },
      to: { path: "^src/", pathNot: ["^src/http/", "^src/ui/app[.]tsx$", "^src/engine/index[.]ts$", "^src/api-schemas[.]ts$", "^src/metrics/index[.]ts$", CORE] },
    },
    {
      name: "ui-uses-the-engine-interface",
      comment: "The dashboard reads through the engine's public surface and shares the app's auth and error answers; it never claims, and builds no metrics.",
      severity: "error",
      from: { path: "^src/ui/" },
      to: { path: "^src/", pathNot: ["^src/ui/", "^src/engine/index[.]ts$", "^src/http/auth[.]ts$", "^src/http/errors[.]ts$", "^src/metrics/index[.]ts$", CORE] },
    },
    onlyTypes("ui-takes-only-types-from-metrics", "^src/ui/", "^src/metrics/"),
    onlyTypes("http-takes-only-types-from-metrics", "^src/http/", "^src/metrics/", "The app is handed its metrics; it serves and feeds them but never builds them."),
    {
      name: "metrics-use-the-engine-interface",
      comment: "Metrics listen to the engine's events through its public surface; they import nothing else of src/.",
      severity: "error",
      from: { path: "^src/metrics/" },
      to: { path: "^src/", pathNot: ["^src/metrics/", "^src/engine/index[.]ts$", CORE] },
    },
    {
      name: "webhook-uses-the-engine-interface",
      comment: "Webhook delivery talks to the engine only through its public surface.",
      severity: "error",
      from: { path: "^src/webhook/" },
      to: { path: "^src/", pathNot: ["^src/webhook/", "^src/engine/index[.]ts$", CORE] },
    },
    {
      name: "core-modules-stay-leaves",
      comment: "schedule, recurrence, errors and types are leaves every layer may use; they import no layer.",
      severity: "error",
      from: { path: CORE },
      to: { path: "^src/", pathNot: [CORE] },
    },
    {
      name: "api-schemas-stay-a-leaf",
      comment: "The request schemas shared by server and client import zod, the engine's name and message rules, errors and types (the view types type-only).",
      severity: "error",
      from: { path: "^src/api-schemas[.]ts$" },
      to: { path: "^src/", pathNot: ["^src/engine/checks[.]ts$", "^src/engine/api[.]ts$", "^src/errors[.]ts$", "^src/types[.]ts$"] },
    },
    onlyTypes("api-schemas-take-only-types-from-the-engine-api", "^src/api-schemas[.]ts$", "^src/engine/api[.]ts$"),
    {
      name: "engine-checks-stay-a-leaf",
      comment: "The name and message rules are shared with the API schemas (and through them the client's types): they import only errors and types.",
      severity: "error",
      from: { path: "^src/engine/checks[.]ts$" },
      to: { path: "^src/", pathNot: ["^src/errors[.]ts$", "^src/types[.]ts$"] },
    },
    {
      name: "client-imports-no-server-code",
      comment: "The client runs in browsers: it takes only types from the shared API schemas, nothing else of src/.",
      severity: "error",
      from: { path: "^src/client/" },
      to: { path: "^src/", pathNot: ["^src/client/", "^src/api-schemas[.]ts$"] },
    },
    onlyTypes("client-takes-only-types-from-the-schemas", "^src/client/", "^src/api-schemas[.]ts$", "A value import would put zod and the engine's checks in the client's bundle."),
    {
      name: "only-runtimes-assemble",
      comment: "Nothing in src/ but a runtime imports a runtime.",
      severity: "error",
      from: { path: "^src/", pathNot: "^src/runtimes/" },
      to: { path: "^src/runtimes/" },
    },
    {
      name: "web-standards-in-the-core",
      comment: "node: built-ins only in src/runtimes and src/stores, so the core bundles for workerd unchanged.",
      severity: "error",
      from: { path: "^src/", pathNot: ["^src/runtimes/", "^src/stores/"] },
      to: { dependencyTypes: ["core"] },
    },
    {
      name: "no-circular",
      severity: "error",
      from: { path: "^src/" },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { exportsFields: ["exports"], conditionNames: ["import", "require", "node", "default"] },
  },
};
