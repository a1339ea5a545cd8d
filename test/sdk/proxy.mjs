// A TCP proxy on loopback that the SDK tests use as a client's network:
// it can cut every connection (gracefully with FIN, or with RST), refuse new
// ones while offline, and hold each chunk for a delay of its choosing while
// keeping every direction's bytes in order.
import net from 'node:net';

export class TcpProxy {
  // target: {host, port} of chatd. delay(): ms to hold the next chunk (0 for
  // none); it is asked once per chunk.
  constructor(target, { delay = () => 0 } = {}) {
    this.target = target;
    this.delay = delay;
    this.offline = false;
    this.conns = new Set();
    this.accepted = 0;
    this.server = net.createServer((c) => this._accept(c));
  }

  async listen() {
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', resolve);
    });
    this.port = this.server.address().port;
    this.url = `http://127.0.0.1:${this.port}`;
    return this;
  }

  _accept(client) {
    if (this.offline) { client.resetAndDestroy(); return; }
    this.accepted++;
    const upstream = net.connect(this.target.port, this.target.host);
    const conn = { client, upstream };
    this.conns.add(conn);
    const gone = () => {
      if (!this.conns.delete(conn)) return;
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      s.setNoDelay(true);
      s.on('error', gone);
      s.on('close', gone);
    }
    this._pipe(client, upstream);
    this._pipe(upstream, client);
  }

  // _pipe forwards src to dst chunk by chunk, each after its delay, in order.
  // An end is forwarded after the chunks before it.
  _pipe(src, dst) {
    const queue = [];
    let pumping = false;
    const pump = async () => {
      pumping = true;
      while (queue.length) {
        const chunk = queue.shift();
        const ms = chunk === null ? 0 : this.delay();
        if (ms > 0) await new Promise((r) => setTimeout(r, ms));
        if (dst.destroyed) break;
        if (chunk === null) dst.end(); else dst.write(chunk);
      }
      pumping = false;
    };
    const push = (chunk) => { queue.push(chunk); if (!pumping) pump(); };
    src.on('data', push);
    src.on('end', () => push(null));
  }

  // cut ends every open connection: 'end' closes both sides with a FIN
  // (bytes still held are lost), 'reset' with an RST.
  cut(mode = 'reset') {
    for (const conn of [...this.conns]) {
      this.conns.delete(conn);
      for (const s of [conn.client, conn.upstream]) {
        if (mode === 'end') { s.end(); s.destroySoon(); } else s.resetAndDestroy();
      }
    }
  }

  async close() {
    this.offline = true;
    this.cut('reset');
    await new Promise((r) => this.server.close(r));
  }
}
