// pg-boss peer for bench/run.sh.
//   node boss.mjs setup              create the pgboss schema and the queue
//   node boss.mjs enqueue N          boss.insert() N jobs in one statement; prints ms taken
//   node boss.mjs work               one worker process until SIGTERM; prints "ready"
// Connection: DATABASE_URL. Knobs (env): BOSS_QUEUE (bench-noop), BOSS_BATCH (500),
// BOSS_LOCAL_CONCURRENCY (4), BOSS_POLL_S (0.5).
import { PgBoss } from "pg-boss";

const queue = process.env.BOSS_QUEUE ?? "bench-noop";
const mode = process.argv[2];
const work = mode === "work";
const boss = new PgBoss({
  connectionString: process.env.DATABASE_URL,
  max: 10,
  // a worker only works: no cron, no maintenance/supervision in the hot path
  schedule: false,
  supervise: mode === "setup",
  migrate: mode === "setup",
});
boss.on("error", (e) => console.error("pg-boss error:", e.message ?? e));
await boss.start();

if (mode === "setup") {
  await boss.createQueue(queue).catch((e) => {
    if (!/exist/i.test(String(e.message))) throw e;
  });
  console.log("ok");
  await boss.stop({ graceful: false, wait: true });
} else if (mode === "enqueue") {
  const n = Number(process.argv[3]);
  const jobs = Array.from({ length: n }, () => ({ data: {} }));
  const t0 = process.hrtime.bigint();
  // chunks keep the parameter size sane; BOSS_INSERT_CHUNK=0 sends one statement
  const chunk = Number(process.env.BOSS_INSERT_CHUNK ?? 0) || n;
  for (let i = 0; i < n; i += chunk) await boss.insert(queue, jobs.slice(i, i + chunk));
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  console.log(ms.toFixed(1));
  await boss.stop({ graceful: false, wait: true });
} else if (work) {
  const batchSize = Number(process.env.BOSS_BATCH ?? 500);
  await boss.work(
    queue,
    {
      batchSize,
      localConcurrency: Number(process.env.BOSS_LOCAL_CONCURRENCY ?? 4),
      pollingIntervalSeconds: Number(process.env.BOSS_POLL_S ?? 0.5),
      burstWhenBatchFull: true,
    },
    async (jobs) => {
      // a batch handler: resolving completes every job of the batch in one statement
      return jobs.length;
    },
  );
  console.log("ready");
  const stop = async () => {
    await boss.stop({ graceful: true, wait: true, timeout: 5000 });
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
} else {
  console.error("usage: node boss.mjs setup|enqueue N|work");
  process.exit(2);
}
