// Store-only throughput of the peer: the send transaction of server.mjs
// (bump last_seq, insert, advance the sender's read mark) run back to back
// for the given seconds. Prints {"msgs", "seconds", "msgsPerSec"}.
//
//   node storebench.mjs /tmp/store.db 5
import { openDB, queries } from './server.mjs';

const [path = 'store-peer.db', seconds = '5'] = process.argv.slice(2);
const db = openDB(path);
const q = queries(db);
const conv = q.openPrivate('benchapp', 'alice', 'bob');
const content = JSON.stringify({ content: 'benchmark message' });
const start = process.hrtime.bigint();
const until = start + BigInt(Math.round(Number(seconds) * 1e9));
let n = 0;
while (process.hrtime.bigint() < until) {
  q.send(conv.id, n % 2 ? 'bob' : 'alice', 1, content, Date.now());
  n++;
}
const el = Number(process.hrtime.bigint() - start) / 1e9;
db.close();
console.log(JSON.stringify({ msgs: n, seconds: el, msgsPerSec: n / el }));
