// Same shape as `autodevops bench queue`: enqueue N no-op jobs in bulk, drain them with one
// worker at concurrency C, print one JSON line. Usage: node bench.mjs [jobs] [concurrency]
// Env: REDIS_URL (default redis://127.0.0.1:6379).
import { Queue, Worker } from "bullmq";

const jobs = Number(process.argv[2] ?? 20000);
const concurrency = Number(process.argv[3] ?? 32);
const url = new URL(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
const connection = { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: null };
const name = `bench-${Date.now()}`;
const queue = new Queue(name, { connection });

const t0 = performance.now();
for (let i = 0; i < jobs; i += 1000) {
  const batch = [];
  for (let j = i; j < Math.min(jobs, i + 1000); j++) {
    batch.push({ name: "noop", data: { seq: j, sent: Date.now() }, opts: { removeOnComplete: true } });
  }
  await queue.addBulk(batch);
}
const enqueueSecs = (performance.now() - t0) / 1000;

const latencies = [];
const t1 = performance.now();
await new Promise((resolve) => {
  const worker = new Worker(name, async (job) => {
    latencies.push(Date.now() - job.data.sent);
    if (latencies.length >= jobs) resolve(worker);
  }, { connection, concurrency });
}).then((worker) => worker.close());
const drainSecs = (performance.now() - t1) / 1000;
latencies.sort((a, b) => a - b);
const pct = (p) => latencies[Math.round((latencies.length - 1) * p)];
console.log(JSON.stringify({
  jobs, concurrency, workers: 1,
  enqueue_per_sec: jobs / enqueueSecs, jobs_per_sec: jobs / drainSecs,
  p50_ms: pct(0.5), p99_ms: pct(0.99),
}));
await queue.obliterate({ force: true });
await queue.close();
