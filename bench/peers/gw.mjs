// graphile-worker peer for bench/run.sh.
//   node gw.mjs setup                  create/upgrade the graphile_worker schema
//   node gw.mjs work                   run one worker process until SIGTERM
// Connection: DATABASE_URL. Knobs (env): GW_CONCURRENCY (24), GW_LOCAL_QUEUE (500),
// GW_COMPLETE_DELAY ms (250; -1 disables batched completion), GW_POLL_MS (1000).
// Prints "ready" on stdout once the worker is running.
import { run, runMigrations, Logger } from "graphile-worker";

const connectionString = process.env.DATABASE_URL;
const quiet = new Logger(() => (level, message) => {
  if (level === "error") console.error(message);
});
const mode = process.argv[2];

if (mode === "setup") {
  await runMigrations({ connectionString, logger: quiet });
  console.log("ok");
} else if (mode === "work") {
  const concurrency = Number(process.env.GW_CONCURRENCY ?? 24);
  const localQueue = Number(process.env.GW_LOCAL_QUEUE ?? 500);
  const batchDelay = Number(process.env.GW_COMPLETE_DELAY ?? 250);
  const runner = await run({
    connectionString,
    concurrency,
    pollInterval: Number(process.env.GW_POLL_MS ?? 1000),
    noHandleSignals: false,
    logger: quiet,
    taskList: {
      noop: async () => {},
    },
    preset: {
      worker: {
        maxPoolSize: Math.max(10, concurrency + 2),
        localQueue: localQueue > 1 ? { size: localQueue } : undefined,
        completeJobBatchDelay: batchDelay,
        failJobBatchDelay: batchDelay,
      },
    },
  });
  console.log("ready");
  await runner.promise;
} else {
  console.error("usage: node gw.mjs setup|work");
  process.exit(2);
}
