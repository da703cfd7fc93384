'use strict';
// node-postgres named statements through pgshift in transaction pooling.
//
// Usage: node named_statements.js URL WORKERS ITERATIONS   (NODE_PATH must reach the pg package)
// Run by transaction_pool_test. A pg.Pool of WORKERS connections, one held by each of WORKERS
// concurrent loops that run ITERATIONS x 3 named queries ({name, text, values}): node-postgres
// sends Parse for a name only the first time a connection uses it, then only Bind/Execute, so
// pgshift has to bring the statement to whichever server it picks. The same names are used on
// every connection, one ("mine") with a different text on each. Every 10th iteration runs
// inside BEGIN/COMMIT, where all three queries must see the same backend.
// Prints "named statements: ok queries=N distinct_backends=M"; exits 1 on the first failure.
const { Pool } = require('pg');

function check(condition, what) {
  if (!condition) throw new Error('check failed: ' + what);
}

async function iteration(runner, w, i, pids) {
  const add = await runner.query({
    name: 'add',
    text: 'SELECT $1::int + $2::int AS sum, pg_backend_pid() AS pid',
    values: [i, w],
  });
  check(add.rows[0].sum === i + w, `add ${i}+${w} = ${add.rows[0].sum}`);
  const echo = await runner.query({
    name: 'echo',
    text: "SELECT $1::text || '/' || $2::text AS v, pg_backend_pid() AS pid",
    values: [`w${w}`, `i${i}`],
  });
  check(echo.rows[0].v === `w${w}/i${i}`, `echo ${echo.rows[0].v}`);
  // The same name with a different text on each worker: names belong to a connection.
  const mine = await runner.query({
    name: 'mine',
    text: `SELECT ${w}::int * $1::int AS v, pg_backend_pid() AS pid`,
    values: [i],
  });
  check(mine.rows[0].v === w * i, `mine ${w}*${i} = ${mine.rows[0].v}`);
  for (const r of [add, echo, mine]) pids.add(r.rows[0].pid);
  return [add.rows[0].pid, echo.rows[0].pid, mine.rows[0].pid];
}

async function main() {
  const [url, workersArg, iterationsArg] = process.argv.slice(2);
  const workers = Number(workersArg);
  const iterations = Number(iterationsArg);
  const pids = new Set();
  let queries = 0;
  const pool = new Pool({ connectionString: url, max: workers });
  pool.on('error', (e) => {
    console.error('idle client error:', e);
    process.exitCode = 1;
  });
  const loops = [];
  for (let w = 1; w <= workers; w++) {
    loops.push((async () => {
      // Each worker keeps one pool connection, so all WORKERS connections are open at once and
      // "mine" has a different text on each of them.
      const client = await pool.connect();
      try {
        for (let i = 0; i < iterations; i++) {
          if (i % 10 === 0) {
            await client.query('BEGIN');
            const seen = await iteration(client, w, i, pids);
            await client.query('COMMIT');
            check(new Set(seen).size === 1, `one transaction on backends ${seen}`);
          } else {
            await iteration(client, w, i, pids);
          }
          queries += 3;
        }
      } finally {
        client.release();
      }
    })());
  }
  await Promise.all(loops);
  await pool.end();
  console.log(`named statements: ok queries=${queries} distinct_backends=${pids.size}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
